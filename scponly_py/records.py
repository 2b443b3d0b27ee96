"""Immutable records for the login path.

`dataclasses` imports `inspect` and `re` (about 25 ms of start-up on Debian's
python3.11), and `typing.NamedTuple` costs nearly as much, so the login path
uses this small base class instead: fields in `__slots__`, set once by
`__init__`, compared by value, and read-only afterwards.
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
