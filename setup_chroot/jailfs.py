"""The only code that writes into a jail.

A jail contains directories its users can write, and `update` or
`remove-user --purge` run as root long after the jail was built, so any path
inside it may have been replaced by a symlink pointing at /etc/shadow. Every
operation therefore walks the path one component at a time from an open file
descriptor of the jail root, with O_NOFOLLOW|O_DIRECTORY, and acts on the last
component through the parent's descriptor (`dir_fd=`, `follow_symlinks=False`).
Files are written to a fresh temporary name (O_CREAT|O_EXCL|O_NOFOLLOW) and
renamed over the old name, so a running binary is never truncated and a
planted symlink is replaced, never followed. Modes are set on the new file
before it appears: setuid/setgid/sticky bits and group/other write are never
copied; the one privilege a file can get is the `security.capability` a caller
passes to `install` (the frozen scponly-py's cap_wake_alarm+p). Nothing is
hard-linked and nothing inside a jail is ever executed.

Owners can only be given away by root; a non-root caller (tests, a staging
build) gets files it owns itself, which `check` reports.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scponly_py import trusted

CHUNK = 1 << 20
SAFE_MODE_BITS = 0o755  # no setuid/setgid/sticky, no group/other write
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CAPABILITY_XATTR = "security.capability"


class JailFSError(Exception):
    """A write into the jail was refused or failed; the message names the path."""


def _components(path: str) -> list[str]:
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise JailFSError(f"{path}: '..' is not allowed in a jail path")
    return parts


class JailFS:
    """Operations on one jail, all relative to an open descriptor of its root.

    Without `root_fd` the jail is opened by the trusted-path rule (scponly_py/trusted.py);
    a given `root_fd` (an O_PATH or directory fd) is taken over and closed by `close`.
    """

    def __init__(self, jail: str, root_fd: int | None = None) -> None:
        self.jail = jail
        self.chown = os.geteuid() == 0
        if root_fd is None:
            owners = trusted.ROOT if self.chown else (0, os.geteuid())
            try:
                root_fd = trusted.open_path(jail, directory=True, owners=owners)
            except trusted.Untrusted as error:
                raise JailFSError(f"jail {error}") from None
        self.root_fd = root_fd

    def close(self) -> None:
        os.close(self.root_fd)

    def __enter__(self) -> JailFS:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- walking ------------------------------------------------------------------------

    @contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the parent directory, last component) of `path`, no symlink followed."""
        parts = _components(path)
        if not parts:
            raise JailFSError("the jail root itself cannot be replaced")
        fd = os.dup(self.root_fd)
        try:
            for index, part in enumerate(parts[:-1]):
                try:
                    new = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    where = "/" + "/".join(parts[: index + 1])
                    if error.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise JailFSError(
                            f"{where} is not a directory (a symlink?); not following it"
                        ) from None
                    raise JailFSError(f"{where}: {error.strerror}") from None
                os.close(fd)
                fd = new
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def lstat(self, path: str) -> os.stat_result | None:
        """lstat of `path` inside the jail, or None if it (or a parent) is missing."""
        try:
            with self.parent(path) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except JailFSError:
            return None

    def readlink(self, path: str) -> str:
        with self.parent(path) as (fd, name):
            return os.readlink(name, dir_fd=fd)

    def read(self, path: str, limit: int = 1 << 20) -> bytes:
        """The first `limit` bytes of a regular file (never through a symlink)."""
        with self.parent(path) as (fd, name), self._open_regular(name, fd) as handle:
            return os.read(handle, limit)

    def capability(self, path: str) -> bytes | None:
        """The `security.capability` of a regular file in the jail, or None."""
        with self.parent(path) as (fd, name), self._open_regular(name, fd) as handle:
            try:
                return os.getxattr(handle, CAPABILITY_XATTR)
            except OSError:
                return None

    def digest(self, path: str) -> str:
        """SHA-256 of a regular file in the jail."""
        with self.parent(path) as (fd, name), self._open_regular(name, fd) as handle:
            return hash_fd(handle)

    @contextmanager
    def _open_regular(self, name: str, dir_fd: int) -> Iterator[int]:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            handle = os.open(name, flags, dir_fd=dir_fd)
        except OSError as error:
            raise JailFSError(f"{name}: {error.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise JailFSError(f"{name}: not a regular file")
            yield handle
        finally:
            os.close(handle)

    # -- writing ------------------------------------------------------------------------

    def make_dir(self, path: str, mode: int, uid: int = 0, gid: int = 0) -> None:
        """Create or fix a directory (a symlink or file in its place is an error)."""
        with self.parent(path) as (fd, name):
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                handle = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError:
                raise JailFSError(f"{path} exists and is not a directory; not replaced") from None
            try:
                self._own(handle, uid, gid)
                os.fchmod(handle, mode & 0o7777 & ~stat.S_ISUID & ~stat.S_ISGID)
            finally:
                os.close(handle)

    def install(self, path: str, source: str, mode: int, capability: bytes | None = None) -> None:
        """Copy host file `source` to `path` atomically, root-owned, with safe mode bits.

        `capability`: a `security.capability` value the new file gets (on its fd,
        read back) before it appears; JailFSError if the file system cannot keep it.
        """
        try:
            src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            raise JailFSError(f"cannot read {source}: {error.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise JailFSError(f"{source} is not a regular file")
            self._replace(path, mode, lambda out: _copy(src, out), capability=capability)
        finally:
            os.close(src)

    def write(self, path: str, data: bytes, mode: int, uid: int = 0, gid: int = 0) -> None:
        """Write generated content to `path` atomically."""
        self._replace(path, mode, lambda out: trusted.write_all(out, data), uid, gid)

    def _replace(
        self,
        path: str,
        mode: int,
        fill: Callable[[int], None],
        uid: int = 0,
        gid: int = 0,
        *,
        capability: bytes | None = None,
    ) -> None:
        with self.parent(path) as (fd, name):
            temporary = f".scponly-py-{secrets.token_hex(8)}.tmp"

            def finish(out: int) -> None:
                fill(out)
                self._own(out, uid, gid)
                os.fchmod(out, mode & SAFE_MODE_BITS)
                if capability is not None:  # after the write and chown, which would clear it
                    reason = give_capability(out, capability)
                    if reason is not None:
                        raise JailFSError(
                            f"cannot give {path} its file capability ({reason}): the login "
                            "shell would not start in secure-execution mode"
                        )

            trusted.write_new_at(fd, temporary, finish)
            self._rename(temporary, name, fd, path)

    def symlink(self, path: str, target: str) -> None:
        """Create or replace the symlink `path` -> `target` (the link itself, never its target)."""
        with self.parent(path) as (fd, name):
            temporary = f".scponly-py-{secrets.token_hex(8)}.tmp"
            os.symlink(target, temporary, dir_fd=fd)
            if self.chown:
                os.chown(temporary, 0, 0, dir_fd=fd, follow_symlinks=False)
            self._rename(temporary, name, fd, path)

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        """Create or replace a character device node, root-owned."""
        with self.parent(path) as (fd, name):
            temporary = f".scponly-py-{secrets.token_hex(8)}.tmp"
            previous = os.umask(0)  # the node's mode is set at creation: no chmod by name later
            try:
                device = os.makedev(major, minor)
                os.mknod(temporary, stat.S_IFCHR | (mode & 0o666), device, dir_fd=fd)
            except PermissionError:
                raise JailFSError(f"{path}: creating a device node needs root") from None
            finally:
                os.umask(previous)
            self._rename(temporary, name, fd, path)

    def _rename(self, temporary: str, name: str, fd: int, path: str) -> None:
        try:
            os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as error:
            os.unlink(temporary, dir_fd=fd)
            raise JailFSError(f"{path}: {error.strerror}; not replaced") from None

    def _own(self, fd: int, uid: int, gid: int) -> None:
        if self.chown:
            os.fchown(fd, uid, gid)

    def remove(self, path: str) -> bool:
        """Remove a file, symlink or empty directory; False if it is a non-empty directory."""
        with self.parent(path) as (fd, name):
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            try:
                if stat.S_ISDIR(info.st_mode):
                    os.rmdir(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return True
            except OSError as error:
                if error.errno == errno.ENOTEMPTY:
                    return False
                raise JailFSError(f"{path}: {error.strerror}") from None
            return True

    def remove_tree(self, path: str) -> None:
        """Delete `path` and everything below it without following any symlink."""
        with self.parent(path) as (fd, name):
            _remove_at(fd, name)


def _remove_at(dir_fd: int, name: str) -> None:
    """Delete `name` in `dir_fd` and everything below it, iteratively (any depth).

    One directory fd at a time: down by name with O_NOFOLLOW, back up through '..',
    which must be the directory we came from (else the tree was moved: refused).
    """
    if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    ids = [_ident(fd)]
    names: list[str] = []
    pending = [_clear_files(fd)]
    try:
        while True:
            if pending[-1]:
                child = pending[-1].pop()
                try:
                    new = os.open(child, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    os.unlink(child, dir_fd=fd)  # swapped for a symlink or file meanwhile
                    continue
                os.close(fd)
                fd = new
                ids.append(_ident(fd))
                names.append(child)
                pending.append(_clear_files(fd))
                continue
            pending.pop()
            if not names:
                break
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            ids.pop()
            if _ident(fd) != ids[-1]:
                raise JailFSError(f"{name}: the tree was moved while being removed; run it again")
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _ident(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in `fd`; the names of its subdirectories."""
    subdirectories = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                continue
    return subdirectories


def _copy(src: int, out: int) -> None:
    os.lseek(src, 0, os.SEEK_SET)
    while chunk := os.read(src, CHUNK):
        trusted.write_all(out, chunk)


def give_capability(target: int | str, value: bytes) -> str | None:
    """Set `security.capability` on `target` (an fd, or a path whose symlink is not followed)
    and read it back; None when the file has exactly `value`, else why not."""
    follow = isinstance(target, int)  # an fd is the file itself
    try:
        os.setxattr(target, CAPABILITY_XATTR, value, follow_symlinks=follow)
        kept = os.getxattr(target, CAPABILITY_XATTR, follow_symlinks=follow)
    except OSError as error:
        return error.strerror
    return None if kept == value else "the file system did not keep it"


def hash_fd(fd: int) -> str:
    """SHA-256 of an open file from its start."""
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def hash_host_file(path: str) -> str:
    """SHA-256 of a host file (the source of a copy), never through a final symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return hash_fd(fd)
    finally:
        os.close(fd)
