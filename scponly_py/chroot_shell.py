"""scponly-pyc: the chroot login shell (frozen with PyInstaller, onedir; see packaging/).

It is scponly-py's login with one step added between the policy and the
decision (docs/design.md, "scponly-pyc's privilege window"), in this order,
failing closed at each step:

  identity     getuid()/getpwuid() only (request.from_process), root refused
  config       /etc/scponly-py, read on the host before the chroot
  syslog       connected now (like LOG_NDELAY), so logging works inside the jail
  preload      every grammar the policy enables, setid, the supervisor and its /proc/self fds with
               log_transfers (nothing is imported after the chroot)
  jail         `//` split of the passwd home; every component checked on its opened fd
  chroot       fchdir(jail fd) + chroot(".")
  drop         capabilities (+ bounding set, securebits, uids/gids for the setuid build),
               no_new_privs
  verify       setuid(0)/setgid(0) fail, the kernel shows no privilege left
  chdir        to the in-jail home, as the user
  decide       with the in-jail home; the child's environment is built from scratch
  exec         the program's in-jail path

Before any of that it refuses to run if its own installed tree could have been
changed by anyone but root.
"""

from __future__ import annotations

import posix
import sys

from scponly_py import audit, jail, programs, shell
from scponly_py.outcome import Refusal, Refuse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request


def check_own_tree() -> None:
    """Refuse if the frozen program's files are not root-owned or are writable by others."""
    if not getattr(sys, "frozen", False):
        raise Refusal("scponly-pyc must run as the installed frozen binary")
    problems = jail.tree_problems(sys.executable, getattr(sys, "_MEIPASS", ""))
    if problems:
        raise Refusal(f"unsafe installation: {problems[0]}")


def preload(policy: Policy) -> None:
    """Import everything the login may need while the package is still reachable.

    That is the module of every program the policy enables (a grammar, or
    WinSCP's line protocol): never chosen from the client's command, which
    is not even tokenised before the privilege drop (decide() maps commands to
    programs, e.g. the legacy sftp probe; a second guess here would differ). And
    the set-id filter's module: scponly-pyc has no front, so `shell.launch`
    installs the filter itself, after the chroot.
    """
    from scponly_py import setid  # noqa: F401, PLC0415 - shell.launch imports it by name

    for name in sorted(policy.programs):
        programs.grammar(name)
    if policy.log_transfers:
        from scponly_py import supervise  # noqa: PLC0415 - only logins that supervise load it

        supervise.open_self_io()


def enter_jail(request: Request, policy: Policy) -> Request:
    """chroot, drop every privilege, prove it, chdir home; the request with the in-jail home."""
    try:
        mode = jail.privileged_mode()
        jail_path, home = jail.split_home(request.home)
        preload(policy)
        try:
            audit.connect()
        except audit.AuditError as error:
            raise jail.JailError(f"audit log: {error}") from None
        audit.session_id()  # from /proc/self/stat, out of reach after the chroot
        identity = jail.Identity(posix.getuid(), posix.getgid(), tuple(posix.getgroups()))
        status_fd = jail.open_status()
        try:
            jail.enter(jail.open_jail(jail_path))
            jail.drop(identity, mode)
            jail.verify(identity, mode, status_fd)
        finally:
            posix.close(status_fd)
        try:
            posix.chdir(home)
        except OSError as error:
            raise jail.JailError(f"cannot change to {home} in the jail: {error.strerror}") from None
    except jail.JailError as error:
        raise Refusal(str(error)) from None
    return request.replace(home=home)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Login-shell entry of scponly-pyc; every failure is one line and exit 1."""
    try:
        shell.hold_signals()
        shell.ensure_standard_fds()
        try:
            check_own_tree()
        except Refusal as refusal:
            return shell.refuse(None, Refuse(program="-", reason=refusal.reason))
        arguments = (sys.argv if argv is None else argv)[1:]
        return shell.login([shell.fsencode(argument) for argument in arguments], enter_jail)
    except BaseException as error:  # noqa: BLE001 - fail closed, never a traceback
        return shell.internal_error(error)
