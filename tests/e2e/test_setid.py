"""Uploaded files never carry set-id bits: sftp, scp (both protocols) and rsync through sshd.

The attack (issue 12): an upload account uploads a program and makes it set-user-ID (or
set-group-ID), so any other local user who runs it runs as the upload account. Each client
here is the real one; what it prints is what docs/design.md and scponly-py(8) promise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]
"""
PROGRAM = b"#!/bin/sh\nid -u\n"
SET_ID = 0o6000
# A hostile SFTP client: the mode in the open request itself, then fsetstat on the handle.
RAW_SFTP = """
import sys, paramiko
client = paramiko.SSHClient()
client.load_host_keys(sys.argv[2])
client.connect("127.0.0.1", username="uploader", key_filename=sys.argv[1], allow_agent=False,
               look_for_keys=False, timeout=20)
sftp = client.open_sftp()
attributes = paramiko.SFTPAttributes()
attributes.st_mode = 0o4755
for name, call in (
    ("open-with-mode", lambda: sftp._request(paramiko.sftp.CMD_OPEN, "raw-new", 0x1A, attributes)),
    ("fsetstat", lambda: sftp.open("raw-fs", "w").chmod(0o6755)),
    ("setstat", lambda: sftp.chmod("raw-fs", 0o2755)),
):
    try:
        call()
        print(name, "ok")
    except OSError as error:
        print(name, error.errno)
"""


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(users=("uploader",), config=CONFIG)


@pytest.fixture(params=[0o4755, 0o2755, 0o6755], ids=["setuid", "setgid", "both"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A local program with set-id bits, readable by the client (which runs as root)."""
    tmp_path.chmod(0o755)
    path = tmp_path / "program"
    path.write_bytes(PROGRAM)
    path.chmod(request.param)
    return path


def landed(sandbox: Sandbox, name: str) -> Path:
    return sandbox.users["uploader"].home / name


def rsync(sandbox: Sandbox, *args: str):
    return sandbox.run(["rsync", "-e", f"ssh -F {sandbox.ssh_config}", *args], timeout=120)


def test_sftp_chmod_set_id_is_refused(sandbox: Sandbox, source: Path) -> None:
    name = f"sftp-{source.stat().st_mode & 0o7777:o}"
    mode = f"{source.stat().st_mode & 0o7777:o}"
    result = sandbox.sftp_batch("uploader", f"put {source} {name}\nchmod {mode} {name}\n")
    assert result.returncode == 1
    assert f'remote setstat "{landed(sandbox, name)}": Permission denied' in result.stderr.decode()
    assert landed(sandbox, name).read_bytes() == PROGRAM
    assert landed(sandbox, name).stat().st_mode & SET_ID == 0
    # Ordinary modes still work, so the refusal is the filter's, not a read-only tree.
    again = sandbox.sftp_batch("uploader", f"chmod 700 {name}\nchmod 1755 {name}\n")
    assert again.returncode == 0, again.stderr
    assert landed(sandbox, name).stat().st_mode & 0o7777 == 0o1755


def test_scp_over_sftp_uploads_without_set_id_bits(sandbox: Sandbox, source: Path) -> None:
    name = f"scp-p-{source.stat().st_mode & 0o7777:o}"
    result = sandbox.run(sandbox.scp_argv("-p", str(source), f"uploader@sandbox:{name}"))
    # OpenSSH's sftp client sends only the permission bits: nothing to refuse.
    assert result.returncode == 0, result.stderr
    assert landed(sandbox, name).read_bytes() == PROGRAM
    assert landed(sandbox, name).stat().st_mode & 0o7777 == 0o755


def test_legacy_scp_p_refuses_the_set_id_file(sandbox: Sandbox, source: Path) -> None:
    name = f"scp-O-p-{source.stat().st_mode & 0o7777:o}"
    result = sandbox.run(sandbox.scp_argv("-O", "-p", str(source), f"uploader@sandbox:{name}"))
    # scp's sink creates the file with the sent mode: open(O_CREAT, 04755) fails, so that
    # file is not written at all and the client names it.
    assert result.returncode == 1
    assert result.stderr.decode() == f"scp: {name}: Operation not permitted\n"
    assert not landed(sandbox, name).exists()
    tree = source.parent / "tree"
    tree.mkdir()
    (tree / "a-readme").write_text("data\n")
    source.rename(tree / "program")
    (tree / "z-readme").write_text("data\n")
    result = sandbox.run(sandbox.scp_argv("-O", "-rp", str(tree), f"uploader@sandbox:{name}"))
    assert result.returncode == 1
    assert result.stderr.decode() == f"scp: {name}/program: Operation not permitted\n"
    assert sorted(path.name for path in landed(sandbox, name).iterdir()) == ["a-readme", "z-readme"]
    source = tree / "program"
    plain = f"scp-O-{source.stat().st_mode & 0o7777:o}"
    result = sandbox.run(sandbox.scp_argv("-O", str(source), f"uploader@sandbox:{plain}"))
    assert result.returncode == 0, result.stderr  # without -p, scp drops the set-id bits
    assert landed(sandbox, plain).stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize("option", ["-p", "-a"])
def test_rsync_keeps_the_data_without_set_id_bits(
    sandbox: Sandbox, source: Path, option: str
) -> None:
    name = f"rsync{option}-{source.stat().st_mode & 0o7777:o}"
    result = rsync(sandbox, option, str(source), f"uploader@sandbox:{name}")
    # The receiver's chmod of its temporary file fails; rsync still renames it into place.
    assert result.returncode == 23
    assert b"failed to set permissions on" in result.stderr
    assert b"Operation not permitted (1)" in result.stderr
    assert landed(sandbox, name).read_bytes() == PROGRAM
    assert landed(sandbox, name).stat().st_mode & 0o7777 == 0o700


def test_a_hostile_sftp_client_gets_permission_denied(sandbox: Sandbox) -> None:
    result = sandbox.run(
        [sys.executable, "-c", RAW_SFTP, str(sandbox.client_key), str(sandbox.root / "known_hosts")]
    )
    assert result.returncode == 0, result.stderr
    # EACCES: sftp-server reports EPERM as SSH2_FX_PERMISSION_DENIED.
    assert result.stdout.decode().split("\n") == [
        "open-with-mode 13", "fsetstat 13", "setstat 13", ""
    ]  # fmt: skip
    assert not landed(sandbox, "raw-new").exists()
    assert landed(sandbox, "raw-fs").stat().st_mode & SET_ID == 0
