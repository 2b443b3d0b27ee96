"""Private namespaces held open by a sleeping process: the base of every test harness that
isolates users, /etc, /var, mounts or ports (tests/e2e/sandbox.py, tests/root/jail_namespace.py).

`unshare` starts the holder (`sleep infinity`, killed with the test process); commands enter
its namespaces with `nsenter`; the test process reaches the namespace's files through
/proc/PID/root. `overlays` is the shell text that gives the namespace a private, writable
copy of host directories whose changes land in the test's temp dir and vanish with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

PR_SET_PDEATHSIG = 1
REPOSITORY = Path(__file__).resolve().parents[1]
# scponly-py-setup as the code under test (this checkout's setup_chroot, run from its root).
SETUP_TOOL = [sys.executable, "-c", "from setup_chroot.cli import main; main()"]


def die_with_parent() -> None:
    """Run in the child before exec: if the test process dies, the namespace dies too."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def temp_root(prefix: str) -> Path:
    """A new directory under /tmp for a harness's files (0755: the namespace's users read it)."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


@contextlib.contextmanager
def stop_on_failure(stop: Callable[[], object]) -> Iterator[None]:
    """Call `stop` (and re-raise) if the block fails: a harness half started leaves nothing."""
    try:
        yield
    except BaseException:
        stop()
        raise


def overlays(root: Path, *directories: str) -> str:
    """Shell lines mounting an overlay on each /DIRECTORY, upper and work dirs under `root`."""
    return "".join(
        f"mkdir -p {root}/{name}.upper {root}/{name}.work\n"
        f"mount -t overlay overlay -o lowerdir=/{name},upperdir={root}/{name}.upper,"
        f"workdir={root}/{name}.work /{name}\n"
        for name in directories
    )


class NamespaceHolder:
    """Namespaces kept alive by a `sleep`; `enter` lists the nsenter flags of those joined.

    `start` makes them (`unshare OPTIONS`, inside the network namespace of `network_of`
    when given) and returns once the mount namespace exists; `close` kills the holder and
    every process `spawn` started (so does leaving a `with` block).
    """

    enter: tuple[str, ...] = ("-m",)

    def __init__(self) -> None:
        self.holder: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.mount_namespace = ""

    def start(self, *options: str, network_of: int | None = None) -> None:
        argv = ["unshare", *options, "--", "sleep", "infinity"]
        if network_of is not None:
            argv = ["nsenter", "-t", str(network_of), "-n", "--", *argv]
        self.holder = subprocess.Popen(
            argv,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        deadline = time.monotonic() + 5
        own_mnt = os.readlink("/proc/self/ns/mnt")
        while os.readlink(f"/proc/{self.holder.pid}/ns/mnt") == own_mnt:
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not create a mount namespace")
            time.sleep(0.01)
        self.mount_namespace = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")

    def close(self) -> None:
        """Kill the processes `spawn` started and the holder."""
        for process in [*self.processes, self.holder]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def inside(self, argv: list[str]) -> list[str]:
        """The argv that runs `argv` inside the namespaces."""
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), *self.enter, "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 60,
        check: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the namespaces, capturing output; `check`: raise on failure."""
        result = subprocess.run(
            self.inside(argv),
            input=input,
            capture_output=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{argv!r} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return result

    def setup(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run scponly-py-setup ARGS (SETUP_TOOL) inside the namespaces."""
        return self.run([*SETUP_TOOL, *args], check=check, cwd=REPOSITORY)

    def spawn(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start `argv` inside the namespaces (Popen keywords); `close` kills it."""
        process = subprocess.Popen(self.inside(argv), **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        return process

    def path(self, inside: str) -> Path:
        """A path inside the mount namespace, as the test process can reach it."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root") / inside.lstrip("/")

    def pids(self, uid: int | None = None) -> list[int]:
        """Processes living in this mount namespace (optionally of one uid)."""
        assert self.holder is not None
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") != self.mount_namespace:
                    continue
                if uid is not None and os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
            except OSError:
                continue
            found.append(int(entry))
        return found

    def wait_gone(self, uid: int, timeout: float = 10) -> list[int]:
        """Wait up to `timeout` for `uid` to have no process left here; return those left."""
        deadline = time.monotonic() + timeout
        while (left := self.pids(uid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left
