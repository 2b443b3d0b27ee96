"""Many hosts: the Ansible collection's first run and no-change run against N sandbox hosts.

Run as root from the repository with the dev venv's python (it has ansible-core):
`python bench/fleet_ansible.py [N ...]` (default 1 2 3). Each N gets a fresh fleet
(tests/e2e/fleet.py: N hosts with their own mounts and stock sshd on 127.0.0.11..,
a central rsyslogd, one private network namespace; nothing of the machine is touched),
then `ansible-playbook` runs the collection's example playbook twice with the fleet
test's variables (the .deb route, one jail, a plain and a jailed account, forwarding):
the first run installs everything, the second must change nothing. Prints one line per N.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import FROZEN_BUILD_DIR
from tests.e2e.fleet import REPO, Controller, Fleet

SYSTEM = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def build_deb(out: Path) -> Path:
    """The .deb from the cached frozen tree (built first if missing), as the test suite does."""
    subprocess.run(
        [str(REPO / "packaging/build-frozen.sh"), str(FROZEN_BUILD_DIR)], check=True, env=SYSTEM
    )
    frozen = FROZEN_BUILD_DIR / "scponly-py"
    script = REPO / "packaging/debian/build-deb.sh"
    built = subprocess.run(
        [str(script), "--frozen", str(frozen), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=SYSTEM,
    )
    return Path(built.stdout.strip().splitlines()[-1])


def run(count: int, deb: Path, work: Path) -> None:
    fleet = Fleet.create(count)
    try:
        controller = Controller(fleet, deb, work)
        for label in ("first run", "no-change run"):
            status, recap, output = controller.play()
            changed = sum(values[1] for values in recap.values())
            if status != 0 or len(recap) != count:
                raise SystemExit(output[-4000:])
            print(f"N={count} {label}: {controller.timings[-1]:.1f} s (changed={changed})")
    finally:
        fleet.stop()


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the fleet lives in namespaces")
    counts = [int(arg) for arg in sys.argv[1:]] or [1, 2, 3]
    with tempfile.TemporaryDirectory(prefix="scponly-py-fleet-bench-") as tmp:
        deb = build_deb(Path(tmp) / "deb")
        for count in counts:
            work = Path(tmp) / f"n{count}"
            work.mkdir()
            run(count, deb, work)


if __name__ == "__main__":
    main()
