"""Faults around a login: each fails closed with a clear message and leaves nothing the next
session trips on (issue 8's fault table)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.sandbox import SYSLOG_LISTENER, Sandbox, client_file

CONFIG = """
[defaults]
programs = ["sftp", "scp"]

[user.missing]
start_dir = "no-such-dir"
"""


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(users=("fault", "missing"), config=CONFIG)


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    return client_file(tmp_path, "upload.bin", os.urandom(100_000))


def healthy(sandbox: Sandbox, upload: Path) -> bool:
    """The next session works: a legacy scp upload arrives intact."""
    result = sandbox.run(sandbox.scp_argv("-O", str(upload), "fault@sandbox:healthy.bin"))
    target = sandbox.users["fault"].home / "healthy.bin"
    return result.returncode == 0 and target.read_bytes() == upload.read_bytes()


def test_syslog_missing_refuses_cleanly(sandbox: Sandbox, upload: Path) -> None:
    log_socket = sandbox.path("/dev/log")
    hidden = sandbox.path("/dev/log.hidden")
    log_socket.rename(hidden)
    try:
        result = sandbox.ssh("fault", "scp -t upload.bin", input=b"")
        assert result.returncode == 1
        assert b"scponly-py: refused: audit log: cannot connect to /dev/log" in result.stderr
        assert result.stdout == b"\x01" + result.stderr  # scp's own error record, nothing else
    finally:
        hidden.rename(log_socket)
    assert healthy(sandbox, upload)


def test_syslog_that_stops_reading_refuses_within_seconds(sandbox: Sandbox, upload: Path) -> None:
    # A listener that binds /dev/log but never reads: the socket buffer fills up.
    stuck = SYSLOG_LISTENER.replace("data = sock.recv(65536)", "time.sleep(3600)").replace(
        "import os, socket, sys", "import os, socket, sys, time"
    )
    sandbox.restart_syslog(stuck)
    filler = sandbox.run(
        [sys.executable, "-I", "-c",
         "import socket\n"
         "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect('/dev/log')\n"
         "s.setblocking(False)\n"
         "try:\n    [s.send(b'x' * 1000) for _ in range(100000)]\n"
         "except BlockingIOError:\n    print('full')\n"],
    )  # fmt: skip
    assert b"full" in filler.stdout
    started = time.monotonic()
    result = sandbox.ssh("fault", "scp -t upload.bin", input=b"")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert b"audit log: /dev/log is not accepting messages" in result.stderr
    assert elapsed < 15
    sandbox.restart_syslog(SYSLOG_LISTENER)
    assert healthy(sandbox, upload)


def test_config_made_unreadable_mid_run(sandbox: Sandbox, upload: Path) -> None:
    config = sandbox.path("/etc/scponly-py/config.toml")
    assert healthy(sandbox, upload)
    config.chmod(0o600)
    try:
        mark = sandbox.log_mark()
        result = sandbox.ssh("fault", "/usr/lib/openssh/sftp-server")
        assert result.returncode == 1
        assert b"configuration error: /etc/scponly-py/config.toml cannot be opened" in result.stderr
        assert any("configuration error" in line for line in sandbox.log_since(mark, "config"))
    finally:
        config.chmod(0o644)
    assert healthy(sandbox, upload)


def test_config_made_group_writable_is_refused(sandbox: Sandbox, upload: Path) -> None:
    config = sandbox.path("/etc/scponly-py/config.toml")
    config.chmod(0o664)
    try:
        result = sandbox.ssh("fault", "/usr/lib/openssh/sftp-server")
        assert result.returncode == 1
        assert b"is writable by group or others" in result.stderr
    finally:
        config.chmod(0o644)
    assert healthy(sandbox, upload)


def test_target_program_missing(sandbox: Sandbox, upload: Path) -> None:
    sandbox.write_config(CONFIG + '\n[paths]\nscp = "/usr/bin/no-such-scp"\n')
    try:
        mark = sandbox.log_mark()
        result = sandbox.ssh("fault", "scp -t x", input=b"")
        assert result.returncode == 1
        assert b"cannot run /usr/bin/no-such-scp: No such file or directory" in result.stderr
        assert any("no-such-scp" in line for line in sandbox.log_since(mark, "no-such-scp"))
    finally:
        sandbox.write_config(CONFIG)
    assert healthy(sandbox, upload)


def test_start_directory_missing(sandbox: Sandbox) -> None:
    result = sandbox.ssh("missing", "scp -t x", input=b"")
    assert result.returncode == 1
    assert b"start_dir: " in result.stderr and b"No such file or directory" in result.stderr


def test_disk_full_in_upload_dir(sandbox: Sandbox, upload: Path, tmp_path: Path) -> None:
    user = sandbox.users["fault"]
    small = user.home / "small"
    small.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", str(small)]
    sandbox.run(mount, check=True)
    try:
        big = client_file(tmp_path, "big.bin", os.urandom(400_000))
        legacy = sandbox.run(sandbox.scp_argv("-O", str(big), "fault@sandbox:small/big.bin"))
        assert legacy.returncode != 0
        assert b"No space left on device" in legacy.stderr
        sftp = sandbox.sftp_batch("fault", f"put {big} small/big2.bin\n")
        assert sftp.returncode != 0
        # The partial files can be removed and the directory used again.
        cleanup = sandbox.sftp_batch("fault", "rm small/big.bin\nrm small/big2.bin\n")
        assert cleanup.returncode == 0, cleanup.stderr
        little = client_file(tmp_path, "little.bin", b"fits\n")
        again = sandbox.run(sandbox.scp_argv("-O", str(little), "fault@sandbox:small/little.bin"))
        assert again.returncode == 0, again.stderr
        assert sandbox.path(str(small / "little.bin")).read_bytes() == b"fits\n"
    finally:
        sandbox.run(["umount", "-l", str(small)])


def test_client_killed_mid_transfer(sandbox: Sandbox, upload: Path, tmp_path: Path) -> None:
    big = client_file(tmp_path, "huge.bin", os.urandom(8_000_000))
    client = subprocess.Popen(
        sandbox.inside([*sandbox.scp_argv("-O", "-l", "2000", str(big), "fault@sandbox:huge.bin")]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    target = sandbox.users["fault"].home / "huge.bin"
    while not (target.exists() and target.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    client.kill()
    client.wait()
    # The server side must go away: no process of that user left in the sandbox.
    assert sandbox.wait_gone(sandbox.users["fault"].uid) == []
    assert healthy(sandbox, upload)
