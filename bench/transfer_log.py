"""What transfer logging (the session supervisor, issue 17) costs: throughput, memory, start-up.

In a sandbox (tests/e2e/sandbox.py: a real sshd in private namespaces), two
accounts whose shell is scponly-py, one with `log_transfers = false`:

* throughput: SIZE MiB uploaded with sftp and with scp -O to each, back to
  back in alternating order (the machine's speed drifts); the best MB/s of
  each and the median over rounds of the pair's ratio (on / off);
* the supervisor's private memory (USS: smaps_rollup Private_Clean +
  Private_Dirty), the largest seen while one sftp upload runs;
* login-to-exec: /etc/bench/stamp (prints CLOCK_MONOTONIC at its start) as
  the sftp program, started by root with the account's uid (Popen user=),
  alternating on and off; the median of (stamp - time before the spawn).

Run as root: sudo /opt/scponly-py/bin/python bench/transfer_log.py [--mib 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ratios import print_throughput
from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp"]

[user.logoff]
log_transfers = false
"""
STAMP_CONFIG = CONFIG + '\n[paths]\nsftp = "/etc/bench/stamp"\n'
STAMP_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    return 0;
}
"""
# Runs inside the sandbox as root: argv = launcher, runs, uid-on, uid-off; prints
# "on|off nanoseconds" per run, alternating which goes first.
LOGIN_TO_EXEC = """
import subprocess, sys, time
launcher, runs = sys.argv[1], int(sys.argv[2])
uids = {"on": int(sys.argv[3]), "off": int(sys.argv[4])}
for number in range(runs):
    for label in (("on", "off") if number % 2 == 0 else ("off", "on")):
        uid = uids[label]
        before = time.monotonic_ns()
        out = subprocess.run(
            [launcher, "-c", "/usr/lib/openssh/sftp-server"], user=uid, group=uid,
            extra_groups=[], env={"PATH": "/usr/bin:/bin"}, cwd="/", capture_output=True,
        ).stdout
        print(label, int(out) - before)
"""


def uss_of_supervisors(stop: threading.Event, seen: list[int]) -> None:
    """Record the largest USS (kB) of any process named scponly-py-sup until `stop`."""
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "scponly-py-sup":
                    continue
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            except OSError:
                continue
            private = sum(int(line.split()[1]) for line in rollup if line.startswith("Private_"))
            seen.append(private)
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the uploaded file in MiB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300, help="login-to-exec runs per side")
    options = parser.parse_args()
    sandbox = Sandbox.create()
    try:
        users = {"on": sandbox.add_user("logon"), "off": sandbox.add_user("logoff")}
        sandbox.write_config(CONFIG)
        payload = sandbox.root / "payload.bin"
        with payload.open("wb") as handle:
            for _ in range(options.mib):
                handle.write(os.urandom(1 << 20))
        payload.chmod(0o644)
        commands = {
            "sftp": lambda user: (
                ["sftp", "-q", "-F", str(sandbox.ssh_config), "-b", "-", f"{user}@sandbox"],
                f"put {payload} p.bin\n".encode(),
            ),
            "scp -O": lambda user: (
                sandbox.scp_argv("-O", str(payload), f"{user}@sandbox:p.bin"),
                None,
            ),
        }
        times: dict[tuple[str, str], list[float]] = {}
        uss: list[int] = []
        for round_number in range(options.rounds):
            order = ("on", "off") if round_number % 2 == 0 else ("off", "on")
            for protocol, command in commands.items():
                for label in order:
                    user = users[label]
                    (user.home / "p.bin").unlink(missing_ok=True)
                    argv, script = command(user.name)
                    stop = threading.Event()
                    watcher = threading.Thread(target=uss_of_supervisors, args=(stop, uss))
                    if round_number == 0 and label == "on" and protocol == "sftp":
                        watcher.start()
                    started = time.monotonic()
                    result = sandbox.run(argv, input=script, timeout=900)
                    elapsed = time.monotonic() - started
                    stop.set()
                    if watcher.is_alive():
                        watcher.join()
                    if result.returncode != 0:
                        raise SystemExit(f"{protocol} {label}: {result.stderr.decode()}")
                    if (user.home / "p.bin").stat().st_size != options.mib << 20:
                        raise SystemExit(f"{protocol} {label}: wrong size arrived")
                    times.setdefault((protocol, label), []).append(elapsed)

        stamp = sandbox.path("/etc/bench/stamp")
        stamp.parent.mkdir(mode=0o755)
        source = sandbox.root / "stamp.c"
        source.write_text(STAMP_C)
        subprocess.run(["gcc", "-O2", "-o", str(stamp), str(source)], check=True)
        sandbox.write_config(STAMP_CONFIG)
        result = sandbox.run(
            [sys.executable, "-I", "-c", LOGIN_TO_EXEC, str(sandbox.launcher), str(options.runs),
             str(users["on"].uid), str(users["off"].uid)],
            timeout=1800,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"login-to-exec: {result.stderr.decode()}")
        delays: dict[str, list[int]] = {"on": [], "off": []}
        for line in result.stdout.decode().splitlines():
            label, value = line.split()
            delays[label].append(int(value))
    finally:
        sandbox.stop()

    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"\nUpload of {options.mib} MiB over loopback, {options.rounds} rounds: best MB/s,"
        " and the median over rounds of (logging on MB/s / logging off MB/s), back to back"
    )
    print_throughput(times, options.mib, {"on": "on", "off": "off"})
    print(
        f"\nSupervisor USS during an sftp upload: max {max(uss) / 1024:.2f} MiB,"
        f" median {statistics.median(uss) / 1024:.2f} MiB over {len(uss)} samples"
        if uss
        else "\nSupervisor USS: no supervisor seen"
    )
    on, off = statistics.median(delays["on"]), statistics.median(delays["off"])
    print(
        f"\nLogin-to-exec (spawn -> target's first instruction), {options.runs} runs each,"
        f" alternating: median on {on / 1e6:.2f} ms, off {off / 1e6:.2f} ms,"
        f" difference {(on - off) / 1e6:+.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
