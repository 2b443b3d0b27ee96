"""`import rssh` and `import scponly` --apply in a private namespace: an rssh.conf in the shape
rssh.conf(5) documents, and a jail laid out the way scponly's setup_chroot.sh lays it out
(the home is the jail, root-owned, with the user's `incoming` and a root-owned .ssh)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import Namespace

pytestmark = pytest.mark.root

RSSH_CONF = """\
logfacility = LOG_USER
allowscp
allowsftp
allowcvs
umask = 027
chrootpath = "/mnt/rssh"
user=rudy:077:00010:  # sftp, not chrooted
user="rita:022:10011:/mnt/rssh"  # rsync, sftp, scp; chrooted
"""


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Namespace]:
    with Namespace(tmp_path) as namespace:
        yield namespace


def test_import_rssh(ns: Namespace) -> None:
    for name, home in (("rudy", "/home/rudy"), ("rita", "/mnt/rssh/home/rita"), ("ron", "/x")):
        ns.run(["useradd", "-M", "-d", home, "-s", "/usr/bin/rssh", name], check=True)
    ns.path("/mnt/rssh.conf").write_text(RSSH_CONF)
    dry = ns.setup("import", "rssh", "/mnt/rssh.conf")
    out = dry.stdout.decode()
    assert dry.returncode == 0, dry.stderr.decode()
    assert "dropped: cvs: no cvs here" in out and "dry run: nothing changed" in out
    assert "account rita: shell scponly-pyc (--jail /mnt/rssh" in out
    assert "account rudy: shell scponly-py (no jail" in out
    assert not ns.path("/etc/scponly-py/config.toml").exists()

    done = ns.setup("import", "rssh", "/mnt/rssh.conf", "--apply")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    text = ns.path("/etc/scponly-py/config.toml").read_text()
    assert '[user.rita]\nprograms = ["rsync", "sftp", "scp"]\numask = "0022"' in text
    compiled = ns.run([sys.executable, "-I", "-m", "scponly_py", "check-config"])
    assert compiled.returncode == 0, compiled.stderr.decode()
    passwd = {line.split(":")[0]: line.split(":") for line in
              ns.path("/etc/passwd").read_text().splitlines()}  # fmt: skip
    assert passwd["rita"][5:] == ["/mnt/rssh//home/rita", "/usr/lib/scponly-py/scponly-pyc"]
    assert passwd["ron"][5:] == ["/mnt/rssh//home/ron", "/usr/lib/scponly-py/scponly-pyc"]
    assert passwd["rudy"][5:] == ["/home/rudy", "/usr/local/bin/scponly-py"]
    assert (ns.path("/mnt/rssh") / "usr/bin/rsync").is_file()
    assert b"/mnt/rssh: 0 findings" in done.stdout


def scponly_jail(ns: Namespace, name: str) -> Path:
    """setup_chroot.sh's layout: the home is the jail, binaries at their host paths, etc/passwd
    grepped from the host's, root-owned .ssh, a user-owned writable `incoming`."""
    home = f"/mnt/{name}"
    ns.run(["useradd", "-M", "-d", home, "-s", "/usr/local/sbin/scponlyc", name], check=True)
    jail = ns.path(home)
    for directory in ("usr/bin", "usr/lib/openssh", "lib", "etc", ".ssh", "incoming"):
        (jail / directory).mkdir(parents=True, mode=0o755)
    shutil.copy2("/usr/bin/scp", jail / "usr/bin/scp")
    shutil.copy2("/usr/lib/openssh/sftp-server", jail / "usr/lib/openssh/sftp-server")
    (jail / "etc/passwd").write_text(f"{name}:x:1:1::{home}:/usr/local/sbin/scponlyc\n")
    (jail / ".ssh/authorized_keys").write_text(f"ssh-ed25519 AAAAkey {name}\n")
    uid = int(ns.run(["id", "-u", name], check=True).stdout)
    os.chown(jail / "incoming", uid, uid)
    (jail / "incoming/report.txt").write_text("uploaded before the move\n")
    os.chown(jail / "incoming/report.txt", uid, uid)
    return jail


def test_import_scponly(ns: Namespace) -> None:
    jail = scponly_jail(ns, "sally")
    ns.run(["useradd", "-M", "-d", "/home/sam", "-s", "/usr/bin/scponly", "sam"], check=True)
    dry = ns.setup("import", "scponly").stdout.decode()
    assert "jail /mnt/sally: create --profile sftp,scp" in dry
    assert "account sally: shell scponly-pyc (--jail /mnt/sally; was home /mnt/sally, " \
        "/mnt/sally/incoming -> home)" in dry  # fmt: skip
    assert "account sam: shell scponly-py (no jail" in dry

    done = ns.setup("import", "scponly", "--apply")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "moved /mnt/sally/incoming to /mnt/sally/home/sally/incoming" in out
    assert (jail / "home/sally/incoming/report.txt").read_text() == "uploaded before the move\n"
    keys = jail / "home/sally/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAAkey sally\n" and keys.stat().st_uid == 0
    passwd = {line.split(":")[0]: line.split(":") for line in
              ns.path("/etc/passwd").read_text().splitlines()}  # fmt: skip
    assert passwd["sally"][5:] == ["/mnt/sally//home/sally", "/usr/lib/scponly-py/scponly-pyc"]
    assert passwd["sam"][5:] == ["/home/sam", "/usr/local/bin/scponly-py"]
    assert "/mnt/sally: 0 findings" in out, out
