"""One error type for bad input: the CLI prints its message as one line and exits 2."""


class HwnasError(Exception):
    """Bad input or an unmet precondition, with a message that says what to do."""


def check(rules: list[tuple[bool, str]], error: type[HwnasError] = HwnasError) -> None:
    """Raise ``error`` with the message of the first rule that does not hold."""
    for ok, message in rules:
        if not ok:
            raise error(message)
