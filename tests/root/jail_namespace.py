"""A private mount namespace for jail tests: users, /etc and /var changes vanish with it.

`unshare --mount` (tests/namespace.py) gives the namespace its own mounts. Inside, /etc and /var
are overlays whose upper layers live in the test's temp dir (useradd renames
its temp files over /etc/passwd, which a bind-mounted file would refuse with
EBUSY), /mnt is a fresh root-owned 0755 tmpfs for jails (so their ancestors
are safe, unlike /tmp), and /run is a tmpfs holding /run/sshd for `sshd -T`.
The test process reaches the namespace's files through /proc/PID/root.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.namespace import NamespaceHolder, overlays

SETUP = """
set -e
{overlays}
mount -t tmpfs -o mode=0755 tmpfs /mnt
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
"""
JAIL = "/mnt/jail"


class Namespace(NamespaceHolder):
    """A private mount namespace kept alive by a `sleep`; commands enter it with nsenter."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.start("--mount", "--propagation", "private")
        self.run(["sh", "-c", SETUP.format(overlays=overlays(tmp, "etc", "var"))], check=True)


@contextmanager
def jail_with_alice(tmp: Path) -> Iterator[Namespace]:
    """A namespace holding JAIL (sftp, scp, rsync) made by `create`, and alice added to it."""
    with Namespace(tmp) as namespace:
        namespace.setup("create", JAIL, "--profile", "sftp,scp,rsync", check=True)
        namespace.setup("add-user", "alice", "--jail", JAIL, "--create", check=True)
        yield namespace
