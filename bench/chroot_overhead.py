"""Login overhead of scponly-pyc (the frozen chroot shell) next to scponly-py and the floor.

Inside a sandbox (tests/e2e/sandbox.py) as an ordinary user, hyperfine times exec -> exec of
/bin/true (configured as the sftp program), in rounds that rotate the commands' order (see
login_overhead.py), for:
  * `python3 -I -S -c pass` (the interpreter floor),
  * scponly-py through its front and isolated Python launcher (no chroot),
  * the frozen scponly-py (PyInstaller onedir, no chroot),
  * scponly-pyc with cap_sys_chroot+ep and setuid root: jail checks, chroot, drop, verify,
    exec of /bin/true inside a jail made by `scponly-py-setup create`,
and prints the medians and the size of the onedir tree. `--before TREE` adds the frozen rows
of another onedir tree (e.g. one built before a change) to the same rounds. `--profile`
(valgrind) then splits the frozen scponly-py's instructions into phases: the bootloader's
first run (up to its re-exec), the bootloader again (archive, dlopen of libpython),
Py_InitializeFromConfig, PyInstaller's bootstrap modules (struct, pyimod01_archive which
imports os, pyimod02_importers, then pyimod03_ctypes and pyiboot01_bootstrap) and our entry
(the package and the login, up to the exec of the target), from callgrind dumps taken before
those functions (exported by libpython and libc) and before the entry's first sigmask.
`--reexec` adds two rows that time the bootloader's re-exec: the frozen scponly-py started
through env(1), once plainly and once with the private variables the bootloader sets for
its re-exec already in place (_PYI_ARCHIVE_FILE, _PYI_PARENT_PROCESS_LEVEL=-1), so that it
goes straight on; a benchmark trick only, nothing a login can do.
The tree is built (cached) by packaging/build-frozen.sh into SCPONLY_PY_FROZEN_BUILD, as the
tests do; scponly-py-setup is the one beside this interpreter.
Run as root: sudo /opt/scponly-py/bin/python bench/chroot_overhead.py [--before TREE] [--profile]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.login_overhead import rotated_rounds  # noqa: E402
from tests.e2e.sandbox import Sandbox  # noqa: E402

BUILD = Path(os.environ.get("SCPONLY_PY_FROZEN_BUILD", "/var/cache/scponly-py/frozen"))
SETUP = str(Path(sys.executable).with_name("scponly-py-setup"))
REQUEST = "-c /usr/lib/openssh/sftp-server"
# callgrind dumps before these calls; each phase is named by the call that ends it.
TRIGGERS = ("Py_InitializeFromConfig", "PyImport_ExecCodeModule", "*pthread_sigmask*", "execve")
PHASES = (
    "bootloader again: archive, dlopen(libpython)",
    "Py_InitializeFromConfig",
    "PyInstaller bootstrap: struct",
    "PyInstaller bootstrap: pyimod01_archive (imports os)",
    "PyInstaller bootstrap: pyimod02_importers",
    "PyInstaller bootstrap: pyimod03_ctypes, pyiboot01",
)
ENTRY = "our entry: bundle, imports, login to the exec"
CONFIG = """
[paths]
sftp = "/bin/true"
"""


def callgrind(sandbox: Sandbox, uid: int, argv: list[str], output: Path, *, follow: bool) -> list:
    """[(trigger, instructions)] of callgrind's dumps, in order (see TRIGGERS).

    `follow`: into the bootloader's re-exec (the same pid, so its dumps replace the first
    run's); else only the first run, up to the re-exec.
    """
    for stale in output.parent.glob(f"{output.name}*"):
        stale.unlink()
    dumps = [f"--dump-before={name}" for name in TRIGGERS]
    sandbox.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         "valgrind", "--tool=callgrind", f"--trace-children={'yes' if follow else 'no'}",
         *dumps, f"--callgrind-out-file={output}.%p", *argv],
        cwd="/", timeout=300,
    )  # fmt: skip
    parts = []
    for path in output.parent.glob(f"{output.name}.*.*"):
        text = path.read_text()
        trigger = text.split("desc: Trigger: ", 1)[1].split("\n", 1)[0]
        count = int(text.split("\nsummary: ", 1)[1].split("\n", 1)[0])
        parts.append((int(path.name.rsplit(".", 1)[1]), trigger, count))
    return [(trigger, count) for _, trigger, count in sorted(parts)]


def phases(sandbox: Sandbox, uid: int, shell: str, output: Path) -> dict[str, int]:
    """The frozen `shell`'s instructions per phase (PHASES, ENTRY) up to the exec of the target."""
    argv = [shell, *REQUEST.split()]
    first = callgrind(sandbox, uid, argv, output, follow=False)
    result = {"bootloader, first run (to its re-exec)": sum(count for _, count in first)}
    parts = callgrind(sandbox, uid, argv, output, follow=True)
    triggers = [trigger.split("=")[-1].split("@")[0] for trigger, _ in parts[: len(PHASES)]]
    if triggers != ["Py_InitializeFromConfig", *["PyImport_ExecCodeModule"] * 4, "pthread_sigmask"]:
        raise SystemExit(f"unexpected callgrind dumps for {shell}: {triggers}")
    for name, (_, count) in zip(PHASES, parts, strict=False):
        result[name] = count
    result[ENTRY] = sum(count for _, count in parts[len(PHASES) :])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another onedir tree to time alongside")
    parser.add_argument("--profile", action="store_true", help="callgrind phases (valgrind)")
    parser.add_argument("--reexec", action="store_true", help="time the bootloader's re-exec")
    args = parser.parse_args()
    subprocess.run([str(REPO / "packaging" / "build-frozen.sh"), str(BUILD)], check=True)
    tree = BUILD / "scponly-py"
    size = subprocess.run(["du", "-sh", "--apparent-size", str(tree)], capture_output=True,
                          text=True, check=True).stdout.split()[0]  # fmt: skip
    files = sum(1 for path in tree.rglob("*") if path.is_file())
    sandbox = Sandbox.create()
    try:
        sandbox.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/srv"], check=True)
        sandbox.run(["mkdir", "-m", "0755", "/srv/cap", "/srv/suid", "/srv/state"], check=True)
        installs = [("/srv/cap", tree, []), ("/srv/suid", tree, ["--setuid"])]
        if args.before:
            installs += [("/srv/before-cap", args.before, []),
                         ("/srv/before-suid", args.before, ["--setuid"])]  # fmt: skip
        for parent, source, extra in installs:
            sandbox.run(["mkdir", "-p", "-m", "0755", parent], check=True)
            sandbox.run([SETUP, "install-chroot-shell", "--from", str(source),
                         "--dest", f"{parent}/scponly-py", "--no-register", *extra],
                        check=True)  # fmt: skip
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
        commands = {
            "python3 -I -S -c pass (floor)": "/usr/bin/python3 -I -S -c pass",
            "scponly-py (Python launcher, no chroot)": f"{sandbox.launcher} {REQUEST}",
            "scponly-py (frozen onedir, no chroot)": f"/srv/cap/scponly-py/scponly-py {REQUEST}",
            "scponly-pyc (cap_sys_chroot+ep)": f"/srv/cap/scponly-py/scponly-pyc {REQUEST}",
            "scponly-pyc (setuid root)": f"/srv/suid/scponly-py/scponly-pyc {REQUEST}",
        }
        if args.before:
            commands |= {
                "before: scponly-py (frozen)": f"/srv/before-cap/scponly-py/scponly-py {REQUEST}",
                "before: scponly-pyc (cap)": f"/srv/before-cap/scponly-py/scponly-pyc {REQUEST}",
                "before: scponly-pyc (setuid)": (
                    f"/srv/before-suid/scponly-py/scponly-pyc {REQUEST}"
                ),
            }
        if args.reexec:
            plain = "/srv/cap/scponly-py/scponly-py"
            skip = f"_PYI_ARCHIVE_FILE={plain} _PYI_PARENT_PROCESS_LEVEL=-1"
            commands |= {
                "scponly-py (frozen) through env": f"/usr/bin/env {plain} {REQUEST}",
                "the same, re-exec skipped": f"/usr/bin/env {skip} {plain} {REQUEST}",
            }
        results = rotated_rounds(
            sandbox,
            user.uid,
            list(commands.values()),
            runs=60,
            rounds=5,
            output=out / "chroot.json",
        )
        profiles = {}
        if args.profile and shutil.which("valgrind"):
            for label, parent in (("now", "/srv/cap"), ("before", "/srv/before-cap")):
                if label == "now" or args.before:
                    shell = f"{parent}/scponly-py/scponly-py"
                    profiles[label] = phases(sandbox, user.uid, shell, out / "callgrind")
    finally:
        sandbox.stop()
    print("Login overhead, exec -> exec of /bin/true (hyperfine -N, ordinary user,")
    print("5 rotated rounds of 60 runs; medians over rounds)")
    print(f"{'command':42} {'median ms':>10} {'x floor':>8}")
    for label, command in commands.items():
        median, ratio = results[command]
        print(f"{label:42} {median:10.2f} {ratio:8.2f}")
    print(f"\nonedir tree: {size} apparent size, {files} files ({tree})")
    if profiles:
        print("\nFrozen scponly-py, instructions (callgrind) per phase, to the exec of the target")
        print(f"{'phase':54} " + " ".join(f"{label:>10}" for label in profiles))
        for phase in profiles["now"]:
            counts = " ".join(f"{found.get(phase, 0) / 1e6:9.2f}M" for found in profiles.values())
            print(f"{phase:54} {counts}")
        totals = " ".join(f"{sum(found.values()) / 1e6:9.2f}M" for found in profiles.values())
        print(f"{'total':54} {totals}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
