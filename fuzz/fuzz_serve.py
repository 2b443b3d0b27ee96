#!/usr/bin/env python3
"""atheris harness for WinSCP mode's runner, `winscp.serve()`: `python fuzz/fuzz_serve.py`.

Input: the first byte selects a policy (as in fuzz_decide.py) and, with
`byte // len(policies)`, the audit channel: working, or failing from the
N-th line on (N = 1..4, 1 being serve's session-start line); bit 7 appends a
line longer than winscp.MAX_LINE, and bit 6 the real `winscp._run` (fork and
execve) instead of a stand-in that returns a status from the argv without
forking (a fork per command costs ~100x an input). The rest is standard input: serve() reads
it from a pipe, line by line (at most MAX_LINES newlines), with its stdout
and stderr on /dev/null. Every [paths] entry points into a directory that
does not exist, so a RUN forks a child whose execve fails (exit 126): the
real fork/exec path runs, nothing is ever executed.

Oracles (any failure is a crash):
- serve() returns an exit status 0..255, never raises;
- it fails closed: a log line that cannot be written ends the session with
  status 1; so does an over-long line, unless `exit` ended it before (input
  left unread);
- every audit line is one line of printable ASCII (audit.escape) and names
  a decision and mode=winscp.
"""

from __future__ import annotations

import posix

import atheris
import common

with atheris.instrument_imports(include=["scponly_py"]):
    common.import_instrumented()
    from scponly_py import audit, winscp
from tests.support import make_request

NOWHERE = "/nonexistent/scponly-py-fuzz"
POLICIES = [
    effective.replace(
        programs=effective.programs | {"winscp", "scp"},
        paths=tuple((name, NOWHERE + path) for name, path in effective.paths),
    )
    for effective in common.policies()
]
CHANNELS = (None, 1, 2, 3, 4)  # None: a working audit channel; N: the N-th line fails
MAX_LINES = 16
LONG_LINE = b"x" * (winscp.MAX_LINE + 1)
REAL_RUN = winscp._run


def stand_in_run(decision) -> int:
    """A child's exit status without a child: 0, 1 or 126, from the argv."""
    return (0, 1, 126)[len(decision.argv) % 3]


class Channel:
    """Stands in for the /dev/log socket: keeps the lines, fails from line `fail_at` on."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.lines: list[bytes] = []
        self.failed = False

    def send(self, data: bytes) -> int:
        if self.fail_at is not None and len(self.lines) + 1 >= self.fail_at:
            self.failed = True
            raise OSError(32, "Broken pipe")
        self.lines.append(data)
        return len(data)


def run_serve(effective, stdin: bytes, channel: Channel) -> tuple[int, bool]:
    """serve() on a pipe holding `stdin` (stdout, stderr on /dev/null, audit into `channel`).

    Returns serve's status and whether it left input unread.
    """
    read_end, write_end = posix.pipe()
    posix.write(write_end, stdin)  # within the pipe's 64 KiB: never blocks
    posix.close(write_end)
    saved = (posix.dup(1), posix.dup(2))
    null = posix.open("/dev/null", posix.O_WRONLY)
    audit._channel[:] = [channel]
    try:
        posix.dup2(null, 1)
        posix.dup2(null, 2)
        status = winscp.serve(make_request(None), effective, read_end)
        posix.set_blocking(read_end, False)
        try:
            unread = bool(posix.read(read_end, 1))
        except BlockingIOError:
            unread = False
        return status, unread
    finally:
        posix.dup2(saved[0], 1)
        posix.dup2(saved[1], 2)
        for fd in (*saved, null, read_end):
            posix.close(fd)
        audit._channel.clear()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    effective = POLICIES[data[0] % len(POLICIES)]
    channel = Channel(CHANNELS[(data[0] & 0x3F) // len(POLICIES) % len(CHANNELS)])
    winscp._run = REAL_RUN if data[0] & 0x40 else stand_in_run
    lines = data[1:].split(b"\n")[:MAX_LINES]
    stdin = b"\n".join(lines) + (LONG_LINE if data[0] & 0x80 else b"")
    status, unread = run_serve(effective, stdin, channel)
    if not isinstance(status, int) or not 0 <= status <= 255:
        raise AssertionError(f"serve returned {status!r}")
    if channel.failed and status != winscp.REFUSED_STATUS:
        raise AssertionError(f"a failed audit line did not end the session with 1: {status}")
    if data[0] & 0x80 and not unread and status != winscp.REFUSED_STATUS:
        raise AssertionError(f"an over-long line did not end the session with 1: {status}")
    for line in channel.lines:
        text = line.decode("ascii")  # UnicodeDecodeError: a raw byte reached the log
        if "\n" in text or not text.isprintable():
            raise AssertionError(f"audit line not one printable line: {line!r}")
        if " decision=" not in text or " mode=winscp " not in text:
            raise AssertionError(f"audit line without decision or mode: {line!r}")


if __name__ == "__main__":
    common.fuzz(test_one_input)
