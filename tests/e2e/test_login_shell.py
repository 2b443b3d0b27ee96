"""scponly-py as a real login shell behind a real OpenSSH sshd, driven by real clients.

Every transfer is checked byte for byte; every refusal for its exit status,
its one stderr line and its syslog line.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from scponly_py import shell
from tests.e2e import clients
from tests.e2e.sandbox import ACCESS_CONFIG, ACCESS_USERS, Sandbox

SSHD_EXTRA = """
Match User forced
    ForceCommand {launcher}
"""


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(SSHD_EXTRA, users=(*ACCESS_USERS, "forced"), config=ACCESS_CONFIG)


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """A random binary file (with a space and a quote in its name) on the client side."""
    path = tmp_path / "it's a file.bin"
    path.write_bytes(os.urandom(200_000) + b"\0\r\n\xff end")
    tmp_path.chmod(0o755)
    return path


def home_file(sandbox: Sandbox, user: str, name: str, data: bytes) -> Path:
    """A file the user owns in their home, written as root for the download tests."""
    path = sandbox.users[user].home / name
    path.write_bytes(data)
    os.chown(path, sandbox.users[user].uid, sandbox.users[user].uid)
    return path


def assert_refused(result, sandbox: Sandbox, mark: int, reason: str) -> None:
    """Exit status 1, one stderr line naming the reason, one syslog line saying refuse."""
    stderr = result.stderr.decode()
    assert result.returncode == 1, (result.returncode, stderr)
    assert reason in stderr, stderr
    # Only an scp server request is also answered in scp's protocol (libssh2 reads only that).
    speaks_scp = shell.is_scp_server_request(result.args[-1], None)
    expected = b"\x01" + stderr.encode() if speaks_scp else b""
    assert result.stdout == expected, result.stdout
    lines = [line for line in sandbox.log_since(mark, "decision=refuse") if "scponly-py[" in line]
    assert any("decision=refuse" in line and reason in line for line in lines), lines


# -- transfers with real clients --------------------------------------------------------------


def test_openssh_scp_sftp_mode_round_trip(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    up = sandbox.run(sandbox.scp_argv(str(payload), "alice@sandbox:up-sftp-mode.bin"))
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["alice"].home / "up-sftp-mode.bin").read_bytes() == payload.read_bytes()
    back = tmp_path / "back.bin"
    down = sandbox.run(sandbox.scp_argv("alice@sandbox:up-sftp-mode.bin", str(back)))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == payload.read_bytes()


def test_openssh_scp_legacy_protocol_round_trip(
    sandbox: Sandbox, payload: Path, tmp_path: Path
) -> None:
    mark = sandbox.log_mark()
    up = sandbox.run(sandbox.scp_argv("-O", "-p", str(payload), "alice@sandbox:up-legacy.bin"))
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["alice"].home / "up-legacy.bin").read_bytes() == payload.read_bytes()
    lines = sandbox.log_since(mark, "program=scp")
    assert any('argv="/usr/bin/scp -p -t -- up-legacy.bin"' in line for line in lines), lines
    back = tmp_path / "back.bin"
    down = sandbox.run(sandbox.scp_argv("-O", "alice@sandbox:up-legacy.bin", str(back)))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == payload.read_bytes()


def test_openssh_scp_legacy_recursive(sandbox: Sandbox, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(5000))
    up = sandbox.run(sandbox.scp_argv("-O", "-r", str(tree), "alice@sandbox:"))
    assert up.returncode == 0, up.stderr
    remote = sandbox.users["alice"].home / "tree"
    assert (remote / "a.txt").read_bytes() == b"alpha\n"
    assert (remote / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    copy = tmp_path / "copy"
    copy.mkdir()
    down = sandbox.run(sandbox.scp_argv("-O", "-r", "alice@sandbox:tree", str(copy)))
    assert down.returncode == 0, down.stderr
    assert (copy / "tree" / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()


def test_sftp_batch(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    back = tmp_path / "back.bin"
    result = sandbox.sftp_batch(
        "alice",
        f'mkdir batchdir\nput "{payload}" batchdir/one.bin\n'
        "rename batchdir/one.bin batchdir/two.bin\n"
        f'get batchdir/two.bin "{back}"\nls -l batchdir\n',
    )
    assert result.returncode == 0, result.stderr
    assert back.read_bytes() == payload.read_bytes()
    assert (sandbox.users["alice"].home / "batchdir" / "two.bin").read_bytes() == back.read_bytes()


def test_curl_sftp_and_scp(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    for scheme in ("sftp", "scp"):
        name = f"curl {scheme} it's.bin"
        quoted = name.replace(" ", "%20").replace("'", "%27")
        up = sandbox.run(
            clients.curl(sandbox, "alice", "-T", str(payload), f"{scheme}://127.0.0.1/~/{quoted}")
        )
        assert up.returncode == 0, (scheme, up.stderr)
        assert (sandbox.users["alice"].home / name).read_bytes() == payload.read_bytes()
        back = tmp_path / f"{scheme}.bin"
        down = sandbox.run(
            clients.curl(sandbox, "alice", "-o", str(back), f"{scheme}://127.0.0.1/~/{quoted}")
        )
        assert down.returncode == 0, (scheme, down.stderr)
        assert back.read_bytes() == payload.read_bytes()


@pytest.mark.skipif(shutil.which("pscp") is None, reason="putty-tools not installed")
def test_putty_pscp_scp_mode_and_psftp(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    up = sandbox.run(clients.pscp(sandbox, str(payload), "alice@127.0.0.1:pscp.bin"))
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["alice"].home / "pscp.bin").read_bytes() == payload.read_bytes()
    back = tmp_path / "pscp-back.bin"
    down = sandbox.run(clients.pscp(sandbox, "alice@127.0.0.1:pscp.bin", str(back)))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == payload.read_bytes()

    script = tmp_path / "psftp.txt"
    psftp_back = tmp_path / "psftp-back.bin"
    script.write_text(f'put "{payload}" psftp.bin\nget psftp.bin "{psftp_back}"\n')
    result = sandbox.run(clients.psftp(sandbox, "alice", script))
    assert result.returncode == 0, result.stderr
    assert psftp_back.read_bytes() == payload.read_bytes()


def test_paramiko_sftp_and_scp(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    for protocol in ("sftp", "scp"):
        remote = f"paramiko-{protocol}.bin"
        up = sandbox.run(clients.paramiko(sandbox, "alice", protocol, "put", str(payload), remote))
        assert up.returncode == 0, (protocol, up.stderr)
        assert (sandbox.users["alice"].home / remote).read_bytes() == payload.read_bytes()
        back = tmp_path / remote
        down = sandbox.run(clients.paramiko(sandbox, "alice", protocol, "get", str(back), remote))
        assert down.returncode == 0, (protocol, down.stderr)
        assert back.read_bytes() == payload.read_bytes()


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("id", "command 'id' is not allowed"),
        ("scp -S /tmp/x a b:", "scp option -S is not allowed"),
        ("scp -t x; id", "shell metacharacter ';'"),
        ("scp -f $(id)", "shell metacharacter '$'"),
        ("/bin/bash -i", "command '/bin/bash' is not allowed"),
        ("scp -o ProxyCommand=id -t x", "scp option -o is not allowed"),
        ("scp x y", "scp must be run in server mode with exactly one of -t or -f"),
    ],
)
def test_commands_are_refused(sandbox: Sandbox, command: str, reason: str) -> None:
    mark = sandbox.log_mark()
    result = sandbox.ssh("alice", command)
    assert_refused(result, sandbox, mark, reason)
    assert f"scponly-py: refused: {reason}" in result.stderr.decode()


def test_interactive_login_is_refused_politely(sandbox: Sandbox) -> None:
    mark = sandbox.log_mark()
    result = sandbox.ssh("alice", None, "-tt")
    assert result.returncode == 1
    assert (
        b"This account is restricted to file transfers (scp, sftp)."
        in result.stdout + result.stderr
    )
    lines = sandbox.log_since(mark, "interactive login")
    assert any("mode=interactive" in line and "decision=refuse" in line for line in lines), lines


def test_forced_command_uses_ssh_original_command(
    sandbox: Sandbox, payload: Path, tmp_path: Path
) -> None:
    mark = sandbox.log_mark()
    refused = sandbox.ssh("forced", "id")
    assert_refused(refused, sandbox, mark, "command 'id' is not allowed")
    assert any("mode=forced" in line for line in sandbox.log_since(mark, "mode=forced"))
    up = sandbox.run(sandbox.scp_argv(str(payload), "forced@sandbox:forced.bin"))
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["forced"].home / "forced.bin").read_bytes() == payload.read_bytes()
    legacy = sandbox.run(sandbox.scp_argv("-O", str(payload), "forced@sandbox:forced-o.bin"))
    assert legacy.returncode == 0, legacy.stderr
    assert (sandbox.users["forced"].home / "forced-o.bin").read_bytes() == payload.read_bytes()


def test_user_rc_file_is_not_run(sandbox: Sandbox, payload: Path) -> None:
    home = sandbox.users["alice"].home
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(exist_ok=True)
    marker = home / "RC-RAN"
    (ssh_dir / "rc").write_text(f"touch {marker}\n")
    try:
        mark = sandbox.log_mark()
        result = sandbox.run(sandbox.scp_argv("-O", str(payload), "alice@sandbox:after-rc.bin"))
        assert result.returncode == 0, result.stderr
        assert not marker.exists()
        lines = sandbox.log_since(mark, "~/.ssh/rc")
        assert any("~/.ssh/rc is not run" in line for line in lines), lines
    finally:
        shutil.rmtree(ssh_dir)


# -- access modes ------------------------------------------------------------------------------


def test_read_only_user(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    data = os.urandom(4096)
    home_file(sandbox, "reader", "report.bin", data)
    back = tmp_path / "r.bin"
    down = sandbox.run(sandbox.scp_argv("-O", "reader@sandbox:report.bin", str(back)))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == data
    got = sandbox.sftp_batch("reader", f'get report.bin "{tmp_path / "s.bin"}"\n')
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "s.bin").read_bytes() == data

    mark = sandbox.log_mark()
    legacy_up = sandbox.run(sandbox.scp_argv("-O", str(payload), "reader@sandbox:x.bin"))
    assert legacy_up.returncode != 0
    assert b"uploads are not allowed for this account (read-only)" in legacy_up.stderr
    assert any("read-only" in line for line in sandbox.log_since(mark, "read-only"))
    sftp_up = sandbox.sftp_batch("reader", f'put "{payload}" y.bin\n')
    assert sftp_up.returncode != 0
    assert b"Permission denied" in sftp_up.stderr or b"denied" in sftp_up.stdout
    assert not (sandbox.users["reader"].home / "x.bin").exists()
    assert not (sandbox.users["reader"].home / "y.bin").exists()


def test_write_only_user(sandbox: Sandbox, payload: Path, tmp_path: Path) -> None:
    up = sandbox.sftp_batch("dropbox", f'put "{payload}" drop.bin\n')
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["dropbox"].home / "drop.bin").read_bytes() == payload.read_bytes()
    legacy_up = sandbox.run(sandbox.scp_argv("-O", str(payload), "dropbox@sandbox:drop-o.bin"))
    assert legacy_up.returncode == 0, legacy_up.stderr
    assert (sandbox.users["dropbox"].home / "drop-o.bin").read_bytes() == payload.read_bytes()

    home_file(sandbox, "dropbox", "secret.bin", b"not for download")
    mark = sandbox.log_mark()
    legacy_down = sandbox.run(
        sandbox.scp_argv("-O", "dropbox@sandbox:secret.bin", str(tmp_path / "a"))
    )
    assert legacy_down.returncode != 0
    assert b"downloads are not allowed for this account (write-only)" in legacy_down.stderr
    assert any("write-only" in line for line in sandbox.log_since(mark, "write-only"))
    sftp_down = sandbox.sftp_batch("dropbox", f'get secret.bin "{tmp_path / "b"}"\n')
    assert sftp_down.returncode != 0
    listing = sandbox.sftp_batch("dropbox", "ls\n")
    assert b"Permission denied" in listing.stderr
    assert b"drop.bin" not in listing.stdout
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists() or (tmp_path / "b").read_bytes() == b""


# -- the interpreter cannot be steered by the user ---------------------------------------------


def plant_python_hooks(home: Path, marker: Path, uid: int) -> None:
    """What a hostile user uploads: a .pth file, sitecustomize and usercustomize in user site."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = home / ".local" / "lib" / version / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    hook = f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n"
    (site / "evil.pth").write_text(hook)
    (site / "sitecustomize.py").write_text(hook)
    (site / "usercustomize.py").write_text(hook)
    (home / "startup.py").write_text(hook)
    for directory, _, files in os.walk(home / ".local"):
        os.chown(directory, uid, uid)
        for name in files:
            os.chown(os.path.join(directory, name), uid, uid)


def test_uploaded_python_hooks_and_python_variables_do_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    user = sandbox.users["alice"]
    marker = user.home / "PWNED"
    plant_python_hooks(user.home, marker, user.uid)
    python_env = {
        "PYTHONSTARTUP": str(user.home / "startup.py"),
        "PYTHONPATH": str(user.home / ".local"),
        "PYTHONINSPECT": "1",
        "PYTHONUSERBASE": str(user.home / ".local"),
    }
    send_env = [f"-oSendEnv={name}" for name in python_env]

    # Control: the same hooks do run in a non-isolated interpreter as that user.
    control = sandbox.run(
        ["setpriv", f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups",
         "env", f"HOME={user.home}", "/usr/bin/python3", "-c", "pass"],
        cwd="/",
    )  # fmt: skip
    assert control.returncode == 0, control.stderr
    assert marker.exists(), "control failed: the planted .pth did not run without -I"
    marker.unlink()

    env = {**os.environ, **python_env}
    sftp = sandbox.run(
        ["sftp", "-F", str(sandbox.ssh_config), *send_env, "-b", "-", "alice@sandbox"],
        input=b"ls\n",
        env=env,
    )
    assert sftp.returncode == 0, sftp.stderr
    refused = sandbox.run([*sandbox.ssh_argv("alice", *send_env), "id"], env=env)
    assert refused.returncode == 1
    assert not marker.exists()
    shutil.rmtree(user.home / ".local")


def test_pip_console_script_refuses_to_be_a_login_shell(sandbox: Sandbox) -> None:
    """pip's `scponly-py` entry has no -I: used as a login shell it must fail closed."""
    console_script = Path(sys.executable).with_name("scponly-py")
    if not console_script.exists():
        pytest.skip("the scponly-py console script is not installed next to this interpreter")
    sandbox.add_user("unsafe", shell=str(console_script))
    result = sandbox.ssh("unsafe", "/usr/lib/openssh/sftp-server")
    assert result.returncode == 1
    assert b"not running isolated" in result.stderr
