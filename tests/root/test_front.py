"""The login shell's front (scponly_py/front.c), compiled and run as an unprivileged user.

With its file capability the kernel starts it in secure-execution mode: a library
named by LD_PRELOAD or LD_AUDIT never runs, and the launcher it execs gets only the
variables the shell reads, the front's own report, no capability and the signals a
client can send blocked. Without the capability (or under no_new_privs, where the
kernel grants none) it reports so and the shell refuses the login. A stand-in
launcher prints what it received.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scponly_py import request as requests
from scponly_py import setid
from setup_chroot import frozen, launcher

pytestmark = pytest.mark.root

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
REPORTER = """#!/usr/bin/python3 -IS
import json, posix, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
probe = "/proc/self/cwd/setid-probe"
fd = posix.open(probe, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o600)
posix.close(fd)
try:
    posix.chmod(probe, 0o4755)
    chmod = "allowed"
except PermissionError:
    chmod = "refused"
posix.unlink(probe)
print(json.dumps({
    "argv": sys.argv[1:],
    "env": {k.decode(): v.decode() for k, v in posix.environ.items()},
    "CapPrm": status["CapPrm"].strip(), "CapEff": status["CapEff"].strip(),
    "SigBlk": int(status["SigBlk"], 16),
    "NoNewPrivs": status["NoNewPrivs"].strip(), "Seccomp": status["Seccomp"].strip(),
    "chmod 4755": chmod,
}))
"""
FILTERED = requests.FRONT_FILTERED.decode()
LIBRARY = r"""
#include <fcntl.h>
#include <unistd.h>
static void mark(void) { int fd = open(MARKER, O_WRONLY | O_CREAT, 0644); if (fd >= 0) close(fd); }
__attribute__((constructor)) static void constructor(void) { mark(); }
unsigned int la_version(unsigned int version) { mark(); return version; }
"""
HELD = (1, 2, 3, 13, 15)  # SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM


@pytest.fixture(scope="module")
def place() -> Iterator[Path]:
    """A root-owned 0755 directory with the front (for the reporter), the reporter and x.so."""
    directory = Path(tempfile.mkdtemp(prefix="scponly-py-front-", dir="/tmp"))
    directory.chmod(0o755)
    (directory / "launcher").write_text(REPORTER)
    (directory / "launcher").chmod(0o755)
    (directory / "x.c").write_text(LIBRARY)
    marker = directory / "writable" / "ran"
    (directory / "writable").mkdir(mode=0o777)
    (directory / "writable").chmod(0o777)
    subprocess.run(
        ["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', str(directory / "x.c"), "-o",
         str(directory / "x.so")],
        check=True,
    )  # fmt: skip
    (directory / "x.so").chmod(0o755)
    launcher.build_front(str(directory / "front"), str(directory / "launcher"))
    yield directory
    shutil.rmtree(directory)


def run_front(
    place: Path, env: dict[str, str], *, capability: bool, prefix=NOBODY, front_name="front"
) -> dict:
    front = place / front_name
    if capability:
        front.chmod(0o755)
        subprocess.run(["setcap", "cap_wake_alarm+p", str(front)], check=True)
    else:
        subprocess.run(["setcap", "-r", str(front)], check=False, capture_output=True)
    # env(1) sets the variables for the front alone (setpriv must not load the library)
    assignments = [f"{name}={value}" for name, value in env.items()]
    result = subprocess.run(
        [*prefix, "env", "-i", *assignments, str(front), "-c", "scp -f x"],
        capture_output=True,
        check=False,
        cwd=place / "writable",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_capability_written_is_permitted_only(place: Path) -> None:
    value = launcher.front_capability()
    front = place / "front"
    front.chmod(0o755)
    subprocess.run(["setcap", "cap_wake_alarm+p", str(front)], check=True)
    assert front.stat().st_mode & 0o7777 == 0o755
    assert frozen.os.getxattr(front, frozen.CAPABILITY_XATTR) == value


@pytest.mark.parametrize("variable", ["LD_PRELOAD", "LD_AUDIT"])
def test_loader_variables_never_run_code(place: Path, variable: str) -> None:
    marker = place / "writable" / "ran"
    marker.unlink(missing_ok=True)
    seen = run_front(place, {variable: str(place / "x.so")}, capability=True)
    assert not marker.exists()
    assert variable not in seen["env"]
    assert seen["env"]["SCPONLY_PY_FRONT"] == FILTERED
    # control: the same library does run in a program without the front's capability
    subprocess.run([*NOBODY, "env", f"{variable}={place / 'x.so'}", "/bin/true"], check=True)
    assert marker.exists()
    marker.unlink()


def test_only_the_shells_variables_pass(place: Path) -> None:
    env = {name: "x" for name in ("GCONV_PATH", "LOCPATH", "PYTHONPATH", "HOME", "PATH", "TZ")}
    env |= {"LANG": "C.UTF-8", "LC_ALL": "C", "SSH_ORIGINAL_COMMAND": "scp -f y"}
    env |= {"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22", "SCPONLY_PY_FRONT": "1"}
    seen = run_front(place, env, capability=False)
    passed = {*requests.READ_VARIABLES, "SCPONLY_PY_FRONT"}
    assert set(seen["env"]) == passed & (set(env) | {"SCPONLY_PY_FRONT"})
    # a variable of the same name from outside never stands in for the front's own report
    assert seen["env"]["SCPONLY_PY_FRONT"] == "not-secure-execution"
    assert seen["argv"] == ["-c", "scp -f x"]


def test_capability_dropped_and_signals_held(place: Path) -> None:
    seen = run_front(place, {}, capability=True)
    assert int(seen["CapPrm"], 16) == 0 and int(seen["CapEff"], 16) == 0
    for number in HELD:
        assert seen["SigBlk"] & (1 << (number - 1)), number


def test_without_secure_execution_the_front_says_so(place: Path) -> None:
    assert run_front(place, {}, capability=False)["env"]["SCPONLY_PY_FRONT"] == (
        "not-secure-execution"
    )
    # no_new_privs: the kernel grants no file capability, so there is no AT_SECURE either
    no_new_privs = ["setpriv", "--no-new-privs", *NOBODY[1:]]
    seen = run_front(place, {}, capability=True, prefix=no_new_privs)
    assert seen["env"]["SCPONLY_PY_FRONT"] == "not-secure-execution"
    # root's own environment is root's: no capability is needed
    seen = run_front(place, {}, capability=False, prefix=[])
    assert seen["env"]["SCPONLY_PY_FRONT"] == FILTERED


def test_the_front_installs_the_set_id_filter(place: Path) -> None:
    seen = run_front(place, {}, capability=True)
    assert seen["env"]["SCPONLY_PY_FRONT"] == FILTERED
    assert (seen["NoNewPrivs"], seen["Seccomp"], seen["chmod 4755"]) == ("1", "2", "refused")
    # not in secure-execution mode: no filter either (the shell refuses the login anyway)
    seen = run_front(place, {}, capability=False)
    assert (seen["Seccomp"], seen["chmod 4755"]) == ("0", "allowed")


def test_a_front_without_a_filter_for_its_machine_says_1(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine setid.ARCHES lacks the front installs none; the shell's own refuses."""
    monkeypatch.setattr(setid, "MACHINE", None)
    launcher.build_front(str(place / "front-unfiltered"), str(place / "launcher"))
    seen = run_front(place, {}, capability=True, front_name="front-unfiltered")
    assert (seen["env"]["SCPONLY_PY_FRONT"], seen["Seccomp"]) == ("1", "0")


def test_the_shell_refuses_what_the_front_reports() -> None:
    from scponly_py import shell  # noqa: PLC0415 - the pure part of the check

    assert shell.front_problem(b"1") is None
    assert shell.front_problem(requests.FRONT_FILTERED) is None
    assert "not started through its front" in shell.front_problem(None)
    assert "not-secure-execution" in shell.front_problem(b"not-secure-execution")
