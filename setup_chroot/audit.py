"""`check`: everything that makes a jail unsafe or broken, as a list of findings.

The walk never follows a symlink (os.fwalk on directory descriptors,
lstat on each name) and never runs anything found in the jail; libraries
are resolved statically inside the jail as its loader would see them after
chroot. Each finding has a stable code for scripts:

  ancestor   a component of the jail's real path is not root-owned or is group/other-writable
             (sshd checks only the textual ChrootDirectory; scponly-pyc checks the real path)
  writable   a directory or file outside the users' writable directories is group/other-writable
  owner      something outside the users' writable directories is not owned by root
  setuid     a setuid or setgid file
  device     a device node other than /dev/null (c 1,3 0666), or a wrong /dev/null
  hardlink   a file with more links than the jail holds (a hard link to a file outside)
  symlink    a symlink whose target leaves the jail when read from the host
  home       a home directory or ~/.ssh (or a file in it) the user could change
  preload    /etc/ld.so.preload exists (it would be loaded into every program)
  nsswitch   /etc/nsswitch.conf missing, or a passwd/group/... source other than `files`
  library    a program's interpreter or library cannot be found inside the jail
  stale      a copied file differs from its host source (run `update`), or is missing
"""

from __future__ import annotations

import os
import pwd
import stat
from collections import Counter
from dataclasses import asdict, dataclass

from setup_chroot import elf, jailfs, resolve
from setup_chroot.plan import DEV_NULL, Spec

NSS_DATABASES = ("passwd", "group", "shadow", "gshadow", "initgroups")


@dataclass(frozen=True)
class Finding:
    code: str
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.code:9} {self.path}: {self.message}"


def ancestors(jail: str) -> list[Finding]:
    """Every component of the jail's real path must be root-owned and not group/other-writable."""
    real = os.path.realpath(jail)
    via = f" (on the real path of {jail})" if real != os.path.abspath(jail) else ""
    findings = []
    parts = [part for part in real.split("/") if part]
    for depth in range(len(parts) + 1):
        current = "/" + "/".join(parts[:depth])
        info = os.lstat(current)
        if info.st_uid != 0:
            findings.append(Finding("ancestor", current, f"owned by uid {info.st_uid}{via}"))
        if info.st_mode & 0o022:
            message = f"writable by group or others ({_mode(info)}){via}"
            findings.append(Finding("ancestor", current, message))
    return findings


def _mode(info: os.stat_result) -> str:
    return f"mode {stat.S_IMODE(info.st_mode):04o}"


def escapes(path: str, target: str) -> bool:
    """Whether a symlink at `path` (inside the jail) points outside it when read from the host."""
    if target.startswith("/"):
        return True
    level = len([part for part in path.split("/") if part]) - 1
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
        self.users = self._users()

    def add(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(code, path, message))

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

    def user_tree(self, path: str, info: os.stat_result) -> bool:
        """Whether `path` is a user's writable directory or inside one (their own business)."""
        parts = [part for part in path.split("/") if part]
        if len(parts) < 3 or parts[0] != "home" or parts[1] not in self.users or parts[2] == ".ssh":
            return False
        if len(parts) == 3:
            return stat.S_ISDIR(info.st_mode) and info.st_uid == self.users[parts[1]]
        top = os.lstat(os.path.join(self.jail, *parts[:3]))
        return stat.S_ISDIR(top.st_mode) and top.st_uid == self.users[parts[1]]

    def home_part(self, path: str) -> bool:
        """A user's home or ~/.ssh (or inside it): `homes` judges those, with the user in mind."""
        parts = [part for part in path.split("/") if part]
        if len(parts) < 2 or parts[0] != "home" or parts[1] not in self.users:
            return False
        return len(parts) == 2 or parts[2] == ".ssh"

    def run(self) -> list[Finding]:
        self.findings.extend(ancestors(self.jail))
        self.walk()
        self.homes()
        self.config_files()
        self.libraries()
        self.stale()
        return self.findings

    # -- the walk ---------------------------------------------------------------------------

    def walk(self) -> None:
        links: Counter[tuple[int, int]] = Counter()
        first_path: dict[tuple[int, int], tuple[str, int]] = {}
        for directory, dirs, files, dir_fd in os.fwalk(self.jail, follow_symlinks=False):
            relative = "/" + os.path.relpath(directory, self.jail).lstrip(".").lstrip("/")
            for name in [*dirs, *files]:
                path = os.path.join(relative, name)
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                self.entry(path, info, dir_fd, name)
                if stat.S_ISREG(info.st_mode):
                    key = (info.st_dev, info.st_ino)
                    links[key] += 1
                    first_path.setdefault(key, (path, info.st_nlink))
        for key, (path, nlink) in first_path.items():
            if nlink > links[key]:
                self.add(
                    "hardlink",
                    path,
                    f"{nlink} links, {links[key]} inside the jail: hard-linked to a file outside",
                )

    def entry(self, path: str, info: os.stat_result, dir_fd: int, name: str) -> None:
        mode = info.st_mode
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            self.add("setuid", path, f"setuid/setgid file ({_mode(info)}, uid {info.st_uid})")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            null = (os.makedev(DEV_NULL[0], DEV_NULL[1]), DEV_NULL[2])
            if path == "/dev/null" and stat.S_ISCHR(mode) and (info.st_rdev, mode & 0o7777) == null:
                if info.st_uid != 0:
                    self.add("owner", path, f"owned by uid {info.st_uid}, not root")
                return
            major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
            kind = "c" if stat.S_ISCHR(mode) else "b"
            self.add("device", path, f"device node {kind} {major},{minor} {_mode(info)}")
        if stat.S_ISLNK(mode):
            target = os.readlink(name, dir_fd=dir_fd)
            if escapes(path, target):
                self.add("symlink", path, f"points outside the jail from the host: -> {target}")
        if self.user_tree(path, info) or self.home_part(path):
            return
        if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
            return
        if mode & 0o022:
            self.add("writable", path, f"writable by group or others ({_mode(info)})")
        if info.st_uid != 0:
            self.add("owner", path, f"owned by uid {info.st_uid}, not root")

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
        with jailfs.JailFS(self.jail) as fs:
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

    def programs(self) -> list[str]:
        """Every executable ELF program outside the users' trees (what a login can exec)."""
        found = []
        for directory, dirs, files, dir_fd in os.fwalk(self.jail, follow_symlinks=False):
            relative = "/" + os.path.relpath(directory, self.jail).lstrip(".").lstrip("/")
            if relative.startswith("/home"):
                dirs.clear()
                continue
            for name in files:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
                    found.append(os.path.join(relative, name))
        return sorted(found)

    def libraries(self) -> None:
        root = resolve.Root(self.jail)
        linkers: dict[tuple[int, str], resolve.Linker] = {}
        for program in self.programs():
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
        with jailfs.JailFS(self.jail) as fs:
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


def check(
    jail: str, spec: Spec | None = None, recorded: dict[str, dict[str, object]] | None = None
) -> list[Finding]:
    """All findings for one jail (empty: nothing to report)."""
    return Audit(jail, spec, recorded).run()
