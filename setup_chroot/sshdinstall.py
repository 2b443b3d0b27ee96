"""`sshd-config --install/--uninstall`: put the Match block where sshd reads it, safely.

sshd keeps the FIRST value it reads for most keywords and processes `Include`
where it appears; a Match block in an included file ends with that file. The
stock Debian, Ubuntu, Fedora and Arch files include `sshd_config.d/*.conf` at
the top, so a drop-in there is read first: its Match block wins for our users,
and it must not repeat a global keyword the configuration already sets
(`Subsystem sftp` twice is a fatal error). Without such an Include the block is
appended to the main file between markers (its global lines, if any, go at the
top, outside every Match). Every change is checked with `sshd -t` before and
after (rolled back on failure) and with `sshd -T -C user=…` for each managed
user; sshd is reloaded (SIGHUP) only if it runs and only after all of that.
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
import grp
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass

from scponly_py import trusted
from setup_chroot import sshd, users

MAIN = "/etc/ssh/sshd_config"
SSHDIR = "/etc/ssh"  # where sshd resolves relative Include paths
DROP_IN = "scponly-py.conf"
BEGIN = "# BEGIN scponly-py-setup (sshd-config --install; remove with --uninstall)\n"
END = "# END scponly-py-setup\n"
GLOB_CHARACTERS = frozenset("*?[")


def drop_in_name(group: str | None) -> str:
    """Our drop-in's file name: one per Match group, so jails with ChrootDirectory coexist."""
    return DROP_IN if group in (None, users.DEFAULT_GROUP) else f"scponly-py-group-{group}.conf"


def markers(group: str | None) -> tuple[str, str]:
    """The BEGIN and END lines of our block for `group` in the main file (no Include)."""
    if group in (None, users.DEFAULT_GROUP):
        return BEGIN, END
    return (
        f"# BEGIN scponly-py-setup group {group} (sshd-config --install; remove with"
        " --uninstall)\n",
        f"# END scponly-py-setup group {group}\n",
    )


class InstallError(Exception):
    """The configuration cannot be changed safely; nothing was left changed."""


@dataclass(frozen=True)
class Directive:
    """One keyword line sshd reads, with where it came from."""

    keyword: str  # lower case
    args: tuple[str, ...]
    where: str  # file:line
    in_match: bool


def _split(line: str) -> tuple[str, tuple[str, ...]] | None:
    """(keyword, args) of a config line as sshd splits it (`Key value` or `Key=value`)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    words = text.split(maxsplit=1)
    keyword, rest = words[0], (words[1] if len(words) > 1 else "")
    if "=" in keyword:
        keyword, _, first = keyword.partition("=")
        rest = f"{first} {rest}"
    elif rest.startswith("="):
        rest = rest[1:]
    return keyword.lower(), tuple(rest.split())


def directives(path: str, *, skip: str = "", depth: int = 0) -> list[Directive]:
    """Every directive sshd reads from `path` and its Includes, in order (`skip`: a file to leave
    out, our own drop-in). A Match in an included file ends with that file, as in sshd."""
    found: list[Directive] = []
    in_match = False
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        if depth == 0:
            raise InstallError(f"{path}: no such file") from None
        return found
    for number, line in enumerate(lines, 1):
        parsed = _split(line)
        if parsed is None:
            continue
        keyword, args = parsed
        if keyword == "match":
            in_match = True
        found.append(Directive(keyword, args, f"{path}:{number}", in_match))
        if keyword == "include" and depth < 16:
            for pattern in args:
                full = pattern if os.path.isabs(pattern) else os.path.join(SSHDIR, pattern)
                for name in sorted(glob.glob(full)):
                    if name != skip:
                        found += [
                            Directive(d.keyword, d.args, d.where, d.in_match or in_match)
                            for d in directives(name, skip=skip, depth=depth + 1)
                        ]
    return found


def drop_in_path(main: str, name: str = DROP_IN) -> str | None:
    """Our drop-in's path if the main file includes a directory glob matching it (outside Match)."""
    for item in directives(main):
        if item.keyword != "include" or item.in_match or not item.where.startswith(f"{main}:"):
            continue
        for pattern in item.args:
            full = pattern if os.path.isabs(pattern) else os.path.join(SSHDIR, pattern)
            directory, glob_name = os.path.split(full)
            if GLOB_CHARACTERS.isdisjoint(directory) and fnmatch.fnmatchcase(name, glob_name):
                return os.path.join(directory, name)
    return None


def global_settings(main: str, skip: str) -> dict[str, Directive]:
    """Global keywords already set, first occurrence ('subsystem sftp' keyed apart)."""
    found: dict[str, Directive] = {}
    for item in directives(main, skip=skip):
        if item.in_match:
            continue
        key = item.keyword
        if key == "subsystem" and item.args:
            key = f"subsystem {item.args[0]}"
        found.setdefault(key, item)
    return found


def render(main: str, match: sshd.Match) -> tuple[str, str]:
    """(path to write, its global lines and Match block) for this configuration.

    Refuses (InstallError) a configuration whose sftp subsystem is internal-sftp in
    scponly mode: sshd then serves sftp itself and never runs the login shell.
    """
    target = drop_in_path(main, drop_in_name(match.group))
    already = global_settings(main, skip=target or "")
    sftp = already.get("subsystem sftp")
    if match.mode == "scponly" and sftp is not None and "internal-sftp" in sftp.args[1:2]:
        raise InstallError(
            f"{sftp.where}: 'Subsystem sftp internal-sftp' makes sshd serve sftp itself, never"
            " running the login shell, so scponly-py's rules would not apply to sftp; change"
            f" that line to 'Subsystem sftp {sshd.SFTP_SERVER}' (or use --mode internal-sftp"
            " for chrooted sftp-only accounts)"
        )
    skipped = {key: item.where for key, item in already.items()}
    return target or main, sshd.match_block(match, skipped)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def strip_blocks(data: bytes, group: str | None = None) -> bytes:
    """`data` without our marked blocks for `group` (BEGIN line to END line, inclusive)."""
    begin, end = markers(group)
    out, inside = [], False
    for line in data.splitlines(keepends=True):
        if line == begin.encode():
            inside = True
        elif inside and line == end.encode():
            inside = False
        elif not inside:
            out.append(line)
    return b"".join(out)


def new_content(
    path: str, main: str, block: str, group: str | None = None
) -> tuple[bytes | None, bytes | None]:
    """(current bytes, wanted bytes) of the file we write; the main file gets marked blocks."""
    current = read(path)
    begin, end = markers(group)
    if path != main:
        return current, (begin + block + end).encode()
    base = strip_blocks(current or b"", group)
    head, _, match = block.partition("\nMatch ")
    globals_ = "".join(
        line + "\n" for line in head.splitlines() if line and not line.startswith("#")
    )
    top = (begin + globals_ + end).encode() if globals_ else b""
    if base and not base.endswith(b"\n"):
        base += b"\n"
    return current, top + base + (begin + "Match " + match + end).encode()


def diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of one file (for --dry-run)."""
    lines = difflib.unified_diff(
        (old or b"").decode("utf-8", "replace").splitlines(keepends=True),
        (new or b"").decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=path if old is not None else "/dev/null",
        tofile=path if new is not None else "/dev/null",
    )
    return "".join(lines)


def validate(main: str, sshd_binary: str = sshd.SSHD) -> str | None:
    """sshd -t's last error line for `main`, or None when it is valid."""
    try:
        result = subprocess.run(
            [sshd_binary, "-t", "-f", main], capture_output=True, text=True, check=False, timeout=30
        )
    except OSError as error:
        return f"cannot run {sshd_binary}: {error.strerror}"
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
    return lines[-1]


def write(path: str, data: bytes | None) -> None:
    """Replace (or with None delete) `path` atomically, in a directory trusted by the rule."""
    directory, name = os.path.split(path)
    try:
        dir_fd = trusted.open_path(directory, directory=True)
    except trusted.Untrusted as error:
        raise InstallError(f"refused: {error}") from None
    try:
        if data is None:
            os.unlink(name, dir_fd=dir_fd)
            return
        temporary = f".{name}.{os.getpid()}.tmp"

        def fill(fd: int) -> None:
            os.fchmod(fd, 0o644)
            trusted.write_all(fd, data)

        trusted.write_new_at(dir_fd, temporary, fill)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def managed_users(group: str | None, users: tuple[str, ...]) -> list[str]:
    """The accounts the Match block is for: `users`, or the group's members (primary too)."""
    if not group:
        return list(users)
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return []
    primary = [who.pw_name for who in pwd.getpwall() if who.pw_gid == entry.gr_gid]
    return sorted(set(entry.gr_mem) | set(primary))


def change(
    path: str, old: bytes | None, new: bytes | None, *, main: str, verify: list[str], mode: str
) -> None:
    """Write `new` to `path` with sshd -t before and after and sshd -T per user; else roll back."""
    before = validate(main)
    if before is not None:
        raise InstallError(f"{main} is already invalid, not touching it: {before}")
    write(path, new)
    problem = validate(main)
    if problem is None:
        found = [item for user in verify for item in sshd.check_user(user, mode=mode, config=main)]
        if found:
            problem = "; ".join(f"{item.user}: {item.setting} {item.value}" for item in found)
    if problem is not None:
        write(path, old)
        raise InstallError(f"sshd rejected the change, {path} restored: {problem}")


def reload(main: str) -> str:
    """SIGHUP the running sshd (its PidFile, checked to be sshd); say what was done."""
    pidfile = sshd.effective("root", host="localhost", addr="127.0.0.1", config=main).get(
        "pidfile", ["/run/sshd.pid"]
    )[0]
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().split()[0])
        with open(f"/proc/{pid}/comm", encoding="ascii") as handle:
            running = handle.read().strip() == "sshd" and os.stat(f"/proc/{pid}").st_uid == 0
    except (OSError, ValueError, IndexError):
        running = False
    if not running:
        return "sshd is not running: not reloaded"
    os.kill(pid, signal.SIGHUP)
    return f"reloaded sshd (pid {pid})"
