"""Login overhead and session cost of scponly-py, measured with hyperfine.

Inside a sandbox (private namespaces, see tests/e2e/sandbox.py) as an ordinary
user, it times exec -> exec of the target, with /bin/true configured as the
sftp program, for:
  * /bin/true, `dash -c /bin/true` and `python3 -I -S -c pass` (the interpreter floor),
  * `scponly-py -c /usr/lib/openssh/sftp-server` through the front and the
    launcher that install-shell writes (the package imported from root's .pyc),
    and (log_transfers off) the launcher alone, the Python part of a login,
  * with `--compare DIR`, the same through another checkout's package, front and
    launcher, each installed by that checkout's own install-shell code (e.g. a
    `git archive` of main: the "before" of a change),
then a whole `scp -O` upload through sshd to a user whose shell is scponly-py
next to the same upload to a user whose shell is bash, and, if valgrind is
installed, the instructions each login executes up to the exec of the target
(callgrind; deterministic, unlike wall time on a shared VM).

Start-up times drift by several per cent over a hyperfine run on a shared VM,
and the first command of a run is measured colder than the rest. So each
measurement is repeated in rounds that rotate the order of the commands, and
the table gives the median over rounds of each command's median and of its
ratio to the floor measured in the same round.
Run as root: sudo /opt/scponly-py/bin/python bench/login_overhead.py [--rounds N] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scponly_py import request as requests
from setup_chroot import launcher
from tests.e2e.sandbox import Sandbox

CONFIG = """
[paths]
sftp = "/bin/true"
"""
# The same login without the transfer log's supervisor (no fork before the exec): the login
# path as it was before issue 17, for the issue 15 target (a config older trees can read
# has no such key, so --compare runs in the first pass only).
CONFIG_NO_SUPERVISOR = (
    CONFIG
    + """
[defaults]
log_transfers = false
"""
)
NO_SUPERVISOR = "scponly-py (this tree), log_transfers = false"
LAUNCHER_ALONE = "the launcher alone (no front), log_transfers = false"
# What the front hands the launcher (it installed the set-id filter).
FRONT_REPORT = ["env", f"{requests.FRONT_VARIABLE}={requests.FRONT_FILTERED.decode()}"]
# Installs another checkout's login shell with that checkout's own code (argv: checkout,
# front, interpreter, package parent).
INSTALL_OTHER = """import sys
sys.path.insert(0, sys.argv[1])
from setup_chroot import launcher
launcher.install(sys.argv[2], sys.argv[3], sys.argv[4])
"""


def install_other(sandbox: Sandbox, checkout: Path) -> Path:
    """Install `checkout`'s package and login shell under the sandbox's `other/`; the front."""
    other = sandbox.root / "other"
    library = other / "lib"
    shutil.copytree(
        checkout / "scponly_py", library / "scponly_py",
        ignore=shutil.ignore_patterns("__pycache__"),
    )  # fmt: skip
    for directory, _, files in os.walk(other):
        os.chmod(directory, 0o755)  # noqa: S103 - the bench user must read it
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    front = other / "bin" / "scponly-py"
    front.parent.mkdir(mode=0o755)
    interpreter = os.path.realpath(sandbox.launcher_python)
    subprocess.run(
        [interpreter, "-I", "-S", "-c", INSTALL_OTHER, str(checkout.resolve()),
         str(front), interpreter, str(library)],
        check=True,
    )  # fmt: skip
    return front


def hyperfine(sandbox: Sandbox, uid: int, commands: list[str], runs: int, output: Path) -> dict:
    """Run hyperfine as `uid` in the sandbox; return {command: (median, mean, stddev) in ms}.

    Its environment carries the front's report, which only the bare launcher reads (a front
    sets its own), so the launcher alone can be timed as the Python part of a login.
    """
    argv = [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *FRONT_REPORT,
        "hyperfine", "-N", "--warmup", "20", "--runs", str(runs), "--style", "none",
        "--export-json", str(output), *commands,
    ]  # fmt: skip
    result = sandbox.run(argv, timeout=1800, cwd="/")
    if result.returncode != 0:
        raise SystemExit(f"hyperfine failed: {result.stderr.decode()}")
    data = json.loads(output.read_text())
    return {
        entry["command"]: (entry["median"] * 1000, entry["mean"] * 1000, entry["stddev"] * 1000)
        for entry in data["results"]
    }


def rotated_rounds(
    sandbox: Sandbox, uid: int, commands: list[str], *, runs: int, rounds: int, output: Path
) -> dict[str, tuple[float, float]]:
    """{command: (median ms, median ratio to commands[0])} over `rounds` rotated hyperfine runs."""
    medians: dict[str, list[float]] = {command: [] for command in commands}
    ratios: dict[str, list[float]] = {command: [] for command in commands}
    for round_number in range(rounds):
        shift = round_number % len(commands)
        order = commands[shift:] + commands[:shift]
        results = hyperfine(sandbox, uid, order, runs, output)
        floor = results[commands[0]][0]
        for command in commands:
            medians[command].append(results[command][0])
            ratios[command].append(results[command][0] / floor)
    return {
        command: (statistics.median(medians[command]), statistics.median(ratios[command]))
        for command in commands
    }


def instructions(sandbox: Sandbox, uid: int, command: list[str], output: Path) -> int | None:
    """Instructions `command` executes up to its exec of the target (callgrind), or None.

    valgrind cannot run the front (a file capability), so a login is counted from
    the launcher on, with the front's report in the environment as the front sets it.
    """
    if shutil.which("valgrind") is None:
        return None
    for stale in output.parent.glob(f"{output.name}*"):
        stale.unlink()
    front = []
    if "scponly-py" in command[0]:
        front = FRONT_REPORT
        command = [launcher.script_path(command[0]), *command[1:]]
    sandbox.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *front,
         "valgrind", "--tool=callgrind", "--dump-before=execve",
         f"--callgrind-out-file={output}.%p", *command],
        cwd="/", timeout=300,
    )  # fmt: skip
    # The part before the exec is dumped as `.1`; a command that never execs has one file.
    dumps = sorted(output.parent.glob(f"{output.name}.*"), key=lambda path: path.name)
    first = [path for path in dumps if path.name.endswith(".1")] or dumps[:1]
    for line in first[0].read_text().splitlines() if first else ():
        if line.startswith("summary:"):
            return int(line.split()[1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rotated hyperfine runs")
    parser.add_argument("--runs", type=int, default=100, help="runs per command and round")
    parser.add_argument("--compare", type=Path, help="another checkout to measure next to this")
    args = parser.parse_args()
    sandbox = Sandbox.create()
    try:
        user = sandbox.add_user("bench")
        sandbox.add_user("bashuser", shell="/bin/bash")  # noqa: S604 - a login shell, not a subprocess
        sandbox.write_config(CONFIG)
        out = sandbox.root / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        request = "-c /usr/lib/openssh/sftp-server"
        startup_commands = {
            "python3 -I -S -c pass (the floor)": "/usr/bin/python3 -I -S -c pass",
            "/bin/true": "/bin/true",
            "dash -c /bin/true": "/bin/dash -c /bin/true",
            "scponly-py (this tree)": f"{sandbox.launcher} {request}",
        }
        if args.compare:
            other = install_other(sandbox, args.compare)
            startup_commands[f"scponly-py ({args.compare})"[:42]] = f"{other} {request}"
        startup = rotated_rounds(
            sandbox, user.uid, list(startup_commands.values()),
            runs=args.runs, rounds=args.rounds, output=out / "startup.json",
        )  # fmt: skip
        counted = {
            label: instructions(sandbox, user.uid, command.split(), out / "callgrind")
            for label, command in startup_commands.items()
            if "python3" in command or "scponly-py" in command
        }
        # Second pass, its own floor: the login without the supervisor.
        sandbox.write_config(CONFIG_NO_SUPERVISOR)
        plain = {
            "python3 -I -S -c pass (the floor, 2nd pass)": "/usr/bin/python3 -I -S -c pass",
            NO_SUPERVISOR: f"{sandbox.launcher} {request}",
            LAUNCHER_ALONE: f"{launcher.script_path(str(sandbox.launcher))} {request}",
        }
        second = rotated_rounds(
            sandbox, user.uid, list(plain.values()),
            runs=args.runs, rounds=args.rounds, output=out / "plain.json",
        )  # fmt: skip
        counted[NO_SUPERVISOR] = instructions(
            sandbox, user.uid, plain[NO_SUPERVISOR].split(), out / "callgrind"
        )
        sandbox.write_config(CONFIG)

        payload = sandbox.root / "payload.bin"
        payload.write_bytes(os.urandom(64 * 1024))
        payload.chmod(0o644)
        scp = " ".join(sandbox.scp_argv("-O", str(payload)))
        # One master connection per user; each further session reuses it (still one
        # login-shell run per channel), so the shell's start-up is most of the cost.
        control = str(sandbox.root / "control-%r")
        multiplex = f"-oControlMaster=auto -oControlPath={control} -oControlPersist=120"
        for name in ("bench", "bashuser"):
            sandbox.run([*sandbox.ssh_argv(name, *multiplex.split()), "-fN"], check=True)
        scp_mux = " ".join(sandbox.scp_argv("-O", *multiplex.split(), str(payload)))
        session_commands = {
            "new connection, shell = bash": f"{scp} bashuser@sandbox:p.bin",
            "new connection, shell = scponly-py": f"{scp} bench@sandbox:p.bin",
            "multiplexed (ControlMaster), shell = bash": f"{scp_mux} bashuser@sandbox:p.bin",
            "multiplexed (ControlMaster), shell = scponly-py": f"{scp_mux} bench@sandbox:p.bin",
        }
        sessions = rotated_rounds(
            sandbox, 0, list(session_commands.values()),
            runs=30, rounds=3, output=out / "sessions.json",
        )  # fmt: skip
    finally:
        sandbox.stop()

    print(
        f"Login overhead, exec -> exec of /bin/true, as an ordinary user: hyperfine -N, "
        f"{args.rounds} rotated rounds of {args.runs} runs; medians over rounds"
    )
    print(f"{'command':48} {'median ms':>10} {'x floor':>8} {'instructions':>13}")
    for commands, results in ((startup_commands, startup), (plain, second)):
        for label, command in commands.items():
            median, ratio = results[command]
            count = counted.get(label)
            shown = f"{count / 1e6:12.1f}M" if count else f"{'-':>13}"
            print(f"{label:48} {median:10.2f} {ratio:8.2f} {shown}")
    print(
        "(instructions: callgrind, up to the exec of the target, from the launcher on for "
        "scponly-py; the floor's include its exit)"
    )
    print("\nWhole scp -O upload of 64 KiB through sshd: 3 rotated rounds of 30 runs")
    bash = {"new": None, "multiplexed": None}
    for label, command in session_commands.items():
        median, _ = sessions[command]
        kind = label.split()[0]
        if label.endswith("bash"):
            bash[kind] = median
        extra = f"  (+{median - bash[kind]:.1f} ms)" if not label.endswith("bash") else ""
        print(f"{label:48} {median:8.1f} ms{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
