"""The privileged part of scponly-pyc: the `//` split, the jail checks, chroot, and the drop.

Everything here runs with CAP_SYS_CHROOT (file-capability build) or as
effective root (setuid-root build); it is kept small so it can be audited in
one sitting. The order is docs/design.md, "scponly-pyc's privilege window";
every step fails closed by raising `JailError`, whose message is shown to the client and logged.

1. `split_home`: the passwd home `/srv/jail//home/alice` gives the jail
   `/srv/jail` and the in-jail home `/home/alice`; without `//` the whole home
   is the jail and the in-jail home is `/`. Relative paths, `.`/`..`, empty
   components and more than one `//` are refused.
2. `open_jail`: the jail path is opened by the trusted-path rule
   (scponly_py/trusted.py): every component from `/` with O_PATH|O_NOFOLLOW
   relative to its parent's fd, each root-owned, not writable by group or
   others, not a symlink. The fd of the last one is what we enter, so nothing
   can be swapped between check and chroot.
3. `enter`: fchdir(jail_fd) + chroot("."), then chdir("/").
4. `drop`: for the setuid build, the bounding set, locked securebits
   (NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, all locked), setgroups/setresgid/
   setresuid to the real user; for both builds, the effective, permitted and
   inheritable sets emptied (which also empties the ambient set), and
   PR_SET_NO_NEW_PRIVS.
5. `verify`: setuid(0)/setgid(0) must fail, uids/gids/groups must be the
   user's, and the kernel's own view (/proc/self/status, opened before the
   chroot) must show every capability set empty (the bounding set too for the
   setuid build) and NoNewPrivs 1. Anything else: refuse.
"""

from __future__ import annotations

import posix

import _prctl

from scponly_py import capabilities, trusted
from scponly_py.capabilities import ALL_CAPS
from scponly_py.jailpath import JailError, split_home  # noqa: F401 - the shell uses both here

SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
LOCKED_SECUREBITS = (
    SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
)
STATUS_FIELDS = (
    b"Uid", b"Gid", b"Groups", b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs",
)  # fmt: skip


# -- the jail ----------------------------------------------------------------------------------


def open_jail(jail: str) -> int:
    """An O_PATH fd of `jail`, every component checked by the trusted-path rule; else JailError."""
    try:
        return trusted.open_path(jail, directory=True)
    except trusted.Untrusted as error:
        raise JailError(f"jail path component {error}") from None


def enter(jail_fd: int) -> None:
    """chroot into the directory `jail_fd` refers to (the checked one), and stand at its root."""
    try:
        posix.fchdir(jail_fd)
        posix.chroot(".")
        posix.chdir("/")
    except OSError as error:
        raise JailError(f"cannot enter the jail: {error.strerror}") from None
    finally:
        posix.close(jail_fd)


# -- the privilege drop ------------------------------------------------------------------------


class Identity:
    """Who we drop to: the real user (from getuid(), never from the environment)."""

    __slots__ = ("gid", "groups", "uid")

    def __init__(self, uid: int, gid: int, groups: tuple[int, ...]) -> None:
        self.uid = uid
        self.gid = gid
        self.groups = groups


def privileged_mode() -> str:
    """'setuid' (effective root over a real user), 'caps' (file capabilities), or refuse."""
    ruid, euid, suid = posix.getresuid()
    if ruid == 0:
        raise JailError("root may not use this shell")
    if euid == 0 or suid == 0:
        return "setuid"
    return "caps"


def _drop_setuid_root(identity: Identity) -> None:
    for cap in ALL_CAPS:
        try:
            _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)
        except OSError as error:
            if error.errno != 22:  # EINVAL: this kernel has no such capability
                raise
    _prctl.prctl(_prctl.PR_SET_SECUREBITS, LOCKED_SECUREBITS)
    posix.setgroups(list(identity.groups))
    posix.setresgid(identity.gid, identity.gid, identity.gid)
    posix.setresuid(identity.uid, identity.uid, identity.uid)


def drop(identity: Identity, mode: str) -> None:
    """Give up every privilege for good (then `verify` proves it)."""
    try:
        if mode == "setuid":
            _drop_setuid_root(identity)
        # Emptying permitted and inheritable also empties the ambient set (kernel invariant).
        capabilities.empty()
        _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)
    except (OSError, ValueError) as error:
        raise JailError(f"cannot drop privileges: {error}") from None


def parse_status(data: bytes) -> dict[bytes, bytes]:
    """The fields of /proc/self/status that `verify` needs."""
    fields = {}
    for line in data.split(b"\n"):
        name, _, value = line.partition(b":")
        if name in STATUS_FIELDS:
            fields[name] = b" ".join(value.split())
    return fields


def read_status(status_fd: int) -> dict[bytes, bytes]:
    """Re-read /proc/self/status through an fd opened before the chroot."""
    chunks = []
    offset = 0
    while True:
        chunk = posix.pread(status_fd, 65536, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return parse_status(b"".join(chunks))


def status_problems(
    fields: dict[bytes, bytes], identity: Identity, mode: str
) -> list[str]:  # pure, unit-tested
    """What in the kernel's view of this process is not fully unprivileged."""
    problems = []
    uid = str(identity.uid).encode()
    gid = str(identity.gid).encode()
    if fields.get(b"Uid") != b" ".join([uid] * 4):
        problems.append(f"Uid is {fields.get(b'Uid')!r}")
    if fields.get(b"Gid") != b" ".join([gid] * 4):
        problems.append(f"Gid is {fields.get(b'Gid')!r}")
    expected_groups = sorted(identity.groups)
    try:
        groups = sorted(int(number) for number in fields.get(b"Groups", b"").split())
    except ValueError:
        groups = None
    if groups != expected_groups:
        problems.append(f"Groups is {fields.get(b'Groups')!r}")
    sets = [b"CapInh", b"CapPrm", b"CapEff", b"CapAmb"]
    if mode == "setuid":
        sets.append(b"CapBnd")
    for name in sets:
        value = fields.get(name)
        if value is None or value.strip(b"0") != b"":
            problems.append(f"{name.decode()} is {value!r}")
    if fields.get(b"NoNewPrivs") != b"1":
        problems.append(f"NoNewPrivs is {fields.get(b'NoNewPrivs')!r}")
    return problems


def verify(identity: Identity, mode: str, status_fd: int) -> None:
    """Prove the drop: regaining root fails and the kernel shows no privilege left."""
    for regain in (posix.setuid, posix.setgid, posix.seteuid, posix.setegid):
        try:
            regain(0)
        except OSError:
            continue
        raise JailError(f"{regain.__name__}(0) succeeded after the privilege drop")
    if posix.getresuid() != (identity.uid,) * 3 or posix.getresgid() != (identity.gid,) * 3:
        raise JailError("user or group ids are not the user's after the privilege drop")
    if capabilities.any_held(capabilities.held()):
        raise JailError("capabilities remain after the privilege drop")
    if _prctl.prctl(_prctl.PR_GET_NO_NEW_PRIVS) != 1:
        raise JailError("no_new_privs is not set")
    if mode == "setuid":
        if _prctl.prctl(_prctl.PR_GET_SECUREBITS) != LOCKED_SECUREBITS:
            raise JailError("securebits are not locked")
        if any(_prctl.prctl(_prctl.PR_CAPBSET_READ, cap) for cap in ALL_CAPS):
            raise JailError("the capability bounding set is not empty")
    try:
        problems = status_problems(read_status(status_fd), identity, mode)
    except OSError as error:
        raise JailError(f"cannot read the process status: {error.strerror}") from None
    if problems:
        raise JailError("privileges remain after the drop: " + "; ".join(problems[:3]))


def open_status() -> int:
    """/proc/self/status, opened before the chroot so `verify` can read it from inside."""
    try:
        return posix.open("/proc/self/status", posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError as error:
        raise JailError(f"cannot open /proc/self/status: {error.strerror}") from None


# -- the installed tree ------------------------------------------------------------------------


def tree_problems(executable: str, bundle: str) -> list[str]:
    """Why the frozen program's own files could have been changed by someone other than root."""
    found = trusted.problems(executable)
    if bundle:
        found += trusted.problems(bundle)
    return [f"{where} {reason}" for where, reason in dict.fromkeys(found)]
