"""unison, svn+ssh and WinSCP's SCP-mode session through a real sshd, with real clients."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp"]

[user.uni]
programs = ["unison"]

[user.svnuser]
programs = ["svnserve"]
svn_root = "{svn_root}"
svn_tunnel_user = true

[user.svnreader]
programs = ["svnserve"]
svn_root = "{svn_root}"
access = "read-only"

[user.dropper]
start_dir = "drop"

[user.win]
programs = ["winscp", "scp"]
"""
END = ' ; echo "WinSCP: this is end-of-file:$status"'
BEGIN = 'echo "WinSCP: this is begin-of-file" ; '


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory()
    for name in ("uni", "svnuser", "svnreader", "win", "dropper"):
        sandbox.add_user(name)
    svn_root = sandbox.root / "svn"
    svn_root.mkdir(mode=0o755)
    if shutil.which("svnadmin") is not None:
        # As an administrator sets it up: root's, except what svnserve writes on a commit.
        subprocess.run(["svnadmin", "create", str(svn_root / "project")], check=True)
        for writable in ("db", "locks"):
            chown_tree(svn_root / "project" / writable, sandbox.users["svnuser"].uid)
    drop = sandbox.users["dropper"].home / "drop"
    drop.mkdir()
    os.chown(drop, sandbox.users["dropper"].uid, sandbox.users["dropper"].uid)
    sandbox.write_config(CONFIG.replace("{svn_root}", str(svn_root)))
    return sandbox


def chown_tree(path: Path, uid: int) -> None:
    for directory, _, files in os.walk(path):
        os.chown(directory, uid, uid)
        for name in files:
            os.chown(os.path.join(directory, name), uid, uid)


def check_config(sandbox: Sandbox) -> subprocess.CompletedProcess[bytes]:
    return sandbox.run([sys.executable, "-I", "-m", "scponly_py", "check-config"])


@pytest.mark.skipif(shutil.which("unison") is None, reason="unison not installed")
def test_unison_sync_both_ways(sandbox: Sandbox, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "from-client.txt").write_text("client side\n")
    remote = sandbox.users["uni"].home / "sync"
    remote.mkdir()
    (remote / "from-server.bin").write_bytes(os.urandom(20_000))
    chown_tree(remote, sandbox.users["uni"].uid)
    env = {**os.environ, "HOME": str(tmp_path), "UNISON": str(tmp_path / ".unison")}
    mark = sandbox.log_mark()
    result = sandbox.run(
        ["unison", "-batch", "-sshcmd", "ssh", "-sshargs", f"-F {sandbox.ssh_config}",
         str(local), "ssh://uni@sandbox/sync"],
        env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert (remote / "from-client.txt").read_text() == "client side\n"
    assert (local / "from-server.bin").read_bytes() == (remote / "from-server.bin").read_bytes()
    lines = sandbox.log_since(mark, "program=unison")
    assert any("decision=allow" in line and "program=unison" in line for line in lines), lines


def test_unison_sshcmd_injection_is_refused(sandbox: Sandbox) -> None:
    for command in ("unison -server -sshcmd /tmp/x", "unison -sshargs=-oProxyCommand=id -server"):
        result = sandbox.ssh("uni", command, input=b"")
        assert result.returncode == 1
        assert b"scponly-py: refused: " in result.stderr


@pytest.mark.skipif(shutil.which("svn") is None, reason="subversion not installed")
def test_svn_checkout_commit_and_read_only(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SVN_SSH": f"ssh -F {sandbox.ssh_config}"}
    work = tmp_path / "work"
    svn = ["svn", "--non-interactive", "--config-dir", str(tmp_path / ".subversion")]
    checkout = sandbox.run(
        [*svn, "checkout", "svn+ssh://svnuser@sandbox/project", str(work)], env=env
    )
    assert checkout.returncode == 0, checkout.stderr
    (work / "README").write_text("hello svn\n")
    assert sandbox.run([*svn, "add", str(work / "README")], env=env).returncode == 0
    commit = sandbox.run([*svn, "commit", "-m", "first", str(work)], env=env)
    assert commit.returncode == 0, commit.stderr
    log = sandbox.run([*svn, "log", "svn+ssh://svnuser@sandbox/project"], env=env)
    assert b"first" in log.stdout
    # --tunnel-user made the commit author the login name, not what the client claims.
    assert b"svnuser" in log.stdout

    second = tmp_path / "second"
    read = sandbox.run(
        [*svn, "checkout", "svn+ssh://svnreader@sandbox/project", str(second)], env=env
    )
    assert read.returncode == 0, read.stderr
    assert (second / "README").read_text() == "hello svn\n"
    (second / "README").write_text("changed\n")
    denied = sandbox.run([*svn, "commit", "-m", "nope", str(second)], env=env)
    assert denied.returncode != 0


@pytest.mark.skipif(shutil.which("svn") is None, reason="subversion not installed")
def test_svn_is_refused_while_the_account_can_write_a_hook(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The hole a relative svn_root opened, by hand: hooks/ the account owns runs its code."""
    hooks = sandbox.root / "svn" / "project" / "hooks"
    user = sandbox.users["svnuser"]
    env = {**os.environ, "HOME": str(tmp_path), "SVN_SSH": f"ssh -F {sandbox.ssh_config}"}
    svn = ["svn", "--non-interactive", "--config-dir", str(tmp_path / ".subversion")]
    os.chown(hooks, user.uid, user.uid)
    try:
        checked = check_config(sandbox)
        assert checked.returncode == 1
        lines = checked.stderr.decode().splitlines()
        assert lines == [
            f"scponly-py: check-config: user svnreader: svn_root: {hooks} is not owned by root "
            f"(uid {user.uid}) (svnserve refused)",
            f"scponly-py: check-config: user svnuser: svn_root: {hooks} is not owned by root "
            f"(uid {user.uid}) (svnserve refused)",
        ]
        mark = sandbox.log_mark()
        listing = sandbox.run([*svn, "ls", "svn+ssh://svnuser@sandbox/project"], env=env)
        assert listing.returncode != 0
        assert f"svn_root: {hooks} is not owned by root".encode() in listing.stderr
        assert sandbox.log_since(mark, "decision=refuse")
    finally:
        os.chown(hooks, 0, 0)
    assert check_config(sandbox).returncode == 0
    listing = sandbox.run([*svn, "ls", "svn+ssh://svnuser@sandbox/project"], env=env)
    assert listing.returncode == 0, listing.stderr


def test_a_start_dir_others_can_write_refuses_the_login(sandbox: Sandbox) -> None:
    """Others could plant symlinks there that the account's uploads would follow."""
    drop = sandbox.users["dropper"].home / "drop"
    drop.chmod(0o777)
    try:
        checked = check_config(sandbox)
        assert checked.returncode == 1
        assert checked.stderr.decode().splitlines() == [
            f"scponly-py: check-config: user dropper: start_dir: {drop} is writable by group "
            "or others (mode 0777) (every login refused)"
        ]
        result = sandbox.ssh("dropper", "scp -t x", input=b"")
        assert result.returncode == 1
        assert f"start_dir: {drop} is writable by group or others".encode() in result.stderr
    finally:
        drop.chmod(0o755)
    assert check_config(sandbox).returncode == 0
    session = sandbox.sftp_batch("dropper", "pwd\n")
    assert session.returncode == 0, session.stderr
    assert f"Remote working directory: {drop}".encode() in session.stdout


class WinScpSession:
    """Type lines into a shell session as WinSCP's SCP mode does; read up to each marker."""

    def __init__(self, sandbox: Sandbox, user: str) -> None:
        self.process = subprocess.Popen(
            sandbox.inside(sandbox.ssh_argv(user, "-T")),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def send(self, line: str, data: bytes = b"") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n" + data)
        self.process.stdin.flush()

    def read_until_end(self, timeout: float = 20) -> bytes:
        assert self.process.stdout is not None
        output = b""
        deadline = time.monotonic() + timeout
        while b"WinSCP: this is end-of-file:" not in output or not output.endswith(b"\n"):
            assert time.monotonic() < deadline, output
            chunk = os.read(self.process.stdout.fileno(), 65536)
            assert chunk, output
            output += chunk
        return output

    def command(self, line: str) -> bytes:
        self.send(line)
        return self.read_until_end()

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=20)


def test_winscp_scp_mode_session(sandbox: Sandbox) -> None:
    home = sandbox.users["win"].home
    (home / "docs").mkdir()
    chown_tree(home / "docs", sandbox.users["win"].uid)
    session = WinScpSession(sandbox, "win")
    try:
        assert session.command('echo "$status" ; echo "WinSCP: this is end-of-file:0"').startswith(
            b"0\n"
        )
        assert session.command("pwd" + END) == f"{home}\nWinSCP: this is end-of-file:0\n".encode()
        assert session.command(f'cd "{home}/docs"' + END).endswith(b"end-of-file:0\n")
        assert session.command("pwd" + END).startswith(f"{home}/docs\n".encode())
        # An uploaded ./cd must never run: cd is handled internally.
        (home / "docs" / "cd").write_text("#!/bin/sh\ntouch PWNED\n")
        (home / "docs" / "cd").chmod(0o755)
        assert session.command('cd "."' + END).endswith(b"end-of-file:0\n")
        assert not (home / "docs" / "PWNED").exists()
        # Upload one file with the legacy scp protocol inside the session.
        payload = os.urandom(5000)
        session.send(BEGIN + f'scp -r -d -t "{home}/docs"' + END)
        assert session.process.stdout is not None
        begin = os.read(session.process.stdout.fileno(), 4096)
        assert begin.startswith(b"WinSCP: this is begin-of-file\n")
        if not begin.endswith(b"\0"):
            assert os.read(session.process.stdout.fileno(), 1) == b"\0"
        session.send(f"C0644 {len(payload)} up.bin", payload + b"\0")
        assert os.read(session.process.stdout.fileno(), 1) == b"\0"  # header accepted
        assert os.read(session.process.stdout.fileno(), 1) == b"\0"  # data accepted
        session.process.stdin.write(b"E\n")  # type: ignore[union-attr]
        session.process.stdin.flush()  # type: ignore[union-attr]
        session.process.stdin.close()  # type: ignore[union-attr]
        assert session.process.wait(timeout=20) is not None
        assert (home / "docs" / "up.bin").read_bytes() == payload
    finally:
        if session.process.poll() is None:
            session.process.kill()

    again = WinScpSession(sandbox, "win")
    try:
        listing = again.command(f'ls -la "{home}/docs"' + END)
        assert b"up.bin" in listing
        refused = again.command("id" + END)
        assert refused.endswith(b"end-of-file:1\n")
    finally:
        again.close()
