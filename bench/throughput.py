"""Transfer throughput through scponly-py next to a direct (bash) login on the same sshd.

After the exec nothing of scponly-py runs, so the only possible difference is
start-up; this proves it on a large transfer. For each of scp -O, sftp and
rsync it uploads SIZE bytes to a user whose shell is scponly-py and to one
whose shell is bash, alternating, and prints MB/s and the ratio.

Run as root: sudo /opt/scponly-py/bin/python bench/throughput.py [--mib 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="size of the file in MiB")
    parser.add_argument("--rounds", type=int, default=2)
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
        best: dict[tuple[str, str], float] = {}
        for _ in range(options.rounds):
            for protocol, argv in commands.items():
                for user in ("viashell", "direct"):
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
                    key = (protocol, user)
                    best[key] = min(best.get(key, elapsed), elapsed)
    finally:
        sandbox.stop()

    print(f"Upload of {options.mib} MiB over loopback, best of {options.rounds} (MB/s)")
    print(f"{'protocol':10} {'scponly-py':>12} {'bash':>12} {'ratio':>8}")
    for protocol in commands:
        through = (options.mib << 20) / best[(protocol, "viashell")] / 1e6
        direct = (options.mib << 20) / best[(protocol, "direct")] / 1e6
        print(f"{protocol:10} {through:12.1f} {direct:12.1f} {through / direct:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
