"""Several machines for fleet tests: stock-mode sandboxes sharing one network namespace.

Each host is a `Sandbox` (tests/e2e/sandbox.py) in its own mount and UTS namespace
(hostname hostN, overlay /etc, /dev, /usr, /opt, /var, tmpfs /home, /srv, /root and /run)
running the distribution's sshd from its stock sshd_config on its own loopback address
(127.0.0.11, .12, ...) and a real rsyslogd on /dev/log; root logs in with the sandbox's
client key, as a configuration-management controller does. All hosts live in ONE private
network namespace, next to a central rsyslogd that receives over TCP on 127.0.0.20:514
and writes every line it gets to `central.log`. Nothing of scponly-py is installed: that
is the play's job. `Controller` runs the collection's example playbook against them (used by
tests/e2e/test_fleet_ansible.py and bench/fleet_ansible.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.sandbox import Sandbox
from tests.namespace import die_with_parent, overlays, stop_on_failure, temp_root

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "packaging" / "ansible"
PLAYBOOK = COLLECTION / "playbooks" / "site.yml"  # the README's example playbook
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
JAIL = "/srv/jail"
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)
FIRST_ADDRESS = 11
LOG_HOST = "127.0.0.20"
LOG_PORT = 514
HOST_SETUP = """
set -e
hostname {name}
{overlays}
mount -t tmpfs -o mode=0755 tmpfs /srv
mount -t tmpfs -o mode=0700 tmpfs /root
mkdir -p /var/spool/rsyslog
rm -f /etc/rsyslog.d/*.conf
"""
# The host's own syslog daemon as a distribution sets it up, minus kernel logging (the kernel's
# ring buffer belongs to the real machine); its file is the sandbox's syslog capture.
HOST_RSYSLOG = """module(load="imuxsock")
$WorkDirectory /var/spool/rsyslog
$IncludeConfig /etc/rsyslog.d/*.conf
*.* {log}
"""
# What the play's handler runs here instead of `systemctl restart rsyslog` (no systemd inside).
RSYSLOG_RESTART = (
    "sh -c 'kill $(cat /run/rsyslogd.pid) && while [ -e /run/rsyslogd.pid ]; do sleep 0.05;"
    " done; exec rsyslogd'"
)
CENTRAL_RSYSLOG = """module(load="imtcp")
input(type="imtcp" address="{address}" port="{port}")
$WorkDirectory {root}
template(name="line" type="string" string="%HOSTNAME% %syslogtag%%msg%\\n")
*.* action(type="omfile" file="{log}" template="line")
"""


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up")
        time.sleep(0.05)


class FleetHost(Sandbox):
    """One machine of the fleet (see the module docstring)."""

    def __init__(self, root: Path, name: str, address: str, network_of: int) -> None:
        super().__init__(root, stock=True, address=address, network_of=network_of)
        self.name = name
        self.sshd_pidfile = Path("/run/sshd.pid")  # where `service ssh reload` looks
        self.launcher = Path("/usr/bin/scponly-py")  # what the package installs

    def _install_launcher(self) -> None:
        """Nothing to install: only the machine's own mounts and hostname."""
        self.run(
            [
                "sh",
                "-c",
                HOST_SETUP.format(name=self.name, overlays=overlays(self.root, "usr", "opt")),
            ],
            check=True,
        )

    def _start_syslog(self) -> None:
        self.syslog_path.touch()
        self.path("/etc/rsyslog.conf").write_text(HOST_RSYSLOG.format(log=self.syslog_path))
        self.run(["rsyslogd"], check=True)  # daemonizes; stop() kills it with the namespace
        wait_for("rsyslogd", lambda: self.path("/dev/log").is_socket())

    def _start_sshd(self, extra: str) -> None:
        key = (self.root / "client_key.pub").read_bytes()
        self.run(
            ["sh", "-c", "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys"],
            input=key,
            check=True,
        )
        super()._start_sshd(extra)


class Fleet:
    """`count` hosts and a central log receiver in one private network namespace."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network: subprocess.Popen[bytes] | None = None
        self.receiver: subprocess.Popen[bytes] | None = None
        self.hosts: list[FleetHost] = []
        self.central_log = root / "central.log"
        self.known_hosts = root / "known_hosts"

    @classmethod
    def create(cls, count: int) -> Fleet:
        root = temp_root("scponly-py-fleet-")
        fleet = cls(root)
        with stop_on_failure(fleet.stop):
            fleet._start(count)
        return fleet

    def _start(self, count: int) -> None:
        self.network = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep infinity",
            ],
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        assert self.network.stdout is not None
        if self.network.stdout.readline() != b"up\n":  # rsyslogd cannot bind before lo is up
            raise RuntimeError("the fleet's network namespace did not come up")
        self._start_receiver()
        for number in range(1, count + 1):
            host_root = self.root / f"host{number}"
            host_root.mkdir(mode=0o755)
            address = f"127.0.0.{FIRST_ADDRESS + number - 1}"
            host = FleetHost(host_root, f"host{number}", address, self.network.pid)
            self.hosts.append(host)
            host._start("")
        self.known_hosts.write_text(
            "".join((host.root / "known_hosts").read_text() for host in self.hosts)
        )

    def in_network(self, argv: list[str]) -> list[str]:
        """`argv` run in the fleet's network namespace (the controller's mounts and files)."""
        assert self.network is not None
        return ["nsenter", "-t", str(self.network.pid), "-n", "--", *argv]

    def _start_receiver(self) -> None:
        self.central_log.touch()
        config = self.root / "central-rsyslog.conf"
        config.write_text(
            CENTRAL_RSYSLOG.format(
                address=LOG_HOST, port=LOG_PORT, root=self.root, log=self.central_log
            )
        )
        self.receiver = subprocess.Popen(
            self.in_network(["rsyslogd", "-n", "-f", str(config), "-i", str(self.root / "pid")]),
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        probe = self.in_network(["bash", "-c", f"exec 3<>/dev/tcp/{LOG_HOST}/{LOG_PORT}"])
        wait_for(
            "the central rsyslogd",
            lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0,
        )

    def central_lines(self, wait_for_all: list[str], timeout: float = 10) -> list[str]:
        """The central log's lines, waiting until each of `wait_for_all` is in one of them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.central_log.read_text(errors="replace").splitlines()
            if all(any(want in line for line in lines) for want in wait_for_all):
                return lines
            if time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()
        for process in (self.receiver, self.network):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class Controller:
    """ansible-playbook for the fleet: its own config, inventory and collection path."""

    def __init__(self, fleet: Fleet, deb: Path, work: Path) -> None:
        self.fleet = fleet
        self.work = work
        self.timings: list[float] = []
        collections = work / "collections" / "ansible_collections" / "scponly_py"
        collections.mkdir(parents=True)
        (collections / "fleet").symlink_to(COLLECTION)
        (work / "ansible.cfg").write_text(
            "[defaults]\n"
            f"collections_path = {work / 'collections'}\n"
            f"local_tmp = {work / 'tmp'}\n"
            "interpreter_python = /usr/bin/python3\n"
            "retry_files_enabled = False\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {work / 'cp'}\n"
            "ssh_args = -o ControlMaster=auto -o ControlPersist=30s -o IdentitiesOnly=yes"
            f" -o UserKnownHostsFile={fleet.known_hosts} -o StrictHostKeyChecking=yes"
            " -o KexAlgorithms=curve25519-sha256\n"
        )
        self.keys = "".join((host.root / "client_key.pub").read_text() for host in fleet.hosts)
        self.variables: dict[str, object] = {
            "scponly_py_install": "deb",
            "scponly_py_deb": str(deb),
            "scponly_py_config": {
                "defaults": {"programs": ["sftp", "scp"], "access": "read-write"},
                "user": {},
            },
            "scponly_py_jails": [{"path": JAIL, "profile": ["sftp", "scp"]}],
            "scponly_py_users": [
                {"name": "pia", "keys": self.keys},
                {"name": "jan", "jail": JAIL, "keys": self.keys},
            ],
            "scponly_py_log_host": LOG_HOST,
            # No systemd in the sandboxes: Debian's `service` runs /etc/init.d/ssh reload
            # (sshd -t, then SIGHUP by pidfile); rsyslogd is restarted by its pidfile.
            "scponly_py_sshd_reload_command": "service ssh reload",
            "scponly_py_rsyslog_restart_command": RSYSLOG_RESTART,
        }

    def inventory(self, hosts: list[FleetHost]) -> Path:
        path = self.work / "inventory.json"
        members = {
            host.name: {
                "ansible_host": host.address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(host.client_key),
            }
            for host in hosts
        }
        path.write_text(json.dumps({"scponly": {"hosts": members, "vars": self.variables}}))
        return path

    def play(
        self, *options: str, hosts: list[FleetHost] | None = None
    ) -> tuple[int, dict[str, tuple[int, int, int, int]], str]:
        """(exit status, host -> (ok, changed, unreachable, failed), output) of one run."""
        inventory = self.inventory(hosts or self.fleet.hosts)
        env = {
            "PATH": f"{ANSIBLE_PLAYBOOK.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.work),
            "ANSIBLE_CONFIG": str(self.work / "ansible.cfg"),
            "ANSIBLE_HOME": str(self.work / "home"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "LANG": "C.UTF-8",
        }
        argv = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK), *options]
        started = time.monotonic()
        result = subprocess.run(
            self.fleet.in_network(argv),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        self.timings.append(time.monotonic() - started)
        recap = {
            name: (int(ok), int(changed), int(unreachable), int(failed))
            for name, ok, changed, unreachable, failed in RECAP.findall(result.stdout)
        }
        return result.returncode, recap, result.stdout + result.stderr
