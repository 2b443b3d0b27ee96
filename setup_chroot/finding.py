"""A finding: what `check` and `sshd-config --check` report, as one JSON object and one line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Finding:
    """The base of every kind of finding (jail, account, sshd): its fields are its JSON
    object (`to_json`); `LINE`, a str.format template over them, is its line (`str`)."""

    LINE: ClassVar[str]

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return self.LINE.format_map(self.to_json())
