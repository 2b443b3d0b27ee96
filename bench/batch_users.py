"""Batch users: `add-user --from FILE` with N new accounts into one shared jail, timed.

Run as root: `python bench/batch_users.py [N ...]` (default 1000 10000). Each N runs
in its own private mount namespace (overlay /etc and /var, tmpfs /mnt for the jail),
so no user or file of the host is touched. It times the real CLI (interpreter
start-up included) for the first run and for a second run of the same file (which
must change nothing), and prints one line per figure.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.root.jail_namespace import Namespace

JAIL = "/mnt/shared"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBench bench"


def timed(ns: Namespace, *args: str) -> tuple[float, bytes]:
    start = time.monotonic()
    result = ns.setup(*args)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{args}: {result.stderr.decode()}")
    return elapsed, result.stdout


def run(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="scponly-py-batch-") as tmp:
        ns = Namespace(Path(tmp))
        try:
            ns.setup("create", JAIL, "--profile", "sftp,scp", check=True)
            rows = "".join(f"bench{index:05d},{KEY}\n" for index in range(count))
            ns.path("/mnt/users.csv").write_text("name,keys\n" + rows)
            first, _ = timed(ns, "add-user", "--from", "/mnt/users.csv", "--jail", JAIL, "--json")
            again, out = timed(ns, "add-user", "--from", "/mnt/users.csv", "--jail", JAIL)
            assert b": 0 operations" in out, out[-200:]
            members = ns.run(["getent", "group", "scponly"], check=True).stdout.count(b",") + 1
            passwd = ns.path(f"{JAIL}/etc/passwd").read_text().count("\n")
        finally:
            ns.close()
    print(
        f"{count} users, one jail: add-user --from {first:.2f} s ({first / count * 1000:.2f} ms"
        f"/user); same file again {again:.2f} s (0 operations); scponly members {members};"
        f" jail passwd lines {passwd}"
    )


if __name__ == "__main__":
    for number in [int(arg) for arg in sys.argv[1:]] or [1000, 10000]:
        run(number)
