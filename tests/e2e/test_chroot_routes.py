"""The sshd ChrootDirectory routes in one command each, and `check --fix`, with a real sshd.

From the host's stock sshd_config (sandbox in stock mode): `add-user --mode chroot-directory`
(the frozen scponly-py copied into the jail, its libraries resolved, the Match block installed)
and `add-user --mode internal-sftp` (the Arch wiki's sftp-only recipe); real sftp logins
through both; then the jail root is given to the user — sshd's "bad ownership or modes for
chroot directory" — and one `check JAIL --fix` makes the login work again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox
from tests.e2e.test_sshd_install_login import reload_sshd

pytestmark = pytest.mark.e2e

FROZEN = "/var/opt/scponly-py"  # /var is the stock sandbox's own overlay
JAIL = "/home/jail"
SFTP_JAIL = "/home/sftp"


def host_key(sandbox: Sandbox, name: str) -> None:
    """sshd reads keys before it chroots: from the host's /home/NAME/.ssh (root-owned here)."""
    keys = sandbox.path(f"/home/{name}/.ssh")
    keys.mkdir(parents=True, mode=0o755)
    (keys / "authorized_keys").write_bytes((sandbox.root / "client_key.pub").read_bytes())


def logs(sandbox: Sandbox) -> str:
    return sandbox.sshd_log.read_text()[-1500:] + sandbox.syslog_path.read_text()[-1500:]


def setup(sandbox: Sandbox, *args: str) -> str:
    result = sandbox.setup(*args)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture(scope="module")
def sandbox(sandbox_factory, frozen_tree: Path) -> Sandbox:
    box = sandbox_factory(stock=True)
    box.run(["mkdir", "-p", "/var/opt"], check=True)
    setup(box, "install-chroot-shell", "--from", str(frozen_tree), "--dest", FROZEN,
          "--no-register")  # fmt: skip
    return box


def test_chroot_directory_route_in_one_command(sandbox: Sandbox) -> None:
    out = setup(sandbox, "add-user", "nina", "--jail", JAIL, "--mode", "chroot-directory",
                "--create", "--frozen-dir", FROZEN)  # fmt: skip
    assert "copy     /usr/lib/x86_64-linux-gnu/libc.so.6" in out
    assert f"copy     {FROZEN}  (frozen scponly-py tree)" in out
    assert "sshd -T checked nina" in out
    drop_in = sandbox.path("/etc/ssh/sshd_config.d/scponly-py-group-scponly-chroot.conf")
    assert f"ChrootDirectory {JAIL}" in drop_in.read_text()
    link = (sandbox.path(JAIL) / "usr/bin/scponly-py").readlink()
    assert link == Path("../..", FROZEN.lstrip("/"), "scponly-py")
    entry = sandbox.run(["getent", "passwd", "nina"], check=True).stdout.decode().split(":")
    assert entry[5:] == ["/home/nina", f"{FROZEN}/scponly-py\n"]
    host_key(sandbox, "nina")
    sandbox.run(["sh", "-c", f"touch {JAIL}/dev/log && mount --bind /dev/log {JAIL}/dev/log"],
                check=True)  # fmt: skip
    reload_sshd(sandbox)
    again = setup(sandbox, "add-user", "nina", "--jail", JAIL, "--mode", "chroot-directory",
                  "--frozen-dir", FROZEN, "--no-sshd-install")  # fmt: skip
    assert f"{JAIL}: 0 operations" in again
    assert setup(sandbox, "check", JAIL).strip() == f"{JAIL}: 0 findings"

    listing = sandbox.sftp_batch("nina", "put /etc/hostname files/up\nls /\n")
    assert listing.returncode == 0, logs(sandbox)
    assert b"/usr" in listing.stdout and b"/home" in listing.stdout  # / is the jail
    assert (sandbox.path(JAIL) / "home/nina/files/up").exists()

    os.chown(
        sandbox.path(JAIL),
        sandbox.users["nina"].uid if "nina" in sandbox.users else int(entry[2]),
        0,
    )
    sandbox.path(JAIL).chmod(0o775)
    assert sandbox.sftp_batch("nina", "ls /\n").returncode != 0
    assert "bad ownership or modes for chroot directory" in sandbox.sshd_log.read_text()
    fixed = setup(sandbox, "check", JAIL, "--fix")
    assert f"fixed: chown 0:0 + chmod 0755 {JAIL}" in fixed and fixed.rstrip().endswith(
        f"{JAIL}: 0 findings"
    )
    assert sandbox.sftp_batch("nina", "ls /\n").returncode == 0


def test_internal_sftp_route_in_one_command(sandbox: Sandbox) -> None:
    out = setup(sandbox, "add-user", "sam", "--jail", SFTP_JAIL, "--mode", "internal-sftp",
                "--create")  # fmt: skip
    assert "sshd -T checked sam" in out
    text = sandbox.path("/etc/ssh/sshd_config.d/scponly-py-group-sftponly.conf").read_text()
    assert "Match Group sftponly" in text and "ForceCommand internal-sftp -d /home/%u" in text
    host_key(sandbox, "sam")
    reload_sshd(sandbox)
    assert setup(sandbox, "check", SFTP_JAIL).strip() == f"{SFTP_JAIL}: 0 findings"
    result = sandbox.sftp_batch("sam", "pwd\nput /etc/hostname files/up\n")
    assert result.returncode == 0, result.stderr
    assert b"/home/sam" in result.stdout
    assert (sandbox.path(SFTP_JAIL) / "home/sam/files/up").exists()
    refused = sandbox.run(sandbox.ssh_argv("sam", "id"), input=b"")
    assert refused.returncode != 0 and b"uid=" not in refused.stdout
