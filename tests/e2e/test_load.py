"""Load: 200 concurrent sessions (scp legacy, scp over SFTP, sftp, rsync; up and down) through one
real sshd to several users; every file is checked by SHA-256 and no session may fail. Transfer
logging is on (the default): every session has its end line, and every file moved over SFTP its
close line with the file's size."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from setup_chroot import logread
from tests.e2e.sandbox import Sandbox

SESSIONS = int(os.environ.get("SCPONLY_PY_LOAD_SESSIONS", "200"))
USERS = ("load0", "load1", "load2", "load3")
KINDS = ("scp-legacy-up", "scp-sftp-up", "sftp-up", "rsync-up", "scp-legacy-down", "sftp-down")
CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.load
def test_200_concurrent_sessions(sandbox_factory, tmp_path: Path) -> None:
    sandbox: Sandbox = sandbox_factory("MaxStartups 400\n")
    for name in USERS:
        sandbox.add_user(name)
        seed = sandbox.users[name].home / "seed.bin"
        seed.write_bytes(os.urandom(48_000))
        os.chown(seed, sandbox.users[name].uid, sandbox.users[name].uid)
    sandbox.write_config(CONFIG)
    tmp_path.chmod(0o755)

    ssh = f"ssh -F {sandbox.ssh_config}"
    jobs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    closes: list[tuple[str, str, str, str]] = []  # (user, path suffix, field, bytes) expected
    started = time.monotonic()
    for number in range(SESSIONS):
        user = USERS[number % len(USERS)]
        kind = KINDS[number % len(KINDS)]
        home = sandbox.users[user].home
        local = tmp_path / f"{number}.bin"
        remote_name = f"up-{number}.bin"
        if kind.endswith("-up"):
            local.write_bytes(os.urandom(16_000 + number))
            remote = home / remote_name
        else:
            remote = home / "seed.bin"
        sftp = ["sftp", "-q", "-F", str(sandbox.ssh_config), "-b", "-", f"{user}@sandbox"]
        argv = {
            "scp-legacy-up": sandbox.scp_argv("-O", str(local), f"{user}@sandbox:{remote_name}"),
            "scp-sftp-up": sandbox.scp_argv(str(local), f"{user}@sandbox:{remote_name}"),
            "sftp-up": sftp,
            "rsync-up": ["rsync", "-e", ssh, str(local), f"{user}@sandbox:{remote_name}"],
            "scp-legacy-down": sandbox.scp_argv("-O", f"{user}@sandbox:seed.bin", str(local)),
            "sftp-down": sftp,
        }[kind]
        script = {
            "sftp-up": f"put {local} {remote_name}\n",
            "sftp-down": f"get seed.bin {local}\n",
        }.get(kind, "")
        batch = tmp_path / f"{number}.batch"
        batch.write_text(script)
        with batch.open("rb") as stdin:
            process = subprocess.Popen(
                sandbox.inside(argv),
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        jobs.append((process, local, remote))
        if kind in ("scp-sftp-up", "sftp-up"):
            closes.append((user, remote_name, "bytes_written", str(16_000 + number)))
        elif kind == "sftp-down":
            closes.append((user, "seed.bin", "bytes_read", "48000"))

    failures = []
    for process, local, remote in jobs:
        try:
            _, stderr = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            process.kill()
            failures.append(f"{local.name}: timeout")
            continue
        if process.returncode != 0:
            failures.append(f"{local.name}: exit {process.returncode}: {stderr.decode()[-200:]}")
        elif not local.exists() or not remote.exists() or digest(local) != digest(remote):
            failures.append(f"{local.name}: checksum mismatch")
    elapsed = time.monotonic() - started
    print(f"\nload: {SESSIONS} concurrent sessions, {len(failures)} failures, {elapsed:.1f} s")
    assert not failures, failures[:10]
    allowed = [line for line in sandbox.log_since(0) if "decision=allow" in line]
    assert len(allowed) == SESSIONS
    deadline = time.monotonic() + 30
    while True:  # the supervisors' end lines follow their sessions' last bytes
        lines = [fields for fields in map(logread.parse, sandbox.log_since(0)) if fields]
        ends = [fields for fields in lines if fields.get("event") == "end"]
        if len(ends) >= SESSIONS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    sessions = {fields["session"] for fields in lines if fields.get("decision") == "allow"}
    assert len(sessions) == SESSIONS
    assert sorted(fields["session"] for fields in ends) == sorted(sessions)
    assert all(fields.get("status") == "0" and fields["dropped"] == "0" for fields in ends), [
        fields for fields in ends if fields.get("status") != "0" or fields["dropped"] != "0"
    ][:5]
    found = sorted(
        (str(fields["user"]), str(fields["path"]).rsplit("/", 1)[-1], key, str(fields[key]))
        for fields in lines
        if fields.get("event") == "close"
        for key in ("bytes_written" if fields["bytes_written"] != "0" else "bytes_read",)
    )
    assert found == sorted(closes), (len(found), len(closes))
