"""A private mount namespace for jail tests: users, /etc and /var changes vanish with it.

`unshare --mount` gives the namespace its own mounts. Inside, /etc and /var
are overlays whose upper layers live in the test's temp dir (useradd renames
its temp files over /etc/passwd, which a bind-mounted file would refuse with
EBUSY), /mnt is a fresh root-owned 0755 tmpfs for jails (so their ancestors
are safe, unlike /tmp), and /run is a tmpfs holding /run/sshd for `sshd -T`.
The test process reaches the namespace's files through /proc/PID/root.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PR_SET_PDEATHSIG = 1
SETUP = """
set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp}/etc.upper,workdir={tmp}/etc.work /etc
mount -t overlay overlay -o lowerdir=/var,upperdir={tmp}/var.upper,workdir={tmp}/var.work /var
mount -t tmpfs -o mode=0755 tmpfs /mnt
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
"""
SETUP_TOOL = [sys.executable, "-c", "from setup_chroot.cli import main; main()"]
JAIL = "/mnt/jail"


def _die_with_parent() -> None:
    """In the child before exec: if the test process dies, the namespace goes too."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Namespace:
    """A private mount namespace kept alive by a `sleep`; commands enter it with nsenter."""

    def __init__(self, tmp: Path) -> None:
        for name in ("etc.upper", "etc.work", "var.upper", "var.work"):
            (tmp / name).mkdir()
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        own = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{self.holder.pid}/ns/mnt") == own:
            assert time.monotonic() < deadline, "unshare did not make a mount namespace"
            time.sleep(0.01)
        self.run(["sh", "-c", SETUP.format(tmp=tmp)], check=True)

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()

    def inside(self, argv: list[str]) -> list[str]:
        """The argv that runs `argv` inside the namespace."""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        check: bool = False,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` inside the namespace, capturing output."""
        result = subprocess.run(
            self.inside(argv),
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} exit {result.returncode}: {result.stderr.decode()}")
        return result

    def setup(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run scponly-py-setup (the code under test) inside the namespace."""
        return self.run([*SETUP_TOOL, *args], check=check)

    def path(self, inside: str) -> Path:
        """A path inside the namespace, as the test process can reach it."""
        return Path(f"/proc/{self.holder.pid}/root") / inside.lstrip("/")


@contextmanager
def jail_with_alice(tmp: Path) -> Iterator[Namespace]:
    """A namespace holding JAIL (sftp, scp, rsync) made by `create`, and alice added to it."""
    namespace = Namespace(tmp)
    try:
        namespace.setup("create", JAIL, "--profile", "sftp,scp,rsync", check=True)
        namespace.setup("add-user", "alice", "--jail", JAIL, "--create", check=True)
        yield namespace
    finally:
        namespace.close()
