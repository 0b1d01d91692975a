"""A tiny POSIX-shell subset for the stand-in: quoting, ;, &&, ||, $?, globs; flags injections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

Runner = Callable[[list[str]], tuple[str, int]]
Globber = Callable[[str], list[str]]

_GLOB_CHARS = "*?["
_OPERATORS = ("&&", "||", ";")
_UNSUPPORTED = "|&<>(){}"


class ShellSyntaxError(Exception):
    """The line does not parse (e.g. an unterminated quote)."""


@dataclass
class Word:
    """One shell word as parts: (text, kind) with kind 'q' quoted, 'u' unquoted, 'rc' for $?."""

    parts: list[tuple[str, str]] = field(default_factory=list)

    def expand(self, rc: int) -> tuple[str, bool]:
        """The word's text with $? substituted, and whether it holds an unquoted glob."""
        out, glob = [], False
        for text, kind in self.parts:
            if kind == "rc":
                out.append(str(rc))
            else:
                out.append(text)
                glob = glob or (kind == "u" and any(c in text for c in _GLOB_CHARS))
        return "".join(out), glob


@dataclass
class Parsed:
    """A command line: simple commands with the operator before each, and shell syntax seen."""

    commands: list[tuple[str, list[Word]]]
    syntax: list[str]
    substitutions: list[str]


# ~75 lines: one character loop with a branch per piece of sh syntax; split up, the cases
# of one small grammar would no longer read side by side.
def parse(line: str) -> Parsed:
    """Split a line the way sh would for the subset hwnas uses, noting any other syntax."""
    commands: list[tuple[str, list[Word]]] = []
    syntax: list[str] = []
    subs: list[str] = []
    words: list[Word] = []
    cur: Word | None = None
    op = ";"
    i, n = 0, len(line)

    def add(text: str, kind: str) -> None:
        nonlocal cur
        if cur is None:
            cur = Word()
        cur.parts.append((text, kind))

    def flush() -> None:
        nonlocal cur
        if cur is not None:
            words.append(cur)
            cur = None

    def end_command(next_op: str) -> None:
        nonlocal words, op
        flush()
        if words:
            commands.append((op, words))
        words, op = [], next_op

    while i < n:
        c = line[i]
        if c in " \t\r\n":
            flush()
            i += 1
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise ShellSyntaxError("unterminated single quote")
            add(line[i + 1 : j], "q")
            i = j + 1
        elif c == '"':
            i = _double_quoted(line, i + 1, add, syntax, subs)
        elif c == "\\":
            if i + 1 < n and line[i + 1] != "\n":
                add(line[i + 1], "q")
            i += 2
        elif c == "#" and cur is None:
            break
        elif c == "`":
            j = line.find("`", i + 1)
            j = n if j < 0 else j
            syntax.append("backtick command substitution")
            subs.append(line[i + 1 : j])
            i = j + 1
        elif line.startswith("$(", i):
            j = _matching_paren(line, i + 2)
            syntax.append("$( ) command substitution")
            subs.append(line[i + 2 : j])
            i = j + 1
        elif line.startswith("$?", i):
            add("", "rc")
            i += 2
        elif any(line.startswith(o, i) for o in _OPERATORS):
            o = next(o for o in _OPERATORS if line.startswith(o, i))
            end_command(o)
            i += len(o)
        elif c in _UNSUPPORTED:
            syntax.append(f"unquoted {c!r}")
            end_command(";")
            i += 1
        else:
            add(c, "u")
            i += 1
    end_command(";")
    return Parsed(commands, syntax, subs)


def _double_quoted(line: str, i: int, add, syntax: list[str], subs: list[str]) -> int:
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and line[i + 1] in '$`"\\':
            add(line[i + 1], "q")
            i += 2
        elif line.startswith("$?", i):
            add("", "rc")
            i += 2
        elif line.startswith("$(", i) or c == "`":
            j = _matching_paren(line, i + 2) if c == "$" else line.find("`", i + 1)
            j = n if j < 0 else j
            syntax.append("command substitution inside double quotes")
            subs.append(line[i + 2 : j] if c == "$" else line[i + 1 : j])
            i = j + 1
        else:
            add(c, "q")
            i += 1
    raise ShellSyntaxError("unterminated double quote")


def _matching_paren(line: str, i: int) -> int:
    depth = 1
    while i < len(line):
        depth += {"(": 1, ")": -1}.get(line[i], 0)
        if depth == 0:
            return i
        i += 1
    return len(line)


def run_line(line: str, runner: Runner, globber: Globber) -> tuple[str, int, Parsed]:
    """Execute a line: command substitutions first (as sh would), then each simple command."""
    try:
        parsed = parse(line)
    except ShellSyntaxError as e:
        return f"/system/bin/sh: syntax error: {e}\n", 2, Parsed([], [str(e)], [])
    out: list[str] = []
    rc = 0
    for inner in parsed.substitutions:
        run_line(inner, runner, globber)
    for op, words in parsed.commands:
        if (op == "&&" and rc != 0) or (op == "||" and rc == 0):
            continue
        argv: list[str] = []
        for w in words:
            text, glob = w.expand(rc)
            matches = globber(text) if glob else []
            argv.extend(matches or [text])
        text, rc = runner(argv)
        out.append(text)
    return "".join(out), rc, parsed
