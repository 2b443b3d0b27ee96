"""The jail's /dev/log for sshd's ChrootDirectory mode: the host's syslog daemon listens there.

The frozen scponly-py in such a jail logs to the jail's /dev/log and refuses a login
it cannot log. Which daemon owns the host's /dev/log decides how (docs/design.md,
"ChrootDirectory jails log too"):

  journald  /dev/log -> /run/systemd/journal/dev-log. journald takes no extra syslog
            socket, so that socket is bind-mounted onto JAIL/dev/log, now and at boot by
            a mount unit pulled in by (and bound to) systemd-journald-dev-log.socket.
  rsyslog   /dev/log is rsyslog's own socket: a drop-in in /etc/rsyslog.d adds an imuxsock
            listen socket at JAIL/dev/log, which rsyslog creates at every start.

`plan` gives the operations (shown and applied by plan.py), `problem` what `check` reports.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import socket
import stat
import subprocess
import time
from dataclasses import dataclass

from scponly_py import trusted
from setup_chroot import jailfs, sshdinstall

DAEMONS = ("journald", "rsyslog")
HOST_LOG = "/dev/log"
JOURNALD_SOCKET = "/run/systemd/journal/dev-log"
JOURNALD_SOCKET_UNIT = "systemd-journald-dev-log.socket"
UNIT_DIR = "/etc/systemd/system"
RSYSLOG_DIR = "/etc/rsyslog.d"
RSYSLOG_INIT = "/etc/init.d/rsyslog"  # no systemd: the init system's script restarts rsyslog
IN_JAIL = "/dev/log"
MARK = "# Written by scponly-py-setup"
# Jail paths these files can name without quoting (a unit's Where=, an rsyslog string).
PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*", re.ASCII)
SAFE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:")
MS_BIND, MNT_DETACH = 0x1000, 2
SOCKET_WAIT = 5.0  # seconds for a restarted rsyslog to create the jail's socket


class DevLogError(Exception):
    """The jail's /dev/log cannot be set up (or torn down) as asked; nothing half-done is hidden."""


@dataclass(frozen=True)
class LogSocket:
    """Give JAIL/dev/log to `daemon`: write `config` (a mount unit or an rsyslog drop-in), apply."""

    jail: str
    daemon: str
    config: str
    data: bytes


@dataclass(frozen=True)
class NoLogSocket:
    """Undo LogSocket: stop and remove `config`, then the jail's /dev/log."""

    jail: str
    daemon: str
    config: str


def detect() -> str:
    """The daemon that owns this host's /dev/log: journald's symlink, else rsyslog's socket."""
    try:
        info = os.lstat(HOST_LOG)
    except OSError as error:
        raise DevLogError(f"{HOST_LOG}: {error.strerror}: no syslog daemon listens") from None
    if stat.S_ISLNK(info.st_mode) and os.path.realpath(HOST_LOG) == JOURNALD_SOCKET:
        return "journald"
    if stat.S_ISSOCK(info.st_mode) and os.path.isdir(RSYSLOG_DIR):
        return "rsyslog"
    raise DevLogError(
        f"cannot tell which syslog daemon owns {HOST_LOG} (neither journald's symlink to"
        f" {JOURNALD_SOCKET} nor a socket with {RSYSLOG_DIR}): give --devlog journald, rsyslog"
        " or none"
    )


def escape(jail: str) -> str:
    """A file name for a jail path, as `systemd-escape --path` makes it (reversible, no '/')."""
    out = []
    for index, byte in enumerate(jail.strip("/").encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in SAFE_CHARACTERS and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out) or "-"


def config_path(daemon: str, jail: str) -> str:
    """The host file that gives `jail` its /dev/log with `daemon`."""
    if daemon == "journald":
        return f"{UNIT_DIR}/{escape(jail + IN_JAIL)}.mount"
    return f"{RSYSLOG_DIR}/scponly-py-{escape(jail)}.conf"


def config_text(daemon: str, jail: str) -> bytes:
    """The mount unit (journald) or rsyslog drop-in for `jail`."""
    if not PLAIN_PATH.fullmatch(jail):
        raise DevLogError(
            f"{jail}: the jail's /dev/log is set up only for paths of letters, digits and ._+@-/"
        )
    head = f"{MARK} for the jail {jail} (removed with its last chroot-directory user).\n"
    if daemon == "journald":
        return (
            f"{head}[Unit]\n"
            f"Description=journald's syslog socket in the scponly-py jail {jail}\n"
            "Documentation=man:scponly-py-setup(8)\n"
            f"BindsTo={JOURNALD_SOCKET_UNIT}\n"
            f"After={JOURNALD_SOCKET_UNIT}\n\n"
            "[Mount]\n"
            f"What={JOURNALD_SOCKET}\n"
            f"Where={jail}{IN_JAIL}\n"
            "Options=bind\n\n"
            "[Install]\n"
            f"WantedBy={JOURNALD_SOCKET_UNIT}\n"
        ).encode()
    return f'{head}input(type="imuxsock" Socket="{jail}{IN_JAIL}")\n'.encode()


def _read(path: str) -> bytes | None:
    try:
        return sshdinstall.read(path)
    except OSError:
        return None


def plan(
    jail: str, daemon: str | None, fs: jailfs.JailFS | None
) -> tuple[list[LogSocket | NoLogSocket], list[LogSocket | NoLogSocket]]:
    """(operations before the jail's, after them) that give `jail` its /dev/log via `daemon`.

    Teardowns (the other daemon's file, or both with `daemon` None) come first, so
    the mount point is gone before the jail's plan runs; set-up comes last, when
    the jail's /dev exists. Nothing is planned when the config is ours and current and
    the socket answers. A file of that name we did not write is an error.
    """
    before: list[LogSocket | NoLogSocket] = []
    for other in DAEMONS:
        path = config_path(other, jail)
        old = _read(path)
        if other != daemon and old is not None and old.startswith(MARK.encode()):
            before.append(NoLogSocket(jail, other, path))
    if daemon is None:
        return before, []
    path, data = config_path(daemon, jail), config_text(daemon, jail)
    old = _read(path)
    if old is not None and not old.startswith(MARK.encode()):
        raise DevLogError(f"{path} exists and was not written by scponly-py-setup")
    if old == data and fs is not None and problem(fs, daemon) is None:
        return before, []
    return before, [LogSocket(jail, daemon, path, data)]


# -- checking ---------------------------------------------------------------------------


def problem(fs: jailfs.JailFS, daemon: str | None) -> str | None:
    """Why the jail's /dev/log does not reach a syslog daemon, or None when it does.

    It must be a socket someone has bound (connect() succeeds); with journald, the very
    socket journald listens on now (a bind mount of a re-created one is stale).
    """
    try:
        with fs.parent(IN_JAIL) as (dir_fd, name):
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return "missing"
            if not stat.S_ISSOCK(info.st_mode):
                return "not a socket (nothing listens there)"
            if daemon == "journald":
                host = os.stat(JOURNALD_SOCKET)
                if (info.st_dev, info.st_ino) != (host.st_dev, host.st_ino):
                    return f"not journald's current {JOURNALD_SOCKET} (a stale bind mount)"
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
                probe.connect(f"/proc/self/fd/{dir_fd}/{name}")
    except (OSError, jailfs.JailFSError) as error:
        return f"no syslog daemon answers ({getattr(error, 'strerror', None) or error})"
    return None


# -- applying ---------------------------------------------------------------------------


def apply(op: LogSocket | NoLogSocket, fs: jailfs.JailFS) -> str | None:
    """Carry out one operation (the host file by the trusted-path rule, then the daemon);
    return a warning when it is done but the jail's /dev/log does not work yet."""
    try:
        if isinstance(op, LogSocket):
            if op.daemon == "journald":
                _mount_point(fs)
            sshdinstall.write(op.config, op.data)
            note = _start(op, fs)
            found = problem(fs, op.daemon)
            if found is not None:
                return f"{op.jail}{IN_JAIL}: {found}" + (f" ({note})" if note else "")
            return None
        return _stop(op, fs)
    except (OSError, sshdinstall.InstallError, subprocess.SubprocessError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise DevLogError(f"{op.jail}{IN_JAIL}: {reason}") from None


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise DevLogError(f"{' '.join(argv)}: {lines[-1]}")


def _start(op: LogSocket, fs: jailfs.JailFS) -> str | None:
    """Make the daemon listen on the jail's /dev/log now; a note if that was not possible."""
    unit = os.path.basename(op.config)
    if op.daemon == "journald" and trusted.systemd_booted():
        _run("systemctl", "daemon-reload")
        _run("systemctl", "enable", unit)
        _run("systemctl", "restart", unit)  # remounts a stale bind mount too
    elif op.daemon == "journald":  # a host without systemd as init (a container): mount now
        _unmount(fs)
        _bind(fs)
    else:
        note = _restart_rsyslog()
        deadline = time.monotonic() + SOCKET_WAIT
        while note is None and problem(fs, "rsyslog") and time.monotonic() < deadline:
            time.sleep(0.05)
        return note
    return None


def _stop(op: NoLogSocket, fs: jailfs.JailFS) -> str | None:
    """Undo `_start` and the config file; remove the jail's /dev/log once nothing holds it."""
    note = None
    if op.daemon == "journald":
        if trusted.systemd_booted():
            _run("systemctl", "disable", "--now", os.path.basename(op.config))
        _unmount(fs)
        sshdinstall.write(op.config, None)
        if trusted.systemd_booted():
            _run("systemctl", "daemon-reload")
    else:
        sshdinstall.write(op.config, None)
        note = _restart_rsyslog()
    info = fs.lstat(IN_JAIL)
    dead = info is not None and stat.S_ISSOCK(info.st_mode) and problem(fs, None) is not None
    if info is not None and (dead or (stat.S_ISREG(info.st_mode) and info.st_size == 0)):
        fs.remove(IN_JAIL)
    return f"{op.jail}{IN_JAIL}: {note}" if note else None


def _restart_rsyslog() -> str | None:
    """Have the init system restart rsyslog (it reads its configuration only at start);
    None when done, else what the administrator must do."""
    if trusted.systemd_booted():
        _run("systemctl", "restart", "rsyslog.service")
        return None
    try:
        os.close(trusted.open_path(RSYSLOG_INIT, follow=True))
    except trusted.Untrusted as error:
        if error.missing:
            return f"no systemd and no {RSYSLOG_INIT}: restart rsyslog yourself"
        raise DevLogError(f"not running {RSYSLOG_INIT}: {error}") from None
    _run(RSYSLOG_INIT, "restart")
    return None


def _mount_point(fs: jailfs.JailFS) -> None:
    """An empty root-owned file at the jail's /dev/log to mount on (a dead socket is replaced)."""
    info = fs.lstat(IN_JAIL)
    if info is not None and stat.S_ISSOCK(info.st_mode) and problem(fs, None) is not None:
        _unmount(fs)
        info = fs.lstat(IN_JAIL)
        if info is not None and stat.S_ISSOCK(info.st_mode):
            fs.remove(IN_JAIL)
            info = None
    if info is None:
        fs.write(IN_JAIL, b"", 0o644)


def _libc_call(name: str, *args: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{name}: {os.strerror(number)}")


def _open_in_jail(fs: jailfs.JailFS) -> int:
    with fs.parent(IN_JAIL) as (dir_fd, name):
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _bind(fs: jailfs.JailFS) -> None:
    """Bind journald's socket onto the jail's /dev/log through descriptors (no path walked)."""
    directory = trusted.open_path(os.path.dirname(JOURNALD_SOCKET), directory=True)
    try:
        source = os.open(
            os.path.basename(JOURNALD_SOCKET), os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
            dir_fd=directory,
        )  # fmt: skip
    finally:
        os.close(directory)
    try:
        info = os.fstat(source)
        if not stat.S_ISSOCK(info.st_mode) or info.st_uid != 0:
            raise DevLogError(f"{JOURNALD_SOCKET} is not a socket of root's")
        target = _open_in_jail(fs)
        try:
            _libc_call(
                "mount", f"/proc/self/fd/{source}".encode(), f"/proc/self/fd/{target}".encode(),
                None, MS_BIND, None,
            )  # fmt: skip
        finally:
            os.close(target)
    finally:
        os.close(source)


def _unmount(fs: jailfs.JailFS) -> None:
    """Detach whatever is mounted on the jail's /dev/log (nothing mounted: nothing done)."""
    while True:
        try:
            target = _open_in_jail(fs)
        except FileNotFoundError:
            return
        try:
            _libc_call("umount2", f"/proc/self/fd/{target}".encode(), MNT_DETACH)
        except OSError as error:
            if error.errno == errno.EINVAL:  # not a mount point
                return
            raise
        finally:
            os.close(target)
