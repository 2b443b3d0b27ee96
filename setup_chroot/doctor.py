"""`check --user` / `check --all-users`: what around a restricted account runs without its shell.

Reads, never runs: the sshd PAM stack (pamstack.py), `sshd -T` for the user
(sshd.py), the running sshd's /proc status, the login shell's ELF header,
mode and security.capability, and the account's home: every lstat, every
open O_NOFOLLOW below the home, user files read up to MAX_READ bytes. Each
finding is one line (what, what it allows, the fix); `plan_fixes`/`apply`
change only modes and owners of the home, ~/.ssh and its key files (and, for a
home systemd --user could read from, the directory-only ~/.config and ~/.local
trees plus a new ~/files), through descriptors opened without following
symlinks. docs/design.md, "Account and server audit", says why each check exists.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from scponly_py import trusted
from setup_chroot import check, finding, jailfs, pamstack, plan, sshd

SHELL_NAMES = frozenset({"scponly-py", "scponly-pyc"})
MAX_READ = 64 * 1024
SSHD_FIX = "add the Match block printed by `scponly-py-setup sshd-config` and reload sshd"
SHELL_FIX = "re-run `scponly-py-setup install-shell` or upgrade the package"
# What the dynamic loader, glibc, Python and shells honour before a program's first instruction.
DANGEROUS_ENV = (
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG_OUTPUT", "LD_PROFILE",
    "GCONV_PATH", "LOCPATH", "NLSPATH", "GLIBC_TUNABLES", "MALLOC_TRACE", "MALLOC_CHECK_",
    "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "TZDIR", "TMPDIR",
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONWARNINGS",
    "BASH_ENV", "ENV", "IFS", "PATH", "SHELLOPTS",
)  # fmt: skip
LOGIN_FILES = {
    ".ssh/rc": "sshd runs it through the login shell before each session (PermitUserRC)",
    ".ssh/environment": "sshd puts its variables into the session (PermitUserEnvironment)",
    ".k5login": "lets the Kerberos principals listed log in as the account",
    ".rhosts": "lets the hosts and users listed log in as the account (host-based auth)",
    ".shosts": "lets the hosts and users listed log in as the account (host-based auth)",
    ".config/systemd": "systemd --user (started by pam_systemd at login) runs the units in it",
    ".config/environment.d": "systemd --user puts its variables into every user service",
    ".local/share/systemd": "systemd --user (started by pam_systemd at login) runs the units in it",
}
# What systemd --user reads below the home, and the trees holding it (trusted.USER_MANAGER_PATHS).
USER_MANAGER_FILES = frozenset({".config/systemd", ".config/environment.d", ".local/share/systemd"})
USER_MANAGER_TREES = (".config", ".local")
CRONTABS = ("/var/spool/cron/crontabs", "/var/spool/cron")  # Debian; Fedora and Arch
AT_SPOOLS = ("/var/spool/cron/atjobs", "/var/spool/at")
LINGER = "/var/lib/systemd/linger"
VFS_CAP_REVISION_MASK = 0xFF000000
CAP_FORMATS = {0x01000000: "<I2I", 0x02000000: "<I4I", 0x03000000: "<I4II"}
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
KEY_TYPES = re.compile(r"(ssh-|ecdsa-|sk-ssh-|sk-ecdsa-)\S+\s")


class DoctorError(Exception):
    """An account cannot be checked (no such user); the message says which."""


@dataclass(frozen=True)
class Finding(finding.Finding):
    LINE = "{severity:6} {user}: {what}: {allows}; fix: {fix}"
    user: str
    code: str
    severity: str  # high: code as the user or another account now; medium: one step away; low
    path: str
    what: str
    allows: str
    fix: str


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]
    home: str
    shell: str


@dataclass(frozen=True)
class Start:
    """How exec'ing a file starts for a user: `reason` is None when in secure-execution mode."""

    reason: str | None
    capabilities: int = 0  # the file's permitted capabilities, if that is what makes it secure
    setid: bool = False


@dataclass(frozen=True)
class Server:
    """What is read once per run: sshd's PAM stack and its process's privileges."""

    pam: pamstack.Stack
    sshd_status: tuple[bool, int] | None  # (NoNewPrivs, CapBnd) of the running sshd
    systemd: bool = False  # systemd is the init (trusted.systemd_booted): the shell checks homes


def account(name: str) -> Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise DoctorError(f"no such user: {name}") from None
    return _account(entry)


def _account(entry: pwd.struct_passwd) -> Account:
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_shell)


def restricted_accounts() -> list[Account]:
    """Every passwd account whose login shell is scponly-py or scponly-pyc (by file name)."""
    return [
        _account(entry)
        for entry in sorted(pwd.getpwall(), key=lambda entry: entry.pw_name)
        if os.path.basename(entry.pw_shell) in SHELL_NAMES
    ]


# -- the shell ----------------------------------------------------------------------------


def decode_capability(data: bytes) -> tuple[int, int]:
    """security.capability (struct vfs_cap_data, little-endian) -> (permitted set, rootid)."""
    if len(data) < 4:
        raise ValueError("security.capability is too short")
    (magic,) = struct.unpack_from("<I", data)
    layout = CAP_FORMATS.get(magic & VFS_CAP_REVISION_MASK)
    if layout is None or len(data) != struct.calcsize(layout):
        raise ValueError(f"security.capability: unknown revision {magic:#x} ({len(data)} bytes)")
    words = struct.unpack(layout, data)
    permitted = words[1] | ((words[3] << 32) if len(words) > 3 else 0)
    rootid = words[5] if len(words) > 5 else 0
    return permitted, rootid


def start_mode(path: str, uid: int | None = None, gid: int | None = None) -> Start:
    """Whether exec'ing `path` puts a user (uid/gid) in secure-execution mode (AT_SECURE).

    The kernel sets AT_SECURE for an ELF program that is setuid/setgid to another
    id or whose file capabilities grant a non-empty permitted set; it ignores
    both on `#!` scripts. Follows `path`'s own symlinks (the shell path is root's).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        return Start(f"cannot be opened ({error.strerror})")
    try:
        info = os.fstat(fd)
        head = os.pread(fd, 4, 0)
        try:
            raw = os.getxattr(fd, "security.capability")
        except OSError as error:
            if error.errno not in (errno.ENODATA, errno.ENOTSUP):
                raise
            raw = None
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
        return Start("is not an executable file")
    if head[:2] == b"#!":
        return Start("is a script (the kernel ignores set-id bits and capabilities on scripts)")
    if head != b"\x7fELF":
        return Start("is not an ELF program")
    setuid = info.st_mode & stat.S_ISUID and (uid is None or info.st_uid != uid)
    setgid = info.st_mode & stat.S_ISGID and (gid is None or info.st_gid != gid)
    if setuid or setgid:
        return Start(None, setid=True)
    if raw is None:
        return Start("is neither set-id nor given file capabilities")
    try:
        permitted, rootid = decode_capability(raw)
    except ValueError as error:
        return Start(str(error))
    if rootid:
        return Start(f"has file capabilities for the user namespace of uid {rootid} only")
    if not permitted:
        return Start("has file capabilities with an empty permitted set")
    return Start(None, capabilities=permitted)


def secure_start(path: str, uid: int | None = None, gid: int | None = None) -> str | None:
    """None if exec'ing `path` starts a non-root user in secure-execution mode, else why not."""
    return start_mode(path, uid, gid).reason


def parse_status(text: str) -> tuple[bool, int]:
    """/proc/PID/status -> (NoNewPrivs, CapBnd as an int)."""
    values = dict(line.partition(":")[::2] for line in text.splitlines())
    return values.get("NoNewPrivs", "0").strip() == "1", int(values.get("CapBnd", "0"), 16)


def sshd_status(pidfile: str) -> tuple[bool, int] | None:
    """NoNewPrivs and CapBnd of the sshd whose pid is in `pidfile`; None if none runs."""
    try:
        with open(pidfile, "rb") as handle:
            pid = int(handle.read(32).split()[0])
        with open(f"/proc/{pid}/comm", "rb") as handle:
            if not handle.read(64).startswith(b"sshd"):
                return None
        with open(f"/proc/{pid}/status", "rb") as handle:
            return parse_status(handle.read(MAX_READ).decode("ascii", "replace"))
    except (OSError, ValueError, IndexError):
        return None


def load_server(settings: dict[str, list[str]] | None, pam_dirs: tuple[str, ...]) -> Server:
    pidfile = (settings or {}).get("pidfile", ["/run/sshd.pid"])[0]
    stack = pamstack.stack("sshd", pamstack.directory_reader(pam_dirs))
    return Server(stack, sshd_status(pidfile), trusted.systemd_booted())


# -- sshd settings ------------------------------------------------------------------------


def sshd_matches(name: str, pattern: str) -> bool:
    """sshd's match_pattern: `*` and `?` only, case-sensitive, whole name."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, name, re.DOTALL) is not None


def accept_env(user: str, settings: dict[str, list[str]], secure: bool) -> list[Finding]:
    """AcceptEnv patterns that let the client set a variable honoured before the shell runs."""
    found = []
    for line in settings.get("acceptenv", []):
        for pattern in line.split():
            admitted = [name for name in DANGEROUS_ENV if sshd_matches(name, pattern)]
            if admitted:
                found.append(
                    Finding(
                        user,
                        "accept-env",
                        "medium" if secure else "high",
                        "sshd_config",
                        f"sshd AcceptEnv {pattern} admits {', '.join(admitted[:4])}"
                        + ("..." if len(admitted) > 4 else ""),
                        "the client sets them for the login shell"
                        + ("" if secure else ": LD_PRELOAD runs its code before the shell"),
                        f"AcceptEnv only LANG LC_* (remove {pattern})",
                    )
                )
    return found


def settings_findings(
    user: str, settings: dict[str, list[str]], *, secure: bool, rc_present: bool
) -> list[Finding]:
    """sshd -T's settings for the user, as findings (pure; sshd.findings does the rule table)."""
    force = settings.get("forcecommand", ["none"])[0]
    internal = force.split()[:1] == ["internal-sftp"]
    found = []
    for item in sshd.findings(user, settings, "internal-sftp" if internal else "scponly"):
        if item.setting == "permituserrc":
            if rc_present:
                found.append(
                    Finding(
                        user,
                        "sshd-permituserrc",
                        "low",
                        "~/.ssh/rc",
                        f"sshd PermitUserRC {item.value} and ~/.ssh/rc exists",
                        "sshd runs it through the login shell, which refuses it (a refusal "
                        "logged at every login)",
                        "PermitUserRC no (the sshd-config Match block); remove ~/.ssh/rc",
                    )
                )
            continue
        severity = "high" if item.setting == "permituserenvironment" and not secure else "medium"
        found.append(
            Finding(
                user,
                f"sshd-{item.setting}",
                severity,
                "sshd_config",
                f"sshd {item.setting} {item.value}",
                item.message,
                "PermitUserEnvironment no" if item.setting == "permituserenvironment" else SSHD_FIX,
            )
        )
    if internal:
        found.append(
            Finding(
                user,
                "sshd-internal-sftp",
                "medium",
                "sshd_config",
                f"sshd ForceCommand {force}",
                "sshd serves sftp itself and never runs the login shell: none of its policy "
                "applies",
                "remove ForceCommand for scponly-py accounts, or use --mode internal-sftp "
                "deliberately",
            )
        )
    found += accept_env(user, settings, secure)
    return found


def privilege_findings(user: str, start: Start, status: tuple[bool, int] | None) -> list[Finding]:
    """A running sshd that would strip what makes the shell start in secure-execution mode."""
    if status is None or start.reason is not None:
        return []
    no_new_privs, bounding = status
    if no_new_privs:
        lost = "its set-id bits" if start.setid else "its file capabilities"
        return [
            Finding(
                user,
                "sshd-nnp",
                "high",
                "sshd",
                "the running sshd has no_new_privs set",
                f"the login shell loses {lost} and starts without secure-execution mode",
                "run sshd without NoNewPrivileges= (systemd) or prctl(PR_SET_NO_NEW_PRIVS)",
            )
        ]
    if start.capabilities and not start.capabilities & bounding:
        return [
            Finding(
                user,
                "sshd-capbnd",
                "high",
                "sshd",
                f"the running sshd's bounding set {bounding:#x} lacks the shell's capabilities",
                "the kernel grants none, so the shell starts without secure-execution mode",
                "keep those capabilities in sshd's CapabilityBoundingSet= (systemd)",
            )
        ]
    return []


# -- files ------------------------------------------------------------------------------------


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def writable_by(info: os.stat_result, who: Account) -> bool:
    """Whether `who` can change this inode (owner may chmod; group/other write bits)."""
    return (
        info.st_uid == who.uid
        or (info.st_mode & 0o020 != 0 and info.st_gid in who.groups)
        or info.st_mode & 0o002 != 0
    )


def user_can_create(who: Account, relative: str) -> bool:
    """Whether `who` can write home/relative: the file or any directory on the way is theirs."""
    path = who.home
    for part in ["", *relative.split("/")]:
        path = os.path.join(path, part) if part else path
        info = _lstat(path)
        if info is None:
            return False
        if writable_by(info, who) or stat.S_ISLNK(info.st_mode):
            return True
    return False


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"


def _owner_mode(who: Account, path: str, label: str, info: os.stat_result) -> list[Finding]:
    """A home, ~/.ssh or key file another account can change (foreign owner or g/o write)."""
    found = []
    if info.st_uid not in (0, who.uid):
        found.append(
            Finding(
                who.name,
                "owner",
                "high",
                path,
                f"{label} {path} is owned by uid {info.st_uid}",
                "that account can plant login files in it",
                f"chown {who.name} {path} (--fix does)",
            )
        )
    if info.st_mode & 0o022:
        found.append(
            Finding(
                who.name,
                "writable",
                "high",
                path,
                f"{label} {path} is group/other-writable (mode {_mode(info)})",
                "other accounts can plant or replace login files",
                f"chmod go-w {path} (--fix does)",
            )
        )
    return found


def key_files(who: Account, settings: dict[str, list[str]] | None) -> list[str]:
    """AuthorizedKeysFile paths for `who` (%h %u %U %% expanded; relative to the home)."""
    value = (settings or {}).get("authorizedkeysfile", [".ssh/authorized_keys"])[0]
    paths = []
    for token in value.split():
        if token == "none":  # noqa: S105 - a sshd keyword, not a password
            continue
        expanded = re.sub(
            r"%[%hHuU]",
            lambda m: {"%%": "%", "%h": who.home, "%u": who.name, "%U": str(who.uid)}.get(
                m.group(0), m.group(0)
            ),
            token,
        )
        paths.append(expanded if expanded.startswith("/") else os.path.join(who.home, expanded))
    return paths


def read_bounded(path: str) -> bytes | None:
    """Up to MAX_READ bytes of a regular file, opened without following a final symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_READ)
    finally:
        os.close(fd)


def key_options(text: str) -> list[tuple[int, str]]:
    """(line, option name) for each environment= or command= option in authorized_keys text."""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or KEY_TYPES.match(line + " "):
            continue
        options, quoted, index = [], False, 0
        start = 0
        while index < len(line) and (quoted or line[index] not in " \t"):
            if line[index] == "\\" and quoted:
                index += 1
            elif line[index] == '"':
                quoted = not quoted
            elif line[index] == "," and not quoted:
                options.append(line[start:index])
                start = index + 1
            index += 1
        options.append(line[start:index])
        for option in options:
            name = option.partition("=")[0].lower()
            if name in ("environment", "command"):
                found.append((number, name))
    return found


def _below_home(who: Account, path: str) -> str | None:
    """The symlink on the way from the home to `path`, if any (never followed)."""
    relative = os.path.relpath(path, who.home)
    current = who.home
    for part in relative.split("/"):
        current = os.path.join(current, part)
        info = _lstat(current)
        if info is not None and stat.S_ISLNK(info.st_mode):
            return current
    return None


def file_findings(
    who: Account,
    settings: dict[str, list[str]] | None,
    *,
    secure: bool,
    pam_reads: list[pamstack.EnvRead],
    pam_systemd: bool,
    booted: bool = False,
) -> list[Finding]:
    """The home, its ancestors, ~/.ssh, key files, login-time files and leftover jobs.

    `booted`: systemd is this host's init, so the login shell refuses a home that
    trusted.user_manager_problem objects to (reported even without pam_systemd).
    """
    name, home = who.name, who.home
    found = [
        Finding(
            name,
            "ancestor",
            "high",
            path,
            f"{path} above the home {problem}",
            "its owner or writers can swap the home for another directory",
            f"chown root {path}; chmod go-w {path}",
        )
        for path, problem in _ancestors(os.path.dirname(home.rstrip("/")) or "/")
    ]
    info = _lstat(home)
    if info is None:
        return [*found, Finding(name, "home", "low", home, f"home {home} is missing", "-", "-")]
    if stat.S_ISLNK(info.st_mode):
        return [
            *found,
            Finding(
                name,
                "symlink",
                "medium",
                home,
                f"home {home} is a symlink (not followed; nothing below it checked)",
                "sshd and PAM follow it to wherever it points",
                "point the passwd home at the real directory",
            ),
        ]
    found += _owner_mode(who, home, "home", info)
    home_writable = writable_by(info, who)
    ssh = os.path.join(home, ".ssh")
    ssh_info = _lstat(ssh)
    if ssh_info is not None and stat.S_ISLNK(ssh_info.st_mode):
        found.append(
            Finding(
                name,
                "symlink",
                "high",
                ssh,
                f"{ssh} is a symlink",
                "sshd follows it to read authorized_keys and rc from wherever it points",
                f"remove the link and make {ssh} a directory",
            )
        )
    elif ssh_info is not None:
        found += _owner_mode(who, ssh, "~/.ssh", ssh_info)
    for path in key_files(who, settings):
        link = _below_home(who, path) if path.startswith(home.rstrip("/") + "/") else None
        if link is not None:
            found.append(
                Finding(
                    name,
                    "symlink",
                    "high",
                    link,
                    f"{link} (on the way to {path}) is a symlink",
                    "sshd follows it to read the keys from wherever it points",
                    "replace the link by the file itself",
                )
            )
            continue
        key_info = _lstat(path)
        if key_info is None:
            continue
        found += _owner_mode(who, path, "key file", key_info)
        content = read_bounded(path)
        for number, option in key_options((content or b"").decode("utf-8", "replace")):
            found.append(
                Finding(
                    name,
                    f"key-{option}",
                    "medium" if option == "environment" else "low",
                    f"{path}:{number}",
                    f"{path} line {number} has a {option}= option",
                    "sets variables for the session when PermitUserEnvironment allows it"
                    if option == "environment"
                    else "runs the command through the login shell (its policy applies)",
                    f"remove the option unless you put it there (line {number})",
                )
            )
    found += _pam_files(who, secure=secure, pam_reads=pam_reads, home_writable=home_writable)
    for relative, why in LOGIN_FILES.items():
        path = os.path.join(home, relative)
        if relative in USER_MANAGER_FILES:
            if _foreign(home, relative):
                found.append(
                    Finding(
                        name,
                        "login-file",
                        "high" if pam_systemd else "medium",
                        path,
                        f"{path} holds something other than root-owned directories",
                        why,
                        f"read it, then remove what is not root's (rm -r {path})",
                    )
                )
            continue
        if _lstat(path) is not None:
            found.append(
                Finding(
                    name,
                    "login-file",
                    "medium",
                    path,
                    f"{path} exists",
                    why,
                    f"read it, then remove it (rm -r {path})",
                )
            )
    found += _systemd_user(who, pam_systemd=pam_systemd, booted=booted)
    found += _jobs(who)
    return found


def _systemd_user(who: Account, *, pam_systemd: bool, booted: bool) -> list[Finding]:
    """The home or ~/.config, ~/.local... the account could fill for systemd --user."""
    problem = trusted.user_manager_problem(who.home) if pam_systemd or booted else None
    if problem is None:
        return []
    allows = []
    if pam_systemd:
        allows.append(
            "an uploaded ~/.config/systemd/user unit runs as the user at the next login, "
            "without the shell"
        )
    if booted:
        allows.append(f"the login shell refuses every login of {who.name} on this systemd host")
    return [
        Finding(
            who.name,
            "systemd-user",
            "high" if pam_systemd else "medium",
            who.home,
            problem + (" and sshd's PAM session runs pam_systemd" if pam_systemd else ""),
            "; ".join(allows),
            f"scponly-py-setup check --user {who.name} --fix (root-owned home and ~/.config, "
            f"~/.local; uploads go to ~/{plan.WRITABLE})",
        )
    ]


@dataclass(frozen=True)
class Tree:
    """home/relative and everything below it, top-down, walked without following symlinks."""

    entries: list[tuple[tuple[str, ...], os.stat_result]]  # (parts below the home, lstat)
    trouble: str | None = None  # why the walk stopped early (the tree changed under it)


def tree(home: str, relative: str) -> Tree | None:
    """The tree at home/relative (None if missing); a directory is entered only by its fd."""
    parts = tuple(relative.split("/"))
    info = _lstat(os.path.join(home, relative))
    if info is None:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return Tree([(parts, info)])
    entries = [(parts, info)]
    try:
        fd = _open_below(os.open(home, OPEN_FLAGS | os.O_DIRECTORY), parts)
    except OSError as error:
        return Tree(entries, f"cannot be opened ({error.strerror})")
    try:
        for names, name, child, _fd in check.walk_tree(fd):
            entries.append(((*parts, *names, name), child))
    except (check.Changed, OSError) as error:
        return Tree(entries, f"changed while examined ({error})")
    finally:
        os.close(fd)
    return Tree(entries)


def root_directory(info: os.stat_result) -> bool:
    """A directory only root can change: root-owned, not writable by group or others."""
    return stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022


def _foreign(home: str, relative: str) -> bool:
    """Whether home/relative's tree holds anything but directories only root can change."""
    found = tree(home, relative)
    return found is not None and (
        found.trouble is not None or not all(root_directory(info) for _, info in found.entries)
    )


def _ancestors(directory: str) -> list[tuple[str, str]]:
    """(path, problem) for each directory on the real path above the home that others control.

    Unlike a chroot's ancestors (check.ancestors), a sticky root-owned
    directory such as /tmp is fine here: others cannot rename the home out of it.
    """
    found = []
    parts = [part for part in os.path.realpath(directory).split("/") if part]
    for depth in range(len(parts) + 1):
        current = "/" + "/".join(parts[:depth])
        info = _lstat(current)
        if info is None:
            continue
        if info.st_uid != 0:
            found.append((current, f"is owned by uid {info.st_uid}"))
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            found.append((current, f"is group/other-writable (mode {_mode(info)})"))
    return found


def _pam_files(
    who: Account, *, secure: bool, pam_reads: list[pamstack.EnvRead], home_writable: bool
) -> list[Finding]:
    """~/.pam_environment (or user_envfile=): reported if present; severe with a weak shell."""
    found = []
    names = {".pam_environment"} | {read.user_envfile for read in pam_reads if read.user_readenv}
    for relative in sorted(names):
        path = os.path.join(who.home, relative.lstrip("/"))
        readers = [
            read for read in pam_reads if read.user_readenv and read.user_envfile == relative
        ]
        exists = _lstat(path) is not None
        if exists:
            read_by = (
                f" (read by {readers[0].rule.origin})" if readers else " (PAM does not read it)"
            )
            found.append(
                Finding(
                    who.name,
                    "pam-environment",
                    "high" if readers and not secure else "medium",
                    path,
                    f"{path} exists{read_by}",
                    "someone planted login-time variables (LD_PRELOAD, GCONV_PATH...)",
                    f"read it, then remove it (rm {path})",
                )
            )
        if readers and not secure and (exists or home_writable or user_can_create(who, relative)):
            found.append(
                Finding(
                    who.name,
                    "pam-user-readenv",
                    "high",
                    readers[0].rule.origin,
                    f"PAM pam_env.so user_readenv=1 ({readers[0].rule.origin}) reads {path}, "
                    f"which {who.name} can write",
                    f"LD_PRELOAD set there runs code as {who.name} before the shell starts",
                    f"{SHELL_FIX} (secure-execution mode), or drop user_readenv=1",
                )
            )
    return found


def _jobs(who: Account) -> list[Finding]:
    """Crontabs, at jobs and systemd linger a former full account left behind."""
    found = []
    for spool in CRONTABS:
        path = os.path.join(spool, who.name)
        info = _lstat(path)
        if info is not None and stat.S_ISREG(info.st_mode):
            found.append(
                Finding(
                    who.name,
                    "crontab",
                    "high",
                    path,
                    f"crontab {path} exists",
                    "cron runs its commands as the user, without the login shell",
                    f"crontab -r -u {who.name}",
                )
            )
    for spool in AT_SPOOLS:
        try:
            entries = [
                entry
                for entry in os.scandir(spool)
                if entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_uid == who.uid
            ]
        except OSError:
            continue
        if entries:
            found.append(
                Finding(
                    who.name,
                    "at-job",
                    "high",
                    spool,
                    f"{len(entries)} at job(s) of {who.name} in {spool}",
                    "atd runs them as the user, without the login shell",
                    f"atrm them (atq as {who.name})",
                )
            )
    linger = os.path.join(LINGER, who.name)
    if _lstat(linger) is not None:
        found.append(
            Finding(
                who.name,
                "linger",
                "high",
                linger,
                f"systemd linger is on for {who.name}",
                "systemd --user runs the user's units from boot, without a login",
                f"loginctl disable-linger {who.name}",
            )
        )
    return found


# -- one account ------------------------------------------------------------------------------


def shell_path(who: Account, settings: dict[str, list[str]] | None) -> str:
    """The shell's path as sshd execs it: inside ChrootDirectory when one applies."""
    chroot = (settings or {}).get("chrootdirectory", ["none"])[0]
    if chroot == "none":
        return who.shell
    root = chroot.replace("%h", who.home).replace("%u", who.name).replace("%%", "%")
    return os.path.join(root, who.shell.lstrip("/"))


def check_account(
    who: Account, settings: dict[str, list[str]] | None, server: Server
) -> list[Finding]:
    """Every finding for one account; `settings` is sshd -T's (None: sshd not consulted)."""
    path = shell_path(who, settings)
    start = start_mode(path, who.uid, who.gid)
    secure = start.reason is None
    found = []
    if not secure:
        found.append(
            Finding(
                who.name,
                "shell",
                "medium",
                path,
                f"shell {path} {start.reason}",
                "the dynamic loader honours LD_* from the login environment "
                "(~/.pam_environment, ~/.ssh/environment, AcceptEnv)",
                SHELL_FIX,
            )
        )
    use_pam = (settings or {}).get("usepam", ["yes"])[0] == "yes"
    rules = server.pam.rules if use_pam else ()
    pam_reads = pamstack.env_reads(rules)
    pam_systemd = bool(pamstack.modules(rules, "session", "pam_systemd.so"))
    if settings is not None:
        rc = _lstat(os.path.join(who.home, ".ssh/rc")) is not None
        found += settings_findings(who.name, settings, secure=secure, rc_present=rc)
    found += privilege_findings(who.name, start, server.sshd_status)
    found += file_findings(
        who,
        settings,
        secure=secure,
        pam_reads=pam_reads,
        pam_systemd=pam_systemd,
        booted=server.systemd,
    )
    if not secure and any(item.severity == "high" for item in found):
        found[0] = Finding(**{**found[0].to_json(), "severity": "high"})
    return found


# -- fixes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A planned chmod/chown of the home (parts == ()) or of an entry below it."""

    path: str
    parts: tuple[str, ...]
    inode: tuple[int, int]
    mode: int | None
    owner: int | None
    was: str
    group: int | None = None

    def __str__(self) -> str:
        steps = []
        if self.owner is not None:
            group = "" if self.group is None else f":{self.group}"
            steps.append(f"chown {self.owner}{group}")
        if self.mode is not None:
            steps.append(f"chmod {self.mode:04o}")
        return f"{' + '.join(steps)} {self.path} (was {self.was})"


@dataclass(frozen=True)
class MakeDir:
    """A planned directory in the home (`name`), owned by the user: where uploads go."""

    path: str
    name: str
    home_inode: tuple[int, int]
    owner: int
    group: int

    def __str__(self) -> str:
        return f"mkdir -m 0755 {self.path} (owner {self.owner}:{self.group}, for uploads)"


@dataclass(frozen=True)
class Note:
    """What --fix leaves to the administrator, said once in the plan and once when applied."""

    text: str

    def __str__(self) -> str:
        return self.text


Planned = Change | MakeDir | Note


def _change(
    home: str,
    parts: tuple[str, ...],
    info: os.stat_result,
    mode: int,
    *,
    owner: int = 0,
    group: int = 0,
) -> Change | None:
    """The chown/chmod that gives `info` this owner/group/mode, or None if it has them."""
    current = stat.S_IMODE(info.st_mode)
    if (current, info.st_uid, info.st_gid) == (mode, owner, group):
        return None
    was = f"uid {info.st_uid}, gid {info.st_gid}, mode {current:04o}"
    return Change(
        os.path.join(home, *parts),
        parts,
        (info.st_dev, info.st_ino),
        mode if mode != current else None,
        owner,
        was,
        group,
    )


def plan_fixes(
    who: Account, settings: dict[str, list[str]] | None, found: list[Finding] | None = None
) -> list[Planned]:
    """The safe fixes: no group/other write, no foreign owner, on the home, ~/.ssh, key files.

    With a `systemd-user` finding among `found`, the home becomes root's instead
    (plan_systemd_home).
    """
    home = who.home.rstrip("/") or "/"
    targets = [()]
    if _lstat(os.path.join(home, ".ssh")) is not None:
        targets.append((".ssh",))
    for path in key_files(who, settings):
        parent, base = os.path.split(path)
        if parent == os.path.join(home, ".ssh"):
            targets.append((".ssh", base))
    systemd = any(item.code == "systemd-user" for item in found or ())
    changes: list[Planned] = plan_systemd_home(who) if systemd else []
    for parts in dict.fromkeys(targets):
        if systemd and parts == ():
            continue
        path = os.path.join(home, *parts)
        info = _lstat(path)
        if info is None or stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        new_mode = mode & ~0o022 if mode & 0o022 else None
        new_owner = who.uid if info.st_uid not in (0, who.uid) else None
        if new_mode is not None or new_owner is not None:
            was = f"uid {info.st_uid}, mode {mode:04o}"
            changes.append(
                Change(path, parts, (info.st_dev, info.st_ino), new_mode, new_owner, was)
            )
    return changes


def plan_systemd_home(who: Account) -> list[Planned]:
    """Make the home one systemd --user cannot be fed from (docs/design.md, "Account and
    server audit"): the home root's (0755, or root:GID 0750 if others could not read it),
    ~/files the user's, ~/.config and ~/.local root's when they hold only directories.

    Top-down, so each step takes away a place to plant before the next one; user
    files are never moved, rewritten or removed: a Note names them instead.
    """
    home = who.home.rstrip("/") or "/"
    info = _lstat(home)
    if info is None or not stat.S_ISDIR(info.st_mode):
        return [Note(f"{home} is not a directory: point the passwd home at the real directory")]
    readable = stat.S_IMODE(info.st_mode) & 0o005 == 0o005
    mode, group = (0o755, 0) if readable else (0o750, who.gid)
    planned: list[Planned] = []
    home_change = _change(home, (), info, mode, group=group)
    if home_change is not None:
        planned.append(home_change)
    upload = os.path.join(home, plan.WRITABLE)
    upload_info = _lstat(upload)
    if upload_info is None:
        planned.append(MakeDir(upload, plan.WRITABLE, (info.st_dev, info.st_ino), who.uid, who.gid))
    elif not stat.S_ISDIR(upload_info.st_mode) or upload_info.st_uid != who.uid:
        planned.append(
            Note(
                f"{upload} exists but is not a directory of {who.name}'s: uploads need one "
                f"writable directory in the home; make one (chown {who.name})"
            )
        )
    for relative in USER_MANAGER_TREES:
        found = tree(home, relative)
        if found is None:
            continue
        path = os.path.join(home, relative)
        others = [parts for parts, item in found.entries if not stat.S_ISDIR(item.st_mode)]
        if found.trouble is not None or others:
            if found.trouble is not None:
                why = found.trouble
            elif others[0] == (relative,):
                why = "is not a directory"
            else:
                example = os.path.join(home, *others[0])
                why = f"holds {len(others)} non-directories (e.g. {example})"
            planned.append(
                Note(
                    f"{path} {why}: left as it is (the finding stays); look at it, keep "
                    f"what {who.name} needs in ~/{plan.WRITABLE}, remove the rest, run --fix again"
                )
            )
            continue
        for parts, item in found.entries:
            change = _change(home, parts, item, stat.S_IMODE(item.st_mode) & ~0o022)
            if change is not None:
                planned.append(change)
    kept = _user_entries(home, who.uid)
    if kept:
        shown = ", ".join(kept[:5]) + (", ..." if len(kept) > 5 else "")
        planned.append(
            Note(
                f"{home} keeps {len(kept)} entries of {who.name}'s where they are ({shown}): "
                f"{who.name} can still change what is in them but no longer add, rename or "
                "remove entries in the home"
            )
        )
    return planned


def _user_entries(home: str, uid: int) -> list[str]:
    """Names directly in the home owned by `uid`, other than what plan_systemd_home handles."""
    try:
        with os.scandir(home) as entries:
            return sorted(
                entry.name
                for entry in entries
                if entry.name not in (*USER_MANAGER_TREES, plan.WRITABLE)
                and entry.stat(follow_symlinks=False).st_uid == uid
            )
    except OSError:
        return []


def preview(planned: list[Planned]) -> list[str]:
    """The --dry-run lines: one per change, one per note."""
    return [f"note: {item}" if isinstance(item, Note) else f"would fix: {item}" for item in planned]


def apply(who: Account, changes: list[Planned]) -> list[str]:
    """Apply `changes` through descriptors opened O_NOFOLLOW from the home down; one line each."""
    return apply_below(lambda: os.open(who.home, OPEN_FLAGS | os.O_DIRECTORY), changes)


def apply_below(open_top: Callable[[], int], changes: list[Planned]) -> list[str]:
    """Apply `changes`, each through a descriptor opened O_NOFOLLOW from `open_top()` down.

    A change whose file turned into a symlink or another inode since planning
    is refused (a line says so) rather than applied; notes are repeated.
    """
    done = []
    for change in changes:
        if isinstance(change, Note):
            done.append(f"note: {change}")
            continue
        parts = () if isinstance(change, MakeDir) else change.parts
        try:
            fd = _open_below(open_top(), parts)
        except OSError as error:
            done.append(f"refused: {change.path}: {error.strerror} (not following symlinks)")
            continue
        try:
            info = os.fstat(fd)
            inode = change.home_inode if isinstance(change, MakeDir) else change.inode
            if (info.st_dev, info.st_ino) != inode:
                done.append(f"refused: {change.path} changed since the check")
                continue
            if isinstance(change, MakeDir):
                done.append(_make_dir(fd, change))
                continue
            if change.owner is not None:
                os.fchown(fd, change.owner, -1 if change.group is None else change.group)
            if change.mode is not None:
                os.fchmod(fd, change.mode)
            done.append(f"fixed: {change}")
        finally:
            os.close(fd)
    return done


def plan_jail_fixes(
    top: str, repairable: list[tuple[tuple[str, ...], os.stat_result]]
) -> list[Planned]:
    """chown root (and group root, if the owner changes) and chmod to at most 0755, for each
    entry `check.Audit` found repairable below `top`: jail directories outside the users'
    writable trees, homes, ~/.ssh and the files in it (never a user's writable tree)."""
    changes: list[Planned] = []
    for parts, info in repairable:
        group = info.st_gid if info.st_uid == 0 else 0
        mode = stat.S_IMODE(info.st_mode) & jailfs.SAFE_MODE_BITS
        change = _change(top, parts, info, mode, owner=0, group=group)
        if change is not None:
            changes.append(change)
    return changes


def _make_dir(home_fd: int, change: MakeDir) -> str:
    """mkdir in the home's fd, then chown/chmod the new directory through its own fd."""
    try:
        os.mkdir(change.name, 0o700, dir_fd=home_fd)
    except OSError as error:
        return f"refused: {change.path}: {error.strerror}"
    fd = os.open(change.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=home_fd)
    try:
        os.fchown(fd, change.owner, change.group)
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)
    return f"fixed: {change}"


def _open_below(fd: int, parts: tuple[str, ...]) -> int:
    """`parts` below the directory `fd` (closed here), no symlink followed."""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        try:
            child = os.open(part, OPEN_FLAGS | (0 if last else os.O_DIRECTORY), dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd
