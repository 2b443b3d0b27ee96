"""The Ansible collection (packaging/ansible) against a fleet of real sshd hosts.

Three hosts (tests/e2e/fleet.py: each its own mounts, hostname, stock sshd on 127.0.0.1N,
rsyslogd) and a central rsyslogd on 127.0.0.20, all in one private network namespace. The
controller runs the collection's example playbook with `ansible-playbook` over SSH as root
and a plain inventory; nothing of scponly-py is on the hosts before (the .deb route).
Then, on every host: a plain and a jailed account transfer files with scp and sftp, a
refused command reaches the central log, a second run changes nothing, check mode changes
nothing, moving an account to read-only reaches every host and takes effect, and a host
whose sshd configuration would let the accounts around the shell is left as it was while
the play fails loudly for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.fleet import ANSIBLE_PLAYBOOK, JAIL, Controller, Fleet, FleetHost
from tests.packaging.conftest import require_tools

pytestmark = [pytest.mark.e2e, pytest.mark.root]

HOSTS = 3
LEGACY = "/etc/ssh/sshd_config.d/00-legacy.conf"
DROP_IN = "/etc/ssh/sshd_config.d/scponly-py.conf"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    require_tools("unshare", "nsenter", "sshd", "ssh", "scp", "sftp", "rsyslogd", "dpkg")
    fleet = Fleet.create(HOSTS)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def controller(fleet: Fleet, deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    return Controller(fleet, deb, tmp_path_factory.mktemp("ansible"))


@pytest.fixture(scope="module")
def first_run(controller: Controller) -> str:
    status, recap, output = controller.play()
    assert status == 0, output[-6000:]
    for host in controller.fleet.hosts:
        assert recap[host.name][1] > 0 and recap[host.name][3] == 0, output[-3000:]
    return output


def transfer(host: FleetHost, user: str, target: str, payload: Path, back: Path) -> None:
    """scp up (SFTP protocol and legacy -O), sftp down, byte for byte."""
    for mode in ("-s", "-O"):
        up = host.run(host.scp_argv(mode, str(payload), f"{user}@{host.name}:{target}"))
        assert up.returncode == 0, (host.name, user, mode, up.stderr)
    down = host.run(
        ["sftp", "-F", str(host.ssh_config), "-b", "-", f"{user}@{host.name}"],
        input=f"get {target} {back}\n".encode(),
    )
    assert down.returncode == 0, (host.name, user, down.stderr)
    assert back.read_bytes() == payload.read_bytes()


def test_first_run_gives_working_accounts_on_every_host(
    controller: Controller, first_run: str, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(50_000) + b"\0\r\n")
    payload.chmod(0o644)
    for host in controller.fleet.hosts:
        assert host.path(DROP_IN).exists()
        transfer(host, "pia", "files/up.bin", payload, tmp_path / f"{host.name}-pia")
        assert host.path("/home/pia/files/up.bin").read_bytes() == payload.read_bytes()
        transfer(host, "jan", "files/up.bin", payload, tmp_path / f"{host.name}-jan")
        assert host.path(f"{JAIL}/home/jan/files/up.bin").read_bytes() == payload.read_bytes()


def test_refusals_reach_the_central_log(controller: Controller, first_run: str) -> None:
    for host in controller.fleet.hosts:
        for user in ("pia", "jan"):
            refused = host.ssh(user, f"cat /etc/passwd #{host.name}")
            assert refused.returncode != 0 and b"refused" in refused.stderr, refused.stderr
    wanted = [f"{host.name} scponly-py" for host in controller.fleet.hosts]
    lines = controller.fleet.central_lines(wanted)
    for host in controller.fleet.hosts:
        for user in ("pia", "jan"):
            assert any(
                line.startswith(f"{host.name} scponly-py[")
                and f"user={user}" in line
                and "decision=refuse" in line
                for line in lines
            ), (host.name, user, lines[-20:])


def test_second_run_changes_nothing(controller: Controller, first_run: str) -> None:
    status, recap, output = controller.play()
    assert status == 0, output[-6000:]
    assert {name: values[1] for name, values in recap.items()} == {
        host.name: 0 for host in controller.fleet.hosts
    }, output[-6000:]


def test_read_only_reaches_every_host(
    controller: Controller, first_run: str, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    payload = tmp_path / "late.bin"
    payload.write_bytes(b"late\n")
    payload.chmod(0o644)
    before = {
        host.name: host.path("/etc/scponly-py/config.toml").read_bytes()
        for host in controller.fleet.hosts
    }
    controller.variables["scponly_py_config"]["user"] = {"pia": {"access": "read-only"}}  # type: ignore[index]
    status, recap, output = controller.play("--check", "--diff")
    assert status == 0, output[-6000:]
    assert 'access = "read-only"' in output  # the diff shows the change
    for host in controller.fleet.hosts:
        assert recap[host.name][1] > 0
        assert host.path("/etc/scponly-py/config.toml").read_bytes() == before[host.name]
    status, recap, output = controller.play()
    assert status == 0, output[-6000:]
    for host in controller.fleet.hosts:
        up = host.run(host.scp_argv(str(payload), f"pia@{host.name}:files/late.bin"))
        assert up.returncode != 0, (host.name, up.stderr)
        down = host.run(host.scp_argv(f"pia@{host.name}:files/up.bin", str(tmp_path / host.name)))
        assert down.returncode == 0, (host.name, down.stderr)
        jan = host.run(host.scp_argv(str(payload), f"jan@{host.name}:files/late.bin"))
        assert jan.returncode == 0, (host.name, jan.stderr)


def test_host_whose_sshd_would_break_is_left_untouched(
    controller: Controller, first_run: str
) -> None:
    """host3 had its drop-in removed and a legacy rule planted that re-opens TCP forwarding for
    the group: installing the block again would leave the accounts a way around the shell, so
    sshd-config --install rolls back, the play fails for host3 only, and sshd is not reloaded."""
    broken = controller.fleet.hosts[-1]
    broken.path(DROP_IN).unlink()
    broken.path(LEGACY).write_text("Match Group scponly\n    AllowTcpForwarding yes\n")
    ssh_dir = {
        path: path.read_bytes() for path in broken.path("/etc/ssh").rglob("*") if path.is_file()
    }
    reloads = broken.sshd_log.read_text().count("Received SIGHUP")
    status, recap, output = controller.play()
    assert status != 0
    assert recap[broken.name][3] == 1, output[-6000:]
    assert "sshd rejected the change" in output and "allowtcpforwarding" in output.lower()
    for host in controller.fleet.hosts[:-1]:
        assert recap[host.name][1:] == (0, 0, 0), output[-6000:]
    after = {
        path: path.read_bytes() for path in broken.path("/etc/ssh").rglob("*") if path.is_file()
    }
    assert after == ssh_dir
    assert broken.sshd_log.read_text().count("Received SIGHUP") == reloads
