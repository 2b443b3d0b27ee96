"""A throwaway OpenSSH server in private network and mount namespaces, for real-client tests.

Nothing touches the host: `unshare --net --mount` (tests/namespace.py) gives the
sandbox its own loopback (so port 22 is free) and its own mounts. Inside, /etc and
/dev are overlay mounts whose upper layers live in the sandbox's temp dir, so test
users, /etc/scponly-py/config.toml, /run/sshd and a /dev/log syslog listener
exist only there and vanish with the namespace. The test process reaches
that view of the filesystem through /proc/PID/root and runs clients inside
the namespaces with nsenter.

Used by the e2e tests and by the README's demo (scripts/demo.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.namespace import NamespaceHolder, overlays, stop_on_failure, temp_root

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
FIRST_UID = 42000
FAST_KEX = "curve25519-sha256"

SYSLOG_LISTENER = r"""
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.lexists(path):
    os.unlink(path)
sock.bind(path)
os.chmod(path, 0o666)
with open(out, "ab", buffering=0) as log:
    print("ready", flush=True)
    while True:
        data = sock.recv(65536)
        log.write(data.rstrip(b"\0\n").replace(b"\n", b"\\n") + b"\n")
"""

SETUP_SCRIPT = """
set -e
ip link set lo up
mount --make-rprivate /
{overlays}
mkdir -p /dev/pts
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount --bind /dev/pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
mkdir -m 0755 -p /etc/scponly-py
"""
# Stock mode: useradd -m writes /home, /var/log/lastlog and /var/mail; sshd with PAM writes
# /var/log/wtmp. All of it stays in the namespace.
STOCK_SETUP_SCRIPT = """
set -e
mount -t tmpfs -o mode=0755 tmpfs /home
{overlays}
"""
STOCK_SSHD_CONFIG = "/etc/ssh/sshd_config"
DROP_IN = "/etc/ssh/sshd_config.d/scponly-py-test.conf"
# The access modes through real clients (test_login_shell.py, test_session_observe.py): alice
# may do anything sftp and scp allow, reader only download, dropbox only upload.
ACCESS_USERS = ("alice", "reader", "dropbox")
ACCESS_CONFIG = """
[defaults]
programs = ["sftp", "scp"]

[user.reader]
access = "read-only"

[user.dropbox]
access = "write-only"
"""


def client_file(directory: Path, name: str, data: bytes) -> Path:
    """`directory`/`name` holding `data`, for a client to send; `directory` opened to all."""
    directory.chmod(0o755)
    path = directory / name
    path.write_bytes(data)
    return path


class User:
    """A test account inside the sandbox."""

    def __init__(self, name: str, uid: int, home: Path, shell: str) -> None:
        self.name = name
        self.uid = uid
        self.home = home  # path as seen inside the sandbox (same on the host: a temp dir)
        self.shell = shell


class Sandbox(NamespaceHolder):
    """One sshd on ADDRESS:22 (127.0.0.1) with its own mounts, hostname, users and syslog, in a
    private network namespace or, with `network_of`, in the one that process lives in."""

    enter = ("-m", "-n", "-u")

    def __init__(
        self,
        root: Path,
        launcher_python: str = "/usr/bin/python3",
        *,
        stock: bool = False,
        address: str = "127.0.0.1",
        network_of: int | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.stock = stock
        self.address = address
        self.network_of = network_of  # a pid whose network namespace this sandbox joins
        self.sshd_pidfile = root / "sshd.pid"
        self.launcher_python = launcher_python
        self.syslog_process: subprocess.Popen[bytes] | None = None
        self.users: dict[str, User] = {}
        self.next_uid = FIRST_UID
        self.client_key = root / "client_key"
        self.ssh_config = root / "ssh_config"
        self.syslog_path = root / "syslog.log"
        self.sshd_log = root / "sshd.log"
        self.launcher = root / "bin" / "scponly-py"

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        sshd_extra: str = "",
        *,
        stock: bool = False,
        users: tuple[str, ...] = (),
        config: str | None = None,
    ) -> Sandbox:
        """Make the temp dir, namespaces, mounts, keys, syslog and sshd; return it running,
        with `users` (`add_user`) and `config` (`write_config`) when given.

        `stock`: sshd runs from the host's own /etc/ssh/sshd_config and /etc/pam.d/sshd
        (UsePAM yes, ~/.ssh/authorized_keys, StrictModes), with only its address, host key
        and pid file given on the command line; `sshd_extra` becomes a drop-in in
        sshd_config.d, and users are made with useradd -m (`add_stock_user`).
        """
        root = temp_root("scponly-py-sandbox-")
        sandbox = cls(root, stock=stock)
        with stop_on_failure(sandbox.stop):
            sandbox._start(sshd_extra)
            for name in users:
                sandbox.add_user(name)
            if config is not None:
                sandbox.write_config(config)
        return sandbox

    def _start(self, sshd_extra: str) -> None:
        for name in ("bin", "home", "keys"):
            (self.root / name).mkdir(mode=0o755)
        if self.network_of is None:
            self.start("--net", "--mount", "--uts")
        else:
            self.start("--mount", "--uts", network_of=self.network_of)
        setup = SETUP_SCRIPT.format(overlays=overlays(self.root, "etc", "dev"))
        self.run(["sh", "-c", setup], check=True)
        if self.stock:
            stock = STOCK_SETUP_SCRIPT.format(overlays=overlays(self.root, "var"))
            self.run(["sh", "-c", stock], check=True)
        self._install_launcher()
        self._make_keys()
        self._start_syslog()
        self._start_sshd(sshd_extra)

    def stop(self) -> None:
        """Kill everything in the namespaces (sessions, ControlMaster clients too); the
        namespaces and their mounts disappear with the last process."""
        self.close()
        if self.holder is not None:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
        shutil.rmtree(self.root, ignore_errors=True)

    def sh(self, script: str) -> None:
        """Run a shell script inside the namespaces (`set -e`); raise if it fails."""
        self.run(["sh", "-c", "set -e\n" + script], check=True)

    # -- set-up steps -----------------------------------------------------------------------

    def _install_launcher(self) -> None:
        """Install the code under test and its isolated launcher as an administrator would.

        The package is copied into the sandbox (root-owned, world-readable), so the
        test users can load it wherever the repository itself happens to live.
        """
        from setup_chroot import launcher  # noqa: PLC0415 - tests import the tool under test

        library = self.root / "lib"
        shutil.copytree(
            Path(launcher.package_parent()) / "scponly_py",
            library / "scponly_py",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for directory, _, files in os.walk(library):
            os.chmod(directory, 0o755)  # noqa: S103 - test users must read it
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        # install-shell byte-compiles the package as root: users cannot write __pycache__.
        interpreter = os.path.realpath(self.launcher_python)
        launcher.install(str(self.launcher), interpreter, str(library))

    def _make_keys(self) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host_key")],
            check=True,
        )
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True
        )
        host_public = (self.root / "host_key.pub").read_text().split()
        (self.root / "known_hosts").write_text(
            f"{self.address} {host_public[0]} {host_public[1]}\n"
        )
        self.ssh_config.write_text(
            "Host *\n"
            f"  HostName {self.address}\n"
            "  Port 22\n"
            f"  IdentityFile {self.client_key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.root / 'known_hosts'}\n"
            "  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n"
            f"  KexAlgorithms {FAST_KEX}\n"
            "  LogLevel ERROR\n"
        )

    def _start_syslog(self) -> None:
        self.syslog_path.touch()
        self.restart_syslog()

    def restart_syslog(self, script: str = SYSLOG_LISTENER) -> None:
        """(Re)start the /dev/log listener; fault tests pass a misbehaving `script`."""
        if self.syslog_process is not None:
            self.syslog_process.kill()
            self.syslog_process.wait()
            self.processes.remove(self.syslog_process)
        process = self.spawn(
            [sys.executable, "-I", "-c", script, "/dev/log", str(self.syslog_path)],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("syslog listener did not start")
        self.syslog_process = process

    def _start_sshd(self, extra: str) -> None:
        if self.stock:
            if extra:
                self.path(DROP_IN).write_text(extra)
            plumbing = (
                f"ListenAddress={self.address} Port=22 HostKey={self.root / 'host_key'} "
                f"PidFile={self.sshd_pidfile} LogLevel=VERBOSE"
            )
            options = [word for option in plumbing.split() for word in ("-o", option)]
            self._spawn_sshd([SSHD, "-D", "-e", "-f", STOCK_SSHD_CONFIG, *options])
            return
        config = self.root / "sshd_config"
        config.write_text(
            f"ListenAddress {self.address}\n"
            "Port 22\n"
            f"HostKey {self.root / 'host_key'}\n"
            f"PidFile {self.sshd_pidfile}\n"
            f"AuthorizedKeysFile {self.root / 'keys'}/%u\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitRootLogin no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "AcceptEnv LANG LC_* PYTHON*\n"
            "LogLevel VERBOSE\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            f"Subsystem sftp {SFTP_SERVER}\n"
            + extra.replace("{launcher}", str(self.launcher)).replace("{root}", str(self.root))
        )
        self._spawn_sshd([SSHD, "-D", "-e", "-f", str(config)])

    def _spawn_sshd(self, argv: list[str]) -> None:
        log = self.sshd_log.open("ab")
        self.spawn(argv, stderr=log, stdout=log)
        deadline = time.monotonic() + 10
        while True:
            probe = self.run(["bash", "-c", f"exec 3<>/dev/tcp/{self.address}/22"], timeout=5)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {self.sshd_log.read_text()}")
            time.sleep(0.05)

    # -- users and configuration ------------------------------------------------------------

    def add_user(self, name: str, shell: str | None = None, home_mode: int = 0o755) -> User:
        """Create a user (passwd/group/shadow lines in the sandbox /etc) with a login key."""
        uid = self.next_uid
        home = self.root / "home" / name
        home.mkdir(mode=home_mode)
        os.chown(home, uid, uid)
        return self._add_account(name, str(home), shell or str(self.launcher))

    def add_jail_user(self, name: str, home: str, shell: str, jail_home: str | None = None) -> User:
        """A user whose passwd home is `home` as given (e.g. /srv/jail//home/u), with a login key.

        `jail_home` "JAIL//INSIDE": make that directory (owned by the user) and add the user
        to the jail's etc/passwd and etc/group where the jail has them (shell /bin/false).
        """
        uid = self.next_uid
        user = self._add_account(name, home, shell, gecos="scponly-pyc test")
        if jail_home is not None:
            jail, inside = jail_home.split("//")
            home_path = self.path(f"{jail}/{inside}")
            home_path.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chown(home_path, uid, uid)
            entries = {
                "etc/passwd": f"{name}:x:{uid}:{uid}:scponly-pyc test:/{inside}:/bin/false\n",
                "etc/group": f"{name}:x:{uid}:\n",
            }
            for file, entry in entries.items():
                target = self.path(f"{jail}/{file}")
                if target.parent.exists():
                    with target.open("a") as handle:
                        handle.write(entry)
        return user

    def _add_account(
        self, name: str, home: str, shell: str, gecos: str = "scponly-py test"
    ) -> User:
        """The next uid's passwd, group and shadow lines, and the client key authorized."""
        uid = self.next_uid
        self.next_uid += 1
        with self.path("/etc/passwd").open("a") as passwd:
            passwd.write(f"{name}:x:{uid}:{uid}:{gecos}:{home}:{shell}\n")
        with self.path("/etc/group").open("a") as group:
            group.write(f"{name}:x:{uid}:\n")
        with self.path("/etc/shadow").open("a") as shadow:
            # "*": no password, but not locked ("!"), so public-key login works.
            shadow.write(f"{name}:*:19000:0:99999:7:::\n")
        public_key = (self.root / "client_key.pub").read_text()
        (self.root / "keys" / name).write_text(public_key)
        user = User(name, uid, Path(home), shell)
        self.users[name] = user
        return user

    def add_stock_user(
        self, name: str, shell: str | None = None, *, route: str = "usermod"
    ) -> User:
        """An account made as the README tells an administrator, with the client key installed
        the way ssh-copy-id does (~/.ssh/authorized_keys, owned by the user).

        `route` "usermod": `useradd -m NAME` then `usermod -s SHELL NAME`; "useradd":
        `useradd -m -s SHELL NAME`.
        """
        shell = shell or str(self.launcher)
        if route == "usermod":
            self.run(["useradd", "-m", name], check=True)
            self.run(["usermod", "-s", shell, name], check=True)
        else:
            self.run(["useradd", "-m", "-s", shell, name], check=True)
        entry = self.run(["getent", "passwd", name], check=True).stdout.decode().split(":")
        uid, home = int(entry[2]), entry[5]
        key = (self.root / "client_key.pub").read_bytes()
        script = (
            'set -e; umask 077; mkdir -p "$1/.ssh"; cat > "$1/.ssh/authorized_keys"; '
            'chown -R "$2:" "$1/.ssh"'
        )
        self.run(["sh", "-c", script, "-", home, name], input=key, check=True)
        user = User(name, uid, Path(home), shell)
        self.users[name] = user
        return user

    def add_group(self, name: str, members: list[str]) -> int:
        """Create a supplementary group with `members`; return its gid."""
        gid = self.next_uid
        self.next_uid += 1
        with self.path("/etc/group").open("a") as group:
            group.write(f"{name}:x:{gid}:{','.join(members)}\n")
        return gid

    def write_config(self, text: str, *, compile_it: bool = True) -> None:
        """Install /etc/scponly-py/config.toml (root:root 0644); compile it as an admin does."""
        config = self.path("/etc/scponly-py/config.toml")
        config.write_text(text)
        config.chmod(0o644)
        compiled = self.path("/etc/scponly-py/config.compiled")
        if compile_it:  # 3: valid and compiled, but some accounts' places refuse their logins
            checked = self.run([sys.executable, "-I", "-m", "scponly_py", "check-config"])
            if checked.returncode not in (0, 3):
                problem = checked.stderr.decode(errors="replace")
                raise RuntimeError(f"check-config failed: {problem}")
        elif compiled.exists():
            compiled.unlink()

    # -- clients ----------------------------------------------------------------------------

    def ssh_argv(self, user: str, *options: str) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config), "-l", user, *options, "sandbox"]

    def ssh(
        self, user: str, command: str | None, *options: str, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """`ssh user@sandbox COMMAND` (no command: an interactive session request)."""
        argv = self.ssh_argv(user, *options)
        if command is not None:
            argv.append(command)
        return self.run(argv, input=input)

    def scp_argv(self, *options: str) -> list[str]:
        return ["scp", "-F", str(self.ssh_config), "-q", *options]

    def sftp_batch(self, user: str, commands: str) -> subprocess.CompletedProcess[bytes]:
        """Run `sftp -b -` with `commands` on stdin."""
        return self.run(
            ["sftp", "-F", str(self.ssh_config), "-b", "-", f"{user}@sandbox"],
            input=commands.encode(),
        )

    # -- syslog -----------------------------------------------------------------------------

    def log_mark(self) -> int:
        """A position in the syslog capture; `log_since` returns what came after it."""
        return self.syslog_path.stat().st_size

    def log_since(self, mark: int, wait_for: str | None = None, timeout: float = 5) -> list[str]:
        """Syslog lines after `mark`, waiting up to `timeout` for one containing `wait_for`."""
        deadline = time.monotonic() + timeout
        while True:
            with self.syslog_path.open("rb") as log:
                log.seek(mark)
                lines = log.read().decode("utf-8", "replace").splitlines()
            if wait_for is None or any(wait_for in line for line in lines):
                return lines
            if time.monotonic() > deadline:
                return lines
            time.sleep(0.05)
