"""`check` on a jail seeded with every unsafe condition finds each one; `update` repairs the
library ones; nothing is ever written through a symlink planted in a jail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import JAIL, Namespace, jail_with_alice

pytestmark = pytest.mark.root


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with jail_with_alice(tmp_path) as namespace:
        yield namespace


def findings(ns: Namespace, jail: str = JAIL) -> set[tuple[str, str]]:
    result = ns.setup("check", jail, "--no-sshd", "--json")
    document = json.loads(result.stdout)
    (items,) = document["jails"].values()
    found = {(item["code"], item["path"]) for item in items}
    assert result.returncode == (3 if found else 0), result.stderr.decode()
    return found


def test_every_unsafe_condition_is_found(ns: Namespace) -> None:
    jail = ns.path(JAIL)
    alice = int(ns.run(["id", "-u", "alice"], check=True).stdout)
    (jail / "usr/lib").chmod(0o777)  # writable
    (jail / "etc/owned").write_text("x")  # owner
    os.chown(jail / "etc/owned", alice, alice)
    (jail / "usr/bin/scp").chmod(0o4755)  # setuid
    os.mknod(jail / "dev/sda", 0o600 | 0o060000, os.makedev(8, 0))  # device (block)
    ns.path("/mnt/outside").write_text("host file")  # hardlink
    os.link(ns.path("/mnt/outside"), jail / "etc/hardlinked")
    (jail / "etc/escape").symlink_to("/etc/shadow")  # symlink
    (jail / "etc/climb").symlink_to("../../../etc/shadow")
    (jail / "home/alice").chmod(0o775)  # home
    os.chown(jail / "home/alice/.ssh", alice, alice)
    (jail / "etc/ld.so.preload").write_text("/lib/evil.so\n")  # preload
    (jail / "etc/nsswitch.conf").write_text("passwd: files ldap\ngroup: files\n")  # nsswitch
    popt = next((jail / "usr/lib/x86_64-linux-gnu").glob("libpopt.so.0.*"))
    popt.unlink()  # library (rsync)
    libz = next((jail / "usr/lib/x86_64-linux-gnu").glob("libz.so.1.*"))
    with open(libz, "ab") as handle:  # stale
        handle.write(b"\0")
    ns.run(
        [
            "sh",
            "-c",
            "mkdir -m 0777 /mnt/unsafe && mkdir -m 0755 /mnt/unsafe/jail2 "
            "&& ln -s unsafe/jail2 /mnt/link",
        ],
        check=True,
    )  # ancestor

    found = findings(ns)
    expected = {
        ("writable", "/usr/lib"),
        ("owner", "/etc/owned"),
        ("setuid", "/usr/bin/scp"),
        ("device", "/dev/sda"),
        ("hardlink", "/etc/hardlinked"),
        ("symlink", "/etc/escape"),
        ("symlink", "/etc/climb"),
        ("home", "/home/alice"),
        ("home", "/home/alice/.ssh"),
        ("preload", "/etc/ld.so.preload"),
        ("nsswitch", "/etc/nsswitch.conf"),
        ("library", "/usr/bin/rsync"),
        ("stale", f"/usr/lib/x86_64-linux-gnu/{popt.name}"),
        ("stale", f"/usr/lib/x86_64-linux-gnu/{libz.name}"),
    }
    assert expected <= found, expected - found
    assert found - expected == set(), found - expected
    assert ("ancestor", "/mnt/unsafe") in findings(ns, "/mnt/link")

    human = ns.setup("check", JAIL, "--no-sshd")
    assert human.returncode == 3 and b"14 findings" in human.stdout


def test_update_replaces_stale_files_atomically_and_removes_unneeded_ones(ns: Namespace) -> None:
    work = ns.path("/mnt/work")
    (work / "lib").mkdir(parents=True)
    (work / "lib/libold.c").write_text("int old(void) { return 1; }\n")
    (work / "prog.c").write_text("int main(void) { return 0; }\n")
    for argv in (
        ["gcc", "-shared", "-fPIC", "-o", "/mnt/work/lib/libold.so", "/mnt/work/lib/libold.c"],
        [
            "gcc",
            "-o",
            "/mnt/work/prog",
            "/mnt/work/prog.c",
            "-L/mnt/work/lib",
            "-Wl,--no-as-needed",
            "-lold",
            "-Wl,-rpath,/mnt/work/lib",
        ],
    ):
        ns.run(argv, check=True)
    ns.setup("create", JAIL, "--profile", "sftp", "--bin", "/mnt/work/prog", check=True)
    assert (ns.path(JAIL) / "mnt/work/lib/libold.so").exists()
    # The previous profiles' rsync libraries were removed by this create already.
    assert not list((ns.path(JAIL) / "usr/lib/x86_64-linux-gnu").glob("libpopt*"))
    sftp = ns.path(JAIL) / "usr/lib/openssh/sftp-server"
    before = os.lstat(sftp).st_ino
    running = subprocess.Popen(["sleep", "30"])  # a binary in use must survive the update
    try:
        # "package upgrade": prog no longer needs libold; sftp-server changed on the host side
        # (simulated by changing the jail copy, which update must replace, not truncate).
        ns.run(["gcc", "-o", "/mnt/work/prog", "/mnt/work/prog.c"], check=True)
        with open(sftp, "ab") as handle:
            handle.write(b"\0")
        plan = json.loads(ns.setup("update", JAIL, "--dry-run", "--json", check=True).stdout)
        ops = {(op["op"], op["path"]) for op in plan["operations"]}
        assert ("remove", "/mnt/work/lib/libold.so") in ops
        assert ("file", "/usr/lib/openssh/sftp-server") in ops
        ns.setup("update", JAIL, check=True)
    finally:
        running.kill()
    assert not (ns.path(JAIL) / "mnt/work/lib/libold.so").exists()
    assert os.lstat(sftp).st_ino != before
    assert sftp.read_bytes() == Path("/usr/lib/openssh/sftp-server").read_bytes()
    assert findings(ns) == set()
    assert json.loads(ns.setup("update", "--all", "--json", check=True).stdout)["operations"] == []


def test_nothing_is_written_through_a_planted_symlink(ns: Namespace) -> None:
    jail = ns.path(JAIL)
    victim_dir = ns.path("/mnt/victim")
    victim_dir.mkdir()
    (victim_dir / "passwd").write_text("host passwd\n")
    (victim_dir / "keep").write_text("keep me\n")
    victim_file = ns.path("/mnt/victim-file")
    victim_file.write_text("host file\n")
    # A jailed user plants links in their writable directory ...
    (jail / "home/alice/files/evil-dir").symlink_to("/mnt/victim")
    (jail / "home/alice/files/evil-up").symlink_to("../../../../mnt/victim")
    # ... and, in a jail whose directories were left writable, replaces ours.
    (jail / "usr/bin/scp").unlink()
    (jail / "usr/bin/scp").symlink_to("/mnt/victim-file")
    shutil.rmtree(jail / "etc")
    (jail / "etc").symlink_to("/mnt/victim")

    refused = ns.setup("update", JAIL)
    assert refused.returncode == 1
    assert b"not a directory" in refused.stderr and b"Traceback" not in refused.stderr
    assert (victim_dir / "passwd").read_text() == "host passwd\n"
    assert victim_file.read_text() == "host file\n"
    assert sorted(os.listdir(victim_dir)) == ["keep", "passwd"]

    (jail / "etc").unlink()
    ns.setup("update", JAIL, check=True)
    assert (jail / "usr/bin/scp").is_file() and not (jail / "usr/bin/scp").is_symlink()
    assert victim_file.read_text() == "host file\n"

    ns.setup("remove-user", "alice", "--jail", JAIL, "--purge", check=True)
    assert not (jail / "home/alice").exists()
    assert sorted(os.listdir(victim_dir)) == ["keep", "passwd"]
    assert "alice:" not in ns.path("/etc/passwd").read_text()
    assert "alice" not in (jail / "etc/passwd").read_text()


def test_fix_repairs_owners_modes_homes_and_files_but_not_user_files(ns: Namespace) -> None:
    jail = ns.path(JAIL)
    alice = int(ns.run(["id", "-u", "alice"], check=True).stdout)
    os.chown(jail, alice, alice)  # "bad ownership or modes for chroot directory"
    jail.chmod(0o775)
    (jail / "usr/lib").chmod(0o777)
    (jail / "srv").mkdir(mode=0o755)  # a directory the manifest does not know
    os.chown(jail / "srv", alice, alice)
    (jail / "srv").chmod(0o777)
    (jail / "home/alice").chmod(0o777)
    os.chown(jail / "home/alice", alice, alice)
    os.chown(jail / "home/alice/.ssh", alice, alice)
    keys = jail / "home/alice/.ssh/authorized_keys"
    keys.write_text("ssh-ed25519 AAAA alice\n")
    os.chown(keys, alice, alice)
    keys.chmod(0o666)
    (jail / "dev/null").unlink()
    libz = next((jail / "usr/lib/x86_64-linux-gnu").glob("libz.so.1.*"))
    with open(libz, "ab") as handle:
        handle.write(b"\0")
    upload = jail / "home/alice/files/sub"  # alice's own tree: never touched
    upload.mkdir(mode=0o777)
    upload.chmod(0o777)
    (upload / "x").write_text("mine")
    (upload / "x").chmod(0o666)

    preview = ns.setup("check", JAIL, "--fix", "--dry-run", "--no-sshd")
    assert preview.returncode == 3, preview.stderr.decode()
    assert f"would fix: chown 0:0 + chmod 0755 {JAIL} (was uid {alice}".encode() in preview.stdout
    assert jail.stat().st_uid == alice  # a dry run changes nothing

    fixed = ns.setup("check", JAIL, "--fix", "--no-sshd")
    out = fixed.stdout.decode()
    assert fixed.returncode == 0, out + fixed.stderr.decode()
    assert f"fixed: chown 0:0 + chmod 0755 {JAIL} (was uid {alice}, gid {alice}, mode 0775)" in out
    assert "mknod    /dev/null" in out and f"copy     /usr/lib/x86_64-linux-gnu/{libz.name}" in out
    assert f"fixed: chown 0:0 + chmod 0755 {JAIL}/srv" in out
    assert f"fixed: chown 0:0 + chmod 0644 {JAIL}/home/alice/.ssh/authorized_keys" in out
    assert "/home/alice/files" not in out
    assert out.rstrip().endswith(f"{JAIL}: 0 findings")
    assert findings(ns) == set()
    assert keys.read_text() == "ssh-ed25519 AAAA alice\n"
    assert (upload.stat().st_mode & 0o777, upload.stat().st_uid) == (0o777, 0)
    assert (upload / "x").stat().st_mode & 0o777 == 0o666
    again = ns.setup("check", JAIL, "--fix", "--no-sshd", check=True).stdout.decode()
    assert "fixed:" not in again and f"{JAIL}: 0 operations" in again


def test_fix_refuses_a_jail_below_an_unsafe_directory(ns: Namespace) -> None:
    ns.run(["sh", "-c", "mkdir -m 0777 /mnt/unsafe && mkdir -m 0775 /mnt/unsafe/jail"], check=True)
    refused = ns.setup("check", "/mnt/unsafe/jail", "--fix", "--no-sshd")
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"refused: /mnt/unsafe is writable by group or others" in refused.stderr
    assert ns.path("/mnt/unsafe/jail").stat().st_mode & 0o777 == 0o775
