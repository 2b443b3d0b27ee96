"""`scponly-py-setup sessions` (live sessions) and `report` (transfers per user, from the log).

A live session is a supervisor (scponly_py/supervise.py): a process whose comm is
`scponly-py-sup`. Its session id is PID-STARTTIME (/proc/PID/stat field 22), the
id its log lines carry; `scponly-py-supr` marks one whose id was random (no /proc
at login: sshd ChrootDirectory jails), listed with the id `-`. The program is the
supervisor's child; its bytes so far come from the child's /proc/PID/io (root
reads it). `--kill` sends SIGTERM to the program: the supervisor then logs the end
line (signal=TERM) and exits.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator

import click

from scponly_py.supervise import NAME, UNLISTED_NAME
from setup_chroot import logread

KILL_WAIT = 5.0


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
    raise click.ClickException("/proc/stat has no btime")


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


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
@click.option("--kill", "kill_id", metavar="ID", help="End the session with this id.")
@click.option("--user", "kill_user", metavar="NAME", help="End every session of this user.")
def sessions(as_json: bool, kill_id: str | None, kill_user: str | None) -> None:
    """List live sessions (user, client, program, start, duration, bytes so far), or end some.

    Sessions are found by their supervisor (log_transfers on). Ending one sends
    SIGTERM to its program; the supervisor logs the end line and exits.
    """
    found = live_sessions()
    if kill_id is None and kill_user is None:
        if as_json:
            click.echo(json.dumps(found))
            return
        click.echo(f"{'SESSION':<22} {'USER':<12} {'CLIENT':<16} {'PROGRAM':<12} "
                   f"{'START':<25} {'SECONDS':>8} {'READ':>12} {'WRITTEN':>12}")  # fmt: skip
        for session in found:
            click.echo(
                f"{session['session']:<22} {session['user']:<12} {session['client']:<16} "
                f"{session['program']:<12} {session['start']:<25} {session['duration']:>8} "
                f"{session['bytes_read'] if session['bytes_read'] is not None else '-':>12} "
                f"{session['bytes_written'] if session['bytes_written'] is not None else '-':>12}"
            )
        return
    chosen = [
        session
        for session in found
        if (kill_id is not None and session["session"] == kill_id)
        or (kill_user is not None and session["user"] == kill_user)
    ]
    if not chosen:
        raise click.ClickException("no such live session")
    for session in chosen:
        _terminate(session)
    deadline = time.monotonic() + KILL_WAIT
    left = chosen
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [session for session in left if os.path.exists(f"/proc/{session['pid']}")]
    ended = [session for session in chosen if session not in left]
    if as_json:
        click.echo(json.dumps({"ended": ended, "still_running": left}))
    else:
        for session in ended:
            click.echo(f"ended {session['session']} ({session['user']}, pid {session['pid']})")
    if left:
        raise click.ClickException(f"{len(left)} session(s) still running after {KILL_WAIT:g} s")


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


def journal_lines(since: str | None) -> Iterator[str]:
    """The messages of our ident in the systemd journal."""
    argv = ["journalctl", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=scponly-py"]
    if since:
        argv += ["--since", since]
    try:
        result = subprocess.run(argv, capture_output=True, check=False, timeout=300)
    except FileNotFoundError:
        raise click.ClickException("no journalctl here; give the syslog file with --file") from None
    if result.returncode != 0:
        raise click.ClickException(f"journalctl: {result.stderr.decode(errors='replace').strip()}")
    for line in result.stdout.splitlines():
        try:
            message = json.loads(line).get("MESSAGE")
        except ValueError:
            continue
        if isinstance(message, list):  # journald stores non-UTF-8 messages as bytes
            message = bytes(message).decode("utf-8", "surrogateescape")
        if isinstance(message, str):
            yield message


def summarise(lines: Iterable[str], user: str | None = None) -> dict[str, dict[str, int]]:
    """Per user: sessions, files up/down with their bytes, removes, renames, refusals."""
    totals: dict[str, dict[str, int]] = {}
    for line in lines:
        fields = logread.parse(line)
        if not fields or "user" not in fields:
            continue
        name = str(fields["user"])
        if user is not None and name != user:
            continue
        row = totals.setdefault(
            name,
            dict.fromkeys(
                ("sessions", "files_up", "bytes_up", "files_down", "bytes_down", "removed",
                 "renamed", "refused"),
                0,
            ),
        )  # fmt: skip
        event = fields.get("event")
        if fields.get("decision") == "refuse":
            row["refused"] += 1
        elif event == "end":
            row["sessions"] += 1
        elif event == "close":
            written = _number(fields.get("bytes_written"))
            read = _number(fields.get("bytes_read"))
            if written:
                row["files_up"] += 1
                row["bytes_up"] += written
            if read:
                row["files_down"] += 1
                row["bytes_down"] += read
        elif event == "remove":
            row["removed"] += 1
        elif event == "rename":
            row["renamed"] += 1
    return totals


def _number(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


@click.command("report")
@click.option("--user", metavar="NAME", help="Only this user.")
@click.option("--since", metavar="TIME", help="Journal only: from TIME (journalctl --since).")
@click.option("--file", "path", metavar="PATH", help="Read a syslog file instead of the journal.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def report(user: str | None, since: str | None, path: str | None, as_json: bool) -> None:
    """Transfers per user from the log: sessions, files and bytes up/down, refusals.

    Reads the journal (SYSLOG_IDENTIFIER=scponly-py) or a syslog file; both
    log formats (kv, json). Uploads are close lines with bytes written,
    downloads close lines with bytes read (sftp and scp in SFTP mode).
    """
    if path is not None:
        if since is not None:
            raise click.ClickException("--since needs the journal; filter the file instead")
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            totals = summarise(handle, user)
    else:
        totals = summarise(journal_lines(since), user)
    if as_json:
        click.echo(json.dumps(totals, sort_keys=True))
        return
    columns = ("sessions", "files_up", "bytes_up", "files_down", "bytes_down", "removed",
               "renamed", "refused")  # fmt: skip
    click.echo(f"{'USER':<16}" + "".join(f"{column.upper():>12}" for column in columns))
    for name in sorted(totals):
        click.echo(f"{name:<16}" + "".join(f"{totals[name][column]:>12}" for column in columns))
    sys.stdout.flush()


COMMANDS = (sessions, report)
