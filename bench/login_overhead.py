"""Login overhead and session cost of scponly-py, measured with hyperfine in one run.

Inside a sandbox (private namespaces, see tests/e2e/sandbox.py) as an ordinary
user, it times:
  * /bin/true and `python3 -I -S -c pass` (the interpreter floor),
  * `scponly-py -c /usr/lib/openssh/sftp-server` with the sftp path configured
    to /bin/true, i.e. exec of scponly-py -> all checks -> exec of the target,
  * a whole `scp -O` upload through sshd to a user whose shell is scponly-py
    next to the same upload to a user whose shell is bash, same sshd,
and prints medians, ratios and the heaviest imports of the login path
(`python -X importtime`). Run as root: sudo /opt/scponly-py/bin/python bench/login_overhead.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.sandbox import Sandbox

CONFIG = """
[paths]
sftp = "/bin/true"
"""


def hyperfine(sandbox: Sandbox, uid: int, commands: list[str], runs: int, output: Path) -> dict:
    """Run hyperfine as `uid` in the sandbox; return {command: (median, mean, stddev) in ms}."""
    argv = [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "hyperfine", "-N", "--warmup", "20", "--runs", str(runs), "--style", "none",
        "--export-json", str(output), *commands,
    ]  # fmt: skip
    result = sandbox.run(argv, timeout=600, cwd="/")
    if result.returncode != 0:
        raise SystemExit(f"hyperfine failed: {result.stderr.decode()}")
    data = json.loads(output.read_text())
    return {
        entry["command"]: (entry["median"] * 1000, entry["mean"] * 1000, entry["stddev"] * 1000)
        for entry in data["results"]
    }


def main() -> int:
    sandbox = Sandbox.create()
    try:
        user = sandbox.add_user("bench")
        sandbox.add_user("bashuser", shell="/bin/bash")  # noqa: S604 - a login shell, not a subprocess
        sandbox.write_config(CONFIG)
        out = sandbox.root / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        launcher = str(sandbox.launcher)
        floor = "/usr/bin/python3 -I -S -c pass"
        login = f"{launcher} -c /usr/lib/openssh/sftp-server"
        startup = hyperfine(
            sandbox, user.uid, ["/bin/true", floor, login], 300, out / "startup.json"
        )

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
        sessions = hyperfine(
            sandbox,
            0,
            [
                f"{scp} bench@sandbox:p.bin",
                f"{scp} bashuser@sandbox:p.bin",
                f"{scp_mux} bench@sandbox:p.bin",
                f"{scp_mux} bashuser@sandbox:p.bin",
            ],
            30,
            out / "sessions.json",
        )
        importtime = sandbox.run(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups",
             "/usr/bin/python3", "-X", "importtime", "-I", "-S", launcher,
             "-c", "/usr/lib/openssh/sftp-server"],
            cwd="/",
        )  # fmt: skip
    finally:
        sandbox.stop()

    floor_median = startup[floor][0]
    print("Login overhead (hyperfine -N, 300 runs, as an ordinary user, exec -> exec of /bin/true)")
    print(f"{'command':58} {'median ms':>10} {'mean ms':>9} {'± ms':>6} {'x floor':>8}")
    for command, (median, mean, stddev) in startup.items():
        label = command.replace(launcher, "scponly-py")
        ratio = median / floor_median
        print(f"{label:58} {median:10.2f} {mean:9.2f} {stddev:6.2f} {ratio:8.2f}")
    print("\nWhole scp -O upload of 64 KiB through sshd (30 runs)")
    for command, (median, mean, stddev) in sessions.items():
        shell = "scponly-py" if "bench@" in command else "bash"
        connection = "multiplexed (ControlMaster)" if "ControlPath" in command else "new connection"
        label = f"{connection}, shell = {shell}"
        print(f"{label:58} {median:10.2f} {mean:9.2f} {stddev:6.2f}")
    print("\nLogin-path imports (python -X importtime, cumulative µs, top 8)")
    rows = []
    for line in importtime.stderr.decode().splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            rows.append((int(cumulative), name.rstrip()))
    for cumulative, name in sorted(rows, reverse=True)[:8]:
        print(f"  {cumulative:8d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
