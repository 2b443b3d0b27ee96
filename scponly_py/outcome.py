"""The two outcomes of a request, the exception grammars raise to refuse, and `Record`.

`decide()` returns exactly one of `Allow` or `Refuse`; nothing else leaves it.
Grammar code raises `Refusal` deep inside a check, and `decide()` turns it into
a `Refuse`, so a forgotten branch cannot fall through into an exec. `Record` is
the immutable base of the login path's value types (these, `Request`, `Policy`,
option specs) instead of dataclasses (docs/design.md, "The login path's imports").
"""


class Record:
    """Base class for value objects whose fields are listed in `__slots__`."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: object) -> None:
        if fields.keys() != set(self.__slots__):
            missing = [name for name in self.__slots__ if name not in fields]
            unknown = [name for name in fields if name not in self.__slots__]
            raise TypeError(f"{type(self).__name__}: missing {missing}, unknown {unknown}")
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: object) -> "Record":
        """A copy with some fields changed (records are never mutated)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return type(self)(**fields)


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
