"""`sessions --kill` signals only the process it listed, never a pid reused since."""

from __future__ import annotations

import os
import subprocess

from setup_chroot import livesessions


def _session(process: subprocess.Popen[bytes], *, started_offset: int = 0) -> dict[str, object]:
    return {
        "pid": process.pid,
        "program_pid": process.pid,
        "uid": os.getuid(),
        "started": livesessions._start_ticks(process.pid) + started_offset,
    }


def test_the_listed_process_is_terminated() -> None:
    process = subprocess.Popen(["sleep", "30"])
    livesessions._terminate(_session(process))
    assert process.wait(timeout=5) == -15


def test_a_pid_that_now_names_another_process_is_left_alone() -> None:
    """A different start time stands for a reused pid: nothing is sent."""
    process = subprocess.Popen(["sleep", "30"])
    try:
        livesessions._terminate(_session(process, started_offset=1))
        assert process.poll() is None
        listed_as_another_owner = {**_session(process), "uid": os.getuid() + 1}
        livesessions._terminate(listed_as_another_owner)
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
