"""`add-user --from FILE`: the rows of a batch, read and checked before anything is applied.

CSV (a header row naming the columns) or TOML (`[[user]]` tables), with the
columns name (required), uid, jail, writable, keys (authorized_keys text, one
key per line), group and shell; an empty or missing one takes the command
line's value. Every row is checked (name, ids, paths, duplicates) and the first
bad one is reported with its line number; the caller applies nothing then.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass

COLUMNS = ("name", "uid", "jail", "writable", "keys", "group", "shell")


class BatchError(Exception):
    """A row is malformed; the message starts with FILE:LINE."""


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    uid: int | None
    jail: str
    writable: str
    keys: str | None
    group: str
    shell: str


def _rows(path: str, text: str) -> list[tuple[int, dict[str, object]]]:
    """(line, raw fields) of each row."""
    if path.endswith(".toml"):
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise BatchError(f"{path}: {error}") from None
        tables = document.get("user", [])
        if set(document) - {"user"} or not isinstance(tables, list):
            raise BatchError(f"{path}: expected only [[user]] tables")
        starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[user]]"]
        return list(zip(starts, tables, strict=True))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    unknown = set(reader.fieldnames or ()) - set(COLUMNS)
    if "name" not in (reader.fieldnames or ()) or unknown:
        raise BatchError(f"{path}:1: the header must name the columns ({', '.join(COLUMNS)})")
    found = []
    for record in reader:
        # line_num counts physical lines read so far: the last one of this record.
        found.append((reader.line_num, {k: v for k, v in record.items() if v not in ("", None)}))
    return found


def read(path: str, defaults: dict[str, str], check: dict[str, object]) -> list[Row]:
    """Every row of `path` with the defaults filled in; `check` maps column -> validator.

    A validator takes the value and returns it normalised or raises ValueError
    with the reason; the first failure becomes BatchError("FILE:LINE: ...").
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise BatchError(f"{path}: not UTF-8") from None
    rows, names, uids = [], set(), set()
    for line, raw in _rows(path, text):
        extra = set(raw) - set(COLUMNS)
        fields = {**defaults, **{key: value for key, value in raw.items() if key in COLUMNS}}
        try:
            if extra:
                raise ValueError(f"unknown column {sorted(extra)[0]!r}")
            if not isinstance(fields.get("name"), str):
                raise ValueError("no name")
            values = {key: check[key](fields.get(key)) if key in check else fields.get(key)
                      for key in COLUMNS}  # fmt: skip
            if values["name"] in names:
                raise ValueError(f"{values['name']} appears twice")
            if values["uid"] is not None and values["uid"] in uids:
                raise ValueError(f"uid {values['uid']} appears twice")
        except (ValueError, TypeError) as error:
            raise BatchError(f"{path}:{line}: {error}") from None
        names.add(values["name"])
        uids.add(values["uid"])
        rows.append(Row(line, **values))  # type: ignore[arg-type]
    if not rows:
        raise BatchError(f"{path}: no users")
    return rows
