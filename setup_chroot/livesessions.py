"""Live sessions: found in /proc (`scponly-py-setup sessions`), ended with SIGTERM (`--kill`).

A live session is a supervisor (scponly_py/supervise.py): a process whose comm is
`scponly-py-sup`. Its session id is PID-STARTTIME (/proc/PID/stat field 22), the
id its log lines carry; `scponly-py-supr` marks one whose id was random (no /proc
at login: sshd ChrootDirectory jails), listed with the id `-`. The program is the
supervisor's child; its bytes so far come from the child's /proc/PID/io (root
reads it). `--kill` sends SIGTERM to the program: the supervisor then logs the end
line (signal=TERM) and exits.
"""

from __future__ import annotations

import os
import pwd
import signal
import time

from scponly_py.supervise import NAME, UNLISTED_NAME

KILL_WAIT = 5.0


class SessionsError(Exception):
    """/proc does not say what a session list needs."""


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _start_ticks(pid: int | str) -> int:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    stat = _read(f"/proc/{pid}/stat")
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def _boot_time() -> float:
    for line in _read("/proc/stat").splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    raise SessionsError("/proc/stat has no btime")


def live_sessions() -> list[dict[str, object]]:
    """Every live supervisor's session, oldest first."""
    ticks = os.sysconf("SC_CLK_TCK")
    boot = _boot_time()
    now = time.time()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = _read(f"/proc/{entry}/comm").strip()
            if comm not in (NAME, UNLISTED_NAME):
                continue
            start_ticks = _start_ticks(entry)
            uid = os.stat(f"/proc/{entry}").st_uid
            environ = dict(
                item.split(b"=", 1)
                for item in _read(f"/proc/{entry}/environ").split(b"\0")
                if b"=" in item
            )
            children = _read(f"/proc/{entry}/task/{entry}/children").split()
        except (OSError, ValueError):
            continue  # ended meanwhile
        client = (environ.get(b"SSH_CONNECTION") or environ.get(b"SSH_CLIENT") or b"-").split()
        session: dict[str, object] = {
            "session": f"{entry}-{start_ticks}" if comm == NAME else "-",
            "pid": int(entry),
            "user": _user(uid),
            "client": client[0].decode(errors="replace") if client else "-",
            "start": time.strftime(
                "%Y-%m-%dT%H:%M:%S%z", time.localtime(boot + start_ticks / ticks)
            ),
            "duration": round(now - boot - start_ticks / ticks, 1),
            "program": "-",
            "program_pid": None,
            "uid": uid,
            "started": start_ticks,
            "bytes_read": None,
            "bytes_written": None,
        }
        if children:
            child = int(children[0])
            session["program_pid"] = child
            try:
                session["started"] = _start_ticks(child)
                argv0 = _read(f"/proc/{child}/cmdline").split(b"\0")[0]
                session["program"] = os.path.basename(argv0).decode(errors="replace")
                counters = dict(
                    line.split(b": ") for line in _read(f"/proc/{child}/io").splitlines()
                )
                session["bytes_read"] = int(counters[b"rchar"])
                session["bytes_written"] = int(counters[b"wchar"])
            except (OSError, KeyError, ValueError):
                pass
        found.append(session)
    return sorted(found, key=lambda session: -float(session["duration"]))  # type: ignore[arg-type]


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def end(chosen: list[dict[str, object]]) -> list[dict[str, object]]:
    """SIGTERM each chosen session's program; the ones still running after KILL_WAIT s."""
    for session in chosen:
        _terminate(session)
    deadline = time.monotonic() + KILL_WAIT
    left = chosen
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [session for session in left if os.path.exists(f"/proc/{session['pid']}")]
    return left


def _terminate(session: dict[str, object]) -> None:
    """SIGTERM the session's program through a pidfd, and only while that pid still names the
    process listed (same start time, same owner): a pid reused meanwhile — a user can make
    its own process look like a supervisor and let its child exit — is never signalled."""
    target = session["program_pid"] or session["pid"]
    try:
        handle = os.pidfd_open(target)  # type: ignore[arg-type]
    except ProcessLookupError:
        return
    try:
        if (
            _start_ticks(target) == session["started"]  # type: ignore[arg-type]
            and os.stat(f"/proc/{target}").st_uid == session["uid"]
        ):
            signal.pidfd_send_signal(handle, signal.SIGTERM)
    except (OSError, ValueError):
        return  # ended meanwhile
    finally:
        os.close(handle)
