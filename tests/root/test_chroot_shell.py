"""scponly-pyc, the frozen chroot login shell, end to end and under attack.

The real PyInstaller onedir build (packaging/build-frozen.sh, cached by source
hash) is installed twice inside a sandbox (tests/e2e/sandbox.py: a real sshd
in private net+mount namespaces): once with cap_sys_chroot+ep, once setuid
root. Everything privileged lives on a tmpfs mounted at /srv inside the
namespace (root-owned 0755, so the jail's ancestors pass the checks), with a
jail made by `scponly-py-setup create`.

* Through sshd: scp -O both ways, sftp, files land in the jail, `/` is the jail.
* A static probe exec'd in place of sftp-server reports what the program has:
  uid/gid/groups, every capability set, NoNewPrivs, setuid(0), its environment.
* The hostile matrix runs the privileged binaries directly as a local user
  (setpriv): nothing gains privilege, escapes the jail or runs code; every
  refusal is one stderr line, exit 1, no traceback, and a syslog line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox, client_file
from tests.e2e.test_transfer_log import events, session_lines

pytestmark = [pytest.mark.root, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
SETUP = str(Path(sys.executable).with_name("scponly-py-setup"))
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
CAP = "/srv/cap/scponly-py/scponly-pyc"
SUID = "/srv/suid/scponly-py/scponly-pyc"
HOSTILE = "/srv/hostile"
FIXED_ENV = {"PATH": "/usr/bin:/bin"}

TRANSFER_CONFIG = """
[defaults]
programs = ["sftp", "scp"]
"""
# The probe stands in for the real programs: sftp -> /probe; scp -> a setuid-root copy in the
# jail; rsync -> a hard link (inside the jail) to a setuid-root file outside it.
PROBE_CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]

[paths]
sftp = "/probe"
scp = "/suidprobe"
rsync = "/hardsuid"
"""
EVIL_LIBRARY = r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwned(void) {
    char path[128];
    snprintf(path, sizeof path, "/srv/hostile/pwned-lib-%d-%d", (int)getuid(), (int)geteuid());
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}
"""
# Works even as the first module Python imports (encodings): only the built-in posix.
EVIL_PYTHON = (
    "p = __import__('posix')\n"
    "p.close(p.open('/srv/hostile/pwned-python-' + __name__, p.O_WRONLY | p.O_CREAT, 0o644))\n"
)
# The alternative without a privileged file: sshd chroots, the frozen scponly-py runs inside.
# ~/.ssh/environment is the user's plant through sshd (as ~/.pam_environment is with UsePAM).
SSHD_EXTRA = """
PermitUserEnvironment LD_PRELOAD
Match User chrooted
    ChrootDirectory /srv/jail2
"""
PLAIN = "/srv/cap/scponly-py/scponly-py"
NOCAP = "/srv/nocap/scponly-py/scponly-py"  # the same tree, its cap_wake_alarm+p removed
SECURE_START_CAPABILITY = "0000000200000000000000000800000000000000"  # cap_wake_alarm+p
SETUP_SCRIPT = f"""
set -e
mount -t tmpfs -o mode=0755 tmpfs /srv
mkdir -m 0755 /srv/cap /srv/suid /srv/nocap /srv/state /srv/bad-owner /srv/bad-group /srv/userdir
mkdir -m 0777 {HOSTILE} {HOSTILE}/tmp
"""


class Setup:
    """The sandbox plus the users and paths the tests use."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.uids: dict[str, int] = {}
        self.config = ""

    def run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        return self.sandbox.run(argv, **kwargs)  # type: ignore[arg-type]

    def sh(self, script: str) -> None:
        self.sandbox.sh(script)

    def use_config(self, text: str) -> None:
        if self.config != text:
            self.sandbox.write_config(text)
            self.config = text

    def add_user(self, name: str, home: str, shell: str, jail_home: str | None = None) -> int:
        """A passwd entry with `home` (e.g. /srv/jail//home/u) and a login key (Sandbox)."""
        uid = self.sandbox.add_jail_user(name, home, shell, jail_home).uid
        self.uids[name] = uid
        return uid

    def as_user(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        prefix: list[str] = (),  # type: ignore[assignment]
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` as local user `name` with exactly `env` (plus nothing)."""
        uid = self.uids[name]
        variables = [f"{key}={value}" for key, value in (env or {}).items()]
        return self.run(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", *prefix,
             "env", "-i", *variables, *argv],
            input=input, cwd="/",
        )  # fmt: skip

    def pwned(self) -> list[str]:
        """Files any hostile code would have written."""
        return sorted(p.name for p in self.sandbox.path(HOSTILE).iterdir() if "pwned" in p.name)


def compile_c(source: str, output: Path, *flags: str) -> None:
    source_file = output.with_suffix(".c")
    source_file.write_text(source)
    subprocess.run(["gcc", "-O1", *flags, "-o", str(output), str(source_file)], check=True)


@pytest.fixture(scope="module")
def setup(frozen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    for tool in ("gcc", "setpriv", "unshare", "nsenter", "sshd", "prlimit"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"missing {tool}")
    work = tmp_path_factory.mktemp("chroot-shell")
    compile_c((REPO / "tests" / "root" / "probe.c").read_text(), work / "probe", "-static")
    compile_c(EVIL_LIBRARY, work / "evil.so", "-shared", "-fPIC")
    sandbox = Sandbox.create(SSHD_EXTRA)
    try:
        state = Setup(sandbox)
        state.sh(SETUP_SCRIPT)
        for destination, extra in (
            ("/srv/cap/scponly-py", []),
            ("/srv/suid/scponly-py", ["--setuid"]),
            ("/srv/nocap/scponly-py", []),
        ):
            state.run(
                [SETUP, "install-chroot-shell", "--from", str(frozen_tree), "--dest", destination,
                 "--no-register", *extra],
                check=True,
            )  # fmt: skip
        state.run(
            [SETUP, "create", "/srv/jail", "--profile", "sftp,scp,rsync", "--state-dir",
             "/srv/state"],
            check=True,
        )  # fmt: skip
        os.removexattr(sandbox.path(NOCAP), "security.capability")
        jail = sandbox.path("/srv/jail")
        (jail / "home").mkdir(mode=0o755, exist_ok=True)
        (jail / "JAIL_MARKER").write_text("inside\n")
        for name, mode in (("probe", 0o755), ("suidprobe", 0o4755)):
            shutil.copyfile(work / "probe", jail / name)
            os.chmod(jail / name, mode)
        host_suid = sandbox.path("/srv/host-suid")
        shutil.copyfile(work / "probe", host_suid)
        os.chmod(host_suid, 0o4755)  # noqa: S103 - the attack under test
        os.link(host_suid, jail / "hardsuid")
        state.sh("mkdir -p /srv/jail/proc && mount -t proc proc /srv/jail/proc")
        # Hostile material: an evil library under every name the bundle loads, fake Python files.
        hostile = sandbox.path(HOSTILE)
        for directory in ("lib", "pyi", "pyi/_internal", "py", "py/scponly_py", "py/encodings"):
            (hostile / directory).mkdir(mode=0o777, exist_ok=True)
        for name in ("libpython3.11.so.1.0", "libz.so.1", "libcap.so.2", "libexpat.so.1"):
            for directory in ("lib", "pyi", "pyi/_internal"):
                shutil.copyfile(work / "evil.so", hostile / directory / name)
        shutil.copyfile(work / "evil.so", hostile / "evil.so")
        for name in ("sitecustomize.py", "usercustomize.py", "startup.py", "scponly_py/__init__.py",
                     "encodings/__init__.py", "site.py", "os.py"):  # fmt: skip
            (hostile / "py" / name).write_text(EVIL_PYTHON)
        # Users: two jailed login accounts, a local user for the matrix, and broken jails.
        state.add_user("capuser", "/srv/jail//home/capuser", CAP, "/srv/jail//home/capuser")
        state.add_user("suiduser", "/srv/jail//home/suiduser", SUID, "/srv/jail//home/suiduser")
        state.add_user("local", "/srv/jail//home/local", "/bin/sh", "/srv/jail//home/local")
        local = state.uids["local"]
        state.sh(
            f"mkdir -m 0755 -p /srv/bad-owner/home/u /srv/bad-group/home/u /srv/real/home/u\n"
            f"chown {local} /srv/bad-owner /srv/userdir\n"
            "chmod 0775 /srv/bad-group\n"
            "mkdir -m 0755 -p /srv/userdir/jail/home/u\n"
            "ln -s /srv/real /srv/link\n"
        )
        for name, home in (
            ("badowner", "/srv/bad-owner//home/u"),
            ("badgroup", "/srv/bad-group//home/u"),
            ("badlink", "/srv/link//home/u"),
            ("badparent", "/srv/userdir/jail//home/u"),
            ("twoslashes", "/srv/jail//home//u"),
            ("nohome", "/srv/jail//home/missing"),
        ):
            state.add_user(name, home, CAP)
        chroot_directory_jail(state, frozen_tree)
        yield state
    finally:
        sandbox.stop()


def chroot_directory_jail(state: Setup, frozen_tree: Path) -> None:
    """/srv/jail2 for sshd's ChrootDirectory: sftp/scp jail + the frozen scponly-py inside.

    The bootloader finds its own file through /proc/self/exe, or else through argv[0] on
    PATH (sshd passes the bare name); a jail has no /proc, so the shell is also linked from
    /usr/bin inside the jail.
    """
    # --bin pulls in what the bundle needs from the system (libc, libm, libdl, libpthread; and
    # libcap for _prctl, libffi for _ctypes: in secure-execution mode the loader ignores the
    # bootloader's LD_LIBRARY_PATH, so the bundle's own copies are not used).
    internal = f"{PLAIN.rsplit('/', 1)[0]}/_internal"
    state.run(
        [SETUP, "create", "/srv/jail2", "--state-dir", "/srv/state", "--bin", PLAIN,
         "--bin", f"{internal}/libpython3.11.so.1.0",
         "--bin", f"{internal}/_prctl.cpython-311-x86_64-linux-gnu.so",
         "--bin", f"{internal}/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"],
        check=True,
    )  # fmt: skip
    state.run(
        [SETUP, "install-chroot-shell", "--from", str(frozen_tree), "--jail", "/srv/jail2",
         "--dest", "/srv/cap/scponly-py"],
        check=True,
    )  # fmt: skip
    state.add_user("chrooted", "/home/chrooted", PLAIN, "/srv/jail2//home/chrooted")
    state.sh(
        f"ln -s {PLAIN} /srv/jail2/usr/bin/scponly-py\n"
        "touch /srv/jail2/dev/log && mount --bind /dev/log /srv/jail2/dev/log\n"
        "touch /srv/jail2/JAIL2_MARKER"
    )


# -- helpers -----------------------------------------------------------------------------------


def parse_probe(output: bytes) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in output.decode().splitlines():
        key, _, value = line.partition(":" if line.startswith("status.") else "=")
        values.setdefault(key, []).append(value)
    return values


def status(probe: dict[str, list[str]], field: str) -> list[str]:
    return probe.get("status." + field.rstrip(":"), [""])[0].split()


def probe_env(probe: dict[str, list[str]]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in probe.get("env", []))


def assert_unprivileged(probe: dict[str, list[str]], uid: int, *, setuid_build: bool) -> None:
    """What every exec'd program must show: the user, no capability, no way back to root."""
    assert status(probe, "Uid:") == [str(uid)] * 4, probe
    assert status(probe, "Gid:") == [str(uid)] * 4, probe
    assert status(probe, "Groups:") == [str(uid)], probe
    for name in ("CapInh:", "CapPrm:", "CapEff:", "CapAmb:"):
        assert int(status(probe, name)[0], 16) == 0, (name, probe)
    if setuid_build:
        assert int(status(probe, "CapBnd:")[0], 16) == 0, probe
    assert status(probe, "NoNewPrivs:") == ["1"], probe
    assert probe["nnp"] == ["1"]
    assert probe["setuid0"] == ["-1 errno=1"], probe  # EPERM
    assert probe["setgid0"] == ["-1 errno=1"], probe
    assert probe["uid"] == [f"{uid} euid={uid} gid={uid} egid={uid}"], probe
    assert probe["jail_marker"] == ["1"], probe  # / is the jail


def assert_refused(setup: Setup, result, mark: int, reason: str) -> None:
    """Exit 1, exactly one stderr line naming the reason, no stdout, a syslog refuse line."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1, (result.returncode, stderr)
    assert stderr.count("\n") == 1 and reason in stderr, stderr
    assert "Traceback" not in stderr and result.stdout == b""
    lines = setup.sandbox.log_since(mark, "decision=refuse")
    assert any("decision=refuse" in line and reason in line for line in lines), lines


# -- through the real sshd -----------------------------------------------------------------------


@pytest.mark.parametrize("user", ["capuser", "suiduser"])
def test_scp_and_sftp_land_in_the_jail(setup: Setup, user: str, tmp_path: Path) -> None:
    setup.use_config(TRANSFER_CONFIG)
    sandbox = setup.sandbox
    data = os.urandom(150_000) + b"\0\r\n end"
    payload = client_file(tmp_path, "payload.bin", data)
    home = sandbox.path(f"/srv/jail/home/{user}")
    up = sandbox.run(sandbox.scp_argv("-O", str(payload), f"{user}@sandbox:up-scp.bin"))
    assert up.returncode == 0, up.stderr
    assert (home / "up-scp.bin").read_bytes() == data
    back = tmp_path / "back.bin"
    down = sandbox.run(sandbox.scp_argv("-O", f"{user}@sandbox:up-scp.bin", str(back)))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == data
    batch = sandbox.sftp_batch(
        user, f"put {payload} up-sftp.bin\nget up-sftp.bin {tmp_path}/back2.bin\nls -1 /\npwd\n"
    )
    assert batch.returncode == 0, batch.stderr
    assert (home / "up-sftp.bin").read_bytes() == data
    assert (tmp_path / "back2.bin").read_bytes() == data
    listing = batch.stdout.decode()
    assert "JAIL_MARKER" in listing and "/opt" not in listing and "/root" not in listing
    assert f"Remote working directory: /home/{user}" in listing
    # Nothing was written next to the jail on the host side of it.
    assert not sandbox.path(f"/srv/jail//home/{user}/../../up-scp.bin").exists()


@pytest.mark.parametrize("user", ["capuser", "suiduser"])
def test_transfer_log_in_the_jail(setup: Setup, user: str, tmp_path: Path) -> None:
    """Issue 17 in scponly-pyc: the supervisor is the jailed, unprivileged login, using the
    syslog socket and the /proc/self/io fd opened before the chroot and only modules loaded
    before it (the jail holds no Python): every sftp operation has its exact line, scp -O
    its end line, and each end line the program's bytes."""
    setup.use_config(TRANSFER_CONFIG)
    sandbox = setup.sandbox
    size = 123_457
    payload = client_file(tmp_path, "payload.bin", os.urandom(size))
    home = f"/home/{user}"
    mark = sandbox.log_mark()
    batch = sandbox.sftp_batch(
        user, f"put {payload} t.bin\nget t.bin {tmp_path}/t.back\nrename t.bin t2.bin\nrm t2.bin\n"
    )
    assert batch.returncode == 0 and b"internal error" not in batch.stderr, batch.stderr
    assert (tmp_path / "t.back").read_bytes() == payload.read_bytes()
    lines = session_lines(sandbox, mark, user)
    assert lines[0]["decision"] == "allow" and lines[0]["program"] == "sftp", lines
    assert events(lines, "path", "mode", "bytes_read", "bytes_written", "target")[:-1] == [
        ("open", f"{home}/t.bin", "write,create,truncate", None, None, None),
        ("close", f"{home}/t.bin", None, "0", str(size), None),
        ("open", f"{home}/t.bin", "read", None, None, None),
        ("close", f"{home}/t.bin", None, str(size), "0", None),
        ("rename", f"{home}/t.bin", None, None, None, f"{home}/t2.bin"),
        ("remove", f"{home}/t2.bin", None, None, None, None),
    ]
    end = lines[-1]
    assert (end["event"], end["program"], end["status"], end["dropped"]) == (
        "end", "sftp", "0", "0"
    ), end  # fmt: skip
    assert not str(end["session"]).startswith("r"), end  # PID-STARTTIME: read before the chroot
    assert int(end["bytes_read"]) > 2 * size and int(end["bytes_written"]) > 2 * size, end  # type: ignore[arg-type]

    mark = sandbox.log_mark()
    up = sandbox.run(sandbox.scp_argv("-O", str(payload), f"{user}@sandbox:legacy.bin"))
    assert up.returncode == 0, up.stderr
    lines = session_lines(sandbox, mark, user)
    assert [fields.get("event") for fields in lines] == [None, "end"], lines
    assert lines[-1]["program"] == "scp" and lines[-1]["status"] == "0", lines
    assert int(lines[-1]["bytes_read"]) >= size, lines  # type: ignore[arg-type]


SFTP_INIT = b"\x00\x00\x00\x05\x01\x00\x00\x00\x03"  # SSH_FXP_INIT, version 3


@pytest.mark.parametrize("user", ["capuser", "suiduser"])
def test_legacy_sftp_probe_runs_sftp_server_in_the_jail(setup: Setup, user: str) -> None:
    """PuTTY/WinSCP/phpseclib's fallback probe: decide() maps it to sftp-server, whose
    grammar must have been loaded before the chroot (it was re-derived from the command)."""
    from scponly_py.decide import LEGACY_SFTP_PROBES  # noqa: PLC0415

    setup.use_config(TRANSFER_CONFIG)
    (probe,) = LEGACY_SFTP_PROBES
    sandbox = setup.sandbox
    session = sandbox.spawn(
        [*sandbox.ssh_argv(user), probe],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    session.stdin.write(SFTP_INIT)  # type: ignore[union-attr]
    session.stdin.flush()  # type: ignore[union-attr]
    answer = session.stdout.read(5)  # type: ignore[union-attr]
    session.stdin.close()  # type: ignore[union-attr]
    stderr = session.stderr.read()  # type: ignore[union-attr]
    assert session.wait(timeout=30) == 0, stderr
    assert b"internal error" not in stderr, stderr
    assert answer[4:5] == b"\x02", (answer, stderr)  # SSH_FXP_VERSION


RSYNC_CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]
"""


@pytest.mark.parametrize("user", ["capuser", "suiduser"])
def test_rsync_push_and_pull_inside_the_jail(setup: Setup, user: str, tmp_path: Path) -> None:
    setup.use_config(RSYNC_CONFIG)
    sandbox = setup.sandbox
    tmp_path.chmod(0o755)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.bin").write_bytes(os.urandom(80_000))
    ssh = f"ssh -F {sandbox.ssh_config}"
    up = sandbox.run(["rsync", "-a", "-e", ssh, f"{tree}/", f"{user}@sandbox:synced/"])
    assert up.returncode == 0, up.stderr
    landed = sandbox.path(f"/srv/jail/home/{user}/synced/sub/data.bin")
    assert landed.read_bytes() == (tree / "sub" / "data.bin").read_bytes()
    back = tmp_path / "back"
    down = sandbox.run(["rsync", "-a", "-e", ssh, f"{user}@sandbox:synced/", f"{back}/"])
    assert down.returncode == 0, down.stderr
    assert (back / "sub" / "data.bin").read_bytes() == (tree / "sub" / "data.bin").read_bytes()


WINSCP_CONFIG = """
[defaults]
programs = ["winscp", "scp"]
"""
WINSCP_END = ' ; echo "WinSCP: this is end-of-file:$status"'


def test_winscp_session_inside_the_jail(setup: Setup) -> None:
    """WinSCP's SCP mode runs after the chroot: its code must have been loaded before it."""
    setup.use_config(WINSCP_CONFIG)
    mark = setup.sandbox.log_mark()
    lines = f"pwd{WINSCP_END}\nscp -r -d -t /home/capuser{WINSCP_END}\n"
    result = setup.sandbox.ssh("capuser", None, "-T", input=lines.encode() + b"\0")
    output = result.stdout.decode(errors="replace")
    assert result.stderr == b"", result.stderr
    assert output.startswith("/home/capuser\nWinSCP: this is end-of-file:0\n"), output
    logged = session_lines(setup.sandbox, mark, "capuser")  # one session id on every line
    assert logged[-1]["event"] == "end" and logged[-1]["program"] == "winscp", logged


@pytest.mark.parametrize(("user", "setuid_build"), [("capuser", False), ("suiduser", True)])
def test_probe_through_sshd_has_nothing(setup: Setup, user: str, setuid_build: bool) -> None:
    setup.use_config(PROBE_CONFIG)
    sandbox = setup.sandbox
    client_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",  # sane: passed on
        "LC_ALL": "../../tmp/x",  # not a locale name: dropped
        "PYTHONINSPECT": "1",  # sshd accepts PYTHON* here (AcceptEnv); the child never sees it
        "PYTHONPATH": f"{HOSTILE}/py",
    }
    argv = sandbox.ssh_argv(user, "-oSendEnv=LANG LC_ALL PYTHONINSPECT PYTHONPATH")
    result = sandbox.run([*argv, SFTP_SERVER], input=b"", env=client_env)
    assert result.returncode == 0, result.stderr
    probe = parse_probe(result.stdout)
    assert_unprivileged(probe, setup.uids[user], setuid_build=setuid_build)
    assert probe["cwd"] == [f"/home/{user}"]
    env = probe_env(probe)
    connection = env.get("SSH_CONNECTION", "")
    assert connection.startswith("127.0.0.1 ")
    assert env == {
        **FIXED_ENV,
        "HOME": f"/home/{user}",
        "LANG": "C.UTF-8",
        "USER": user,
        "LOGNAME": user,
        "SSH_CONNECTION": connection,
        "SSH_CLIENT": env.get("SSH_CLIENT", ""),
    }, env
    assert [fd.split()[0] for fd in probe["fd"]] == ["0", "1", "2"], probe["fd"]


# -- the hostile matrix: the privileged binaries run directly by a local user --------------------

HOSTILE_ENVIRONMENTS = {
    "LD_PRELOAD": {"LD_PRELOAD": f"{HOSTILE}/evil.so"},
    "LD_LIBRARY_PATH": {"LD_LIBRARY_PATH": f"{HOSTILE}/lib", "LD_AUDIT": f"{HOSTILE}/evil.so"},
    "PYTHON*": {
        "PYTHONPATH": f"{HOSTILE}/py",
        "PYTHONHOME": f"{HOSTILE}/py",
        "PYTHONSTARTUP": f"{HOSTILE}/py/startup.py",
        "PYTHONINSPECT": "1",
        "PYTHONUSERBASE": f"{HOSTILE}/py",
        "PYTHONSAFEPATH": "0",
    },
    "TMPDIR/TEMP/TMP": {
        "TMPDIR": f"{HOSTILE}/tmp",
        "TEMP": f"{HOSTILE}/tmp",
        "TMP": f"{HOSTILE}/tmp",
    },
    "_PYI_*": {
        "_PYI_APPLICATION_HOME_DIR": f"{HOSTILE}/pyi",
        "_PYI_ARCHIVE_FILE": CAP,
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "_PYI_SPLASH_IPC": "1",
        "_PYI_LINUX_PROCESS_NAME": "evil",
    },
    "_PYI_* skipping the restart": {
        "_PYI_ARCHIVE_FILE": CAP,
        "_PYI_PARENT_PROCESS_LEVEL": "0",
        "LD_LIBRARY_PATH": f"{HOSTILE}/lib",
    },
    "PYINSTALLER_*": {
        "PYINSTALLER_RESET_ENVIRONMENT": "1",
        "PYINSTALLER_STRICT_UNPACK_MODE": "0",
        "PYINSTALLER_SUPPRESS_SPLASH_SCREEN": "1",
        "_MEIPASS2": f"{HOSTILE}/pyi",
    },
    "USER/HOME spoofed": {"USER": "root", "HOME": "/", "LOGNAME": "root", "SHELL": "/bin/sh"},
}


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
@pytest.mark.parametrize("case", list(HOSTILE_ENVIRONMENTS))
def test_hostile_environment(setup: Setup, binary: str, case: str) -> None:
    setup.use_config(PROBE_CONFIG)
    env = {key: value.replace(CAP, binary) for key, value in HOSTILE_ENVIRONMENTS[case].items()}
    result = setup.as_user(
        "local", [binary, "-c", SFTP_SERVER], env, input=b"open('/srv/hostile/pwned-stdin','w')\n"
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b">>>" not in result.stderr
    probe = parse_probe(result.stdout)
    assert_unprivileged(probe, setup.uids["local"], setuid_build=binary == SUID)
    assert probe_env(probe) == {
        **FIXED_ENV, "HOME": "/home/local", "USER": "local", "LOGNAME": "local",
    }  # fmt: skip
    assert setup.pwned() == []
    assert list(setup.sandbox.path(f"{HOSTILE}/tmp").iterdir()) == []


def test_the_hostile_material_works(setup: Setup) -> None:
    """Controls: the same variables do run code in an ordinary program (so a clean run means
    something)."""
    setup.as_user("local", ["/bin/true"], {"LD_PRELOAD": f"{HOSTILE}/evil.so"})
    setup.as_user("local", ["/usr/bin/python3", "-c", "pass"], {"PYTHONPATH": f"{HOSTILE}/py"})
    found = setup.pwned()
    uid = setup.uids["local"]
    assert found[0] == f"pwned-lib-{uid}-{uid}", found
    assert any(name.startswith("pwned-python-") for name in found), found
    for name in found:
        setup.sandbox.path(f"{HOSTILE}/{name}").unlink()


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
def test_bootloader_refuses_a_malformed_process_level(setup: Setup, binary: str) -> None:
    """PyInstaller's own check, before any of our code runs: no privilege used, no code run."""
    setup.use_config(PROBE_CONFIG)
    result = setup.as_user(
        "local",
        [binary, "-c", SFTP_SERVER],
        {"_PYI_ARCHIVE_FILE": binary, "_PYI_PARENT_PROCESS_LEVEL": "x; evil"},
    )
    assert result.returncode != 0
    assert result.stdout == b"" and b"Traceback" not in result.stderr
    assert result.stderr.count(b"\n") == 1, result.stderr
    assert setup.pwned() == []


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
@pytest.mark.parametrize("argv0", ["scponly-py", "-scponly-pyc", f"{HOSTILE}/evil.so", ""])
def test_argv0_tricks(setup: Setup, binary: str, argv0: str) -> None:
    setup.use_config(PROBE_CONFIG)
    result = setup.as_user(
        "local",
        ["bash", "-c", 'exec -a "$0" "$@"', argv0, binary, "-c", SFTP_SERVER],
    )
    assert result.returncode == 0, result.stderr
    assert_unprivileged(
        parse_probe(result.stdout), setup.uids["local"], setuid_build=binary == SUID
    )
    assert setup.pwned() == []


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
def test_closed_standard_fds(setup: Setup, binary: str) -> None:
    setup.use_config(PROBE_CONFIG)
    mark = setup.sandbox.log_mark()
    result = setup.as_user(
        "local", ["bash", "-c", 'exec 0<&- 1>&- 2>&- "$@"', "x", binary, "-c", SFTP_SERVER]
    )
    assert result.returncode == 0
    lines = setup.sandbox.log_since(mark, "decision=allow")
    assert any("decision=allow" in line and "user=local" in line for line in lines), lines
    assert setup.pwned() == []


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
@pytest.mark.parametrize("limit", [4, 5, 6, 8, 16])
def test_tiny_rlimit_nofile(setup: Setup, binary: str, limit: int) -> None:
    """Either it works unprivileged, or it stops without a traceback; never privileged."""
    setup.use_config(PROBE_CONFIG)
    result = setup.as_user(
        "local", ["prlimit", f"--nofile={limit}:{limit}", binary, "-c", SFTP_SERVER]
    )
    assert b"Traceback" not in result.stderr
    if result.returncode == 0:
        assert_unprivileged(
            parse_probe(result.stdout), setup.uids["local"], setuid_build=binary == SUID
        )
    else:
        assert result.stdout == b""
        assert result.stderr.count(b"\n") <= 1, result.stderr
        if result.stderr.startswith(b"scponly-py:"):  # ours (not ld.so's or the bootloader's)
            assert result.returncode == 1
    print(f"nofile={limit}: exit {result.returncode} {result.stderr[:120]!r}")
    assert setup.pwned() == []


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
@pytest.mark.parametrize("command", ["scp -t .", "rsync --server -e.LsfxC . ."])
def test_setuid_binaries_in_the_jail_give_nothing(setup: Setup, binary: str, command: str) -> None:
    """A setuid-root file in the jail (copy or hard link to one outside) runs as the user."""
    setup.use_config(PROBE_CONFIG)
    result = setup.as_user("local", [binary, "-c", command])
    assert result.returncode == 0, result.stderr
    probe = parse_probe(result.stdout)
    assert_unprivileged(probe, setup.uids["local"], setuid_build=binary == SUID)
    assert probe["argv"][0] in ("/suidprobe", "/hardsuid")


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("badowner", "jail path component /srv/bad-owner is not owned by root"),
        ("badgroup", "jail path component /srv/bad-group is writable by group or others"),
        ("badlink", "jail path component /srv/link is a symlink"),
        ("badparent", "jail path component /srv/userdir is not owned by root"),
        ("twoslashes", "has more than one '//'"),
        ("nohome", "cannot change to /home/missing in the jail"),
    ],
)
def test_unsafe_jails_are_refused(setup: Setup, binary: str, user: str, reason: str) -> None:
    setup.use_config(PROBE_CONFIG)
    mark = setup.sandbox.log_mark()
    result = setup.as_user(user, [binary, "-c", SFTP_SERVER])
    assert_refused(setup, result, mark, reason)


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
def test_user_owned_home_is_refused_on_a_systemd_host(setup: Setup, binary: str) -> None:
    """systemd --user runs outside the jail with HOME = the passwd home, so capuser's in-jail
    home, which is hers, could feed it units. No real systemd here: /run/systemd/system in the
    sandbox's private /run is all the shell looks at (sd_booted)."""
    setup.use_config(PROBE_CONFIG)
    setup.run(["mkdir", "-p", "/run/systemd/system"], check=True)
    try:
        mark = setup.sandbox.log_mark()
        result = setup.as_user("capuser", [binary, "-c", SFTP_SERVER])
        assert_refused(setup, result, mark, "/srv/jail//home/capuser is owned by uid")
    finally:
        setup.run(["rmdir", "/run/systemd/system"], check=True)


def test_unsafe_jail_through_sshd(setup: Setup) -> None:
    setup.use_config(PROBE_CONFIG)
    mark = setup.sandbox.log_mark()
    result = setup.sandbox.ssh("badowner", SFTP_SERVER, input=b"")
    assert_refused(setup, result, mark, "/srv/bad-owner is not owned by root")


@pytest.mark.parametrize("binary", [CAP, SUID], ids=["cap", "setuid"])
def test_root_is_refused(setup: Setup, binary: str) -> None:
    setup.use_config(PROBE_CONFIG)
    mark = setup.sandbox.log_mark()
    result = setup.run([binary, "-c", SFTP_SERVER], cwd="/")
    assert_refused(setup, result, mark, "root may not use this shell")


def test_an_unsafe_installed_tree_is_refused(setup: Setup, frozen_tree: Path) -> None:
    setup.use_config(PROBE_CONFIG)
    setup.sh("mkdir -m 0755 /srv/badtree")
    setup.run(
        [SETUP, "install-chroot-shell", "--from", str(frozen_tree), "--dest",
         "/srv/badtree/scponly-py", "--no-register"],
        check=True,
    )  # fmt: skip
    setup.sh("chmod 0775 /srv/badtree")
    mark = setup.sandbox.log_mark()
    result = setup.as_user("local", ["/srv/badtree/scponly-py/scponly-pyc", "-c", SFTP_SERVER])
    assert_refused(
        setup, result, mark, "unsafe installation: /srv/badtree is writable by group or others"
    )


def test_install_refuses_an_unsafe_destination(setup: Setup, frozen_tree: Path) -> None:
    result = setup.run(
        [SETUP, "install-chroot-shell", "--from", str(frozen_tree), "--dest",
         f"{HOSTILE}/scponly-py", "--no-register"],
    )  # fmt: skip
    assert result.returncode == 1
    assert b"writable by group or others" in result.stderr


def test_installed_tree_is_root_owned_and_unwritable(setup: Setup) -> None:
    for top in ("/srv/cap/scponly-py", "/srv/suid/scponly-py"):
        base = setup.sandbox.path(top)
        for path in [base, *base.rglob("*")]:
            info = path.lstat()
            assert info.st_uid == 0 and info.st_gid == 0, path
            assert not info.st_mode & 0o022, path
            setuid = path.name == "scponly-pyc" and top.startswith("/srv/suid")
            assert bool(info.st_mode & 0o4000) == setuid, path
            assert not info.st_mode & 0o2000, path
    capability = os.getxattr(setup.sandbox.path(CAP), "security.capability")
    assert capability.hex() == "0100000200000400000000000000000000000000"
    for plain in (PLAIN, f"/srv/jail2{PLAIN}"):  # the host tree's and the jail's copy
        capability = os.getxattr(setup.sandbox.path(plain), "security.capability")
        assert capability.hex() == SECURE_START_CAPABILITY, plain
    getcap = shutil.which("getcap")
    if getcap:
        shown = setup.run([getcap, CAP]).stdout.decode()
        assert "cap_sys_chroot=ep" in shown


def test_chroot_directory_mode(setup: Setup, tmp_path: Path) -> None:
    """sshd ChrootDirectory + the unprivileged frozen scponly-py in the jail (no Python there)."""
    sandbox = setup.sandbox
    data = os.urandom(100_000)
    payload = client_file(tmp_path, "payload.bin", data)
    up = sandbox.run(sandbox.scp_argv("-O", str(payload), "chrooted@sandbox:up.bin"))
    assert up.returncode == 0, up.stderr
    assert sandbox.path("/srv/jail2/home/chrooted/up.bin").read_bytes() == data
    batch = sandbox.sftp_batch("chrooted", f"get up.bin {tmp_path}/back.bin\nls -1 /\n")
    assert batch.returncode == 0, batch.stderr
    assert (tmp_path / "back.bin").read_bytes() == data
    assert "JAIL2_MARKER" in batch.stdout.decode()
    mark = sandbox.log_mark()
    refused = sandbox.ssh("chrooted", "id", input=b"")
    assert refused.returncode == 1 and b"refused" in refused.stderr
    assert any("user=chrooted" in line for line in sandbox.log_since(mark, "user=chrooted"))
    assert not sandbox.path("/srv/jail2/usr/bin/python3").exists()


def test_update_keeps_the_frozen_shells_capability(setup: Setup) -> None:
    """`update` (the package triggers run it) re-copies a jail file whose bytes differ from the
    host's, as after an upgrade; the jail's frozen scponly-py keeps cap_wake_alarm+p, without
    which every ChrootDirectory login would be refused."""
    jailed = setup.sandbox.path(f"/srv/jail2{PLAIN}")
    wanted = os.getxattr(setup.sandbox.path(PLAIN), "security.capability")
    with jailed.open("ab") as handle:  # an older build: other bytes (the write drops the xattr)
        handle.write(b"\0")
    assert "security.capability" not in os.listxattr(jailed)
    # this harness writes chrooted's passwd/group lines by hand; update would converge them away
    accounts = {name: setup.sandbox.path(f"/srv/jail2/etc/{name}") for name in ("passwd", "group")}
    saved = {name: path.read_bytes() for name, path in accounts.items()}
    setup.run([SETUP, "update", "/srv/jail2", "--state-dir", "/srv/state"], check=True)
    for name, path in accounts.items():
        path.write_bytes(saved[name])
    assert os.getxattr(jailed, "security.capability") == wanted
    batch = setup.sandbox.sftp_batch("chrooted", "ls -1 /\n")
    assert batch.returncode == 0 and "JAIL2_MARKER" in batch.stdout.decode(), batch.stderr


def test_frozen_scponly_py_ignores_python_variables(setup: Setup) -> None:
    """The unprivileged frozen shell too: PYTHON* and _PYI_* never load code."""
    setup.use_config(PROBE_CONFIG)
    result = setup.as_user(
        "local",
        ["/srv/cap/scponly-py/scponly-py", "-c", "bogus"],
        {**HOSTILE_ENVIRONMENTS["PYTHON*"], **HOSTILE_ENVIRONMENTS["_PYI_*"]},
    )
    assert result.returncode == 1
    assert b"refused" in result.stderr and b"Traceback" not in result.stderr
    assert setup.pwned() == []


def test_frozen_scponly_py_starts_in_secure_execution_mode(setup: Setup) -> None:
    """cap_wake_alarm+p: the loader ignores LD_* (in the bootloader and its re-exec), the login
    goes on, and the program it execs holds no capability."""
    setup.use_config(TRANSFER_CONFIG)
    mark = setup.sandbox.log_mark()
    env = {**HOSTILE_ENVIRONMENTS["LD_PRELOAD"], **HOSTILE_ENVIRONMENTS["LD_LIBRARY_PATH"]}
    result = setup.as_user("local", [PLAIN, "-c", "scp -f missing"], env)
    assert b"not-secure-execution" not in result.stderr and b"Traceback" not in result.stderr
    lines = setup.sandbox.log_since(mark, "decision=allow")
    assert any("decision=allow" in line and "user=local" in line for line in lines), lines
    assert setup.pwned() == []


def test_frozen_scponly_py_without_its_capability_is_refused(setup: Setup) -> None:
    """A copy that lost its capability (no xattrs, a plain cp): the library ran (the control),
    so the login is refused, loudly; root needs no capability."""
    setup.use_config(TRANSFER_CONFIG)
    uid = setup.uids["local"]
    mark = setup.sandbox.log_mark()
    try:
        result = setup.as_user(
            "local", [NOCAP, "-c", "scp -f missing"], HOSTILE_ENVIRONMENTS["LD_PRELOAD"]
        )
        assert setup.pwned() == [f"pwned-lib-{uid}-{uid}"]
    finally:
        for name in setup.pwned():
            setup.sandbox.path(f"{HOSTILE}/{name}").unlink()
    assert_refused(setup, result, mark, "not-secure-execution")
    assert b"is its file capability missing" in result.stderr
    root = setup.run([NOCAP, "-c", "scp -f missing"], cwd="/")
    assert b"not-secure-execution" not in root.stderr and b"Traceback" not in root.stderr


def test_chroot_directory_plant_through_sshd(setup: Setup, tmp_path: Path) -> None:
    """The user uploads a library and ~/.ssh/environment (LD_PRELOAD=it) over sftp and logs in
    again: with the in-jail copy's capability it never runs; without it (the control) it runs
    and the login is refused."""
    sandbox = setup.sandbox
    tmp_path.chmod(0o755)
    home = sandbox.path("/srv/jail2/home/chrooted")
    compile_c(
        EVIL_LIBRARY.replace("/srv/hostile/", "/home/chrooted/"),
        tmp_path / "evil.so",
        "-shared",
        "-fPIC",
    )
    (tmp_path / "environment").write_text("LD_PRELOAD=/home/chrooted/evil.so\n")
    plant = sandbox.sftp_batch(
        "chrooted",
        f"put {tmp_path}/evil.so evil.so\n-mkdir .ssh\n"
        f"put {tmp_path}/environment .ssh/environment\n",
    )
    assert plant.returncode == 0, plant.stderr
    in_jail = sandbox.path(f"/srv/jail2{PLAIN}")
    capability = os.getxattr(in_jail, "security.capability")
    try:
        os.removexattr(in_jail, "security.capability")
        mark = sandbox.log_mark()
        refused = sandbox.ssh("chrooted", "scp -f evil.so", input=b"")
        assert b"not-secure-execution" in refused.stderr, refused.stderr
        assert any("not-secure-execution" in line for line in sandbox.log_since(mark, "refuse"))
        assert [p.name for p in home.iterdir() if "pwned" in p.name], "the plant must work"
        for marker in home.glob("pwned-*"):
            marker.unlink()
        os.setxattr(in_jail, "security.capability", capability)
        batch = sandbox.sftp_batch("chrooted", f"get evil.so {tmp_path}/back.so\nls -1 /\n")
        assert batch.returncode == 0, batch.stderr
        assert (tmp_path / "back.so").read_bytes() == (tmp_path / "evil.so").read_bytes()
        assert [p.name for p in home.iterdir() if "pwned" in p.name] == []
    finally:
        os.setxattr(in_jail, "security.capability", capability)
        (home / ".ssh" / "environment").unlink(missing_ok=True)
        for marker in home.glob("pwned-*"):
            marker.unlink()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.parametrize(
    "command",
    [
        "/usr/lib/openssh/sftp-server",
        "scp -t x",
        "rsync --server -logDtpre.iLsfxCIvu . x",
        "unison -server __new-rpc-mode",
        "svnserve -t",
    ],
)
def test_frozen_tree_holds_every_grammar(frozen_tree: Path, tmp_path: Path, command: str) -> None:
    """Grammars are imported by name at run time; the frozen build must still contain each one."""
    config = tmp_path / "config.toml"
    # svnserve with commit access must be the account's only program.
    programs = (
        '["svnserve"]' if command.startswith("svnserve") else '["sftp", "scp", "rsync", "unison"]'
    )
    config.write_text(f'[defaults]\nprograms = {programs}\nsvn_root = "/srv/svn"\n')
    result = subprocess.run(
        [str(frozen_tree / "scponly-py"), "explain", "--user", "nobody", "--config", str(config),
         "--", command],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"decision:  ALLOW" in result.stdout


@pytest.mark.parametrize(
    ("user", "home"),
    [
        ("capuser", "/srv/jail/home/capuser"),
        ("suiduser", "/srv/jail/home/suiduser"),
        ("chrooted", "/srv/jail2/home/chrooted"),
    ],
)
def test_uploads_never_become_set_id_in_a_jail(
    setup: Setup, user: str, home: str, tmp_path: Path
) -> None:
    """scponly-pyc (both builds) and the frozen scponly-py install the set-id filter too."""
    setup.use_config(TRANSFER_CONFIG)
    program = client_file(tmp_path, "program", b"#!/bin/sh\nid -u\n")
    batch = setup.sandbox.sftp_batch(user, f"put {program} setid\nchmod 4755 setid\n")
    assert batch.returncode == 1
    assert b'setid": Permission denied' in batch.stderr, batch.stderr
    up = setup.sandbox.run(setup.sandbox.scp_argv("-O", "-p", str(program), f"{user}@sandbox:p"))
    assert up.returncode == 0, up.stderr
    assert setup.sandbox.path(f"{home}/setid").stat().st_mode & 0o7777 == 0o644
    stamped = setup.sandbox.sftp_batch(user, "-chmod 2755 p\nchmod 755 p\n")
    assert b"Permission denied" in stamped.stderr, stamped.stderr
    assert setup.sandbox.path(f"{home}/p").stat().st_mode & 0o7777 == 0o755
