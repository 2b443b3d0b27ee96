"""Jail numbers: create time and size (sftp+scp+rsync, and sftp+scp), check time, N users.

Run as root: `python bench/jail_bench.py [USERS]` (default 1000). Everything
happens in a private mount namespace (overlay /etc and /var, tmpfs /mnt for
the jails), so no user or file of the host is touched. Users are added
in-process (one interpreter, `scponly-py-setup add-user` called through click
N times) so the number is the tool's own work plus useradd; one real CLI run
is timed as well to show the interpreter's start-up share.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.root.jail_namespace import Namespace

ADD_USERS = """
import sys, time
from setup_chroot.cli import main
count = int(sys.argv[1])
start = time.monotonic()
for index in range(count):
    main(["add-user", f"bench{index:04d}", "--jail", "/mnt/shared", "--create", "--json"],
         standalone_mode=False)
print(time.monotonic() - start)
"""


def timed(ns: Namespace, *args: str) -> float:
    start = time.monotonic()
    result = ns.setup(*args)
    elapsed = time.monotonic() - start
    if result.returncode not in (0, 3):
        raise SystemExit(f"{args}: {result.stderr.decode().strip()}")
    return elapsed


def du(ns: Namespace, path: str) -> str:
    return ns.run(["du", "-sh", path], check=True).stdout.decode().split()[0]


def main() -> int:
    if os.geteuid() != 0:
        print("run as root (namespaces, chroot jails)", file=sys.stderr)
        return 1
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = Path(tempfile.mkdtemp(prefix="jail-bench-"))
    ns = Namespace(tmp)
    try:
        create = timed(ns, "create", "/mnt/full", "--profile", "sftp,scp,rsync", "--json")
        again = timed(ns, "create", "/mnt/full", "--profile", "sftp,scp,rsync", "--json")
        timed(ns, "create", "/mnt/small", "--profile", "sftp,scp", "--json")
        check = timed(ns, "check", "/mnt/full", "--no-sshd", "--json")
        print(f"create sftp+scp+rsync:      {create * 1000:7.0f} ms (CLI, cold)")
        print(f"create again (empty plan):  {again * 1000:7.0f} ms")
        print(f"jail size sftp+scp+rsync:   {du(ns, '/mnt/full'):>7}")
        print(f"jail size sftp+scp:         {du(ns, '/mnt/small'):>7}")
        print(f"check:                      {check * 1000:7.0f} ms")

        timed(ns, "create", "/mnt/shared", "--profile", "sftp,scp,rsync", "--json")
        one = timed(ns, "add-user", "first", "--jail", "/mnt/shared", "--create", "--json")
        script = [sys.executable, "-c", ADD_USERS, str(users)]
        result = ns.run(script, timeout=3600, check=True)
        total = float(result.stdout.decode().split()[-1])
        after = timed(ns, "check", "/mnt/shared", "--no-sshd", "--json")
        print(f"add-user (one CLI run):     {one * 1000:7.0f} ms")
        print(f"add {users} users to one jail: {total:7.1f} s ({total / users * 1000:.0f} ms each)")
        print(f"check with {users + 1} users:    {after * 1000:7.0f} ms")
    finally:
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
