"""Reading scponly-py's own log lines back: one parser for both formats (kv and json).

`parse(text)` takes a line as `audit.format_line` wrote it (the message after
`scponly-py[PID]: `, or a whole syslog-file line holding that prefix) and returns
its fields in order, values as str (undecodable bytes as surrogateescape) or
int (JSON numbers), or None if it is not one of our lines. `summarise` tallies
lines per user (`scponly-py-setup report`); `journal_lines` reads them from the journal.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Iterator

IDENT_MARK = "scponly-py["
REPORT_COLUMNS = (
    "sessions", "files_up", "bytes_up", "files_down", "bytes_down", "removed", "renamed", "refused",
)  # fmt: skip


class LogReadError(Exception):
    """The journal could not be read."""


def message_of(line: str) -> str | None:
    """The message of a syslog-file line written with our ident, or None."""
    start = line.find(IDENT_MARK)
    if start < 0:
        return None
    end = line.find("]: ", start)
    return None if end < 0 else line[end + 3 :]


def parse(text: str) -> dict[str, object] | None:
    """The fields of one of our lines (kv or json), or None if `text` is not one."""
    if IDENT_MARK in text:
        message = message_of(text)
        if message is None:
            return None
        text = message
    text = text.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError:
            return None
        return fields if isinstance(fields, dict) else None
    return _parse_kv(text)


def _parse_kv(text: str) -> dict[str, object] | None:
    fields: dict[str, object] = {}
    index = 0
    while index < len(text):
        equals = text.find("=", index)
        if equals <= index:
            return None
        key = text[index:equals]
        index = equals + 1
        if text[index : index + 1] == '"':
            value, index = _quoted(text, index + 1)
            if value is None:
                return None
        else:
            space = text.find(" ", index)
            space = len(text) if space < 0 else space
            value = text[index:space]
            index = space
        fields[key] = value
        if index < len(text):
            if text[index] != " ":
                return None
            index += 1
    return fields or None


def _quoted(text: str, index: int) -> tuple[str | None, int]:
    """Decode a quoted value starting after its `"`: (value, index after the closing quote)."""
    out = bytearray()
    while index < len(text):
        char = text[index]
        if char == '"':  # a value cut at MAX_FIELD ends in `..."`: kept as text
            return out.decode("utf-8", "surrogateescape"), index + 1
        if char == "\\":
            following = text[index + 1 : index + 2]
            if following == "x":
                try:
                    out.append(int(text[index + 2 : index + 4], 16))
                except ValueError:
                    return None, index
                index += 4
                continue
            out += following.encode()
            index += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        index += 1
    return None, index


def journal_lines(since: str | None) -> Iterator[str]:
    """The messages of our ident in the systemd journal."""
    argv = ["journalctl", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=scponly-py"]
    if since:
        argv += ["--since", since]
    try:
        result = subprocess.run(argv, capture_output=True, check=False, timeout=300)
    except FileNotFoundError:
        raise LogReadError("no journalctl here; give the syslog file with --file") from None
    if result.returncode != 0:
        raise LogReadError(f"journalctl: {result.stderr.decode(errors='replace').strip()}")
    for line in result.stdout.splitlines():
        try:
            message = json.loads(line).get("MESSAGE")
        except ValueError:
            continue
        if isinstance(message, list):  # journald stores non-UTF-8 messages as bytes
            message = bytes(message).decode("utf-8", "surrogateescape")
        if isinstance(message, str):
            yield message


def summarise(lines: Iterable[str], user: str | None = None) -> dict[str, dict[str, int]]:
    """Per user: sessions, files up/down with their bytes, removes, renames, refusals."""
    totals: dict[str, dict[str, int]] = {}
    for line in lines:
        fields = parse(line)
        if not fields or "user" not in fields:
            continue
        name = str(fields["user"])
        if user is not None and name != user:
            continue
        row = totals.setdefault(name, dict.fromkeys(REPORT_COLUMNS, 0))
        event = fields.get("event")
        if fields.get("decision") == "refuse":
            row["refused"] += 1
        elif event == "end":
            row["sessions"] += 1
        elif event == "close":
            written = _number(fields.get("bytes_written"))
            read = _number(fields.get("bytes_read"))
            if written:
                row["files_up"] += 1
                row["bytes_up"] += written
            if read:
                row["files_down"] += 1
                row["bytes_down"] += read
        elif event == "remove":
            row["removed"] += 1
        elif event == "rename":
            row["renamed"] += 1
    return totals


def _number(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
