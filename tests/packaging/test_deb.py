"""The Debian package, built, linted, installed into a throwaway root and used through sshd.

The throwaway root is the e2e sandbox (tests/e2e/sandbox.py: private network and mount
namespaces, overlay /etc and /dev) with overlay mounts over /usr and /var as well, so
`dpkg -i` really installs the package (dpkg database, /etc/shells, file capabilities,
maintainer scripts, triggers) while the host stays untouched. Users log in with the
*installed* /usr/bin/scponly-py and /usr/sbin/scponly-pyc; the jail is built by the
installed scponly-py-setup. The last test purges the package and checks that /etc/shells
is back to what it was and that no file capability is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox
from tests.namespace import overlays
from tests.packaging.conftest import REPO, SYSTEM_PATH, require_tools, system_env

pytestmark = [pytest.mark.root, pytest.mark.e2e]

PACKAGE = "scponly-py"
SHELLS = ("/usr/bin/scponly-py", "/usr/sbin/scponly-pyc")
CHROOT_SHELL = "/usr/lib/scponly-py/scponly-pyc"
MODULES = "/usr/share/scponly-py/scponly_py"
JAIL = "/srv/jail"
OVERLAYS = """
set -e
{overlays}
mount -t tmpfs -o mode=0755 tmpfs /srv
"""
EXPECTED = {
    "/etc/scponly-py/config.toml",
    "/usr/bin/scponly-py",
    "/usr/sbin/scponly-pyc",
    "/usr/sbin/scponly-py-setup",
    "/usr/lib/scponly-py/scponly-py",
    "/usr/lib/scponly-py/launcher",
    "/usr/lib/scponly-py/scponly-pyc",
    "/usr/share/scponly-py/scponly_py/shell.py",
    "/usr/share/scponly-py/setup_chroot/cli.py",
    "/usr/share/scponly-py/scponly_py-0.1.0.dist-info/METADATA",
    "/usr/share/man/man8/scponly-py.8.gz",
    "/usr/share/man/man8/scponly-pyc.8.gz",
    "/usr/share/man/man8/scponly-py-setup.8.gz",
    "/usr/share/man/man5/scponly-py.toml.5.gz",
    "/usr/share/doc/scponly-py/copyright",
    "/usr/share/doc/scponly-py/changelog.Debian.gz",
    "/usr/share/lintian/overrides/scponly-py",
}


class PackageSandbox(Sandbox):
    """The e2e sandbox whose login shell is the one the .deb installs."""

    deb: Path
    shells_before: bytes

    def _install_launcher(self) -> None:
        self.run(
            ["sh", "-c", OVERLAYS.format(overlays=overlays(self.root, "usr", "var"))], check=True
        )
        self.shells_before = self.path("/etc/shells").read_bytes()
        installed = self.dpkg("-i", str(self.deb))
        assert installed.returncode == 0, installed.stderr.decode(errors="replace")
        self.launcher = Path("/usr/bin/scponly-py")

    def dpkg(self, *arguments: str) -> subprocess.CompletedProcess[bytes]:
        return self.run(
            ["dpkg", *arguments],
            env=system_env(DEBIAN_FRONTEND="noninteractive"),
            timeout=120,
        )

    def installed(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run an installed program by its plain name, with the system PATH, as root."""
        return self.run(list(argv), env=system_env(), check=check, timeout=120)


@pytest.fixture(scope="module")
def box(deb: Path) -> Iterator[PackageSandbox]:
    require_tools("unshare", "nsenter", "ssh", "scp", "sftp", "ssh-keygen", "dpkg", "getcap")
    root = Path(tempfile.mkdtemp(prefix="scponly-py-deb-", dir="/tmp"))
    root.chmod(0o755)
    sandbox = PackageSandbox(root)
    sandbox.deb = deb
    # A uid range of its own: usermod refuses a uid any process on the machine runs as, and
    # other sandboxes (other test modules, run in parallel) start at 42000.
    sandbox.next_uid = 47300
    try:
        sandbox._start("")
        yield sandbox
    finally:
        sandbox.stop()


# -- the package file ---------------------------------------------------------------------------


def test_package_metadata_and_files(deb: Path) -> None:
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, check=True, text=True)
    fields = info.stdout
    assert "Package: scponly-py\n" in fields
    for dependency in ("python3 (>= 3.11)", "python3-click", "python3-pyelftools", "libcap2-bin"):
        assert dependency in fields
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, check=True, text=True
    ).stdout
    paths = {"/" + line.split()[5].removeprefix("./") for line in listing.splitlines()}
    assert paths >= EXPECTED, EXPECTED - paths
    for line in listing.splitlines():
        mode, owner = line.split()[:2]
        assert owner == "root/root", line
        if not mode.startswith("l"):  # no setuid/setgid bit, nothing group/other-writable
            assert "s" not in mode and mode[8] != "w" and mode[5] != "w", line
    launcher = [line for line in listing.splitlines() if line.endswith(" ./usr/bin/scponly-py")]
    assert len(launcher) == 1 and launcher[0].startswith("-rwxr-xr-x"), launcher
    assert "./usr/sbin/scponly-pyc -> ../lib/scponly-py/scponly-pyc" in listing
    conffiles = subprocess.run(
        ["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, check=True, text=True
    ).stdout
    assert conffiles.split() == ["/etc/scponly-py/config.toml"]
    triggers = subprocess.run(
        ["dpkg-deb", "-I", str(deb), "triggers"], capture_output=True, check=True, text=True
    ).stdout
    assert "interest-noawait /usr/lib" in triggers


def test_lintian(deb: Path) -> None:
    """No error and no warning: hardening-no-pie included (the bootloader is built as PIE)."""
    if shutil.which("lintian", path=SYSTEM_PATH) is None:
        pytest.skip("lintian is not installed")
    result = subprocess.run(
        ["lintian", "--pedantic", "--no-tag-display-limit", str(deb)],
        capture_output=True,
        text=True,
        check=False,
        env=system_env(),
        timeout=300,
    )
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:", "P:")]
    assert tags == [], result.stdout
    overrides = (REPO / "packaging/debian/lintian-overrides").read_text()
    assert "hardening" not in overrides


# -- installed ------------------------------------------------------------------------------------


def test_installed_state(box: PackageSandbox) -> None:
    shells = box.path("/etc/shells").read_text().splitlines()
    for shell in SHELLS:
        assert shell in shells
    caps = box.installed("getcap", CHROOT_SHELL).stdout.decode()
    assert "cap_sys_chroot=ep" in caps
    assert box.path(CHROOT_SHELL).stat().st_mode & 0o7777 == 0o755  # capability, not setuid
    assert box.path("/etc/scponly-py/config.compiled").exists()  # postinst ran check-config
    for module in box.path(MODULES).rglob("*.py"):  # postinst's py3compile, as root
        compiled = list((module.parent / "__pycache__").glob(f"{module.stem}.cpython-*.pyc"))
        assert compiled and compiled[0].stat().st_mode & 0o7777 == 0o644, module
    config = box.path("/etc/scponly-py/config.toml").read_text()
    assert 'sftp = "/usr/lib/openssh/sftp-server"' in config
    version = box.installed("scponly-py", "--version").stdout.decode()
    assert version.strip() == "scponly-py 0.1.0"
    assert b"0.1.0" in box.installed("scponly-py-setup", "--version").stdout
    explained = box.installed(
        "scponly-py", "explain", "--user", "nobody", "--", "scp -S /bin/sh -t /x", check=False
    )
    assert explained.returncode == 1 and b"REFUSE" in explained.stdout
    assert b"scponly-py" in box.installed("man", "-w", "scponly-py").stdout
    page = box.run(
        ["man", "scponly-py.toml"], env=system_env(MANPAGER="cat", MANWIDTH="80"), check=True
    ).stdout
    assert b"svn_tunnel_user" in page


def test_plain_user_transfers_and_refusals(box: PackageSandbox, tmp_path: Path) -> None:
    for shell in ("/usr/bin/scponly-py", "/usr/lib/scponly-py/scponly-py"):
        capability = box.run(["getcap", shell], check=True).stdout.decode()
        assert "cap_wake_alarm=p" in capability  # postinst: they start in secure-execution mode
    user = box.add_user("debalice", shell="/usr/bin/scponly-py")  # noqa: S604 - a login shell
    first = box.log_mark()
    tmp_path.chmod(0o755)
    data = os.urandom(100_000) + b"\0\r\n"
    payload = tmp_path / "payload.bin"
    payload.write_bytes(data)
    for mode in ("-O", "-s"):  # legacy scp -t/-f and scp over SFTP
        target = f"up{mode}.bin"
        up = box.run(box.scp_argv(mode, str(payload), f"debalice@sandbox:{target}"))
        assert up.returncode == 0, up.stderr
        assert (user.home / target).read_bytes() == data
        back = tmp_path / f"back{mode}.bin"
        down = box.run(box.scp_argv(mode, f"debalice@sandbox:{target}", str(back)))
        assert down.returncode == 0, down.stderr
        assert back.read_bytes() == data
    batch = box.sftp_batch("debalice", f"put {payload} sftp.bin\nls -1\n")
    assert batch.returncode == 0, batch.stderr
    assert (user.home / "sftp.bin").read_bytes() == data
    logged = box.log_since(first, "decision=allow")
    assert any("decision=allow user=debalice" in line for line in logged)
    mark = box.log_mark()
    refused = box.ssh("debalice", "id")
    assert refused.returncode == 1
    assert b"scponly-py: refused" in refused.stderr and b"uid=" not in refused.stdout
    assert any("decision=refuse" in line for line in box.log_since(mark, "decision=refuse"))
    interactive = box.ssh("debalice", None, "-T")
    assert interactive.returncode == 1
    assert b"restricted to file transfers" in interactive.stderr


def test_chroot_user_in_a_jail_from_the_installed_setup(
    box: PackageSandbox, tmp_path: Path
) -> None:
    created = box.installed("scponly-py-setup", "create", JAIL, check=False)
    assert created.returncode == 0, created.stderr.decode(errors="replace")
    user = box.add_user("debbob", shell="/usr/sbin/scponly-pyc")  # noqa: S604 - a login shell
    added = box.installed(
        "scponly-py-setup", "add-user", "debbob", "--jail", JAIL, "--shell",
        "/usr/sbin/scponly-pyc", check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode(errors="replace")
    home = box.run(["getent", "passwd", "debbob"], check=True).stdout.decode().split(":")[5]
    assert home == f"{JAIL}//home/debbob"
    (box.path(JAIL) / "JAIL_MARKER").write_text("inside\n")
    tmp_path.chmod(0o755)
    data = os.urandom(50_000)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(data)
    up = box.run(box.scp_argv("-O", str(payload), "debbob@sandbox:files/up.bin"))
    assert up.returncode == 0, up.stderr
    assert box.path(f"{JAIL}/home/debbob/files/up.bin").read_bytes() == data
    batch = box.sftp_batch("debbob", f"put {payload} files/sftp.bin\nls -1 /\npwd\n")
    assert batch.returncode == 0, batch.stderr
    listing = batch.stdout.decode()
    assert "JAIL_MARKER" in listing and "/opt" not in listing and "/root" not in listing
    assert box.path(f"{JAIL}/home/debbob/files/sftp.bin").read_bytes() == data
    refused = box.ssh("debbob", "id")
    assert refused.returncode == 1 and b"uid=" not in refused.stdout
    assert user.name == "debbob"


def test_trigger_resyncs_the_jails(box: PackageSandbox) -> None:
    """Another package changing /usr/lib fires the dpkg trigger: update --all re-syncs jails."""
    scp = box.path(f"{JAIL}/usr/bin/scp")
    if not scp.exists():
        pytest.skip("no jail from the previous test")
    scp.unlink()
    activated = box.run(["dpkg-trigger", "--no-await", "/usr/lib/x86_64-linux-gnu/libfake.so"])
    assert activated.returncode == 0, activated.stderr
    processed = box.dpkg("--triggers-only", PACKAGE)
    assert processed.returncode == 0, processed.stderr
    assert scp.exists(), processed.stdout.decode() + processed.stderr.decode()


def test_purge_restores_shells_and_capabilities(box: PackageSandbox) -> None:
    purged = box.dpkg("--purge", PACKAGE)
    assert purged.returncode == 0, purged.stderr.decode(errors="replace")
    assert box.path("/etc/shells").read_bytes() == box.shells_before
    for path in ("/usr/lib/scponly-py", "/usr/share/scponly-py", "/etc/scponly-py", *SHELLS):
        assert not os.path.lexists(box.path(path)), path
    left = box.installed("getcap", "-r", "/usr", check=False).stdout.decode()
    assert "scponly" not in left and "cap_sys_chroot" not in left
    status = box.dpkg("-s", PACKAGE)
    assert status.returncode != 0
