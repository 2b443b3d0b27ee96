"""Transfer throughput through scponly-py next to a direct (bash) login on the same sshd.

After the exec nothing of scponly-py runs, so the only possible difference is
start-up; this proves it on a large transfer. For each of scp -O, sftp and
rsync it uploads SIZE bytes to a user whose shell is scponly-py and to one
whose shell is bash, back to back and in alternating order (the machine's
speed drifts), and prints the best MB/s of each and the median over rounds of
the pair's throughput ratio.

Run as root: sudo /opt/scponly-py/bin/python bench/throughput.py [--mib 1024] [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ratios import print_throughput
from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="size of the file in MiB")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()

    sandbox = Sandbox.create()
    try:
        sandbox.add_user("viashell")
        sandbox.add_user("direct", shell="/bin/bash")  # noqa: S604 - a login shell, not a subprocess
        sandbox.write_config(CONFIG)
        payload = sandbox.root / "payload.bin"
        with payload.open("wb") as handle:
            block = bytes(range(256)) * 4096
            for _ in range(options.mib):
                handle.write(block)
        payload.chmod(0o644)
        ssh = f"ssh -F {sandbox.ssh_config}"
        commands = {
            "scp -O": lambda user: sandbox.scp_argv("-O", str(payload), f"{user}@sandbox:p.bin"),
            "sftp": lambda user: [
                "sftp", "-q", "-F", str(sandbox.ssh_config), "-b", "-", f"{user}@sandbox",
            ],
            "rsync": lambda user: [
                "rsync", "--whole-file", "-e", ssh, str(payload), f"{user}@sandbox:p.bin",
            ],
        }  # fmt: skip
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(options.rounds):
            users = ("viashell", "direct") if round_number % 2 == 0 else ("direct", "viashell")
            for protocol, argv in commands.items():
                for user in users:
                    (sandbox.users[user].home / "p.bin").unlink(missing_ok=True)
                    script = f"put {payload} p.bin\n".encode() if protocol == "sftp" else None
                    started = time.monotonic()
                    result = sandbox.run(argv(user), input=script, timeout=600)
                    elapsed = time.monotonic() - started
                    if result.returncode != 0:
                        raise SystemExit(f"{protocol} {user} failed: {result.stderr.decode()}")
                    size = (sandbox.users[user].home / "p.bin").stat().st_size
                    if size != options.mib << 20:
                        raise SystemExit(f"{protocol} {user}: {size} bytes arrived")
                    times.setdefault((protocol, user), []).append(elapsed)
    finally:
        sandbox.stop()

    print(
        f"Upload of {options.mib} MiB over loopback, {options.rounds} rounds: best MB/s, and the"
        " median over rounds of (scponly-py MB/s / bash MB/s) of runs made back to back"
    )
    print_throughput(times, options.mib, {"viashell": "scponly-py", "direct": "bash"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
