"""Desired jail and account state -> typed operations: what `--dry-run` prints and `apply` runs.

Planning reads the host (binaries, their libraries, the user database) and
the jail (to leave out what is already right, which makes a second `create`
an empty plan), and writes nothing. Applying hands each jail operation to
`jailfs`, the only module that writes into a jail, and each account operation
(useradd, usermod, userdel, groups, /etc/shells, a batch of new accounts) to
`users` or `accountdb`: `apply` is the only writer of every setup command.
"""

from __future__ import annotations

import grp
import os
import posixpath
import pwd
import stat
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from scponly_py.programs import PROGRAMS
from setup_chroot import accountdb, devlog, frozen, jailfs, resolve, users

# profile name -> the programs its jail needs (same paths inside the jail): the program table's
PROFILES = {name: tuple(record["paths"].values()) for name, record in PROGRAMS.items()}
DIR_MODE = 0o755
NSSWITCH = b"# Written by scponly-py-setup: this jail resolves users from its own files only.\n"
NSSWITCH += b"passwd: files\ngroup: files\n"
NSS_FILES_BUILT_IN = (2, 34)  # glibc from 2.34 on has the files service inside libc
DEV_NULL = (1, 3, 0o666)


class PlanError(Exception):
    """The desired jail cannot be built (missing program or library, conflicting paths)."""


# -- desired state: one entry per path ----------------------------------------------------


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = DIR_MODE
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class File:
    path: str
    source: str  # host path, no symlink in it
    mode: int
    capability: bytes | None = None  # only ever the unprivileged shell's (carried_capability)


@dataclass(frozen=True)
class Link:
    path: str
    target: str


@dataclass(frozen=True)
class Node:
    path: str
    major: int
    minor: int
    mode: int


@dataclass(frozen=True)
class Content:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Remove:
    path: str


@dataclass(frozen=True)
class RemoveTree:
    """A user's home in the jail, with everything in it (remove-user --purge)."""

    path: str


# -- account operations: on the host's user database, never in a jail --------------------


@dataclass(frozen=True)
class AddAccount:
    """useradd -M -U -p '*' (see users.useradd)."""

    name: str
    home: str
    shell: str


@dataclass(frozen=True)
class AddAccounts:
    """Many new accounts in one write, members of `group` (accountdb.add)."""

    group: str
    accounts: tuple[accountdb.NewAccount, ...]


@dataclass(frozen=True)
class ChangeAccount:
    """usermod -d HOME -s SHELL (add-user on an existing account; remove-user's restore)."""

    name: str
    home: str
    shell: str


@dataclass(frozen=True)
class DeleteAccount:
    """userdel (remove-user of an account add-user created)."""

    name: str


@dataclass(frozen=True)
class AddGroup:
    """groupadd --system."""

    group: str


@dataclass(frozen=True)
class JoinGroup:
    """usermod -aG GROUP NAME."""

    name: str
    group: str


@dataclass(frozen=True)
class LeaveGroup:
    """gpasswd -d NAME GROUP."""

    name: str
    group: str


@dataclass(frozen=True)
class RegisterShell:
    """One line in /etc/shells."""

    path: str


Entry = Dir | File | Link | Node | Content
Account = (
    AddAccount
    | AddAccounts
    | ChangeAccount
    | DeleteAccount
    | AddGroup
    | JoinGroup
    | LeaveGroup
    | RegisterShell
)
Operation = (
    Dir
    | File
    | Link
    | Node
    | Content
    | Remove
    | RemoveTree
    | Account
    | devlog.LogSocket
    | devlog.NoLogSocket
)


WRITABLE = "files"  # the one user-writable directory in a root-owned home, by default


@dataclass(frozen=True)
class User:
    """A jail user as the manifest remembers it (so remove-user can undo add-user)."""

    name: str
    writable: str = WRITABLE
    created: bool = False  # we ran useradd (remove-user runs userdel)
    previous_home: str | None = None  # else: what usermod replaced
    previous_shell: str | None = None
    group: str | None = None  # the Match block's group, if add-user put the user in it
    keys: str | None = None  # ~/.ssh/authorized_keys, root-owned (add-user --from)
    mode: str = "scponly-pyc"  # add-user --mode: how sshd and the shell jail this user


@dataclass(frozen=True)
class Spec:
    """What the administrator asked for; stored in the manifest so `update` can redo it."""

    jail: str
    profiles: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()
    localtime: bool = True
    users: tuple[User, ...] = field(default_factory=tuple)
    frozen: str | None = (
        None  # the frozen scponly-py tree copied in (add-user --mode chroot-directory)
    )
    devlog: str | None = None  # the daemon listening on the jail's /dev/log (devlog.DAEMONS)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Spec:
        return cls(
            jail=str(data["jail"]),
            profiles=tuple(data.get("profiles", ())),  # type: ignore[arg-type]
            binaries=tuple(data.get("binaries", ())),  # type: ignore[arg-type]
            localtime=bool(data.get("localtime", True)),
            users=tuple(User(**user) for user in data.get("users", ())),  # type: ignore[arg-type, attr-defined]
            frozen=data.get("frozen"),  # type: ignore[arg-type]
            devlog=data.get("devlog"),  # type: ignore[arg-type]
        )

    def programs(self) -> list[str]:
        """Absolute paths of every program the jail must run."""
        unknown = [name for name in self.profiles if name not in PROFILES]
        if unknown:
            raise PlanError(
                f"unknown profile {unknown[0]!r} (known: {', '.join(sorted(PROFILES))})"
            )
        found = [path for name in self.profiles for path in PROFILES[name]]
        return list(dict.fromkeys(found + list(self.binaries)))


def _parents(path: str) -> list[str]:
    parts = [part for part in path.split("/") if part]
    return ["/" + "/".join(parts[:index]) for index in range(1, len(parts))]


class Desired:
    """The entries a jail must contain, keyed by in-jail path; conflicting wishes are errors."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.implicit: set[str] = set()  # parent directories nobody asked for explicitly
        self.host = resolve.Root("/")
        self.linkers: dict[tuple[int, str], resolve.Linker] = {}

    def add(self, entry: Entry) -> None:
        for parent in _parents(entry.path):
            if parent not in self.entries:
                self.entries[parent] = Dir(parent)
                self.implicit.add(parent)
            elif not isinstance(self.entries[parent], Dir):
                raise PlanError(f"{entry.path}: parent {parent} is planned as a non-directory")
        previous = self.entries.get(entry.path)
        if previous is None or previous == entry:
            self.entries[entry.path] = entry
        elif entry.path in self.implicit and isinstance(entry, Dir):
            self.implicit.discard(entry.path)
            self.entries[entry.path] = entry
        elif not (isinstance(previous, Dir) and entry == Dir(entry.path)):
            raise PlanError(f"{entry.path}: planned twice ({previous} and {entry})")

    def add_host_path(self, path: str) -> None:
        """Copy `path` as the loader will open it: each symlink on the way, then the file."""
        try:
            found = self.host.lookup(path)
        except (OSError, resolve.ResolveError) as error:
            raise PlanError(f"{path}: {getattr(error, 'strerror', None) or error}") from None
        for link in found.links:
            self.add(Link(link.path, link.target))
        if not stat.S_ISREG(found.mode):
            raise PlanError(f"{path} is not a regular file")
        mode = found.mode & jailfs.SAFE_MODE_BITS
        self.add(File(found.path, found.path, mode, carried_capability(found.path)))

    def add_frozen(self, tree: str) -> None:
        """What the frozen scponly-py tree at `tree` loads from the system (resolved, not listed).

        The tree itself is copied by frozen.install_in_jail. It starts in secure-execution
        mode (cap_wake_alarm+p), where the loader ignores the LD_LIBRARY_PATH the
        bootloader sets for _internal: every library an object of the tree needs by name
        comes from the system, bundled or not. Only what the system lacks may be left to
        the tree (libpython, which the bootloader opens by its absolute path).
        """
        bundled = set(os.listdir(os.path.join(tree, "_internal")))
        for directory, _subdirectories, files in os.walk(tree):
            skip = bundled if directory != tree else set()
            for name in sorted(files):
                path = os.path.join(directory, name)
                try:
                    info = resolve.read_elf(self.host, path)
                    if info is None or not info.dynamic or os.path.islink(path):
                        continue
                    found = resolve.closure(path, self.host, self.linker_for(info))
                except (OSError, resolve.ResolveError) as error:
                    raise PlanError(f"{path}: {error}") from None
                for needed, needed_by in found.missing:
                    if needed not in skip:
                        raise PlanError(f"{path}: library {needed} (needed by {needed_by}) missing")
                for library in found.paths:
                    if not library.startswith(tree + "/"):
                        self.add_host_path(library)

    def linker_for(self, info: resolve.elf.ElfInfo) -> resolve.Linker:
        key = (info.elf_class, info.machine)
        if key not in self.linkers:
            self.linkers[key] = resolve.Linker.for_root(self.host, info)
        return self.linkers[key]

    def add_program(self, program: str) -> resolve.Linker | None:
        """The program, its interpreter and libraries; the linker used (None if static)."""
        if not os.path.isabs(program):
            raise PlanError(f"{program}: give an absolute path")
        try:
            info = resolve.read_elf(self.host, program)
        except FileNotFoundError:
            raise PlanError(f"{program} not found on this host") from None
        except (OSError, resolve.ResolveError) as error:
            raise PlanError(f"{program}: {error}") from None
        self.add_host_path(program)
        if info is None or not info.dynamic:
            return None
        linker = self.linker_for(info)
        try:
            found = resolve.closure(program, self.host, linker)
        except (OSError, resolve.ResolveError) as error:
            raise PlanError(f"{program}: {error}") from None
        for name, needed_by in found.missing:
            raise PlanError(f"{program}: library {name} (needed by {needed_by}) not found")
        for path in found.paths:
            self.add_host_path(path)
        return linker


def glibc_version() -> tuple[int, int]:
    """The host's glibc version (the jail gets the host's libc)."""
    text = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0.0"
    major, minor = text.split()[-1].split(".")[:2]
    return int(major), int(minor)


def desired(spec: Spec) -> dict[str, Entry]:
    """Every entry the jail described by `spec` must contain."""
    want = Desired()
    want.add(Dir("/"))
    linkers = [want.add_program(program) for program in spec.programs()]
    if spec.frozen is not None:
        want.add_frozen(spec.frozen)
        # Relative, so that it stays inside the jail when read from the host (check).
        target = posixpath.relpath(f"{spec.frozen}/scponly-py", "/usr/bin")
        want.add(Link("/usr/bin/scponly-py", target))
    libc_linker = next((linker for linker in linkers if linker is not None), None)
    if libc_linker is not None and glibc_version() < NSS_FILES_BUILT_IN:
        reference = resolve.read_elf(want.host, spec.programs()[0])
        assert reference is not None
        path = resolve.system_library(libc_linker, "libnss_files.so.2", reference)
        if path is None:
            raise PlanError("libnss_files.so.2 not found (needed by glibc < 2.34)")
        want.add_host_path(path)
    want.add(Node("/dev/null", *DEV_NULL))
    want.add(Content("/etc/nsswitch.conf", NSSWITCH))
    gone = set(users.missing([user.name for user in spec.users]))
    present = [user for user in spec.users if user.name not in gone]
    names = [user.name for user in present]
    want.add(Content("/etc/passwd", users.passwd_content(names)))
    want.add(Content("/etc/group", users.group_content(names)))
    if spec.localtime and os.path.exists("/etc/localtime"):
        want.add(File("/etc/localtime", os.path.realpath("/etc/localtime"), 0o644))
    if spec.users:
        want.add(Dir("/home"))
    accounts = {entry.pw_name: entry for entry in users.entries(names)}  # one enumeration
    for user in present:
        uid, gid = accounts[user.name].pw_uid, accounts[user.name].pw_gid
        home = f"/home/{user.name}"
        want.add(Dir(home))
        want.add(Dir(f"{home}/.ssh"))
        want.add(Dir(f"{home}/{user.writable}", DIR_MODE, uid, gid))
        if user.keys is not None:
            want.add(Content(f"{home}/.ssh/authorized_keys", user.keys.encode()))
    return dict(sorted(want.entries.items(), key=lambda item: item[0].split("/")))


def carried_capability(source: str) -> bytes | None:
    """The file capability a jail's copy of `source` gets: the frozen scponly-py's
    cap_wake_alarm+p (it must start in secure-execution mode), and nothing else, ever."""
    try:
        value = os.getxattr(source, jailfs.CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None
    return value if value == frozen.secure_start_capability() else None


# -- planning accounts ---------------------------------------------------------------------


def account_ops(
    name: str, home: str, shell: str, group: str | None, *, create: bool
) -> list[Account]:
    """What makes `name` an account with `home` and `shell`, its shell in /etc/shells (ours
    only), a member of `group`: useradd (only with `create`) or usermod, groupadd, usermod
    -aG; nothing that is already so. Refuses a missing account without `create`, and uid 0."""
    entry = users.account(name)
    ops: list[Account] = []
    if entry is None:
        if not create:
            raise users.UserError(f"no such user: {name} (use --create to make the account)")
        ops.append(AddAccount(name, home, shell))
    elif entry.pw_uid == 0:
        raise users.UserError(f"{name} has uid 0; refusing to jail root")
    elif (entry.pw_dir, entry.pw_shell) != (home, shell):
        ops.append(ChangeAccount(name, home, shell))
    if users.is_ours(shell) and not users.registered(shell):
        ops.append(RegisterShell(shell))
    if group is not None:
        ops += group_ops(name, group, entry)
    return ops


def group_ops(name: str, group: str, entry: pwd.struct_passwd | None) -> list[Account]:
    """groupadd `group` if missing, then usermod -aG unless `name` is in it (or its primary)."""
    users.check_name(group)
    try:
        found = grp.getgrnam(group)
    except KeyError:
        return [AddGroup(group), JoinGroup(name, group)]
    if name in found.gr_mem or (entry is not None and entry.pw_gid == found.gr_gid):
        return []
    return [JoinGroup(name, group)]


def undo_account_ops(user: User) -> list[Account]:
    """remove-user: leave the group add-user joined, then userdel what add-user created or
    put the previous home and shell back; nothing for an account that is gone."""
    entry = users.account(user.name)
    if entry is None:
        return []
    ops: list[Account] = []
    if user.group:
        try:
            if user.name in grp.getgrnam(user.group).gr_mem:
                ops.append(LeaveGroup(user.name, user.group))
        except KeyError:
            pass
    if user.created:
        ops.append(DeleteAccount(user.name))
    elif user.previous_home is not None and user.previous_shell is not None:
        previous = (user.previous_home, user.previous_shell)
        if (entry.pw_dir, entry.pw_shell) != previous:
            ops.append(ChangeAccount(user.name, *previous))
    return ops


# -- comparing with the jail --------------------------------------------------------------


class Differ:
    """Which desired entries the jail already has exactly (host digests computed once)."""

    def __init__(self, fs: jailfs.JailFS | None) -> None:
        self.fs = fs
        self.digests: dict[str, str] = {}

    def source_digest(self, source: str) -> str:
        if source not in self.digests:
            self.digests[source] = jailfs.hash_host_file(source)
        return self.digests[source]

    def matches(self, entry: Entry) -> bool:
        if self.fs is None:
            return False
        info = self.fs.lstat(entry.path)
        if info is None:
            return False
        mode = stat.S_IMODE(info.st_mode)
        owner_ok = not self.fs.chown or (info.st_uid, info.st_gid) == (
            getattr(entry, "uid", 0),
            getattr(entry, "gid", 0),
        )
        match entry:
            case Dir():
                return stat.S_ISDIR(info.st_mode) and mode == entry.mode and owner_ok
            case File():
                return (
                    stat.S_ISREG(info.st_mode)
                    and mode == entry.mode
                    and owner_ok
                    and info.st_nlink == 1
                    and info.st_size == os.stat(entry.source).st_size
                    and self.fs.digest(entry.path) == self.source_digest(entry.source)
                    and self.fs.capability(entry.path) == entry.capability
                )
            case Link():
                return stat.S_ISLNK(info.st_mode) and self.fs.readlink(entry.path) == entry.target
            case Node():
                return (
                    stat.S_ISCHR(info.st_mode)
                    and info.st_rdev == os.makedev(entry.major, entry.minor)
                    and mode == entry.mode
                    and owner_ok
                )
            case Content():
                return (
                    stat.S_ISREG(info.st_mode)
                    and mode == entry.mode
                    and owner_ok
                    and self.fs.read(entry.path, len(entry.data) + 1) == entry.data
                )
        return False


@dataclass
class Plan:
    """The desired entries of one jail and the operations that get it there."""

    entries: dict[str, Entry]
    ops: list[Operation]
    differ: Differ

    def record(self) -> dict[str, dict[str, object]]:
        """What the manifest keeps about each path (kind; source and digest for copies)."""
        recorded: dict[str, dict[str, object]] = {}
        for path, entry in self.entries.items():
            item: dict[str, object] = {"kind": type(entry).__name__.lower()}
            if isinstance(entry, File):
                item["source"] = entry.source
                item["sha256"] = self.differ.source_digest(entry.source)
            recorded[path] = item
        return recorded


def make_plan(spec: Spec, fs: jailfs.JailFS | None, previous: Iterable[str] = ()) -> Plan:
    """The operations that turn the jail into what `spec` describes.

    `fs` is None for a jail that does not exist yet. `previous` are the paths we
    wrote last time (from the manifest): those no longer wanted (a library
    dropped by a package upgrade) are removed, deepest first; anything else in
    the jail is left alone.
    """
    entries = desired(spec)
    differ = Differ(fs)
    before, after = devlog.plan(spec.jail, spec.devlog, fs)
    ops: list[Operation] = [*before]
    ops += [entry for path, entry in entries.items() if path != "/" and not differ.matches(entry)]
    # A user whose account is gone keeps their home until remove-user --forget / update --prune.
    kept = tuple(f"/home/{name}" for name in users.missing([user.name for user in spec.users]))
    stale = [
        path
        for path in previous
        if path not in entries and not any(path == k or path.startswith(k + "/") for k in kept)
    ]
    for path in sorted(stale, key=lambda item: item.split("/"), reverse=True):
        if fs is not None and fs.lstat(path) is not None:
            ops.append(Remove(path))
    return Plan(entries, ops + after, differ)


def apply(
    ops: list[Operation],
    fs: jailfs.JailFS | None,
    progress: Callable[[int, Operation], None],
    warn: Callable[[str], None],
) -> list[str]:
    """Run `ops` in order (jail operations through `fs`, which only account operations may
    do without; the jail's /dev/log: devlog); return the directories kept because not
    empty. `warn` gets what is done but does not work yet."""
    kept = []
    for number, op in enumerate(ops, 1):
        progress(number, op)
        if isinstance(op, Account):
            _apply_account(op)
            continue
        assert fs is not None, op
        match op:
            case devlog.LogSocket() | devlog.NoLogSocket():
                note = devlog.apply(op, fs)
                if note is not None:
                    warn(note)
            case Dir():
                fs.make_dir(op.path, op.mode, op.uid, op.gid)
            case File():
                fs.install(op.path, op.source, op.mode, capability=op.capability)
            case Link():
                fs.symlink(op.path, op.target)
            case Node():
                fs.mknod(op.path, op.mode, op.major, op.minor)
            case Content():
                fs.write(op.path, op.data, op.mode)
            case Remove():
                if not fs.remove(op.path):
                    kept.append(op.path)
            case RemoveTree():
                if fs.lstat(op.path) is not None:
                    fs.remove_tree(op.path)
    return kept


def _apply_account(op: Account) -> None:
    match op:
        case AddAccount():
            users.useradd(op.name, op.home, op.shell)
        case AddAccounts():
            accountdb.add(list(op.accounts), op.group)
        case ChangeAccount():
            users.usermod(op.name, op.home, op.shell)
        case DeleteAccount():
            users.userdel(op.name)
        case AddGroup():
            users.groupadd(op.group)
        case JoinGroup():
            users.join_group(op.name, op.group)
        case LeaveGroup():
            users.leave_group(op.name, op.group)
        case RegisterShell():
            users.register_shell(op.path)


# -- showing a plan -----------------------------------------------------------------------


def describe(op: Operation) -> str:
    """One human-readable line."""
    match op:
        case Dir():
            return f"mkdir    {op.path}  {op.mode:04o} {op.uid}:{op.gid}"
        case File():
            return (
                f"copy     {op.path}  {op.mode:04o}"
                + ("  +cap_wake_alarm" if op.capability else "")
                + (f"  from {op.source}" if op.source != op.path else "")
            )
        case Link():
            return f"symlink  {op.path} -> {op.target}"
        case Node():
            return f"mknod    {op.path}  c {op.major},{op.minor} {op.mode:04o}"
        case Content():
            return f"write    {op.path}  {op.mode:04o} ({len(op.data.splitlines())} lines)"
        case Remove():
            return f"remove   {op.path}"
        case RemoveTree():
            return f"rmtree   {op.path}  (the home and everything in it)"
        case AddAccount():
            return f"useradd  {op.name}  home {op.home}, shell {op.shell}"
        case AddAccounts():
            names = ", ".join(account.name for account in op.accounts)
            return f"useradd  {len(op.accounts)} in group {op.group}, one write: {names}"
        case ChangeAccount():
            return f"usermod  {op.name}  home {op.home}, shell {op.shell}"
        case DeleteAccount():
            return f"userdel  {op.name}"
        case AddGroup():
            return f"groupadd {op.group}  (--system)"
        case JoinGroup():
            return f"usermod  {op.name}  join group {op.group}"
        case LeaveGroup():
            return f"gpasswd  {op.name}  leave group {op.group}"
        case RegisterShell():
            return f"shells   {op.path}  (added to {users.SHELLS})"
        case devlog.LogSocket():
            how = "bind mount" if op.daemon == "journald" else "listen socket"
            return f"devlog   {op.jail}/dev/log  {op.daemon} {how}: write {op.config}, apply now"
        case devlog.NoLogSocket():
            return f"undevlog {op.jail}/dev/log  {op.daemon}: stop, remove {op.config}"
    raise TypeError(op)


OP_NAMES: dict[type, str] = {
    RemoveTree: "remove-tree",
    AddAccount: "useradd",
    AddAccounts: "useradd-batch",
    ChangeAccount: "usermod",
    DeleteAccount: "userdel",
    AddGroup: "groupadd",
    JoinGroup: "join-group",
    LeaveGroup: "leave-group",
    RegisterShell: "register-shell",
}


def to_json(op: Operation) -> dict[str, object]:
    """One operation for --json output."""
    data: dict[str, object] = {
        "op": OP_NAMES.get(type(op), type(op).__name__.lower()),
        **asdict(op),
    }
    if isinstance(op, Content | devlog.LogSocket):
        data["data"] = op.data.decode("utf-8", "replace")
    if isinstance(op, devlog.LogSocket | devlog.NoLogSocket):
        data["path"] = devlog.IN_JAIL
    if isinstance(op, File):
        data["capability"] = "cap_wake_alarm+p" if op.capability else None
    for key in ("mode",):
        if key in data:
            data[key] = f"{data[key]:04o}"
    return data
