"""`import rssh` / `import scponly`: what an rssh.conf or the C scponly's accounts become here.

Pure functions: parse, then convert to a config.toml text and a list of account
moves; the command (importer.py) shows them and, with --apply, runs the
existing jail and account commands. rssh.conf(5) as rssh 2.3.4 reads it:
keywords are case-insensitive, `keyword` or `keyword = value`, `#` starts a
comment anywhere outside quotes, and quotes (' or ") may enclose any part of a
value. A `user=` line replaces every global setting for that user (umask,
programs, chroot: an empty path means not chrooted). Its access bits are
5 digits (rsync, rdist, cvs, sftp, scp) or 6 (the same, then svnserve).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field

from scponly_py.programs import PROGRAMS
from setup_chroot import users

RSSH_CONF = "/etc/rssh.conf"
RSSH_PROGRAMS = ("scp", "sftp", "cvs", "rdist", "rsync", "svnserve")
BITS = ("rsync", "rdist", "cvs", "sftp", "scp", "svnserve")  # user= access bits, in order
OURS = {name: name for name in RSSH_PROGRAMS if name in PROGRAMS}  # same names where we have one
DROPPED = {
    "cvs": "no cvs here: `cvs server` runs whatever CVSROOT and the repository's"
    " administrative files say; serve CVS some other way",
    "rdist": "no rdist here: rdistd runs the commands of a Distfile's `special` lines",
}
IGNORED = {"logfacility": "scponly-py logs to authpriv (scponly_py/audit.py)"}
RSSH_SHELLS = frozenset({"rssh"})
SCPONLY_SHELLS = {"scponly": "scponly-py", "scponlyc": "scponly-pyc"}
MAX_CONF = 1 << 20


class MigrateError(Exception):
    """The input cannot be converted faithfully; the message names the line and why."""


@dataclass(frozen=True)
class RsshUser:
    name: str
    umask: str
    programs: tuple[str, ...]
    chroot: str  # "" : not chrooted
    line: int


@dataclass
class RsshConf:
    programs: list[str] = field(default_factory=list)
    umask: str | None = None
    chrootpath: str = ""
    users: dict[str, RsshUser] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what is dropped, and why


def _words(raw: str, number: int) -> str:
    """A line without its comment, its quotes removed (rssh quotes any part of a value)."""
    out, quote = [], ""
    for char in raw:
        if quote:
            if char == quote:
                quote = ""
            else:
                out.append(char)
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        else:
            out.append(char)
    if quote:
        raise MigrateError(f"line {number}: unterminated quote")
    return "".join(out).strip()


def _umask(value: str, where: str) -> str:
    if not value or len(value) > 4 or not all("0" <= char <= "7" for char in value):
        raise MigrateError(f"{where}: umask {value!r} is not octal")
    number = int(value, 8)
    if number > 0o777:
        raise MigrateError(f"{where}: umask {value!r} above 0777")
    return f"{number:04o}"


def _absolute(path: str, where: str) -> str:
    if not path.startswith("/") or any(part == ".." for part in path.split("/")):
        raise MigrateError(f"{where}: chroot path {path!r} must be absolute, without '..'")
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def parse_rssh(text: str) -> RsshConf:
    """rssh.conf text -> its settings; an error rssh would lock users out for is a MigrateError."""
    conf = RsshConf()
    for number, raw in enumerate(text.splitlines(), 1):
        line = _words(raw, number)
        if not line:
            continue
        keyword, equals, value = line.partition("=")
        keyword, value = keyword.strip().lower(), value.strip()
        where = f"line {number}"
        if keyword.startswith("allow") and keyword[5:] in RSSH_PROGRAMS and not equals:
            if keyword[5:] not in conf.programs:
                conf.programs.append(keyword[5:])
        elif keyword == "umask" and equals:
            conf.umask = _umask(value, where)
        elif keyword == "chrootpath" and equals:
            conf.chrootpath = _absolute(value, where)
        elif keyword == "user" and equals:
            entry = _user(value, where, number)
            conf.users[entry.name] = entry
        elif keyword in IGNORED:
            conf.notes.append(f"{where}: {keyword}: {IGNORED[keyword]}")
        else:
            raise MigrateError(f"{where}: unknown or malformed keyword {keyword!r}")
    for program in dict.fromkeys(
        [*conf.programs, *(p for user in conf.users.values() for p in user.programs)]
    ):
        if program in DROPPED:
            conf.notes.append(f"{program}: {DROPPED[program]}")
    if "svnserve" in conf.programs:
        conf.notes.append(
            "allowsvnserve: rssh's `svnserve -t` served any path; here svnserve needs an"
            " svn_root, set for user= lines only: add one to [defaults] for the others"
        )
    return conf


def _user(value: str, where: str, number: int) -> RsshUser:
    """name:umask:bits[:path] (rssh.conf(5) `user`)."""
    fields = value.split(":", 3)
    if len(fields) < 3:
        raise MigrateError(f"{where}: user= needs name:umask:access bits[:path]")
    name, umask, bits = (part.strip() for part in fields[:3])
    try:
        users.check_name(name)
    except users.UserError as error:
        raise MigrateError(f"{where}: {error}") from None
    if len(bits) not in (5, 6) or set(bits) - {"0", "1"}:
        raise MigrateError(f"{where}: access bits {bits!r}: 5 or 6 binary digits")
    programs = tuple(program for program, bit in zip(BITS, bits, strict=False) if bit == "1")
    path = fields[3].strip() if len(fields) > 3 else ""
    chroot = _absolute(path, where) if path else ""
    return RsshUser(name, _umask(umask, where), programs, chroot, number)


def toml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def rssh_config(conf: RsshConf, homes: dict[str, str]) -> str:
    """The config.toml for `conf`: [defaults] from the global lines, [user.NAME] per user= line.

    `homes`: user -> home as it will be after the move (svn_root, only where rssh
    allowed svnserve: rssh ran `svnserve -t`, which serves any path; ours serves one).
    """
    lines = ["# Imported from rssh.conf by scponly-py-setup import rssh.", "", "[defaults]"]
    lines += _settings(conf.programs, conf.umask, homes.get(""))
    for user in conf.users.values():
        lines += ["", f"[user.{user.name}]"]
        lines += _settings(list(user.programs), user.umask, homes.get(user.name))
    return "\n".join(lines) + "\n"


def _settings(programs: list[str], umask: str | None, svn_home: str | None) -> list[str]:
    ours = [OURS[name] for name in programs if name in OURS]
    lines = [f"programs = {toml_list(ours)}"]
    if umask is not None:
        lines.append(f'umask = "{umask}"')
    if "svnserve" in ours and svn_home:
        lines.append(f'svn_root = "{svn_home}"')
    return lines


@dataclass(frozen=True)
class Move:
    """One account to switch: to `shell` (scponly-py or scponly-pyc); `jail` if chrooted."""

    name: str
    shell: str
    jail: str  # "" : not chrooted
    programs: tuple[str, ...]
    old_home: str
    writable: str = ""  # scponly: the user-owned directory in the jail root, moved into the home


def rssh_moves(conf: RsshConf, accounts: list[pwd.struct_passwd]) -> list[Move]:
    """The rssh accounts (login shell named rssh) and where each goes."""
    moves = []
    for entry in accounts:
        if os.path.basename(entry.pw_shell) not in RSSH_SHELLS:
            continue
        user = conf.users.get(entry.pw_name)
        chroot = user.chroot if user is not None else conf.chrootpath
        programs = user.programs if user is not None else tuple(conf.programs)
        kept = tuple(OURS[name] for name in programs if name in OURS)
        shell = "scponly-pyc" if chroot else "scponly-py"
        moves.append(Move(entry.pw_name, shell, chroot, kept, entry.pw_dir))
    return moves


def svn_homes(conf: RsshConf, moves: list[Move]) -> dict[str, str]:
    """user -> svn_root (their home as the shell will see it) for users rssh let run svnserve."""
    homes: dict[str, str] = {}
    for move in moves:
        if "svnserve" in move.programs and move.name in conf.users:
            homes[move.name] = f"/home/{move.name}" if move.jail else move.old_home
    return homes


def scponly_moves(accounts: list[pwd.struct_passwd]) -> list[Move]:
    """The C scponly's accounts (shell named scponly or scponlyc) and where each goes.

    scponlyc chroots to the home, or to the part before `//` (setup_chroot.sh makes
    the home the jail, with a user-owned writable directory, `incoming` by default).
    """
    moves = []
    for entry in accounts:
        ours = SCPONLY_SHELLS.get(os.path.basename(entry.pw_shell))
        if ours is None:
            continue
        if ours == "scponly-py":
            moves.append(Move(entry.pw_name, ours, "", (), entry.pw_dir))
            continue
        jail = _absolute(entry.pw_dir.split("//", 1)[0] or "/", f"{entry.pw_name}'s home")
        moves.append(
            Move(entry.pw_name, ours, jail, (), entry.pw_dir, _writable(jail, entry.pw_uid))
        )
    return moves


def _writable(jail: str, uid: int) -> str:
    """The one directory directly in the jail root that the user owns, if exactly one."""
    try:
        with os.scandir(jail) as entries:
            owned = [
                entry.name
                for entry in entries
                if entry.is_dir(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_uid == uid
            ]
    except OSError:
        return ""
    return owned[0] if len(owned) == 1 else ""
