"""`sshd-config --install` on the distribution's own sshd_config, with a real sshd and clients.

The sandbox runs sshd from the host's stock /etc/ssh/sshd_config (in its private /etc
overlay). The control: the stock file lets a scponly-py account open a direct-tcpip
channel (`ssh -W`, served by sshd without the shell). After `--install` and a reload,
the same account logs in over sftp through the login shell but gets no channel;
`--uninstall` puts back the original bytes.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.sandbox import Sandbox

pytestmark = pytest.mark.e2e

STOCK = "/etc/ssh/sshd_config"
DROP_IN = "/etc/ssh/sshd_config.d/scponly-py.conf"
CONFIG = '[defaults]\nprograms = ["sftp", "scp"]\n'


def forward(sandbox: Sandbox, user: str) -> bytes:
    """What `ssh -W` to the sandbox's own sshd brings back (its banner when allowed)."""
    result = sandbox.run(sandbox.ssh_argv(user, "-W", "127.0.0.1:22"), input=b"", timeout=30)
    return result.stdout + result.stderr


def reload_sshd(sandbox: Sandbox) -> None:
    """SIGHUP sshd; back once the re-executed sshd listens (its log says so: a connect
    alone could still reach the old process before it handles the signal)."""
    hups = sandbox.sshd_log.read_text().count("Received SIGHUP")
    os.kill(int((sandbox.root / "sshd.pid").read_text()), signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        text = sandbox.sshd_log.read_text()
        if text.count("Received SIGHUP") == hups + 1 == text.count("Server listening") - 1:
            return
        assert time.monotonic() < deadline, "sshd did not come back after SIGHUP"
        time.sleep(0.05)


def test_install_reload_login_uninstall(sandbox_factory) -> None:
    sandbox = sandbox_factory(stock=True)
    sandbox.add_stock_user("nina")
    sandbox.write_config(CONFIG)
    original = sandbox.path(STOCK).read_bytes()
    assert b"SSH-2.0-" in forward(sandbox, "nina")  # the stock file allows it
    sandbox.run(["groupadd", "-f", "scponly"], check=True)
    sandbox.run(["usermod", "-aG", "scponly", "nina"], check=True)
    done = sandbox.setup("sshd-config", "--install", check=True).stdout
    assert b"sshd -T checked nina" in done
    reload_sshd(sandbox)
    refused = forward(sandbox, "nina")
    assert b"stdio forwarding failed" in refused and b"SSH-2.0-" not in refused
    listing = sandbox.sftp_batch("nina", "ls -a\n")
    assert listing.returncode == 0, listing.stderr
    sandbox.setup("sshd-config", "--uninstall", check=True)
    assert not sandbox.path(DROP_IN).exists()
    assert sandbox.path(STOCK).read_bytes() == original
    reload_sshd(sandbox)
    assert b"SSH-2.0-" in forward(sandbox, "nina")
