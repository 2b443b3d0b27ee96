"""The account around the shell, on the distribution's own sshd_config and PAM stack.

The sandbox runs sshd from the host's /etc/ssh/sshd_config and /etc/pam.d/sshd
(UsePAM yes; on Debian and Ubuntu pam_env reads ~/.pam_environment), with
accounts made as the README says (`useradd -m` + `usermod -s`, or `useradd -s`)
and the key in the user's own ~/.ssh/authorized_keys. Each attack is planted by
the restricted user herself, over sftp, then she logs in again: a library whose
constructor (and LD_AUDIT entry point) appends to a marker file must never run.
The control test shows the same plant does run when the login shell is the bare
launcher script, so a marker that stays absent means the defence held.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp"]
log_level = "debug"
"""
PRELOAD_SOURCE = r"""
#include <fcntl.h>
#include <unistd.h>
static void mark(void)
{
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        (void)!write(fd, "ran\n", 4);
        close(fd);
    }
}
__attribute__((constructor)) static void constructor(void) { mark(); }
unsigned int la_version(unsigned int version) { mark(); return version; }
"""
CHILD_NAMES = {
    "HOME",
    "LANG",
    "LANGUAGE",
    "LOGNAME",
    "PATH",
    "SSH_CLIENT",
    "SSH_CONNECTION",
    "USER",
}
# What pam_env (user_readenv=1) reads; every variable the dynamic loader or glibc honours.
LOADER_PLANTS = {
    "LD_PRELOAD": "LD_PRELOAD DEFAULT={home}/x.so",
    "LD_AUDIT": "LD_AUDIT DEFAULT={home}/x.so",
}
OTHER_PLANTS = (
    "LD_LIBRARY_PATH DEFAULT={home}",
    "GCONV_PATH DEFAULT={home}",
    "LOCPATH DEFAULT={home}",
    "MALLOC_TRACE DEFAULT={home}/trace",
    "GLIBC_TUNABLES DEFAULT=glibc.malloc.check=3",
    "PYTHONSTARTUP DEFAULT={home}/x.py",
    "PYTHONPATH DEFAULT={home}",
    "PYTHONINSPECT DEFAULT=1",
    "BASH_ENV DEFAULT={home}/x.sh",
    "TZDIR DEFAULT={home}",
)


@pytest.fixture(scope="module")
def preload(tmp_path_factory) -> Path:
    """The attacker's library, built once; MARKER is ./pwned in whichever home loads it."""
    directory = tmp_path_factory.mktemp("preload")
    directory.chmod(0o755)
    source = directory / "x.c"
    source.write_text(PRELOAD_SOURCE)
    library = directory / "x.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", '-DMARKER="pwned"', str(source), "-o", str(library)],
        check=True,
    )
    library.chmod(0o755)
    return library


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory(stock=True)
    sandbox.add_stock_user("alice", route="usermod")
    sandbox.add_stock_user("bert", route="useradd")
    sandbox.write_config(CONFIG)
    return sandbox


def upload(sandbox: Sandbox, user: str, files: dict[str, bytes], tmp_path: Path) -> None:
    """The user herself puts `files` (name -> content) into her home over sftp."""
    tmp_path.chmod(0o755)
    commands = []
    for name, data in files.items():
        local = tmp_path / name.replace("/", "_")
        local.write_bytes(data)
        local.chmod(0o644)
        commands.append(f'put "{local}" "{name}"')
    result = sandbox.sftp_batch(user, "\n".join(commands) + "\n")
    assert result.returncode == 0, result.stderr


def download_works(sandbox: Sandbox, user: str, tmp_path: Path) -> None:
    """A real transfer in each session kind: scp (SFTP), scp -O (exec) and sftp."""
    for options in ((), ("-O",)):
        back = tmp_path / "back"
        result = sandbox.run(sandbox.scp_argv(*options, f"{user}@sandbox:x.so", str(back)))
        assert result.returncode == 0, (options, result.stderr)
    assert sandbox.sftp_batch(user, "ls\n").returncode == 0


def marker(sandbox: Sandbox, user: str) -> Path:
    return sandbox.path(f"/home/{user}/pwned")


def clean(sandbox: Sandbox, user: str, *names: str) -> None:
    for name in ("pwned", *names):
        sandbox.path(f"/home/{user}/{name}").unlink(missing_ok=True)


def test_stock_server_reads_user_environment(sandbox: Sandbox) -> None:
    """The premise: this host's stock PAM stack for sshd reads ~/.pam_environment."""
    pam = sandbox.path("/etc/pam.d/sshd").read_text()
    if "user_readenv=1" not in pam:
        pytest.skip("this distribution's /etc/pam.d/sshd does not read ~/.pam_environment")
    assert "UsePAM yes" in sandbox.path("/etc/ssh/sshd_config").read_text()


def test_control_bare_launcher_runs_the_plant(
    sandbox: Sandbox, preload: Path, tmp_path: Path
) -> None:
    """Without the front (the launcher script as the login shell) the plant runs: the
    marker appears although the shell then refuses the login."""
    from setup_chroot import launcher  # noqa: PLC0415 - the tool under test

    script = launcher.script_path(str(sandbox.launcher))
    user = sandbox.add_stock_user("control", script)
    sandbox.run(["usermod", "-s", str(sandbox.launcher), "control"], check=True)
    upload(
        sandbox,
        "control",
        {
            "x.so": preload.read_bytes(),
            ".pam_environment": b"LD_PRELOAD DEFAULT=/home/control/x.so\n",
        },
        tmp_path,
    )
    sandbox.run(["usermod", "-s", script, user.name], check=True)
    refused = sandbox.ssh(user.name, "scp -f x.so")
    assert refused.returncode == 1
    assert b"not started through its front" in refused.stderr
    assert marker(sandbox, user.name).exists()


@pytest.mark.parametrize("user", ["alice", "bert"])
@pytest.mark.parametrize("variable", sorted(LOADER_PLANTS))
def test_pam_environment_loader_plant_never_runs(
    sandbox: Sandbox, preload: Path, tmp_path: Path, user: str, variable: str
) -> None:
    home = f"/home/{user}"
    plant = LOADER_PLANTS[variable].format(home=home) + "\n"
    upload(
        sandbox, user, {"x.so": preload.read_bytes(), ".pam_environment": plant.encode()}, tmp_path
    )
    try:
        download_works(sandbox, user, tmp_path)
        assert not marker(sandbox, user).exists()
    finally:
        clean(sandbox, user, ".pam_environment")


def test_pam_environment_reaches_no_program(
    sandbox: Sandbox, preload: Path, tmp_path: Path
) -> None:
    """Every other variable a plant could set: the login works and the exec'd program's
    environment (logged with log_level = "debug") holds only the shell's own."""
    plants = "".join(line.format(home="/home/alice") + "\n" for line in OTHER_PLANTS)
    upload(
        sandbox,
        "alice",
        {"x.so": preload.read_bytes(), ".pam_environment": plants.encode()},
        tmp_path,
    )
    try:
        mark = sandbox.log_mark()
        download_works(sandbox, "alice", tmp_path)
        lines = [line for line in sandbox.log_since(mark, "decision=allow") if "env=" in line]
        assert lines
        for line in lines:
            names = line.split(" env=", 1)[1].split(" ", 1)[0].split(",")
            foreign = {name for name in names if name not in CHILD_NAMES and name[:3] != "LC_"}
            assert not foreign, line
        assert not marker(sandbox, "alice").exists()
    finally:
        clean(sandbox, "alice", ".pam_environment")


def test_ssh_rc_never_runs(sandbox: Sandbox, preload: Path, tmp_path: Path) -> None:
    """sshd runs ~/.ssh/rc through the login shell (`shell -c '/bin/sh .ssh/rc'`): refused."""
    upload(sandbox, "alice", {"x.so": preload.read_bytes(), ".ssh/rc": b"touch pwned\n"}, tmp_path)
    try:
        mark = sandbox.log_mark()
        download_works(sandbox, "alice", tmp_path)
        assert not marker(sandbox, "alice").exists()
        assert any(
            "decision=refuse" in line and ".ssh/rc" in line
            for line in sandbox.log_since(mark, ".ssh/rc")
        )
    finally:
        clean(sandbox, "alice", ".ssh/rc")


def test_authorized_keys_command_option_goes_through_the_shell(
    sandbox: Sandbox, preload: Path, tmp_path: Path
) -> None:
    """alice rewrites her own authorized_keys with command="..." : sshd runs it with
    `shell -c`, so the shell judges it like any other command."""
    keys = sandbox.path("/home/alice/.ssh/authorized_keys")
    original = keys.read_bytes()
    upload(
        sandbox, "alice", {".ssh/authorized_keys": b'command="touch pwned" ' + original}, tmp_path
    )
    try:
        result = sandbox.ssh("alice", "scp -f x.so")
        assert result.returncode == 1
        assert b"refused" in result.stderr
        assert not marker(sandbox, "alice").exists()
    finally:
        keys.write_bytes(original)
        clean(sandbox, "alice")


def test_user_environment_files_with_permit_user_environment(
    sandbox_factory, preload: Path, tmp_path: Path
) -> None:
    """An administrator who turned PermitUserEnvironment on: ~/.ssh/environment and
    authorized_keys environment="..." reach the login shell; the loader ignores them."""
    sandbox = sandbox_factory("PermitUserEnvironment yes\n", stock=True)
    sandbox.add_stock_user("alice")
    sandbox.write_config(CONFIG)
    keys = sandbox.path("/home/alice/.ssh/authorized_keys")
    with_option = b'environment="LD_AUDIT=/home/alice/x.so" ' + keys.read_bytes()
    upload(
        sandbox,
        "alice",
        {
            "x.so": preload.read_bytes(),
            ".ssh/environment": b"LD_PRELOAD=/home/alice/x.so\n",
            ".ssh/authorized_keys": with_option,
        },
        tmp_path,
    )
    download_works(sandbox, "alice", tmp_path)
    assert not marker(sandbox, "alice").exists()
