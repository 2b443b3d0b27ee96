"""Real jails: create, add a user, and transfer files with sftp, scp and rsync inside them.

Each program runs as `chroot --userspec=alice:alice JAIL program`, exactly
what scponly-pyc does after its checks, so these prove the jail alone is
enough for the program (no host file leaks in). All in a private mount
namespace (tests/root/jail_namespace.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import JAIL, Namespace, jail_with_alice

pytestmark = pytest.mark.root
AS_ALICE = ["chroot", "--userspec=alice:alice", JAIL]


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with jail_with_alice(tmp_path_factory.mktemp("jail-create")) as namespace:
        yield namespace


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_create_is_idempotent_and_clean(ns: Namespace) -> None:
    again = ns.setup("create", JAIL, "--profile", "sftp,scp,rsync", "--json", check=True)
    assert json.loads(again.stdout)["operations"] == []
    result = ns.setup("check", JAIL, "--no-sshd")
    assert result.returncode == 0, result.stdout.decode()
    assert b"0 findings" in result.stdout


def test_jail_layout(ns: Namespace) -> None:
    jail = ns.path(JAIL)
    null = os.lstat(jail / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert os.readlink(jail / "lib64") == "usr/lib64"
    assert not os.readlink(jail / "usr/lib64/ld-linux-x86-64.so.2").startswith("/")
    assert "passwd: files\ngroup: files\n" in (jail / "etc/nsswitch.conf").read_text()
    for directory, _dirs, files in os.walk(jail):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            assert not info.st_mode & (stat.S_ISUID | stat.S_ISGID)
            if stat.S_ISREG(info.st_mode):
                assert info.st_nlink == 1 and info.st_uid == 0
    manifest = list(ns.path("/var/lib/scponly-py/jails").glob("*.json"))
    assert [path.name for path in manifest] == ["mnt-jail.json"]
    assert not (ns.path("/var/lib/scponly-py/jails")).is_relative_to(jail)


def test_user_account_and_home(ns: Namespace) -> None:
    passwd = ns.path("/etc/passwd").read_text()
    line = next(row for row in passwd.splitlines() if row.startswith("alice:"))
    assert line.split(":")[5:] == [f"{JAIL}//home/alice", "/usr/lib/scponly-py/scponly-pyc"]
    assert "/usr/lib/scponly-py/scponly-pyc" in ns.path("/etc/shells").read_text().split()
    jailed = ns.path(f"{JAIL}/etc/passwd").read_text()
    assert any(
        row.split(":")[0] == "alice" and row.split(":")[5] == "/home/alice"
        for row in jailed.splitlines()
    )
    assert "alice" in ns.path(f"{JAIL}/etc/group").read_text()
    uid = int(line.split(":")[2])
    home = os.lstat(ns.path(f"{JAIL}/home/alice"))
    ssh = os.lstat(ns.path(f"{JAIL}/home/alice/.ssh"))
    files = os.lstat(ns.path(f"{JAIL}/home/alice/files"))
    assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (0, 0o755)
    assert (ssh.st_uid, stat.S_IMODE(ssh.st_mode)) == (0, 0o755)
    assert (files.st_uid, stat.S_IMODE(files.st_mode)) == (uid, 0o755)
    # The host itself is untouched: no alice outside the namespace.
    assert "alice:" not in Path("/etc/passwd").read_text()


def test_sftp_through_sftp_server_in_the_jail(ns: Namespace) -> None:
    payload = os.urandom(300_000)
    ns.path("/mnt/upload.bin").write_bytes(payload)
    batch = (
        b"put /mnt/upload.bin /home/alice/files/up.bin\n"
        b"get /home/alice/files/up.bin /mnt/back.bin\n"
        b"ls -l /home/alice/files\n"
    )
    server = " ".join([*AS_ALICE, "/usr/lib/openssh/sftp-server"])
    result = ns.run(["sftp", "-b", "-", "-D", server], input=batch)
    assert result.returncode == 0, result.stderr.decode()
    assert digest(ns.path(f"{JAIL}/home/alice/files/up.bin").read_bytes()) == digest(payload)
    assert digest(ns.path("/mnt/back.bin").read_bytes()) == digest(payload)
    assert b"alice" in result.stdout  # owner name resolved from the jail's own passwd


def test_scp_sink_and_source_through_a_pipe(ns: Namespace) -> None:
    payload = os.urandom(100_000)
    sink = subprocess.Popen(
        ns.inside([*AS_ALICE, "/usr/bin/scp", "-t", "/home/alice/files/"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert sink.stdin and sink.stdout
    assert sink.stdout.read(1) == b"\0"
    sink.stdin.write(f"C0644 {len(payload)} scp.bin\n".encode())
    sink.stdin.flush()
    assert sink.stdout.read(1) == b"\0"
    sink.stdin.write(payload + b"\0")
    sink.stdin.flush()
    assert sink.stdout.read(1) == b"\0"
    sink.stdin.close()
    assert sink.wait(timeout=30) == 0
    assert ns.path(f"{JAIL}/home/alice/files/scp.bin").read_bytes() == payload

    source = subprocess.Popen(
        ns.inside([*AS_ALICE, "/usr/bin/scp", "-f", "/home/alice/files/scp.bin"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert source.stdin and source.stdout
    source.stdin.write(b"\0")
    source.stdin.flush()
    header = source.stdout.readline()
    assert header == f"C0644 {len(payload)} scp.bin\n".encode()
    source.stdin.write(b"\0")
    source.stdin.flush()
    assert source.stdout.read(len(payload) + 1) == payload + b"\0"
    source.stdin.write(b"\0")
    source.stdin.close()
    assert source.wait(timeout=30) == 0


def test_rsync_through_an_e_helper(ns: Namespace) -> None:
    tree = ns.path("/mnt/tree")
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(50_000))
    helper = ns.path("/mnt/rsh")
    helper.write_text(f'#!/bin/sh\nshift\nexec chroot --userspec=alice:alice {JAIL} "$@"\n')
    helper.chmod(0o755)
    push = ns.run(["rsync", "-a", "-e", "/mnt/rsh", "/mnt/tree/", "jail:/home/alice/files/tree/"])
    assert push.returncode == 0, push.stderr.decode()
    copied = ns.path(f"{JAIL}/home/alice/files/tree")
    assert (copied / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    pull = ns.run(["rsync", "-a", "-e", "/mnt/rsh", "jail:/home/alice/files/tree/", "/mnt/pulled/"])
    assert pull.returncode == 0, pull.stderr.decode()
    assert ns.path("/mnt/pulled/a.txt").read_bytes() == b"alpha\n"


def test_existing_account_is_changed_and_restored(ns: Namespace) -> None:
    ns.run(["useradd", "-M", "-U", "-d", "/home/bob", "-s", "/bin/sh", "bob"], check=True)
    missing = ns.setup("add-user", "carol", "--jail", JAIL)
    assert missing.returncode == 1 and b"--create" in missing.stderr
    ns.setup(
        "add-user", "bob", "--jail", JAIL, "--shell", "scponly-py", "--writable", "in", check=True
    )
    entry = ns.run(["getent", "passwd", "bob"], check=True).stdout.decode().strip()
    assert entry.split(":")[5:] == ["/home/bob", "/usr/local/bin/scponly-py"]
    assert os.lstat(ns.path(f"{JAIL}/home/bob/in")).st_uid == int(entry.split(":")[2])
    assert "bob:" in ns.path(f"{JAIL}/etc/passwd").read_text()
    plan = json.loads(
        ns.setup("remove-user", "bob", "--jail", JAIL, "--dry-run", "--json", check=True).stdout
    )
    assert {"op": "remove", "path": "/home/bob/in"} in plan["operations"]
    ns.setup("remove-user", "bob", "--jail", JAIL, check=True)
    entry = ns.run(["getent", "passwd", "bob"], check=True).stdout.decode().strip()
    assert entry.split(":")[5:] == ["/home/bob", "/bin/sh"]
    assert "bob:" not in ns.path(f"{JAIL}/etc/passwd").read_text()
    assert not ns.path(f"{JAIL}/home/bob/in").exists()  # empty: removed; data would be kept
