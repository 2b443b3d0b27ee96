"""Install the frozen login shells (packaging/build-frozen.sh's onedir tree).

`install_tree` copies the tree to e.g. /usr/lib/scponly-py: every directory
root:root 0755, every file root:root 0644 or 0755, no setuid/setgid bit and no
extended attribute carried over from the build, symlinks only if they stay
inside the tree. scponly-py gets the file capability `cap_wake_alarm+p` (permitted
only, never effective), wherever it is installed: only so that the kernel starts it,
and the PyInstaller bootloader's re-exec of it, in secure-execution mode (AT_SECURE:
the dynamic loader ignores LD_PRELOAD & co. that PAM or sshd set); its first step
empties every capability set (scponly_py/capabilities.py; docs/design.md "The login
environment"). Then scponly-pyc gets exactly one privilege:

* default: the file capability `cap_sys_chroot+ep` (what `setcap
  cap_sys_chroot+ep` writes: a VFS_CAP_REVISION_2 `security.capability`
  xattr). sshd already runs the shell as the user; chroot is the only thing
  it cannot do.
* `setuid=True`: setuid root (mode 04755), for file systems without xattrs.
  scponly-pyc then also empties the bounding set, locks the securebits and
  sets all uids/gids to the user's before it execs anything.

The new tree is assembled under a private (0700) temporary name next to the
destination and renamed into place, so a login never sees half a tree.
The destination's parent must pass the trusted-path rule (scponly_py/trusted.py):
scponly-pyc checks its own tree by the same rule and refuses to run otherwise.

`install_in_jail` is the alternative without a privileged file: the scponly-py
tree (no scponly-pyc; scponly-py with cap_wake_alarm+p) copied into a jail that
sshd's `ChrootDirectory` enters, at the same path as on the host (sshd checks the
login shell on the host, then runs it inside the chroot).
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
from collections.abc import Iterator

from scponly_py import trusted
from setup_chroot import jailfs

CAP_SYS_CHROOT = 18
CAP_WAKE_ALARM = 35  # harmless if ever used; held only until the program's first steps
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
CAPABILITY_XATTR = jailfs.CAPABILITY_XATTR
LOGIN_BINARIES = ("scponly-py", "scponly-pyc")
CONTENTS = "_internal"


class InstallError(Exception):
    """The tree to install, or the place to install it, is unusable or unsafe."""


def capability_xattr(capabilities: tuple[int, ...], *, effective: bool = True) -> bytes:
    """The `security.capability` value of `setcap <caps>+ep` (or `+p` without `effective`)."""
    permitted = 0
    for capability in capabilities:
        permitted |= 1 << capability
    return struct.pack(
        "<5I",
        VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if effective else 0),
        permitted & 0xFFFFFFFF,
        0,
        permitted >> 32,
        0,
    )


def secure_start_capability() -> bytes:
    """cap_wake_alarm+p: what the login shells that start unprivileged carry (front, scponly-py)."""
    return capability_xattr((CAP_WAKE_ALARM,), effective=False)


def unsafe_ancestors(path: str) -> list[str]:
    """Why `path` breaks the trusted-path rule (scponly_py/trusted.py; no symlinks), if it does."""
    return [
        f"{where} {why}" for where, why in trusted.problems(os.path.abspath(path), follow=False)
    ]


def check_source(source: str, binaries: tuple[str, ...] = LOGIN_BINARIES) -> None:
    """The build output must look like packaging/build-frozen.sh's tree."""
    for name in (*binaries, CONTENTS):
        if not os.path.lexists(os.path.join(source, name)):
            raise InstallError(f"{source} has no {name}: build it with packaging/build-frozen.sh")


def _entries(source: str, skip: tuple[str, ...]) -> Iterator[tuple[str, str, str, str]]:
    """The tree, top-down, as (relative directory, name, kind, detail).

    kind is "dir" (name empty: the directory itself, before its contents), "link"
    (detail: the link text, checked to stay inside the tree), "exec" or "file" (a
    regular file, executable or not; detail: its host path). Anything else is refused. `skip`
    names entries of the top directory to leave out.
    """
    real_source = os.path.realpath(source)
    for directory, subdirectories, files in os.walk(source):
        relative = os.path.relpath(directory, source)
        if relative == ".":
            subdirectories[:] = [name for name in subdirectories if name not in skip]
        yield relative, "", "dir", ""
        for name in sorted(subdirectories + files):
            if relative == "." and name in skip:
                continue
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                link = os.readlink(path)
                resolved = os.path.realpath(os.path.join(directory, link))
                if link.startswith("/") or not resolved.startswith(real_source + "/"):
                    raise InstallError(f"{path} links outside the tree ({link})")
                yield relative, name, "link", link
            elif stat.S_ISREG(info.st_mode):
                yield relative, name, "exec" if info.st_mode & 0o111 else "file", path
            elif not stat.S_ISDIR(info.st_mode):
                raise InstallError(f"{path} is neither a file, a directory nor a symlink")


def _copy(source: str, target: str, skip: tuple[str, ...]) -> None:
    """Copy the tree without following symlinks, setting owner and modes as we go."""
    for relative, name, kind, detail in _entries(source, skip):
        destination = os.path.normpath(os.path.join(target, relative, name))
        if kind == "dir":
            if relative != ".":
                os.mkdir(destination, 0o755)
            os.chown(destination, 0, 0)
            os.chmod(destination, 0o755 if relative != "." else 0o700)
        elif kind == "link":
            os.symlink(detail, destination)
            os.lchown(destination, 0, 0)
        else:
            shutil.copyfile(detail, destination, follow_symlinks=False)
            os.chown(destination, 0, 0)
            os.chmod(destination, 0o755 if kind == "exec" else 0o644)


def _swap_into_place(staging: str, destination: str) -> None:
    """Rename the finished tree to `destination`, replacing an older one."""
    os.chmod(staging, 0o755)  # noqa: S103 - every user must run the login shells
    parent, name = os.path.split(destination)
    old = os.path.join(parent, f".{name}.old.{os.getpid()}")
    had_old = os.path.lexists(destination)
    if had_old:
        os.rename(destination, old)
    os.rename(staging, destination)
    if had_old:
        shutil.rmtree(old)


def install_tree(source: str, destination: str, *, setuid: bool = False) -> list[str]:
    """Install the frozen tree at `destination` with scponly-pyc privileged; what was done."""
    check_source(source)
    destination = os.path.abspath(destination)
    parent, name = os.path.split(destination)
    problems = unsafe_ancestors(parent)
    if problems:
        raise InstallError("; ".join(problems[:3]))
    staging = os.path.join(parent, f".{name}.new.{os.getpid()}")
    os.mkdir(staging, 0o700)
    try:
        _copy(source, staging, skip=())
        chroot_shell = os.path.join(staging, "scponly-pyc")
        if setuid:
            os.chmod(chroot_shell, 0o4755)  # noqa: S103 - the documented setuid fallback
            how = "setuid root (04755)"
        else:
            reason = jailfs.give_capability(chroot_shell, capability_xattr((CAP_SYS_CHROOT,)))
            if reason is not None:
                raise InstallError(
                    f"cannot give scponly-pyc cap_sys_chroot ({reason}); use --setuid"
                )
            how = "cap_sys_chroot+ep"
        plain = os.path.join(staging, "scponly-py")
        reason = jailfs.give_capability(plain, secure_start_capability())
        if reason is not None:
            raise InstallError(
                f"cannot give scponly-py cap_wake_alarm+p ({reason}): without it scponly-py "
                "refuses every login but root's"
            )
        _swap_into_place(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [
        f"installed {destination} (root-owned, nothing writable by group or others)",
        f"{destination}/scponly-pyc: {how}",
        f"{destination}/scponly-py: cap_wake_alarm+p (starts in secure-execution mode)",
    ]


def install_in_jail(source: str, jail: str, prefix: str) -> str:
    """Copy the scponly-py tree (no scponly-pyc) to `jail`/`prefix`; return that path.

    Written through jailfs like everything else that goes into a jail: directory
    fds and O_NOFOLLOW from the jail root, temp file + rename per file, no setuid
    bits; an older copy is removed first without following any symlink in it.
    scponly-py gets cap_wake_alarm+p on the fd written, read back: InstallError
    if the jail's file system cannot keep it.
    """
    check_source(source, ("scponly-py",))
    if not prefix.startswith("/") or ".." in prefix.split("/"):
        raise InstallError(f"prefix {prefix!r} must be an absolute path without '..'")
    problems = unsafe_ancestors(jail)
    if problems:
        raise InstallError("; ".join(problems[:3]))
    try:
        fs = jailfs.JailFS(jail)
    except jailfs.JailFSError as error:
        raise InstallError(str(error)) from None
    try:
        with fs:
            parts = [part for part in prefix.split("/") if part]
            for depth in range(1, len(parts)):
                fs.make_dir("/" + "/".join(parts[:depth]), 0o755)
            if fs.lstat(prefix) is not None:
                fs.remove_tree(prefix)
            for relative, name, kind, detail in _entries(source, skip=("scponly-pyc",)):
                target = prefix if relative == "." else f"{prefix}/{relative}"
                mode = 0o755 if kind == "exec" else 0o644
                if kind == "dir":
                    fs.make_dir(target, 0o755)
                elif kind == "link":
                    fs.symlink(f"{target}/{name}", detail)
                elif relative == "." and name == "scponly-py":
                    fs.install(f"{target}/{name}", detail, mode, secure_start_capability())
                else:
                    fs.install(f"{target}/{name}", detail, mode)
    except jailfs.JailFSError as error:
        raise InstallError(str(error)) from None
    return os.path.join(os.path.abspath(jail), prefix.strip("/"))
