"""`check`: everything that makes a jail unsafe or broken, as a list of findings.

The walk (`walk_tree`) never follows a symlink, never opens anything but a
directory, holds one directory fd at a time and no recursion, so a tree a
user uploads (any depth, any names, FIFOs, changes during the walk) cannot
stop it; what it could not examine is a finding. Nothing found in the jail is
run; libraries are resolved statically inside the jail as its loader would
see them after chroot. Each finding has a stable code for scripts:

  ancestor   a component of the jail path breaks the trusted-path rule (scponly_py/trusted.py)
  writable   a directory or file outside the users' writable directories is group/other-writable
  owner      something outside the users' writable directories is not owned by root
  setuid     a setuid or setgid file
  uploaded   a set-id bit on a non-directory inside a user's writable tree
  device     a device node other than /dev/null (c 1,3 0666), or a wrong /dev/null
  hardlink   a file with more links than the jail holds (a hard link to a file outside)
  symlink    a symlink whose target leaves the jail when read from the host
  home       a home directory or ~/.ssh (or a file in it) the user could change
  preload    /etc/ld.so.preload exists (it would be loaded into every program)
  nsswitch   /etc/nsswitch.conf missing, or a passwd/group/... source other than `files`
  library    a program's interpreter or library cannot be found inside the jail
  stale      a copied file differs from its host source (run `update`), or is missing
  devlog     a jail with sshd ChrootDirectory users (or --devlog) whose /dev/log is missing, not
             a socket, or has no syslog daemon behind it (setup_chroot/devlog.py)
  unexamined part of the jail could not be examined (it changed during the walk), or too many
             findings to list
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from scponly_py import trusted
from setup_chroot import devlog, elf, finding, jailfs, resolve
from setup_chroot.plan import DEV_NULL, Spec

NSS_DATABASES = ("passwd", "group", "shadow", "gshadow", "initgroups")
MAX_FINDINGS = 1000
SHOWN_COMPONENTS = 12
SET_ID = stat.S_ISUID | stat.S_ISGID


@dataclass(frozen=True)
class Finding(finding.Finding):
    LINE = "{code:9} {path}: {message}"
    code: str
    path: str
    message: str


def ancestors(jail: str) -> list[Finding]:
    """Every component of the jail path that breaks the trusted-path rule (links are walked on)."""
    return [Finding("ancestor", where, why) for where, why in trusted.problems(jail)]


def display(names: list[str], name: str = "") -> str:
    """A jail path for a finding, shortened in the middle when a user made it very deep."""
    parts = [*names, name] if name else names
    if len(parts) > 2 * SHOWN_COMPONENTS:
        hidden = len(parts) - 2 * SHOWN_COMPONENTS
        parts = [*parts[:SHOWN_COMPONENTS], f"...{hidden} more...", *parts[-SHOWN_COMPONENTS:]]
    return "/" + "/".join(parts)


class Changed(Exception):
    """The tree changed under the walk at `path` (a display path)."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path} {what}")
        self.path = path
        self.what = what


def walk_tree(root_fd: int) -> Iterator[tuple[list[str], str, os.stat_result, int]]:
    """(directory names, name, lstat, directory fd) of everything below `root_fd`, top-down.

    One directory fd at a time: a subdirectory is entered by name (O_NOFOLLOW, its
    fstat must match the listing's lstat) and left through '..' (which must be the
    directory we came from); anything else raises Changed. Entries that vanish are
    skipped. `names` is the live stack of the current directory: copy it to keep it.
    """
    names: list[str] = []
    fd = os.dup(root_fd)
    info = os.fstat(fd)
    ids = [(info.st_dev, info.st_ino)]
    pending: list[list[tuple[str, tuple[int, int]]]] = []
    try:
        while True:
            subdirectories = []
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield names, entry.name, info, fd
                    if stat.S_ISDIR(info.st_mode):
                        subdirectories.append((entry.name, (info.st_dev, info.st_ino)))
            pending.append(subdirectories[::-1])
            while True:
                if pending[-1]:
                    name, ident = pending[-1].pop()
                    try:
                        child = os.open(name, jailfs.DIR_FLAGS, dir_fd=fd)
                    except OSError as error:
                        if error.errno == errno.ENOENT:
                            continue
                        raise Changed(display(names, name), error.strerror.lower()) from None
                    info = os.fstat(child)
                    if (info.st_dev, info.st_ino) != ident:
                        os.close(child)
                        raise Changed(display(names, name), "was replaced")
                    os.close(fd)
                    fd = child
                    ids.append((info.st_dev, info.st_ino))
                    names.append(name)
                    break
                pending.pop()
                if not names:
                    return
                parent = os.open("..", jailfs.DIR_FLAGS, dir_fd=fd)
                info = os.fstat(parent)
                os.close(fd)
                fd = parent
                ids.pop()
                if (info.st_dev, info.st_ino) != ids[-1]:
                    raise Changed(display(names), "was moved")
                names.pop()
    finally:
        os.close(fd)


def _mode(info: os.stat_result) -> str:
    return f"mode {stat.S_IMODE(info.st_mode):04o}"


def escapes(path: str, target: str) -> bool:
    """Whether a symlink at `path` (inside the jail) points outside it when read from the host."""
    return escapes_from(len([part for part in path.split("/") if part]) - 1, target)


def escapes_from(level: int, target: str) -> bool:
    """Whether a symlink `level` directories below the jail root leaves it, read from the host."""
    if target.startswith("/"):
        return True
    for part in target.split("/"):
        if part == "..":
            level -= 1
            if level < 0:
                return True
        elif part not in ("", "."):
            level += 1
    return False


class Audit:
    """One `check` run over one jail."""

    def __init__(
        self,
        jail: str,
        spec: Spec | None = None,
        recorded: dict[str, dict[str, object]] | None = None,
    ) -> None:
        self.jail = os.path.realpath(jail)
        self.spec = spec
        self.recorded = recorded or {}
        self.findings: list[Finding] = []
        self.dropped = 0
        self.users = self._users()
        self.user_dirs: set[tuple[str, str]] = set()
        self.executables: list[str] = []
        # What `check --fix` may chown/chmod in place (doctor.plan_jail_fixes): directories
        # outside the users' writable trees, homes, ~/.ssh and the files in it; top-down.
        self.repairable: list[tuple[tuple[str, ...], os.stat_result]] = []

    def repair(self, parts: tuple[str, ...], info: os.stat_result) -> None:
        """Remember an entry `check --fix` may make root's and not group/other-writable."""
        if len(self.repairable) < MAX_FINDINGS:
            self.repairable.append((parts, info))

    def add(self, code: str, path: str, message: str) -> None:
        """Record a finding; past MAX_FINDINGS, one `unexamined` finding says how many more."""
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(code, path, message))
            return
        self.dropped += 1
        summary = Finding("unexamined", "/", f"{self.dropped} more findings not listed")
        if self.dropped == 1:
            self.findings.append(summary)
        else:
            self.findings[-1] = summary

    def _users(self) -> dict[str, int]:
        """Jail users -> uid: from the manifest, else the /home/NAME directories the jail has."""
        if self.spec is not None:
            names = [user.name for user in self.spec.users]
        else:
            try:
                names = os.listdir(os.path.join(self.jail, "home"))
            except OSError:
                names = []
        found = {}
        for name in names:
            try:
                found[name] = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
        return found

    def area(self, names: list[str], name: str, info: os.stat_result) -> str:
        """'user' (a user's writable tree: their business), 'home' (`homes` judges it), or ''."""
        if not names or names[0] != "home":
            return ""
        if len(names) == 1:
            return "home" if name in self.users else ""
        if names[1] not in self.users:
            return ""
        if len(names) == 2:
            if name == ".ssh":
                return "home"
            if stat.S_ISDIR(info.st_mode) and info.st_uid == self.users[names[1]]:
                self.user_dirs.add((names[1], name))
                return "user"
            return ""
        if names[2] == ".ssh":
            return "home"
        return "user" if (names[1], names[2]) in self.user_dirs else ""

    def run(self) -> list[Finding]:
        self.findings.extend(ancestors(self.jail))
        self.walk()
        self.homes()
        self.config_files()
        self.libraries()
        self.stale()
        self.log_socket()
        return self.findings

    # -- the walk ---------------------------------------------------------------------------

    def walk(self) -> None:
        """Every entry of the jail, once (also collects the programs `libraries` resolves)."""
        links: Counter[tuple[int, int]] = Counter()
        first_path: dict[tuple[int, int], tuple[str, int]] = {}
        fd = os.open(self.jail, jailfs.DIR_FLAGS)
        try:
            for names, name, info, dir_fd in walk_tree(fd):
                self.entry(names, name, info, dir_fd)
                if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                    key = (info.st_dev, info.st_ino)
                    links[key] += 1
                    first_path.setdefault(key, (display(names, name), info.st_nlink))
        except Changed as error:
            self.add("unexamined", error.path, f"{error.what} during the check; not examined")
        finally:
            os.close(fd)
        for key, (path, nlink) in first_path.items():
            if nlink > links[key]:
                self.add(
                    "hardlink",
                    path,
                    f"{nlink} links, {links[key]} inside the jail: hard-linked to a file outside",
                )

    def entry(self, names: list[str], name: str, info: os.stat_result, dir_fd: int) -> None:
        mode = info.st_mode
        area = self.area(names, name, info)
        if area == "user" and not stat.S_ISDIR(mode) and mode & SET_ID:
            message = f"uploaded set-id file ({_mode(info)}, uid {info.st_uid}); fix: chmod ug-s"
            self.add("uploaded", display(names, name), message)
        elif stat.S_ISREG(mode) and mode & SET_ID:
            message = f"setuid/setgid file ({_mode(info)}, uid {info.st_uid})"
            self.add("setuid", display(names, name), message)
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            null = (os.makedev(DEV_NULL[0], DEV_NULL[1]), DEV_NULL[2])
            is_null = stat.S_ISCHR(mode) and (info.st_rdev, mode & 0o7777) == null
            if names == ["dev"] and name == "null" and is_null:
                if info.st_uid != 0:
                    self.add("owner", "/dev/null", f"owned by uid {info.st_uid}, not root")
                return
            major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
            kind = "c" if stat.S_ISCHR(mode) else "b"
            message = f"device node {kind} {major},{minor} {_mode(info)}"
            self.add("device", display(names, name), message)
        if stat.S_ISLNK(mode):
            target = os.readlink(name, dir_fd=dir_fd)
            if escapes_from(len(names), target):
                message = f"points outside the jail from the host: -> {target[:200]}"
                self.add("symlink", display(names, name), message)
        if area:
            return
        if stat.S_ISREG(mode) and mode & 0o111 and names[:1] != ["home"]:
            self.executables.append(display(names, name))
        if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
            return
        if mode & 0o022:
            message = f"writable by group or others ({_mode(info)})"
            self.add("writable", display(names, name), message)
        if info.st_uid != 0:
            self.add("owner", display(names, name), f"owned by uid {info.st_uid}, not root")
        if stat.S_ISDIR(mode) and (mode & 0o022 or info.st_uid != 0):
            self.repair((*names, name), info)

    # -- specific files ---------------------------------------------------------------------

    def homes(self) -> None:
        for name, uid in self.users.items():
            home = f"/home/{name}"
            info = self._lstat(home)
            if info is None:
                self.add("home", home, "missing")
                continue
            if info.st_uid != 0 or info.st_mode & 0o022:
                self.add("home", home, f"writable by the user ({_mode(info)}, uid {info.st_uid})")
                if stat.S_ISDIR(info.st_mode):
                    self.repair(("home", name), info)
            ssh = self._lstat(f"{home}/.ssh")
            if ssh is None:
                continue
            for path in [f"{home}/.ssh", *self._children(f"{home}/.ssh")]:
                entry = self._lstat(path)
                if entry is not None and (entry.st_uid == uid or entry.st_mode & 0o022):
                    self.add(
                        "home",
                        path,
                        f"the user can change it ({_mode(entry)}, uid {entry.st_uid}):"
                        " authorized_keys options would bypass the shell",
                    )
                    if stat.S_ISDIR(entry.st_mode) or stat.S_ISREG(entry.st_mode):
                        self.repair(tuple(part for part in path.split("/") if part), entry)

    def reader(self) -> jailfs.JailFS:
        """Read access to the jail even when the trusted-path rule refuses it (we report that)."""
        return jailfs.JailFS(self.jail, os.open(self.jail, jailfs.DIR_FLAGS))

    def _lstat(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(os.path.join(self.jail, path.lstrip("/")))
        except OSError:
            return None

    def _children(self, path: str) -> list[str]:
        host = os.path.join(self.jail, path.lstrip("/"))
        if not stat.S_ISDIR(os.lstat(host).st_mode):
            return []
        return [f"{path}/{name}" for name in sorted(os.listdir(host))]

    def config_files(self) -> None:
        if self._lstat("/etc/ld.so.preload") is not None:
            self.add("preload", "/etc/ld.so.preload", "present: loaded into every program")
        with self.reader() as fs:
            try:
                text = fs.read("/etc/nsswitch.conf").decode("utf-8", "replace")
            except (jailfs.JailFSError, OSError):
                self.add("nsswitch", "/etc/nsswitch.conf", "missing or not a regular file")
                return
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            database, _, sources = line.partition(":")
            if database.strip() in NSS_DATABASES and sources.split() != ["files"]:
                self.add(
                    "nsswitch",
                    "/etc/nsswitch.conf",
                    f"line {number}: {line!r} (only 'files' loads nothing from the jail)",
                )

    # -- programs -------------------------------------------------------------------------

    def libraries(self) -> None:
        root = resolve.Root(self.jail)
        linkers: dict[tuple[int, str], resolve.Linker] = {}
        for program in sorted(self.executables):
            try:
                info = resolve.read_elf(root, program)
                if info is None or info.interpreter is None:
                    continue
                key = (info.elf_class, info.machine)
                if key not in linkers:
                    linkers[key] = resolve.Linker.for_root(root, info)
                if not root.exists(info.interpreter):
                    self.add("library", program, f"interpreter {info.interpreter} missing")
                    continue
                found = resolve.closure(program, root, linkers[key])
            except (OSError, resolve.ResolveError, elf.ElfError) as error:
                self.add("library", program, f"cannot resolve: {error}")
                continue
            for name, needed_by in found.missing:
                self.add("library", program, f"{name} (needed by {needed_by}) not in the jail")

    def stale(self) -> None:
        with self.reader() as fs:
            for path, item in self.recorded.items():
                source = item.get("source")
                if item.get("kind") != "file" or not isinstance(source, str):
                    continue
                try:
                    current = fs.digest(path)
                except (jailfs.JailFSError, OSError):
                    self.add("stale", path, "missing from the jail (run update)")
                    continue
                try:
                    host = jailfs.hash_host_file(source)
                except OSError:
                    self.add("stale", path, f"its source {source} is gone (run update)")
                    continue
                if current != host:
                    self.add("stale", path, f"differs from {source} (run update)")

    def log_socket(self) -> None:
        """The jail's /dev/log, where a chroot-directory user's shell logs (or is refused)."""
        if self.spec is None:
            return
        routed = any(user.mode == "chroot-directory" for user in self.spec.users)
        if not (routed or self.spec.devlog):
            return
        with self.reader() as fs:
            found = devlog.problem(fs, self.spec.devlog)
        if found is not None:
            fix = f"scponly-py-setup update {self.jail}"
            fix += "" if self.spec.devlog else " --devlog auto"
            message = f"{found}: scponly-py refuses every login it cannot log; fix: {fix}"
            self.add("devlog", devlog.IN_JAIL, message)


def check(
    jail: str, spec: Spec | None = None, recorded: dict[str, dict[str, object]] | None = None
) -> list[Finding]:
    """All findings for one jail (empty: nothing to report)."""
    return Audit(jail, spec, recorded).run()
