"""One error type for bad input: the CLI prints its message as one line and exits 2."""


class HwnasError(Exception):
    """Bad input or an unmet precondition, with a message that says what to do."""
