"""`sshd-config --install/--uninstall` on the host's stock sshd_config and an Ubuntu variant.

Each test runs in a private mount namespace whose /etc is an overlay of the host's,
so the host's own /etc/ssh/sshd_config (Debian's: `Include sshd_config.d/*.conf`
at the top, `Subsystem sftp` further down) is changed only there; every check is
the real `sshd -t` / `sshd -T`. /run is empty there, so no sshd is reloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import Namespace

pytestmark = pytest.mark.root

STOCK = "/etc/ssh/sshd_config"
DROP_IN = "/etc/ssh/sshd_config.d/scponly-py.conf"
# Written from Ubuntu 22.04's documented openssh-server sshd_config (uncommented lines) and
# the drop-in cloud-init writes; not copied from a package. Include paths point at /mnt/ubuntu.
UBUNTU = """\
# Ubuntu 22.04 variant, written from the documented contents of the stock file.
Include /mnt/ubuntu/sshd_config.d/*.conf
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""
CLOUD_INIT = "PasswordAuthentication no\n"
NO_INCLUDE = "UsePAM yes\nX11Forwarding yes\nMatch User carol\n    PermitTTY no\n"


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    with Namespace(tmp_path_factory.mktemp("sshd-install")) as namespace:
        namespace.run(["groupadd", "scponly"], check=True)
        namespace.run(["useradd", "-M", "-U", "-G", "scponly", "bob"], check=True)
        namespace.run(["useradd", "-M", "-U", "carol"], check=True)
        yield namespace


def effective(ns: Namespace, user: str, config: str = STOCK) -> dict[str, str]:
    argv = ["/usr/sbin/sshd", "-T", "-f", config, "-C", f"user={user},host=h,addr=192.0.2.1"]
    out = ns.run(argv, check=True).stdout.decode()
    return dict(line.partition(" ")[::2] for line in reversed(out.splitlines()))


def test_stock_drop_in_installs_verifies_and_uninstalls(ns: Namespace) -> None:
    original = ns.path(STOCK).read_bytes()
    dry = ns.setup("sshd-config", "--install", "--dry-run", check=True).stdout.decode()
    assert f"+++ {DROP_IN}" in dry and not ns.path(DROP_IN).exists()
    done = ns.setup("sshd-config", "--install", check=True).stdout.decode()
    assert "sshd -T checked bob" in done and "not reloaded" in done
    text = ns.path(DROP_IN).read_text()
    # The stock file sets Subsystem sftp; a second one would make sshd refuse to start.
    assert "\nSubsystem" not in text and "Subsystem: set at /etc/ssh/sshd_config:" in text
    assert ns.run(["/usr/sbin/sshd", "-t"]).returncode == 0
    bob, carol = effective(ns, "bob"), effective(ns, "carol")
    assert bob["x11forwarding"] == "no" and bob["permittty"] == "no"
    assert carol["x11forwarding"] == "yes"  # the stock value, for everyone else
    again = ns.setup("sshd-config", "--install", check=True).stdout.decode()
    assert "unchanged" in again
    ns.setup("sshd-config", "--uninstall", check=True)
    assert not ns.path(DROP_IN).exists() and ns.path(STOCK).read_bytes() == original


def test_ubuntu_variant(ns: Namespace) -> None:
    ns.path("/mnt/ubuntu/sshd_config.d").mkdir(parents=True, exist_ok=True)
    ns.path("/mnt/ubuntu/sshd_config").write_text(UBUNTU)
    ns.path("/mnt/ubuntu/sshd_config.d/50-cloud-init.conf").write_text(CLOUD_INIT)
    config = "/mnt/ubuntu/sshd_config"
    ns.setup("sshd-config", "--install", "-f", config, check=True)
    assert ns.path("/mnt/ubuntu/sshd_config.d/scponly-py.conf").exists()
    assert effective(ns, "bob", config)["allowtcpforwarding"] == "no"
    ns.setup("sshd-config", "--uninstall", "-f", config, check=True)
    assert sorted(os.listdir(ns.path("/mnt/ubuntu/sshd_config.d"))) == ["50-cloud-init.conf"]


def test_without_include_a_marked_block_is_appended_and_removed(ns: Namespace) -> None:
    ns.path("/mnt/plain").write_text(NO_INCLUDE)
    ns.setup("sshd-config", "--install", "-f", "/mnt/plain", check=True)
    text = ns.path("/mnt/plain").read_text()
    # Global lines go first, outside carol's Match block; the Match block goes last.
    assert text.startswith("# BEGIN scponly-py-setup")
    assert "Subsystem sftp" in text.split("Match")[0]
    assert effective(ns, "bob", "/mnt/plain")["x11forwarding"] == "no"
    ns.setup("sshd-config", "--uninstall", "-f", "/mnt/plain", check=True)
    assert ns.path("/mnt/plain").read_text() == NO_INCLUDE


def test_internal_sftp_subsystem_is_refused_with_the_fix(ns: Namespace) -> None:
    ns.path("/mnt/internal").write_text("Subsystem sftp internal-sftp\n")
    result = ns.setup("sshd-config", "--install", "-f", "/mnt/internal")
    error = result.stderr.decode()
    assert result.returncode == 1 and "/mnt/internal:1" in error
    assert "never running the login shell" in error and "sftp-server" in error
    assert ns.path("/mnt/internal").read_text() == "Subsystem sftp internal-sftp\n"


def test_failing_sshd_t_leaves_the_old_config(ns: Namespace) -> None:
    """A jail path sshd cannot parse: sshd -t fails after the write, which is rolled back."""
    result = ns.setup("sshd-config", "--install", "--mode", "internal-sftp", "--jail", "/srv/a b")
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"rejected the change" in result.stderr and not ns.path(DROP_IN).exists()


def test_user_not_covered_rolls_back(ns: Namespace) -> None:
    """An earlier Match block gives bob forwarding: sshd keeps it, so sshd -T fails the check."""
    base = "Match User bob\n    AllowTcpForwarding yes\n"
    ns.path("/mnt/earlier").write_text(base)
    result = ns.setup("sshd-config", "--install", "-f", "/mnt/earlier")
    assert result.returncode == 1 and b"bob: allowtcpforwarding yes" in result.stderr
    assert ns.path("/mnt/earlier").read_text() == base


def test_already_invalid_config_is_not_touched(ns: Namespace) -> None:
    ns.path("/mnt/broken").write_text("NoSuchKeyword yes\n")
    result = ns.setup("sshd-config", "--install", "-f", "/mnt/broken")
    assert result.returncode == 1 and b"already invalid" in result.stderr
    assert Path(ns.path("/mnt/broken")).read_text() == "NoSuchKeyword yes\n"
