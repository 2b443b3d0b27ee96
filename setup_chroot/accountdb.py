"""Many new local accounts in one write of /etc/passwd, shadow, group and gshadow.

useradd rewrites all four files per account (13 ms each here, growing with the
files), so a batch of 1000 would take most of a minute. This module does what
useradd -M -U -p '*' [-G GROUP] does for a whole batch at once, under the same
lock (lckpwdf(3), the /etc/.pwd.lock shadow-utils and glibc take), with the same
id allocation (next free above the highest used in login.defs' UID_MIN..UID_MAX,
the private group's gid equal to the uid when free), the same `NAME-` backups,
and each file replaced by rename with its owner and mode kept.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from scponly_py import trusted

ETC = "/etc"
LOGIN_DEFS = "/etc/login.defs"
DEFAULT_RANGE = (1000, 60000)


class AccountDbError(Exception):
    """The account files cannot be locked, read or written; nothing was changed."""


@dataclass(frozen=True)
class NewAccount:
    name: str
    home: str
    shell: str
    uid: int | None = None  # None: allocate


def id_range(key: str) -> tuple[int, int]:
    """(MIN, MAX) of UID or GID from login.defs, as useradd reads them."""
    found = dict.fromkeys(("MIN", "MAX"), 0)
    try:
        with open(LOGIN_DEFS, encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if len(words) == 2 and words[0] in (f"{key}_MIN", f"{key}_MAX"):
                    found[words[0][-3:]] = int(words[1])
    except (OSError, ValueError):
        return DEFAULT_RANGE
    return (found["MIN"] or DEFAULT_RANGE[0], found["MAX"] or DEFAULT_RANGE[1])


@contextmanager
def locked() -> Iterator[None]:
    """Hold lckpwdf(3) (it waits up to 15 s for useradd & co.)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.lckpwdf() != 0:
        raise AccountDbError("cannot lock the account files (lckpwdf): another tool holds them")
    try:
        yield
    finally:
        libc.ulckpwdf()


def _read(name: str) -> list[str] | None:
    try:
        with open(os.path.join(ETC, name), encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        return None


def _replace(name: str, lines: list[str], old: list[str]) -> None:
    """Write `lines` to /etc/NAME by rename (owner and mode kept), the old text to NAME-
    (each through `trusted.write_new_at` in /etc opened by the trusted-path rule)."""
    try:
        dir_fd = trusted.open_path(ETC, directory=True)
    except trusted.Untrusted as error:
        raise AccountDbError(str(error)) from None
    try:
        info = os.stat(name, dir_fd=dir_fd)
        for target, content in ((name + "-", old), (name, lines)):
            data = "".join(line + "\n" for line in content).encode("utf-8", "surrogateescape")

            def fill(fd: int, data: bytes = data) -> None:
                os.fchown(fd, info.st_uid, info.st_gid)
                os.fchmod(fd, info.st_mode & 0o7777)
                trusted.write_all(fd, data)

            temporary = f".{target}.{os.getpid()}.tmp"
            trusted.write_new_at(dir_fd, temporary, fill)
            os.rename(temporary, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _next_free(used: set[int], low: int, high: int, start: int) -> int:
    for number in range(max(start, low), high + 1):
        if number not in used:
            return number
    for number in range(low, high + 1):
        if number not in used:
            return number
    raise AccountDbError(f"no free id left in {low}..{high} (login.defs)")


def add(accounts: list[NewAccount], group: str | None) -> dict[str, int]:
    """Create `accounts` (none may exist) and make them members of `group`; name -> uid.

    Each gets a private group, the password `*` (no password login, keys work) and
    no home directory (the jail layout is the caller's).
    """
    if not accounts:
        return {}
    with locked():
        files = {name: _read(name) for name in ("passwd", "shadow", "group", "gshadow")}
        passwd, group_lines = files["passwd"], files["group"]
        if passwd is None or group_lines is None:
            raise AccountDbError("/etc/passwd or /etc/group is missing")
        names = {line.split(":", 1)[0] for line in passwd}
        groups = {line.split(":", 1)[0] for line in group_lines}
        uids = {int(line.split(":")[2]) for line in passwd if line.count(":") >= 6}
        gids = {int(line.split(":")[2]) for line in group_lines if line.count(":") >= 3}
        (uid_low, uid_high), (gid_low, gid_high) = id_range("UID"), id_range("GID")
        next_uid = max((uid for uid in uids if uid_low <= uid <= uid_high), default=uid_low - 1)
        days = int(time.time() // 86400)
        added: dict[str, int] = {}
        for account in accounts:
            if account.name in names or account.name in groups:
                raise AccountDbError(f"{account.name}: the user or group already exists")
            uid = account.uid
            if uid is None:
                uid = next_uid = _next_free(uids, uid_low, uid_high, next_uid + 1)
            elif uid in uids:
                raise AccountDbError(f"{account.name}: uid {uid} is already used")
            gid = uid if uid not in gids else _next_free(gids, gid_low, gid_high, gid_low)
            uids.add(uid)
            gids.add(gid)
            names.add(account.name)
            passwd.append(f"{account.name}:x:{uid}:{gid}::{account.home}:{account.shell}")
            group_lines.append(f"{account.name}:x:{gid}:")
            if files["shadow"] is not None:
                files["shadow"].append(f"{account.name}:*:{days}:0:99999:7:::")
            if files["gshadow"] is not None:
                files["gshadow"].append(f"{account.name}:!::")
            added[account.name] = uid
        if group is not None:
            for name, separator in (("group", 3), ("gshadow", 3)):
                lines = files[name]
                if lines is not None:
                    files[name] = [_with_members(line, group, added, separator) for line in lines]
        for name, lines in files.items():
            if lines is not None:
                _replace(name, lines, _read(name) or [])
    return added


def _with_members(line: str, group: str, added: dict[str, int], index: int) -> str:
    """A group/gshadow line with `added` appended to its member list when it is `group`'s."""
    fields = line.split(":")
    if fields[0] != group or len(fields) <= index:
        return line
    present = [name for name in fields[index].split(",") if name]
    fields[index] = ",".join(present + [name for name in added if name not in present])
    return ":".join(fields)
