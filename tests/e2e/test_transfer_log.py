"""Who transferred what (issue 17), through a real sshd and real clients, plain accounts.

Every login with log_transfers (the default) has a session id on each of its
lines, one line per sftp operation and an end line; the exact lines are
checked. Also: a log daemon that stops reading mid-transfer, a client killed
mid-transfer and a `signal` request (end line, no process left).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from setup_chroot import logread
from tests.e2e.sandbox import SYSLOG_LISTENER, Sandbox, client_file

CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]

[user.tjson]
log_format = "json"

[user.tstuck]
transfer_log_level = "VERBOSE"

[user.toff]
log_transfers = false

[user.twin]
programs = ["winscp", "scp"]
"""
SIZE = 70_001


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(users=("tlog", "tjson", "tstuck", "toff", "twin"), config=CONFIG)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    return client_file(tmp_path, "up.bin", os.urandom(SIZE))


def slow_upload(sandbox: Sandbox, source: Path, kbits: int) -> subprocess.Popen[bytes]:
    """tlog's sftp putting `source` at `kbits` Kbit/s, once its open line is logged."""
    mark = sandbox.log_mark()
    client = sandbox.spawn(
        ["sftp", "-F", str(sandbox.ssh_config), "-l", str(kbits), "-b", "-", "tlog@sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert client.stdin is not None
    client.stdin.write(f"put {source} {source.name}\n".encode())
    client.stdin.close()
    sandbox.log_since(mark, "event=open")
    return client


def session_lines(sandbox: Sandbox, mark: int, user: str) -> list[dict[str, object]]:
    """The parsed lines of `user`'s one session after `mark`, once its end line is there."""
    deadline = time.monotonic() + 10
    while True:
        parsed = [logread.parse(line) for line in sandbox.log_since(mark)]
        mine = [fields for fields in parsed if fields and fields.get("user") == user]
        if any(fields.get("event") == "end" for fields in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    sessions = {fields["session"] for fields in mine}
    assert len(sessions) == 1, mine
    return mine


def events(lines: list[dict[str, object]], *keys: str) -> list[tuple[object, ...]]:
    return [
        tuple(fields.get(key) for key in ("event", *keys)) for fields in lines if "event" in fields
    ]


def test_sftp_operations_each_have_their_line(sandbox: Sandbox, local: Path) -> None:
    home = sandbox.users["tlog"].home
    mark = sandbox.log_mark()
    result = sandbox.sftp_batch(
        "tlog",
        f"put {local} up.bin\nget up.bin {local.parent}/down.bin\nrename up.bin moved.bin\n"
        "mkdir d\nrmdir d\nchmod 600 moved.bin\nrm moved.bin\n",
    )
    assert result.returncode == 0, result.stderr
    assert (local.parent / "down.bin").read_bytes() == local.read_bytes()
    lines = session_lines(sandbox, mark, "tlog")
    assert lines[0]["decision"] == "allow" and lines[0]["program"] == "sftp"
    assert events(lines, "path", "mode", "bytes_read", "bytes_written", "target", "change")[
        :-1
    ] == [
        ("open", f"{home}/up.bin", "write,create,truncate", None, None, None, None),
        ("close", f"{home}/up.bin", None, "0", str(SIZE), None, None),
        ("open", f"{home}/up.bin", "read", None, None, None, None),
        ("close", f"{home}/up.bin", None, str(SIZE), "0", None, None),
        ("rename", f"{home}/up.bin", None, None, None, f"{home}/moved.bin", None),
        ("mkdir", f"{home}/d", None, None, None, None, None),
        ("rmdir", f"{home}/d", None, None, None, None, None),
        ("setstat", f"{home}/moved.bin", None, None, None, None, "mode 0600"),
        ("remove", f"{home}/moved.bin", None, None, None, None, None),
    ]
    end = lines[-1]
    assert end["event"] == "end" and end["program"] == "sftp" and end["status"] == "0"
    assert end["dropped"] == "0" and float(end["duration"]) > 0  # type: ignore[arg-type]
    # The program's own I/O: at least the file both ways.
    assert int(end["bytes_read"]) > 2 * SIZE and int(end["bytes_written"]) > 2 * SIZE  # type: ignore[arg-type]
    assert all(fields["client"] == "127.0.0.1" for fields in lines)


def test_scp_in_sftp_mode_and_legacy_mode(sandbox: Sandbox, local: Path) -> None:
    home = sandbox.users["tlog"].home
    mark = sandbox.log_mark()
    result = sandbox.run(sandbox.scp_argv(str(local), "tlog@sandbox:viasftp.bin"))
    assert result.returncode == 0, result.stderr
    lines = session_lines(sandbox, mark, "tlog")
    # Paths are as the client sent them: scp's are relative to the start directory.
    assert ("close", "viasftp.bin", str(SIZE)) in events(lines, "path", "bytes_written")
    assert (home / "viasftp.bin").stat().st_size == SIZE
    mark = sandbox.log_mark()
    result = sandbox.run(sandbox.scp_argv("-O", str(local), "tlog@sandbox:legacy.bin"))
    assert result.returncode == 0, result.stderr
    lines = session_lines(sandbox, mark, "tlog")
    assert [fields.get("event") for fields in lines] == [None, "end"]
    assert lines[-1]["program"] == "scp" and lines[-1]["status"] == "0"
    assert int(lines[-1]["bytes_read"]) >= SIZE  # type: ignore[arg-type]


def test_rsync_has_an_end_line(sandbox: Sandbox, local: Path) -> None:
    mark = sandbox.log_mark()
    rsh = f"ssh -F {sandbox.ssh_config}"
    result = sandbox.run(["rsync", "-e", rsh, str(local), "tlog@sandbox:rsynced.bin"])
    assert result.returncode == 0, result.stderr
    lines = session_lines(sandbox, mark, "tlog")
    end = lines[-1]
    assert end["event"] == "end" and end["program"] == "rsync" and end["status"] == "0"
    assert int(end["bytes_read"]) >= SIZE  # type: ignore[arg-type]


WINSCP_END = ' ; echo "WinSCP: this is end-of-file:$status"'


def test_winscp_session_has_its_id_and_an_end_line(sandbox: Sandbox) -> None:
    """WinSCP's SCP mode: the session is supervised as a whole (its commands are its children)."""
    home = sandbox.users["twin"].home
    mark = sandbox.log_mark()
    upload = f'scp -r -d -t "{home}"{WINSCP_END}\n'.encode() + b"C0644 5 w.txt\nhello\0"
    result = sandbox.ssh(
        "twin", None, "-T", input=f'ls -la "{home}"{WINSCP_END}\n'.encode() + upload
    )
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    assert (home / "w.txt").read_bytes() == b"hello"
    lines = session_lines(sandbox, mark, "twin")
    assert [
        (fields.get("event"), fields.get("program"), fields.get("argv")) for fields in lines
    ] == [
        (None, "winscp", "session-start"),
        (None, "winscp:ls", f"/bin/ls -l -a -- {home}"),
        (None, "winscp:scp", f"/usr/bin/scp -r -d -t -- {home}"),
        ("end", "winscp", None),
    ]
    end = lines[-1]
    assert end["status"] == "0" and end["dropped"] == "0", end
    assert int(end["bytes_written"]) > 5 and int(end["bytes_read"]) > 5, end  # type: ignore[arg-type]


def test_json_format_has_the_same_fields(sandbox: Sandbox, local: Path) -> None:
    mark = sandbox.log_mark()
    result = sandbox.sftp_batch("tjson", f"put {local} up.bin\n")
    assert result.returncode == 0, result.stderr
    raw = [line for line in sandbox.log_since(mark, '"event": "end"') if "scponly-py[" in line]
    assert all(logread.message_of(line).startswith("{") for line in raw)  # type: ignore[union-attr]
    lines = session_lines(sandbox, mark, "tjson")
    close = next(fields for fields in lines if fields.get("event") == "close")
    assert close["bytes_written"] == SIZE and close["bytes_read"] == 0  # JSON numbers
    assert lines[-1]["event"] == "end" and lines[-1]["status"] == 0


def test_logging_off_is_one_decision_line(sandbox: Sandbox, local: Path) -> None:
    mark = sandbox.log_mark()
    result = sandbox.sftp_batch("toff", f"put {local} up.bin\n")
    assert result.returncode == 0, result.stderr
    time.sleep(0.5)
    lines = [logread.parse(line) for line in sandbox.log_since(mark)]
    mine = [fields for fields in lines if fields and fields.get("user") == "toff"]
    assert len(mine) == 1 and mine[0]["decision"] == "allow" and "session" in mine[0]


STOPS_READING = SYSLOG_LISTENER.replace(
    "        data = sock.recv(65536)\n",
    "        data = sock.recv(65536)\n"
    "        if b'decision=allow user=tstuck' in data:\n"
    "            time.sleep(float(sys.argv[3]))\n",
).replace("import os, socket, sys", "import os, socket, sys, time")


def test_a_log_daemon_that_stops_reading_stalls_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    names = [f"{'n' * 200}{index:04d}" for index in range(400)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    # The daemon sleeps 4 s after the decision line; the uploads go on meanwhile, then
    # the session waits (sftp's local `!sleep`) so that its end line finds it awake.
    batch = "".join(f"put {tmp_path}/{name} {name}\n" for name in names)
    batch += f"!sleep 6\nput {tmp_path}/{names[0]} last\n"
    sandbox.restart_syslog(STOPS_READING.replace("float(sys.argv[3])", "4"))
    try:
        mark = sandbox.log_mark()
        result = sandbox.sftp_batch("tstuck", batch)
        assert result.returncode == 0, result.stderr
        home = sandbox.users["tstuck"].home
        assert all((home / name).read_bytes() == b"x" for name in names)
        end = [
            fields
            for fields in map(logread.parse, sandbox.log_since(mark, "event=end", timeout=20))
            if fields and fields.get("event") == "end" and fields.get("user") == "tstuck"
        ]
        assert len(end) == 1 and int(end[0]["dropped"]) > 0, end  # type: ignore[arg-type]
    finally:
        sandbox.restart_syslog(SYSLOG_LISTENER)


def test_client_killed_mid_transfer(sandbox: Sandbox, tmp_path: Path) -> None:
    mark = sandbox.log_mark()
    client = slow_upload(sandbox, client_file(tmp_path, "big.bin", os.urandom(20_000_000)), 800)
    time.sleep(0.5)
    for pid in sandbox.pids():  # the ssh client (nsenter's child), not sshd's side
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh":
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    client.wait(timeout=10)
    lines = session_lines(sandbox, mark, "tlog")
    end = lines[-1]
    assert end["event"] == "end", lines
    assert sandbox.wait_gone(sandbox.users["tlog"].uid) == []


def test_signal_request_reaches_the_program(sandbox: Sandbox) -> None:
    mark = sandbox.log_mark()
    repository = Path(__file__).resolve().parents[2]
    result = sandbox.run(
        [sys.executable, "-c", SIGNAL_ONE, str(repository), str(sandbox.root)],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = session_lines(sandbox, mark, "tlog")
    assert lines[-1]["event"] == "end" and lines[-1]["signal"] == "TERM", lines
    assert sandbox.wait_gone(sandbox.users["tlog"].uid) == []


SIGNAL_ONE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import paramiko
from tests.e2e.signal_client import send_signal
root = sys.argv[2]
client = paramiko.SSHClient()
client.load_host_keys(root + "/known_hosts")
client.connect("127.0.0.1", username="tlog", key_filename=root + "/client_key",
               allow_agent=False, look_for_keys=False)
channel = client.get_transport().open_session()
channel.exec_command("/usr/lib/openssh/sftp-server")
time.sleep(1.0)
send_signal(channel, "TERM")
print(channel.recv_exit_status())
"""


def test_sessions_lists_and_kills(sandbox: Sandbox, tmp_path: Path) -> None:
    mark = sandbox.log_mark()
    client = slow_upload(sandbox, client_file(tmp_path, "slow.bin", os.urandom(5_000_000)), 400)
    listed = sandbox.setup("sessions", "--json")
    assert listed.returncode == 0, listed.stderr
    found = [entry for entry in json.loads(listed.stdout) if entry["user"] == "tlog"]
    assert len(found) == 1, found
    session = found[0]
    decision = next(fields for fields in map(logread.parse, sandbox.log_since(mark)) if fields)
    assert session["session"] == decision["session"]
    assert session["program"] == "sftp-server" and session["client"] == "127.0.0.1"
    assert session["bytes_read"] > 0
    killed = sandbox.setup("sessions", "--kill", str(session["session"]))
    assert killed.returncode == 0, killed.stderr
    client.wait(timeout=20)
    end = session_lines(sandbox, mark, "tlog")[-1]
    assert end["event"] == "end" and end["signal"] == "TERM", end
    assert sandbox.wait_gone(sandbox.users["tlog"].uid) == []


def test_report_from_a_syslog_file(sandbox: Sandbox, local: Path) -> None:
    for user in ("tlog", "tjson"):
        result = sandbox.sftp_batch(user, f"put {local} report.bin\nget report.bin /dev/null\n")
        assert result.returncode == 0, result.stderr
    sandbox.ssh("tjson", "id")  # refused
    sandbox.log_since(sandbox.log_mark(), "refuse", timeout=2)
    result = sandbox.setup("report", "--file", str(sandbox.syslog_path), "--json")
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)
    for user in ("tlog", "tjson"):
        assert totals[user]["files_up"] >= 1 and totals[user]["bytes_up"] >= SIZE
        assert totals[user]["bytes_down"] >= SIZE and totals[user]["sessions"] >= 1
    assert totals["tjson"]["refused"] >= 1
