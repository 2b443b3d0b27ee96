"""Login overhead and session cost of scponly-py, measured with hyperfine.

Inside a sandbox (private namespaces, see tests/e2e/sandbox.py) as an ordinary
user, it times exec -> exec of the target, with /bin/true configured as the
sftp program, for:
  * /bin/true, `dash -c /bin/true` and `python3 -I -S -c pass` (the interpreter floor),
  * `scponly-py -c /usr/lib/openssh/sftp-server` through the launcher that
    install-shell writes, which runs the package from its login bundle,
  * the same package through the launcher of before the bundle (four lines that
    import it from disk), i.e. the "before" of issue 8,
then a whole `scp -O` upload through sshd to a user whose shell is scponly-py
next to the same upload to a user whose shell is bash, and, if valgrind is
installed, the instructions each login executes up to the exec of the target
(callgrind; deterministic, unlike wall time on a shared VM).

Start-up times drift by several per cent over a hyperfine run on a shared VM,
and the first command of a run is measured colder than the rest. So each
measurement is repeated in rounds that rotate the order of the commands, and
the table gives the median over rounds of each command's median and of its
ratio to the floor measured in the same round.
Run as root: sudo /opt/scponly-py/bin/python bench/login_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.sandbox import Sandbox

CONFIG = """
[paths]
sftp = "/bin/true"
"""
# The launcher of before the login bundle: the package imported from disk.
DISK_LAUNCHER = """#!/usr/bin/python3.11 -IS
import sys
sys.path.append({parent!r})
from scponly_py.shell import main
sys.exit(main())
"""


def hyperfine(sandbox: Sandbox, uid: int, commands: list[str], runs: int, output: Path) -> dict:
    """Run hyperfine as `uid` in the sandbox; return {command: (median, mean, stddev) in ms}."""
    argv = [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
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
    """Instructions `command` executes up to its exec of the target (callgrind), or None."""
    if shutil.which("valgrind") is None:
        return None
    for stale in output.parent.glob(f"{output.name}*"):
        stale.unlink()
    sandbox.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
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
    args = parser.parse_args()
    sandbox = Sandbox.create()
    try:
        user = sandbox.add_user("bench")
        sandbox.add_user("bashuser", shell="/bin/bash")  # noqa: S604 - a login shell, not a subprocess
        sandbox.write_config(CONFIG)
        out = sandbox.root / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        disk_launcher = sandbox.root / "bin" / "scponly-py-from-disk"
        disk_launcher.write_text(DISK_LAUNCHER.format(parent=str(sandbox.root / "lib")))
        disk_launcher.chmod(0o755)
        request = "-c /usr/lib/openssh/sftp-server"
        startup_commands = {
            "python3 -I -S -c pass (the floor)": "/usr/bin/python3 -I -S -c pass",
            "/bin/true": "/bin/true",
            "dash -c /bin/true": "/bin/dash -c /bin/true",
            "scponly-py, launcher + login bundle": f"{sandbox.launcher} {request}",
            "scponly-py, imports from disk (before)": f"{disk_launcher} {request}",
        }
        startup = rotated_rounds(
            sandbox, user.uid, list(startup_commands.values()),
            runs=args.runs, rounds=args.rounds, output=out / "startup.json",
        )  # fmt: skip
        counted = {
            label: instructions(sandbox, user.uid, command.split(), out / "callgrind")
            for label, command in startup_commands.items()
            if "python3" in command or "scponly-py" in command
        }

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
    print(f"{'command':42} {'median ms':>10} {'x floor':>8} {'instructions':>13}")
    for label, command in startup_commands.items():
        median, ratio = startup[command]
        count = counted.get(label)
        shown = f"{count / 1e6:12.1f}M" if count else f"{'-':>13}"
        print(f"{label:42} {median:10.2f} {ratio:8.2f} {shown}")
    print("(instructions: callgrind, up to the exec of the target; the floor's include its exit)")
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
