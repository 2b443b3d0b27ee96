"""The README's demo: real clients against a throwaway sshd, with scponly-py as the login shell.

Prints what each step did and a short report; exits non-zero if anything did
not behave as the product promises. Everything lives in private namespaces and
a temp dir that is removed at the end.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp"]
"""
REPO = Path(__file__).resolve().parent.parent
# root's cache, not /var/tmp: build-frozen.sh refuses an OUTDIR others could have changed.
FROZEN = Path(os.environ.get("SCPONLY_PY_FROZEN_BUILD", "/var/cache/scponly-py/frozen"))
SETUP = str(Path(sys.executable).with_name("scponly-py-setup"))
# Inside the sandbox's mount namespace: a root-owned tmpfs for the jail and the frozen shells.
JAIL_SETUP = """set -e
mount -t tmpfs -o mode=0755 tmpfs /srv
mkdir -m 0755 /srv/state
"""


def jail_bob(sandbox: Sandbox) -> str:
    """Build a jail and a jailed user with the real admin tool, as an administrator would."""
    build = subprocess.run(
        [str(REPO / "packaging" / "build-frozen.sh"), str(FROZEN)],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"frozen build failed: {build.stderr[-2000:]}")
    sandbox.run(["sh", "-c", JAIL_SETUP], check=True)
    for argv in (
        [SETUP, "install-chroot-shell", "--from", str(FROZEN / "scponly-py"),
         "--dest", "/srv/scponly-py", "--no-register"],
        [SETUP, "create", "/srv/jail", "--state-dir", "/srv/state"],
        [SETUP, "add-user", "bob", "--jail", "/srv/jail", "--create",
         "--shell", "/srv/scponly-py/scponly-pyc", "--state-dir", "/srv/state"],
    ):  # fmt: skip
        sandbox.run(argv, check=True, timeout=300)
    (sandbox.root / "keys" / "bob").write_text((sandbox.root / "client_key.pub").read_text())
    return "/srv/jail//home/bob"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> int:
    results: list[tuple[str, bool, str]] = []

    def step(name: str, ok: bool, detail: str = "") -> None:
        results.append((name, ok, detail))
        print(f"  [{'ok' if ok else 'FAILED'}] {name}{': ' + detail if detail else ''}")

    print("Starting a throwaway sshd on 127.0.0.1:22 in private network/mount namespaces ...")
    sandbox = Sandbox.create()
    try:
        alice = sandbox.add_user("alice")
        sandbox.write_config(CONFIG)
        print(f"User alice: login shell {alice.shell}, home {alice.home}\n")
        work = Path(tempfile.mkdtemp(dir=sandbox.root))
        work.chmod(0o755)
        upload = work / "report.pdf"
        upload.write_bytes(os.urandom(1 << 20))

        result = sandbox.run(sandbox.scp_argv(str(upload), "alice@sandbox:report.pdf"))
        copied = alice.home / "report.pdf"
        step(
            "scp upload (SFTP protocol)",
            result.returncode == 0 and copied.exists() and digest(copied) == digest(upload),
            f"sha256 {digest(upload)}",
        )
        back = work / "back.pdf"
        result = sandbox.run(sandbox.scp_argv("-O", "alice@sandbox:report.pdf", str(back)))
        step(
            "scp -O download (legacy SCP protocol)",
            result.returncode == 0 and back.exists() and digest(back) == digest(upload),
            f"sha256 {digest(back) if back.exists() else '-'}",
        )
        result = sandbox.sftp_batch(
            "alice", "mkdir inbox\nrename report.pdf inbox/r.pdf\nls inbox\n"
        )
        step("sftp -b mkdir/rename/ls", result.returncode == 0 and b"r.pdf" in result.stdout)

        mark = sandbox.log_mark()
        result = sandbox.ssh("alice", "id")
        step(
            "ssh alice@host id is refused",
            result.returncode == 1 and b"refused" in result.stderr,
            result.stderr.decode().strip(),
        )
        result = sandbox.ssh("alice", None, "-tt")
        message = (result.stdout + result.stderr).decode().strip()
        step(
            "interactive ssh is refused",
            result.returncode == 1 and "restricted to file transfers" in message,
            message,
        )
        result = sandbox.ssh("alice", "scp -S /tmp/evil -t x")
        step(
            "scp -S (shell escape of old scponly) is refused",
            result.returncode == 1,
            result.stderr.decode().strip(),
        )

        print("\nBuilding a chroot jail with scponly-py-setup and a user bob whose shell is")
        print("the frozen scponly-pyc (cap_sys_chroot+ep) ...")
        home = jail_bob(sandbox)
        print(f"User bob: login shell /srv/scponly-py/scponly-pyc, home {home}\n")
        jailed = sandbox.path("/srv/jail/home/bob/files/in.pdf")
        result = sandbox.run(sandbox.scp_argv("-O", str(upload), "bob@sandbox:files/in.pdf"))
        step(
            "jailed scp -O upload lands inside the jail",
            result.returncode == 0 and jailed.exists() and digest(jailed) == digest(upload),
            "/srv/jail/home/bob/files/in.pdf",
        )
        result = sandbox.sftp_batch("bob", "ls /\n")
        listing = result.stdout.decode()
        step(
            "jailed sftp sees only the jail as /",
            result.returncode == 0 and "/home" in listing and "/srv" not in listing,
            " ".join(listing.split()[2:]),
        )
        result = sandbox.ssh("bob", "id")
        step(
            "ssh bob@host id is refused inside the jail",
            result.returncode == 1 and b"refused" in result.stderr,
            result.stderr.decode().strip(),
        )

        print("\nsyslog (authpriv) lines written by scponly-py:")
        for line in sandbox.log_since(mark, "scp -S"):
            if "scponly-py[" in line:
                print("  " + line)
    finally:
        sandbox.stop()

    failed = [name for name, ok, _ in results if not ok]
    print(
        f"\nReport: {len(results) - len(failed)} of {len(results)} checks passed; sandbox removed."
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
