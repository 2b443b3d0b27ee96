"""A throwaway OpenSSH server in private network and mount namespaces, for real-client tests.

Nothing touches the host: `unshare --net --mount` gives the sandbox its own
loopback (so port 22 is free) and its own mounts. Inside, /etc and /dev are
overlay mounts whose upper layers live in the sandbox's temp dir, so test
users, /etc/scponly-py/config.toml, /run/sshd and a /dev/log syslog listener
exist only there and vanish with the namespace. The test process reaches
that view of the filesystem through /proc/PID/root and runs clients inside
the namespaces with nsenter.

Used by the e2e tests and by the README's demo (scripts/demo.py).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PR_SET_PDEATHSIG = 1
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
mount -t overlay overlay -o lowerdir=/etc,upperdir={root}/etc.upper,workdir={root}/etc.work /etc
mount -t overlay overlay -o lowerdir=/dev,upperdir={root}/dev.upper,workdir={root}/dev.work /dev
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
mount -t overlay overlay -o lowerdir=/var,upperdir={root}/var.upper,workdir={root}/var.work /var
"""
STOCK_SSHD_CONFIG = "/etc/ssh/sshd_config"
DROP_IN = "/etc/ssh/sshd_config.d/scponly-py-test.conf"


def _die_with_parent() -> None:
    """Run in the child before exec: if the test process dies, the namespace dies too."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class User:
    """A test account inside the sandbox."""

    def __init__(self, name: str, uid: int, home: Path, shell: str) -> None:
        self.name = name
        self.uid = uid
        self.home = home  # path as seen inside the sandbox (same on the host: a temp dir)
        self.shell = shell


class Sandbox:
    """One sshd on ADDRESS:22 (127.0.0.1) with its own mounts, hostname, users and syslog, in a
    private network namespace or, with `network_of`, in the one that process lives in."""

    def __init__(
        self,
        root: Path,
        launcher_python: str = "/usr/bin/python3",
        *,
        stock: bool = False,
        address: str = "127.0.0.1",
        network_of: int | None = None,
    ) -> None:
        self.root = root
        self.stock = stock
        self.address = address
        self.network_of = network_of  # a pid whose network namespace this sandbox joins
        self.sshd_pidfile = root / "sshd.pid"
        self.launcher_python = launcher_python
        self.holder: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.syslog_process: subprocess.Popen[bytes] | None = None
        self.mount_namespace = ""
        self.users: dict[str, User] = {}
        self.next_uid = FIRST_UID
        self.client_key = root / "client_key"
        self.ssh_config = root / "ssh_config"
        self.syslog_path = root / "syslog.log"
        self.sshd_log = root / "sshd.log"
        self.launcher = root / "bin" / "scponly-py"

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, sshd_extra: str = "", *, stock: bool = False) -> Sandbox:
        """Make the temp dir, namespaces, mounts, keys, syslog and sshd; return it running.

        `stock`: sshd runs from the host's own /etc/ssh/sshd_config and /etc/pam.d/sshd
        (UsePAM yes, ~/.ssh/authorized_keys, StrictModes), with only its address, host key
        and pid file given on the command line; `sshd_extra` becomes a drop-in in
        sshd_config.d, and users are made with useradd -m (`add_stock_user`).
        """
        root = Path(tempfile.mkdtemp(prefix="scponly-py-sandbox-", dir="/tmp"))
        root.chmod(0o755)
        sandbox = cls(root, stock=stock)
        try:
            sandbox._start(sshd_extra)
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def _start(self, sshd_extra: str) -> None:
        for name in ("etc.upper", "etc.work", "dev.upper", "dev.work", "var.upper", "var.work"):
            (self.root / name).mkdir(mode=0o755)
        for name in ("bin", "home", "keys"):
            (self.root / name).mkdir(mode=0o755)
        holder = ["unshare", "--mount", "--uts", "--", "sleep", "infinity"]
        if self.network_of is None:
            holder.insert(1, "--net")
        else:
            holder = ["nsenter", "-t", str(self.network_of), "-n", "--", *holder]
        self.holder = subprocess.Popen(
            holder,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        deadline = time.monotonic() + 5
        own_mnt = os.readlink("/proc/self/ns/mnt")
        while os.readlink(f"/proc/{self.holder.pid}/ns/mnt") == own_mnt:
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not create a mount namespace")
            time.sleep(0.01)
        self.mount_namespace = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        self.run(["sh", "-c", SETUP_SCRIPT.format(root=self.root)], check=True)
        if self.stock:
            self.run(["sh", "-c", STOCK_SETUP_SCRIPT.format(root=self.root)], check=True)
        self._install_launcher()
        self._make_keys()
        self._start_syslog()
        self._start_sshd(sshd_extra)

    def stop(self) -> None:
        """Kill everything in the namespaces (sessions, ControlMaster clients too); the
        namespaces and their mounts disappear with the last process."""
        for process in [*self.processes, self.holder]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        if self.holder is not None:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
        shutil.rmtree(self.root, ignore_errors=True)

    def pids(self, uid: int | None = None) -> list[int]:
        """Processes living in this sandbox's mount namespace (optionally of one uid)."""
        assert self.holder is not None
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") != self.mount_namespace:
                    continue
                if uid is not None and os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
            except OSError:
                continue
            found.append(int(entry))
        return found

    # -- running things inside --------------------------------------------------------------

    def inside(self, argv: list[str]) -> list[str]:
        """The argv that runs `argv` inside the sandbox's namespaces."""
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "-u", "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 60,
        check: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the namespaces, capturing output."""
        result = subprocess.run(
            self.inside(argv),
            input=input,
            capture_output=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{argv!r} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return result

    def path(self, inside: str) -> Path:
        """A path inside the sandbox's mount namespace, as the test process can reach it."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root") / inside.lstrip("/")

    def spawn(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self.inside(argv), **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        return process

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
        self.next_uid += 1
        home = self.root / "home" / name
        home.mkdir(mode=home_mode)
        os.chown(home, uid, uid)
        shell = shell or str(self.launcher)
        with self.path("/etc/passwd").open("a") as passwd:
            passwd.write(f"{name}:x:{uid}:{uid}:scponly-py test:{home}:{shell}\n")
        with self.path("/etc/group").open("a") as group:
            group.write(f"{name}:x:{uid}:\n")
        with self.path("/etc/shadow").open("a") as shadow:
            # "*": no password, but not locked ("!"), so public-key login works.
            shadow.write(f"{name}:*:19000:0:99999:7:::\n")
        public_key = (self.root / "client_key.pub").read_text()
        (self.root / "keys" / name).write_text(public_key)
        user = User(name, uid, home, shell)
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
