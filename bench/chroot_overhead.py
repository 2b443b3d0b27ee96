"""Login overhead of scponly-pyc (the frozen chroot shell) next to scponly-py and the floor.

Inside a sandbox (tests/e2e/sandbox.py) as an ordinary user, hyperfine times exec -> exec of
/bin/true (configured as the sftp program), in rounds that rotate the commands' order (see
login_overhead.py), for:
  * `python3 -I -S -c pass` (the interpreter floor),
  * scponly-py through its front and isolated Python launcher (no chroot),
  * the frozen scponly-py (PyInstaller onedir, no chroot),
  * scponly-pyc with cap_sys_chroot+ep and setuid root: jail checks, chroot, drop, verify,
    exec of /bin/true inside a jail made by `scponly-py-setup create`,
and prints the medians and the size of the onedir tree.
Run as root: sudo /opt/scponly-py/bin/python bench/chroot_overhead.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.login_overhead import rotated_rounds  # noqa: E402
from tests.e2e.sandbox import Sandbox  # noqa: E402

BUILD = Path("/var/tmp/scponly-py-frozen")
SETUP = "/opt/scponly-py/bin/scponly-py-setup"
CONFIG = """
[paths]
sftp = "/bin/true"
"""


def main() -> int:
    subprocess.run([str(REPO / "packaging" / "build-frozen.sh"), str(BUILD)], check=True)
    tree = BUILD / "scponly-py"
    size = subprocess.run(["du", "-sh", "--apparent-size", str(tree)], capture_output=True,
                          text=True, check=True).stdout.split()[0]  # fmt: skip
    files = sum(1 for path in tree.rglob("*") if path.is_file())
    sandbox = Sandbox.create()
    try:
        sandbox.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/srv"], check=True)
        sandbox.run(["mkdir", "-m", "0755", "/srv/cap", "/srv/suid", "/srv/state"], check=True)
        for dest, extra in (("/srv/cap/scponly-py", []), ("/srv/suid/scponly-py", ["--setuid"])):
            sandbox.run([SETUP, "install-chroot-shell", "--from", str(tree), "--dest", dest,
                         "--no-register", *extra], check=True)  # fmt: skip
        sandbox.run([SETUP, "create", "/srv/jail", "--state-dir", "/srv/state",
                     "--bin", "/bin/true"], check=True)  # fmt: skip
        user = sandbox.add_user("bench")
        # The same account, jailed: its home is /srv/jail//home/bench (passwd is ours to edit).
        passwd = sandbox.path("/etc/passwd")
        passwd.write_text(passwd.read_text().replace(str(user.home), "/srv/jail//home/bench"))
        home = sandbox.path("/srv/jail/home/bench")
        home.mkdir(parents=True, mode=0o755)
        os.chown(home, user.uid, user.uid)
        sandbox.write_config(CONFIG)
        out = sandbox.root / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        request = "-c /usr/lib/openssh/sftp-server"
        commands = {
            "python3 -I -S -c pass (floor)": "/usr/bin/python3 -I -S -c pass",
            "scponly-py (Python launcher, no chroot)": f"{sandbox.launcher} {request}",
            "scponly-py (frozen onedir, no chroot)": f"/srv/cap/scponly-py/scponly-py {request}",
            "scponly-pyc (cap_sys_chroot+ep)": f"/srv/cap/scponly-py/scponly-pyc {request}",
            "scponly-pyc (setuid root)": f"/srv/suid/scponly-py/scponly-pyc {request}",
        }
        results = rotated_rounds(
            sandbox,
            user.uid,
            list(commands.values()),
            runs=60,
            rounds=5,
            output=out / "chroot.json",
        )
    finally:
        sandbox.stop()
    print("Login overhead, exec -> exec of /bin/true (hyperfine -N, ordinary user,")
    print("5 rotated rounds of 60 runs; medians over rounds)")
    print(f"{'command':42} {'median ms':>10} {'x floor':>8}")
    for label, command in commands.items():
        median, ratio = results[command]
        print(f"{label:42} {median:10.2f} {ratio:8.2f}")
    print(f"\nonedir tree: {size} apparent size, {files} files ({tree})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
