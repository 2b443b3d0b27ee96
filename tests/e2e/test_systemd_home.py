"""A home systemd --user could read from, on a systemd host: refused, then fixed by the doctor.

On a systemd host sshd's PAM session (pam_systemd in Debian's common-session) has logind start
`systemd --user` at login, which runs units from ~/.config/systemd/user without the shell. There
is no real systemd in CI: the sandbox's /run is a private tmpfs, so `mkdir /run/systemd/system`
there makes the shell see a systemd host (sd_booted) while no user manager ever starts. What is
tested is therefore the defence itself: the shell refuses such an account, `scponly-py-setup
check --user NAME --fix` (run inside the namespace) makes the home root's with ~/files for
uploads, after which sftp works and cannot create what the user manager would read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp"]
"""


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory(stock=True)
    sandbox.run(["mkdir", "-p", "/run/systemd/system"], check=True)
    sandbox.add_stock_user("carol", route="usermod")
    sandbox.add_stock_user("dave", route="usermod")
    sandbox.write_config(CONFIG)
    return sandbox


def fix(sandbox: Sandbox, user: str) -> subprocess.CompletedProcess[bytes]:
    """What the README tells the administrator to run after `usermod -s`."""
    result = sandbox.setup("check", "--user", user, "--fix", "--no-sshd")
    assert result.returncode in (0, 3), result.stderr
    assert b"Traceback" not in result.stderr
    return result


def assert_refused(sandbox: Sandbox, user: str, reason: str) -> None:
    mark = sandbox.log_mark()
    result = sandbox.ssh(user, "scp -f x")
    assert result.returncode == 1
    line = result.stderr.decode()
    assert line.startswith("scponly-py: refused: ") and line.count("\n") == 1, line
    assert reason in line and f"scponly-py-setup check --user {user} --fix" in line
    assert any("decision=refuse" in entry for entry in sandbox.log_since(mark, reason))
    assert sandbox.sftp_batch(user, "ls\n").returncode != 0


def test_user_owned_home_is_refused_then_fixed(sandbox: Sandbox, tmp_path: Path) -> None:
    assert_refused(sandbox, "carol", "/home/carol is owned by uid")
    dry = sandbox.setup("check", "--user", "carol", "--dry-run", "--no-sshd")
    assert b"would fix: chown 0:0 /home/carol (was uid" in dry.stdout
    assert sandbox.path("/home/carol").stat().st_uid != 0
    out = fix(sandbox, "carol").stdout.decode()
    assert "fixed: chown 0:0 /home/carol (was uid" in out
    assert "fixed: mkdir -m 0755 /home/carol/files" in out
    assert "note: /home/carol keeps" in out and ".bashrc" in out
    tmp_path.chmod(0o755)
    local = tmp_path / "up.txt"
    local.write_text("data\n")
    local.chmod(0o644)
    result = sandbox.sftp_batch("carol", f'put "{local}" files/up.txt\n')
    assert result.returncode == 0, result.stderr
    uploaded = sandbox.path("/home/carol/files/up.txt")
    assert uploaded.read_text() == "data\n"
    assert uploaded.stat().st_uid == sandbox.users["carol"].uid
    unit = tmp_path / "x.service"
    unit.write_text("[Service]\nExecStart=/bin/touch /home/carol/files/pwned\n")
    unit.chmod(0o644)
    for batch in (f'put "{unit}" .config/systemd/user/x.service\n', "mkdir .config\n"):
        assert sandbox.sftp_batch("carol", batch).returncode != 0
    assert not sandbox.path("/home/carol/.config").exists()


def test_user_files_in_config_are_reported_not_changed(sandbox: Sandbox) -> None:
    uid = sandbox.users["dave"].uid
    config = sandbox.path("/home/dave/.config")
    config.mkdir(mode=0o700)
    (config / "app.conf").write_text("x\n")
    for path in (config, config / "app.conf"):
        subprocess.run(["chown", f"{uid}:{uid}", str(path)], check=True)
    out = fix(sandbox, "dave").stdout.decode()
    assert (
        "note: /home/dave/.config holds 1 non-directories (e.g. /home/dave/.config/app.conf)" in out
    )
    assert "fixed: chown 0:0 /home/dave (was uid" in out
    assert config.stat().st_uid == uid and (config / "app.conf").read_text() == "x\n"
    assert_refused(sandbox, "dave", "/home/dave/.config is owned by uid")
