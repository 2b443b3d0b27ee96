"""The two outcomes of a request, and the exception grammars raise to refuse.

`decide()` returns exactly one of `Allow` or `Refuse`; nothing else leaves it.
Grammar code raises `Refusal` deep inside a check, and `decide()` turns it into
a `Refuse`, so a forgotten branch cannot fall through into an exec.
"""

from scponly_py.records import Record


class Refusal(Exception):
    """Raised by tokenizer, grammars and policy checks; the message is shown to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Allow(Record):
    """Exec `path` with exactly `argv` and `env`, after `umask` and `chdir(cwd)`."""

    __slots__ = ("argv", "cwd", "env", "path", "program", "umask")
    argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...]
    path: str
    program: str
    umask: int

    allowed = True


class Refuse(Record):
    """Do not exec anything; tell the client `reason` and log it."""

    __slots__ = ("program", "reason")
    program: str
    reason: str

    allowed = False
