"""Accounts of jailed users: useradd/usermod, /etc/shells, and their lines in a jail's passwd.

The writers here run only as plan operations (plan.apply); plan.account_ops
decides which of them a command needs.

The host's user database is read through pwd/grp (NSS), never by parsing
/etc/passwd: accounts may live in LDAP or sssd, and a grep for "alice" also
matches "alice2". Account changes go through useradd/usermod/userdel, which
lock the database files and keep shadow in step.

Home directory forms: a `scponly-pyc` user gets `JAIL//home/NAME` (the shell
chroots to the part before `//` and starts in the part after it); a
`scponly-py` user inside a jail gets `/home/NAME`, the path inside the
`ChrootDirectory JAIL` that sshd enters for it.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess

SHELLS = "/etc/shells"
DEFAULT_GROUP = "scponly"  # the group sshd-config's Match block names
SHELL_PATHS = {
    "scponly-pyc": "/usr/lib/scponly-py/scponly-pyc",  # install-chroot-shell's default
    "scponly-py": "/usr/local/bin/scponly-py",  # install-shell's default
}
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
ROOT_PASSWD = b"root:x:0:0:root:/root:/usr/sbin/nologin\n"
ROOT_GROUP = b"root:x:0:\n"


class UserError(Exception):
    """An account cannot be created, changed or found; the message says which and why."""


def check_name(name: str) -> str:
    """Refuse names useradd would accept only with --badname, and anything odd."""
    if not NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r} (lower-case letters, digits, _ and -)")
    return name


def shell_path(shell: str) -> str:
    """`scponly-pyc`, `scponly-py` or an absolute path -> the login shell's path."""
    if shell in SHELL_PATHS:
        return SHELL_PATHS[shell]
    if not os.path.isabs(shell):
        raise UserError(f"shell {shell!r}: use scponly-pyc, scponly-py or an absolute path")
    return shell


def home_for(jail: str, name: str, shell: str) -> str:
    """The passwd home of a jailed user (see the module docstring)."""
    if os.path.basename(shell) == "scponly-pyc":
        return f"{jail.rstrip('/')}//home/{name}"
    return f"/home/{name}"


def account(name: str) -> pwd.struct_passwd | None:
    """The passwd entry of `name`, None if there is no such account."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _field(value: str) -> str:
    # Our own output must stay one well-formed line per entry whatever NSS returns.
    return value.replace(":", " ").replace("\n", " ")


def entries(names: list[str]) -> list[pwd.struct_passwd]:
    """passwd entries of `names`, enumerating the database once (a jail may hold thousands).

    Names that enumeration does not return (LDAP/sssd often disable it) are
    looked up one by one.
    """
    wanted = set(names)
    found = {entry.pw_name: entry for entry in pwd.getpwall() if entry.pw_name in wanted}
    for name in wanted - found.keys():
        found[name] = pwd.getpwnam(name)
    return [found[name] for name in sorted(wanted)]


def passwd_content(names: list[str]) -> bytes:
    """The jail's /etc/passwd: root and the jail's users, with their in-jail homes."""
    lines = [ROOT_PASSWD.decode()]
    for entry in entries(names):
        home = entry.pw_dir.partition("//")[2] if "//" in entry.pw_dir else entry.pw_dir
        home = "/" + home.lstrip("/")
        fields = (entry.pw_name, "x", str(entry.pw_uid), str(entry.pw_gid), entry.pw_gecos, home)
        lines.append(":".join(map(_field, (*fields, entry.pw_shell))) + "\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def group_content(names: list[str]) -> bytes:
    """The jail's /etc/group: root and every group of the jail's users, members limited to them.

    A user's groups are the primary one plus every group listing them as a
    member (what initgroups gives them), from one enumeration of the group database.
    """
    members = set(names)
    wanted = {entry.pw_gid for entry in entries(names)}
    groups: dict[int, tuple[str, list[str]]] = {}
    for entry in grp.getgrall():
        inside = sorted(members.intersection(entry.gr_mem))
        if entry.gr_gid != 0 and (entry.gr_gid in wanted or inside):
            groups[entry.gr_gid] = (entry.gr_name, inside)
    for gid in wanted - groups.keys() - {0}:
        try:
            groups[gid] = (grp.getgrgid(gid).gr_name, [])
        except KeyError:
            continue
    lines = [ROOT_GROUP.decode()]
    for gid, (group_name, group_members) in sorted(groups.items()):
        lines.append(f"{_field(group_name)}:x:{gid}:{','.join(group_members)}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def is_ours(path: str) -> bool:
    """Whether `path` is one of the project's login shells (only those go into /etc/shells)."""
    return os.path.basename(path) in SHELL_PATHS


def register_shell(path: str, shells: str = SHELLS) -> bool:
    """Add `path` to /etc/shells once (sshd's PAM, chsh and FTP daemons check it); True if added.

    Only the project's own shells: /etc/shells is also the list of accounts FTP daemons and
    chsh treat as real logins, so `add-user --shell /usr/sbin/nologin` must not land there.
    """
    if not is_ours(path) or registered(path, shells):
        return False
    with open(shells, "a", encoding="utf-8") as handle:
        handle.write(path + "\n")
    return True


def registered(path: str, shells: str = SHELLS) -> bool:
    """Whether `path` is a line of /etc/shells."""
    try:
        with open(shells, encoding="utf-8") as handle:
            return path in {line.strip() for line in handle}
    except FileNotFoundError:
        return False


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise UserError(f"{argv[0]} failed ({result.returncode}): {' '.join(message[-1:])}")


def useradd(name: str, home: str, shell: str) -> None:
    """Create the account with `home` and `shell`, the password `*` (no password login, but
    not "locked": sshd refuses keys for `!` accounts without PAM), its own group (-U) and no
    home directory made (-M): the jail layout is ours."""
    _run(["useradd", "-M", "-d", home, "-s", shell, "-p", "*", "-U", "--", name])


def usermod(name: str, home: str, shell: str) -> None:
    """Point the account at `home` and `shell`."""
    _run(["usermod", "-d", home, "-s", shell, "--", name])


def userdel(name: str) -> None:
    """Delete the account (never a home: the jail's are removed through jailfs)."""
    _run(["userdel", "--", name])


def missing(names: list[str]) -> list[str]:
    """The names that no longer have an account (deleted with userdel behind our back)."""
    present = {entry.pw_name for entry in pwd.getpwall()}
    gone = []
    for name in names:
        if name not in present:
            try:
                pwd.getpwnam(name)
            except KeyError:
                gone.append(name)
    return gone


def groupadd(group: str) -> None:
    """Create `group` as a system group."""
    _run(["groupadd", "--system", "--", check_name(group)])


def join_group(name: str, group: str) -> None:
    """Make `name` a member of `group` (usermod -aG)."""
    _run(["usermod", "-aG", group, "--", name])


def leave_group(name: str, group: str) -> None:
    """Take `name` out of `group` (gpasswd -d)."""
    _run(["gpasswd", "-d", name, group])
