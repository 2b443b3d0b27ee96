"""The one trusted-path rule: could anyone but root have changed this path since we looked?

Used on the login path (config, jail) and by every root-run tool, so it is
stdlib-only (`posix`) and cheap: one openat + fstat per component. The walk
starts at `/` and opens each component with O_PATH|O_NOFOLLOW relative to its
parent's fd; callers get the fd of the last one and use it, never the path.

A component is trusted when its owner is in `owners` (root) and it is not
writable by group or others; a directory writable by others is accepted above
the target only when sticky, and then only a root-owned *directory* may follow
it (in /tmp a user can plant anything else, hard links included). Symlinks are
refused, except with `follow=True` a root-owned one in a directory nobody but
root can write (merged-/usr's /bin -> usr/bin); its target is walked by the
same rule. The why: docs/design.md, "Paths root trusts". `user_manager_problem`
applies the same ownership test to what `systemd --user` reads from a home
(docs/design.md, "The login environment"). `write_new_at` is the one way a file
is written for a later rename into place in such a directory.
"""

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFLNK = 0o120000
S_ISVTX = 0o1000
WRITABLE_BY_OTHERS = 0o022
ROOT = (0,)
MAX_LINKS = 40
OPEN_ANY = posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC
ENOENT, ENOTDIR, ELOOP = 2, 20, 40
# sd_booted(): systemd is the init (then pam_systemd can start the user's service manager).
SYSTEMD_RUNNING = "/run/systemd/system"
# What systemd --user reads from $HOME ($XDG_CONFIG_HOME/systemd/user{,.control,.attached},
# user.conf, environment.d, $XDG_DATA_HOME/systemd/user) and each directory on the way.
USER_MANAGER_PATHS = (
    "", "/.config", "/.config/systemd", "/.config/environment.d",
    "/.local", "/.local/share", "/.local/share/systemd",
)  # fmt: skip


class Untrusted(Exception):
    """`path` could have been changed by someone not in the owner set (or cannot be opened)."""

    def __init__(self, path: str, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason
        self.missing = missing


def components(path: str) -> list[str]:
    """The names of an absolute path below /; '..', '.' and empty names are refused."""
    if not path.startswith("/") or "\0" in path:
        raise Untrusted(repr(path), "is not an absolute path")
    names = [name for name in path.split("/") if name]
    if any(name in (".", "..") for name in names):
        raise Untrusted(path, "has a '.' or '..' component")
    return names


def entry_problem(
    info: posix.stat_result, parent: posix.stat_result | None, *, owners: tuple[int, ...] = ROOT
) -> str | None:
    """Why an entry (its lstat `info`) of a trusted directory (`parent`) is not trusted, or None.

    A sticky group/other-writable directory passes (its entries are judged here).
    """
    kind = info.st_mode & S_IFMT
    if parent is not None and parent.st_mode & WRITABLE_BY_OTHERS and kind != S_IFDIR:
        return (
            "is not a directory, in a directory others can write (anyone could have put it there)"
        )
    if info.st_uid not in owners:
        return f"is not owned by root (uid {info.st_uid})"
    if kind == S_IFLNK:
        return None
    if info.st_mode & WRITABLE_BY_OTHERS and not (kind == S_IFDIR and info.st_mode & S_ISVTX):
        return f"is writable by group or others (mode {info.st_mode & 0o7777:04o})"
    return None


def target_problem(
    info: posix.stat_result, parent: posix.stat_result | None, *, owners: tuple[int, ...] = ROOT
) -> str | None:
    """`entry_problem` for the path itself: writable by group or others even when sticky."""
    reason = entry_problem(info, parent, owners=owners)
    if reason is None and info.st_mode & S_IFMT != S_IFLNK and info.st_mode & WRITABLE_BY_OTHERS:
        reason = f"is writable by group or others (mode {info.st_mode & 0o7777:04o})"
    return reason


def _walk(
    path: str,
    *,
    follow: bool,
    owners: tuple[int, ...],
    report: list[tuple[str, str]] | None,
    create: int | None = None,
) -> int | None:
    """The checked O_PATH fd of `path`; problems raise Untrusted, or with `report` are collected."""

    def problem(where: str, reason: str, *, fatal: bool = False, missing: bool = False) -> None:
        if report is None or fatal:
            if report is not None:
                report.append((where, reason))
            raise Untrusted(where, reason, missing=missing)
        report.append((where, reason))

    pending = list(reversed(components(path)))
    stack = [("", posix.open("/", OPEN_ANY | posix.O_DIRECTORY))]  # (path so far, fd)
    infos = [posix.fstat(stack[0][1])]
    links = 0
    try:
        if infos[0].st_uid not in owners or infos[0].st_mode & WRITABLE_BY_OTHERS:
            problem("/", entry_problem(infos[0], None, owners=owners) or "is not trusted")
        while pending:
            name = pending.pop()
            if name == "..":  # only from a followed link's text
                if len(stack) > 1:
                    posix.close(stack.pop()[1])
                    infos.pop()
                continue
            where = f"{stack[-1][0]}/{name}"
            if create is not None:
                _make_dir(stack[-1][1], name, create)
            try:
                fd = posix.open(name, OPEN_ANY, dir_fd=stack[-1][1])
            except OSError as error:
                problem(
                    where, f"cannot be opened: {error.strerror}", fatal=True,
                    missing=error.errno == ENOENT,
                )  # fmt: skip
            info = posix.fstat(fd)
            reason = entry_problem(info, infos[-1], owners=owners)
            kind = info.st_mode & S_IFMT
            if kind == S_IFLNK:
                posix.close(fd)
                if not follow:
                    reason = "is a symlink"
                elif reason is None and infos[-1].st_mode & WRITABLE_BY_OTHERS:
                    reason = "is a symlink in a directory others can write"
                if reason:
                    problem(where, reason, fatal=report is None)
                links += 1
                if links > MAX_LINKS:
                    problem(where, "has too many levels of symlinks", fatal=True)
                target = posix.readlink(name, dir_fd=stack[-1][1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        posix.close(stack.pop()[1])
                        infos.pop()
                pending.extend(
                    reversed([part for part in target.split("/") if part not in ("", ".")])
                )
                continue
            if not pending:
                reason = target_problem(info, infos[-1], owners=owners)
            if reason:
                problem(where, reason)
            if pending and kind != S_IFDIR:
                posix.close(fd)
                problem(where, "is not a directory", fatal=True)
            stack.append((where, fd))
            infos.append(info)
        last = stack.pop()[1]
        return last
    finally:
        for _where, fd in stack:
            posix.close(fd)


def _make_dir(dir_fd: int, name: str, mode: int) -> None:
    """mkdir `name` in `dir_fd` with exactly `mode` (unless it exists: the rule judges it then)."""
    try:
        posix.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        return
    made = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        posix.fchmod(made, mode)
    finally:
        posix.close(made)


def open_path(
    path: str, *, directory: bool = False, follow: bool = False, owners: tuple[int, ...] = ROOT
) -> int:
    """An O_PATH fd of `path` with it and every directory above it trusted; else Untrusted."""
    fd = _walk(path, follow=follow, owners=owners, report=None)
    assert fd is not None
    if directory and posix.fstat(fd).st_mode & S_IFMT != S_IFDIR:
        posix.close(fd)
        raise Untrusted(path, "is not a directory")
    return fd


def problems(
    path: str, *, follow: bool = True, owners: tuple[int, ...] = ROOT
) -> list[tuple[str, str]]:
    """Every (component, reason) that makes `path` untrusted, walking on where it can (reports)."""
    found: list[tuple[str, str]] = []
    try:
        fd = _walk(path, follow=follow, owners=owners, report=found)
    except Untrusted:
        return found
    if fd is not None:
        posix.close(fd)
    return found


def open_at(
    dir_fd: int, name: str, flags: int, *, owners: tuple[int, ...] = ROOT, what: str = ""
) -> int:
    """open(name, flags|O_NOFOLLOW) in the trusted directory `dir_fd`, checked by the rule."""
    fd = posix.open(name, flags | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=dir_fd)
    try:
        reason = target_problem(posix.fstat(fd), posix.fstat(dir_fd), owners=owners)
        if reason:
            raise Untrusted(what or name, reason)
    except BaseException:
        posix.close(fd)
        raise
    return fd


def open_existing_at(
    dir_fd: int, name: str, flags: int, *, owners: tuple[int, ...] = ROOT, what: str = ""
) -> int | None:
    """`open_at`, or None if `name` does not exist; any other failure is `Untrusted`."""
    try:
        return open_at(dir_fd, name, flags, owners=owners, what=what)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Untrusted(what or name, f"cannot be opened: {error.strerror}") from None


def systemd_booted() -> bool:
    """Whether systemd is this host's init (sd_booted: /run/systemd/system is a directory)."""
    try:
        return posix.lstat(SYSTEMD_RUNNING).st_mode & S_IFMT == S_IFDIR
    except OSError:
        return False


def user_manager_problem(home: str) -> str | None:
    """Why the account could have put something `systemd --user` reads in `home`, or None.

    Each of USER_MANAGER_PATHS below `home` (taken as given, `//` included) that
    exists must be root's: owned by root, not writable by group or others, not a
    symlink (lstat only; nothing is followed). A missing one is fine: its parent
    passed. Anything that cannot be examined is a problem (fail closed).
    """
    for suffix in USER_MANAGER_PATHS:
        path = home + suffix
        try:
            info = posix.lstat(path)
        except OSError as error:
            if error.errno in (ENOENT, ENOTDIR):
                continue
            return f"{path} cannot be examined ({error.strerror})"
        if info.st_mode & S_IFMT == S_IFLNK:
            return f"{path} is a symlink"
        if info.st_uid != 0:
            return f"{path} is owned by uid {info.st_uid}, not root"
        if info.st_mode & WRITABLE_BY_OTHERS:
            return f"{path} is writable by group or others (mode {info.st_mode & 0o7777:04o})"
    return None


def make_dirs(path: str, mode: int = 0o755, *, owners: tuple[int, ...] = ROOT) -> int:
    """`path` as a trusted directory's O_PATH fd, creating missing components (`mode`, ours)."""
    fd = _walk(path, follow=False, owners=owners, report=None, create=mode)
    assert fd is not None
    return fd


def write_new_at(dir_fd: int, temporary: str, fill: "Callable[[int], None]") -> None:
    """Create `temporary` in directory `dir_fd` (O_EXCL, O_NOFOLLOW, mode 0600), let `fill`
    write it and set its owner and mode through the fd, fsync it. On any error it is removed;
    a leftover of a crashed run under the same name is removed first (`dir_fd` is a trusted,
    root's directory). The caller renames it over the target: a reader sees the old file or
    the whole new one."""
    try:
        posix.unlink(temporary, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    flags = posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC
    fd = posix.open(temporary, flags, 0o600, dir_fd=dir_fd)
    try:
        try:
            fill(fd)
            posix.fsync(fd)
        finally:
            posix.close(fd)
    except BaseException:
        posix.unlink(temporary, dir_fd=dir_fd)
        raise


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (write(2) may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]


def main(argv: list[str]) -> int:
    """`python3 -I trusted.py [--make] [--owner UID] PATH...` for root-run shell scripts.

    Exit 1 with one line on the first path that breaks the rule (symlinks refused);
    --make creates missing directories (0755) first; --owner also trusts UID.
    """
    owners = ROOT
    make = False
    while argv[:1] in (["--make"], ["--owner"]):
        if argv[0] == "--make":
            make, argv = True, argv[1:]
        else:
            owners, argv = (*owners, int(argv[1])), argv[2:]
    for path in argv:
        try:
            posix.close(make_dirs(path, owners=owners) if make else open_path(path, owners=owners))
        except Untrusted as error:
            print(f"untrusted path {path}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
