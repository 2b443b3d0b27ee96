"""WinSCP's SCP mode: recorded lines, allowlist, access modes, stateful property, live session.

The lines below are what WinSCP sends, built from its public source
(github.com/winscp/winscp, commit 7221bf08, `source/core/ScpFileSystem.cpp`
`DefaultCommandSet` + `TCommandSet::FullCommand`, `Common.cpp` `DelimitStr`,
`SessionData.cpp` defaults: ListingCommand `ls -la`, ClearAliases and
UnsetNationalVars on, SCPLsFullTime auto). `FullCommand` appends
` ; echo "WinSCP: this is end-of-file:RET"` to every command and prefixes the
two transfers with `echo "WinSCP: this is begin-of-file" ; `; empty options
leave double spaces (`scp -r  -d -t`, `chmod  0644`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scponly_py import winscp
from scponly_py.policy import BUILTIN_PATHS, Policy
from scponly_py.request import Request
from tests.support import make_policy, make_request

HOME = "/home/alice"
END0 = ' ; echo "WinSCP: this is end-of-file:0"'
END = ' ; echo "WinSCP: this is end-of-file:$status"'
BEGIN = 'echo "WinSCP: this is begin-of-file" ; '
REPOSITORY = str(Path(__file__).resolve().parents[2])
CONFIGURED = {path for _, path in sorted(BUILTIN_PATHS.items())}
MODIFYING = {"chmod", "mkdir", "rm", "mv", "ln", "cp"}


def policy(access: str = "read-write", links: bool = True, programs=("winscp", "scp")) -> Policy:
    return make_policy(access=access, links=links, programs=programs)


def request(environment=(("LANG", "C.UTF-8"),)) -> Request:
    return make_request(None, groups=("alice", "staff"), environment=environment)


DIRECTORIES = {"/", "/home", HOME, f"{HOME}/docs", f"{HOME}/my dir", "/tmp"}


def session(access: str = "read-write", links: bool = True, programs=("winscp", "scp")):
    return winscp.Session(request(), policy(access, links, programs), DIRECTORIES.__contains__)


def play(s: winscp.Session, line: str, child_status: int = 0) -> tuple[str, str, list]:
    """Run the actions the way serve() does, with children 'exiting' child_status."""
    out, err, runs = [], [], []
    for action in s.handle(line):
        if action[0] == winscp.WRITE:
            (out if action[1] == 1 else err).append(action[2])
        elif action[0] == winscp.END:
            out.append(s.last_line(action[1]))
        elif action[0] == winscp.RUN:
            runs.append(action[1])
            s.finished(child_status)
    return "".join(out), "".join(err), runs


# ---- the start-up conversation, exactly as WinSCP sends it ----

UNALIASED = [
    "ls", "echo", "pwd", "cd", "groups", "scp", "rm", "mv", "mkdir", "chmod", "chgrp", "chown",
    "unset", "unalias", "ln", "cp", "printenv",
]  # fmt: skip
NATIONAL = [
    "LANG", "LANGUAGE", "LC_CTYPE", "LC_COLLATE", "LC_MONETARY", "LC_NUMERIC", "LC_TIME",
    "LC_MESSAGES", "LC_ALL", "HUMAN_BLOCKS", "BLOCK_SIZE", "LS_BLOCK_SIZE",
]  # fmt: skip
STARTUP = [
    ('echo "WinSCP: this is end-of-file:0"', "WinSCP: this is end-of-file:0\n"),
    ('echo "$status"' + END0, "0\nWinSCP: this is end-of-file:0\n"),
    ("printenv LANG" + END, "C.UTF-8\nWinSCP: this is end-of-file:0\n"),
    *[(f'unalias "{name}"' + END, "WinSCP: this is end-of-file:0\n") for name in UNALIASED],
    *[(f'unset "{name}"' + END, "WinSCP: this is end-of-file:0\n") for name in NATIONAL],
    ("groups" + END, "alice staff\nWinSCP: this is end-of-file:0\n"),
    ("pwd" + END, f"{HOME}\nWinSCP: this is end-of-file:0\n"),
]


def test_startup_conversation_is_answered_internally() -> None:
    s = session()
    for line, expected in STARTUP:
        out, err, runs = play(s, line)
        assert (out, err, runs) == (expected, "", []), line
    # After `unset "LANG"` children no longer get the client's locale.
    out, _, _ = play(s, "printenv LANG" + END)
    assert out == "WinSCP: this is end-of-file:1\n"
    _, _, runs = play(s, "ls -la --full-time" + END)
    assert "LANG" not in dict(runs[0].env)


def test_bash_style_return_variable_also_works() -> None:
    s = session()
    assert play(s, 'echo "$?"' + END0)[0] == "0\nWinSCP: this is end-of-file:0\n"
    out, err, _ = play(s, "./cd x" + ' ; echo "WinSCP: this is end-of-file:$?"')
    assert out == "WinSCP: this is end-of-file:1\n"
    assert "refused" in err
    assert play(s, 'echo "$?"' + END0)[0] == "1\nWinSCP: this is end-of-file:0\n"


# (line as WinSCP sends it, argv we run (None: answered internally), cwd after)
RECORDED = [
    ("ls -la --full-time" + END, ["/bin/ls", "-l", "-a", "--full-time", "--"]),
    ("ls -la " + END, ["/bin/ls", "-l", "-a", "--"]),
    (
        f'ls -la --full-time "{HOME}/docs"' + END,
        ["/bin/ls", "-l", "-a", "--full-time", "--", f"{HOME}/docs"],
    ),
    (
        f'ls -la -d --full-time "{HOME}/a b"' + END,
        ["/bin/ls", "-l", "-a", "-d", "--full-time", "--", f"{HOME}/a b"],
    ),
    (f'ls -la -d  "{HOME}/x"' + END, ["/bin/ls", "-l", "-a", "-d", "--", f"{HOME}/x"]),
    ('ls -la -d  "./-rf"' + END, ["/bin/ls", "-l", "-a", "-d", "--", "./-rf"]),
    (
        BEGIN + f'scp -r -p -d -t "{HOME}/docs"' + END,
        ["/usr/bin/scp", "-r", "-p", "-d", "-t", "--", f"{HOME}/docs"],
    ),
    (
        BEGIN + f'scp -r  -d -t "{HOME}/docs"' + END,
        ["/usr/bin/scp", "-r", "-d", "-t", "--", f"{HOME}/docs"],
    ),
    (
        BEGIN + f'scp -r -p -d -f "{HOME}/f.txt"' + END,
        ["/usr/bin/scp", "-r", "-p", "-f", "--", f"{HOME}/f.txt"],
    ),
    (
        BEGIN + f'scp -r  -d -f "{HOME}/\\$HOME \\"q\\" \\`x\\`"' + END,
        ["/usr/bin/scp", "-r", "-f", "--", f'{HOME}/$HOME "q" `x`'],
    ),
    (f'rm -f -r "{HOME}/old"' + END, ["/bin/rm", "-f", "-r", "--", f"{HOME}/old"]),
    (f'mv -f "{HOME}/a" "{HOME}/b"' + END, ["/bin/mv", "-f", "--", f"{HOME}/a", f"{HOME}/b"]),
    (f'mkdir "{HOME}/new"' + END, ["/bin/mkdir", "--", f"{HOME}/new"]),
    (f'chmod  0644 "{HOME}/f"' + END, ["/bin/chmod", "--", "0644", f"{HOME}/f"]),
    (f'chmod -R 00755 "{HOME}/d"' + END, ["/bin/chmod", "-R", "--", "00755", f"{HOME}/d"]),
    (
        f'chmod  u+rw-x,g+r,o-rwx "{HOME}/f"' + END,
        ["/bin/chmod", "--", "u+rw-x,g+r,o-rwx", f"{HOME}/f"],
    ),
    (
        f'ln -s "{HOME}/target" "{HOME}/link"' + END,
        ["/bin/ln", "-s", "--", f"{HOME}/target", f"{HOME}/link"],
    ),
    (
        f'ln  "{HOME}/target" "{HOME}/hard"' + END,
        ["/bin/ln", "--", f"{HOME}/target", f"{HOME}/hard"],
    ),
    (
        f'cp -p -r -f -T "{HOME}/a" "{HOME}/b"' + END,
        ["/bin/cp", "-R", "-p", "-f", "-T", "--", f"{HOME}/a", f"{HOME}/b"],
    ),
    (
        f'cp -p -r -f  "{HOME}/a" "{HOME}/b"' + END,
        ["/bin/cp", "-R", "-p", "-f", "--", f"{HOME}/a", f"{HOME}/b"],
    ),
]


@pytest.mark.parametrize(("line", "argv"), RECORDED)
def test_recorded_lines_run_exactly_this_argv(line: str, argv: list[str]) -> None:
    s = session()
    out, err, runs = play(s, line)
    assert err == ""
    assert len(runs) == 1
    run = runs[0]
    assert list(run.argv) == argv
    assert run.path == argv[0]
    assert run.cwd == HOME
    assert run.umask == 0o022
    assert dict(run.env)["PATH"] == "/usr/bin:/bin"
    expected = ("WinSCP: this is begin-of-file\n" if line.startswith(BEGIN) else "") + (
        "WinSCP: this is end-of-file:0\n"
    )
    assert out == expected


def test_cd_is_internal_and_checked() -> None:
    s = session()
    assert play(s, f'cd "{HOME}/docs"' + END) == ("WinSCP: this is end-of-file:0\n", "", [])
    assert play(s, "pwd" + END)[0] == f"{HOME}/docs\nWinSCP: this is end-of-file:0\n"
    assert play(s, 'cd ".."' + END)[0].endswith(":0\n")
    assert s.cwd == HOME
    assert play(s, 'cd "my dir"' + END)[0].endswith(":0\n")
    assert s.cwd == f"{HOME}/my dir"
    out, err, _ = play(s, 'cd "/etc"' + END)  # not a directory the probe knows
    assert out == "WinSCP: this is end-of-file:1\n" and "cd:" in err
    assert s.cwd == f"{HOME}/my dir"
    play(s, "cd" + END)  # HomeDirectory
    assert s.cwd == HOME
    play(s, "cd /tmp" + END)
    play(s, "cd ~" + END)
    assert s.cwd == HOME
    play(s, "cd ~/docs" + END)
    assert s.cwd == f"{HOME}/docs"
    assert "refused" in play(s, "cd ~root" + END)[1]
    _, _, runs = play(s, "ls -la " + END)
    assert runs[0].cwd == f"{HOME}/docs"  # children run in the session's directory


def test_an_uploaded_cd_or_any_relative_program_is_never_run() -> None:
    s = session()
    for line in ["./cd x", "cd; ./cd", "./ls -la", "bin/ls", "/tmp/ls -la", "/bin/ls -la",
                 "/usr/bin/scp -t /tmp", "sh -c id", "bash", "exec sh", "python3",
                 "`id`", "$(id)", "ls -la | sh", "ls -la && id", "ls -la; id",
                 "ls -la > /tmp/x", "cd x ; id", "id", "uname -a", "sha256sum \"x\"",
                 "chgrp  \"staff\" \"x\"", "chown  \"root\" \"x\"", "export LC_ALL=C",
                 "printenv", "echo $HOME", "echo \"$(id)\"", "test -x /bin/sh", "exec /bin/sh",
                 "ls -la --color=always", "ls -laR", "ls -la -R \"/\"",
                 "rm -rf --no-preserve-root /", "rm -f -r -- \"/x\" --preserve-root",
                 "mv -t /tmp x", "mv -f -b \"a\" \"b\"", "cp -L \"a\" \"b\"",
                 "cp -p -r -f --remove-destination \"a\" \"b\"",
                 "ln -sf \"a\" \"b\"", "ln -s \"a\" \"b\" \"c\"", "mkdir -p \"a/b\"",
                 "mkdir -m 777 \"a\"", "chmod --reference=/etc/shadow \"x\"",
                 "chmod 0644", "chmod  9999 \"x\"", "chmod  u+rw;id \"x\"",
                 "scp -S /tmp/x -t .", "scp -t -oProxyCommand=x .", "scp \"a\" \"b\"",
                 "scp -r -d -t", "scp -F /tmp/cfg -f x", "\x1b[31m", "ls\r",
                 ]:  # fmt: skip
        for framed in (line, line + END, BEGIN + line + END):
            _, _, runs = play(s, framed)
            for run in runs:
                assert run.path.startswith("/")
                assert run.path in CONFIGURED
                assert run.argv[0] == run.path
            if line.startswith(("./", "bin/", "/tmp/", "/bin/", "/usr/")) or ";" in line:
                assert runs == [], framed


@pytest.mark.parametrize(
    "mode", ["4755", "04755", "2775", "02775", "06755", "u+s", "g+s", "ug+rws", "a=rwxs", "77777"]
)
def test_chmod_never_sets_setuid_or_setgid(mode: str) -> None:
    _, err, runs = play(session(), f'chmod  {mode} "{HOME}/f"' + END)
    assert runs == [] and "refused" in err


@pytest.mark.parametrize("mode", ["1777", "01777", "o+t", "0000", "a-rwx", "u=rw,go="])
def test_chmod_sticky_and_plain_modes_are_fine(mode: str) -> None:
    _, _, runs = play(session(), f'chmod  {mode} "{HOME}/f"' + END)
    assert [run.argv[-2] for run in runs] == [mode]


def test_refusals_report_and_set_status() -> None:
    s = session()
    out, err, runs = play(s, "id" + END)
    assert runs == []
    assert out == "WinSCP: this is end-of-file:1\n"
    assert err == "scponly-py: refused: command 'id' is not allowed in WinSCP mode\n"


def test_framing_is_exact() -> None:
    s = session()
    # A file name containing the separator stays inside the quotes.
    _, _, runs = play(s, f'rm -f -r "{HOME}/a ; b"' + END)
    assert list(runs[0].argv) == ["/bin/rm", "-f", "-r", "--", f"{HOME}/a ; b"]
    # An end marker that is not exactly WinSCP's is part of the command: refused.
    for line in ['pwd ; echo "WinSCP: this is end-of-file:$HOME"',
                 'pwd ; echo "WinSCP: this is end-of-file:$status" ; id',
                 'pwd ;echo "WinSCP: this is end-of-file:$status"',
                 'echo "WinSCP: this is begin-of-file"; pwd']:  # fmt: skip
        _, err, runs = play(s, line)
        assert runs == [] and "refused" in err, line
    assert play(s, "") == ("", "", [])
    assert play(s, "   ") == ("", "", [])


def test_every_command_is_logged() -> None:
    s = session()
    actions = s.handle(f'mkdir "{HOME}/n"' + END)
    logs = [action for action in actions if action[0] == winscp.LOG]
    assert len(logs) == 1
    assert "decision=allow" in logs[0][2] and "program=winscp:mkdir" in logs[0][2]
    assert 'argv="/bin/mkdir -- /home/alice/n"' in logs[0][2]
    # The log line comes before the run: a log failure stops the run.
    assert [action[0] for action in actions] == [winscp.LOG, winscp.RUN, winscp.END]
    actions = s.handle("id\n" + END)
    logs = [action for action in actions if action[0] == winscp.LOG]
    assert len(logs) == 1 and "decision=refuse" in logs[0][2]
    assert "\n" not in logs[0][2] and "\\x0a" in logs[0][2]


@pytest.mark.parametrize(
    ("line", "access", "links", "allowed"),
    [
        ("ls -la ", "read-only", True, True),
        ("ls -la ", "write-only", True, False),
        (BEGIN + 'scp -r -p -d -f "x"', "read-only", True, True),
        (BEGIN + 'scp -r -p -d -f "x"', "write-only", True, False),
        (BEGIN + 'scp -r -p -d -t "x"', "read-only", True, False),
        (BEGIN + 'scp -r -p -d -t "x"', "write-only", True, True),
        ('mkdir "x"', "read-only", True, False),
        ('mkdir "x"', "write-only", True, True),
        ('rm -f -r "x"', "read-only", True, False),
        ('mv -f "x" "y"', "read-only", True, False),
        ('chmod  0644 "x"', "read-only", True, False),
        ('ln -s "x" "y"', "read-write", False, False),
        ('ln -s "x" "y"', "read-only", True, False),
        ('ln -s "x" "y"', "write-only", True, True),
        ('cp -p -r -f "x" "y"', "read-write", False, False),
        ('cp -p -r -f "x" "y"', "write-only", True, False),
        ('cp -p -r -f "x" "y"', "read-only", True, False),
        ('cp -p -r -f "x" "y"', "read-write", True, True),
    ],
)
def test_access_modes(line: str, access: str, links: bool, allowed: bool) -> None:
    _, err, runs = play(session(access, links), line + END)
    assert bool(runs) == allowed, err


def test_transfers_need_scp_enabled_too() -> None:
    _, err, runs = play(session(programs=("winscp",)), BEGIN + 'scp -r -d -t "x"' + END)
    assert runs == []
    assert "scp is not enabled" in err


# ---- stateful property: whatever lines arrive ----

FRAGMENTS = [
    "ls", "-la", "-d", "--full-time", "scp", "-r", "-p", "-d", "-t", "-f", "-S", "/tmp/x",
    "cd", "pwd", "echo", "./cd", "rm", "-f", "mv", "mkdir", "chmod", "0644", "-R", "ln", "-s",
    "cp", "-T", "sh", "-c", "id", ";", "&&", "|", "$status", "$?", '"$status"', '"x y"',
    "'q'", "~", "~/d", "..", "/", ".", "unset", "LANG", "unalias", "groups", "printenv",
    "exit", "--", "x", "/home/alice/docs", "`id`", "$(id)", "-oProxyCommand=x", "\\$x",
    'echo "WinSCP: this is begin-of-file"', 'echo "WinSCP: this is end-of-file:$status"',
]  # fmt: skip


class WinscpLines(RuleBasedStateMachine):
    """Random sequences of WinSCP-like and hostile lines against one session."""

    def __init__(self) -> None:
        super().__init__()
        self.session: winscp.Session | None = None
        self.actions: list[tuple] = []

    @precondition(lambda self: self.session is None)
    @rule(
        access=st.sampled_from(["read-write", "read-only", "write-only"]),
        links=st.booleans(),
    )
    def start(self, access: str, links: bool) -> None:
        self.session = session(access, links)

    @precondition(lambda self: self.session is not None)
    @rule(
        parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=7),
        framed=st.sampled_from(["none", "end", "begin"]),
    )
    def known_words(self, parts: list[str], framed: str) -> None:
        line = " ".join(parts)
        if framed != "none":
            line += END
        if framed == "begin":
            line = BEGIN + line
        self.actions = self.session.handle(line)  # type: ignore[union-attr]

    @precondition(lambda self: self.session is not None)
    @rule(line=st.text(max_size=60))
    def any_text(self, line: str) -> None:
        self.actions = self.session.handle(line)  # type: ignore[union-attr]

    @precondition(lambda self: self.session is not None)
    @rule(status=st.integers(min_value=0, max_value=255))
    def child_exits(self, status: int) -> None:
        self.session.finished(status)  # type: ignore[union-attr]

    @invariant()
    def runs_are_safe(self) -> None:
        if self.session is None:
            return
        access = self.session.policy.access
        for action in self.actions:
            assert action[0] in (winscp.WRITE, winscp.RUN, winscp.END, winscp.LOG, winscp.EXIT)
            if action[0] != winscp.RUN:
                continue
            run = action[1]
            assert run.path.startswith("/") and run.path in CONFIGURED
            assert run.argv[0] == run.path
            assert "--" in run.argv  # operands never read as options
            tool = run.program.split(":", 1)[1]
            if access == "read-only":
                assert tool not in MODIFYING
                assert tool != "scp" or "-f" in run.argv
            if access == "write-only":
                assert tool not in ("ls", "cp")
                assert tool != "scp" or "-t" in run.argv
            if not self.session.policy.links:
                assert tool not in ("ln", "cp")
            assert not any(name.startswith(("LD_", "PYTHON")) for name, _ in run.env)
        assert self.session.cwd.startswith("/")
        assert winscp.normalise(self.session.cwd) == self.session.cwd


WinscpLines.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWinscpLines = WinscpLines.TestCase


# ---- live: serve() on real pipes with real ls/scp/mkdir/…, WinSCP's side scripted ----

CHILD = """
import json, sys
sys.path.insert(0, {repository!r})
from scponly_py import audit, winscp
from tests.support import make_policy, make_request
settings = json.loads(sys.argv[1])
log = open(settings["log"], "a")
def fake_log(text, priority=audit.INFO):
    log.write(text + "\\n")
    log.flush()
audit.log = fake_log
policy = make_policy(access=settings["access"], programs=("winscp", "scp"))
request = make_request(None, home=settings["home"])
sys.exit(winscp.serve(request, policy))
"""


class Client:
    """WinSCP's side of the conversation over the session's pipes."""

    def __init__(self, tmp_path: Path, access: str = "read-write") -> None:
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.log = tmp_path / "audit.log"
        script = tmp_path / "child.py"
        script.write_text(CHILD.format(repository=REPOSITORY))
        settings_ = {"access": access, "home": str(self.home), "log": str(self.log)}
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(script), json.dumps(settings_)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=str(self.home),
        )

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)  # type: ignore[union-attr]

    def line(self) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n"):
            byte = self.process.stdout.read(1)  # type: ignore[union-attr]
            assert byte, f"EOF after {bytes(out)!r}"
            out += byte
        return bytes(out[:-1])

    def byte(self) -> bytes:
        return self.process.stdout.read(1)  # type: ignore[union-attr]

    def exactly(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self.process.stdout.read(count - len(data))  # type: ignore[union-attr]
            assert chunk, f"EOF after {len(data)} of {count} bytes"
            data += chunk
        return bytes(data)

    def command(self, command: str) -> tuple[list[bytes], int]:
        self.send((command + END + "\n").encode())
        return self.until_end()

    def until_end(self) -> tuple[list[bytes], int]:
        lines = []
        while True:
            line = self.line()
            if line.startswith(b"WinSCP: this is end-of-file:"):
                return lines, int(line.rsplit(b":", 1)[1])
            lines.append(line)

    def close(self) -> int:
        self.process.stdin.close()  # type: ignore[union-attr]
        return self.process.wait(timeout=10)


def test_live_session_with_real_programs(tmp_path: Path) -> None:
    client = Client(tmp_path)
    home = client.home
    try:
        # start-up, as WinSCP does it
        client.send(b'echo "WinSCP: this is end-of-file:0"\n')
        assert client.until_end() == ([], 0)
        client.send(('echo "$status"' + END0 + "\n").encode())
        assert client.until_end() == ([b"0"], 0)
        assert client.command('unset "LANG"') == ([], 0)
        assert client.command("pwd") == ([str(home).encode()], 0)

        # an uploaded ./cd must never run
        marker = tmp_path / "PWNED"
        (home / "cd").write_text(f"#!/bin/sh\ntouch {marker}\n")
        (home / "cd").chmod(0o755)
        (home / "ls").write_text(f"#!/bin/sh\ntouch {marker}\n")
        (home / "ls").chmod(0o755)
        assert client.command("./cd x")[1] == 1
        assert client.command(f'cd "{home}"')[1] == 0
        assert client.command('ls -la "x"')[1] == 2  # the real /bin/ls: no such file
        assert not marker.exists()

        assert client.command(f'mkdir "{home}/up"') == ([], 0)
        assert (home / "up").is_dir()

        # upload: scp -r  -d -t "DIR", then WinSCP speaks the scp protocol
        payload = bytes(range(256)) * 100 + b"end"
        client.send((BEGIN + f'scp -r  -d -t "{home}/up"' + END + "\n").encode())
        assert client.line() == b"WinSCP: this is begin-of-file"
        assert client.byte() == b"\0"
        client.send(f"C0640 {len(payload)} data.bin\n".encode())
        assert client.byte() == b"\0"
        client.send(payload + b"\0")
        assert client.byte() == b"\0"
        client.send(b"E\n")
        assert client.byte() == b"\0"
        assert client.until_end() == ([], 0)
        assert (home / "up" / "data.bin").read_bytes() == payload

        # listing of the current directory and of one file
        assert client.command(f'cd "{home}/up"')[1] == 0
        lines, status = client.command("ls -la --full-time")
        assert status == 0 and any(line.endswith(b" data.bin") for line in lines)
        lines, status = client.command(f'ls -la -d --full-time "{home}/up/data.bin"')
        assert status == 0 and len(lines) == 1 and lines[0].startswith(b"-rw-r-----")

        # chmod, mv, ln, download
        assert client.command(f'chmod  0600 "{home}/up/data.bin"')[1] == 0
        assert (home / "up" / "data.bin").stat().st_mode & 0o777 == 0o600
        assert client.command(f'mv -f "{home}/up/data.bin" "{home}/up/moved.bin"')[1] == 0
        assert client.command(f'ln -s "{home}/up/moved.bin" "{home}/up/link"')[1] == 0
        assert os.readlink(home / "up" / "link") == f"{home}/up/moved.bin"
        client.send((BEGIN + f'scp -r -p -d -f "{home}/up/moved.bin"' + END + "\n").encode())
        assert client.line() == b"WinSCP: this is begin-of-file"
        client.send(b"\0")
        header = client.line()
        assert header.startswith(b"T")  # -p: times first
        client.send(b"\0")
        header = client.line()
        assert header == f"C0600 {len(payload)} moved.bin".encode()
        client.send(b"\0")
        data = client.exactly(len(payload) + 1)
        assert data == payload + b"\0"
        client.send(b"\0")
        assert client.until_end() == ([], 0)

        # remove, and a refused command keeps the session going
        assert client.command(f'rm -f -r "{home}/up"')[1] == 0
        assert not (home / "up").exists()
        lines, status = client.command("sh -c id")
        assert (lines, status) == ([], 1)
        assert client.command("pwd")[0] == [str(home / "up").encode()]
    finally:
        status = client.close()
    assert status == 0  # the last command (pwd) succeeded
    assert not marker.exists()
    stderr = client.process.stderr.read().decode()  # type: ignore[union-attr]
    assert "command './cd' is not allowed" in stderr
    assert "command 'sh' is not allowed" in stderr
    log = client.log.read_text().splitlines()
    assert log[0].startswith("decision=allow") and "argv=session-start" in log[0]
    assert any("program=winscp:scp" in line and "-t --" in line for line in log)
    assert any("decision=refuse" in line and "./cd" in line for line in log)


def test_live_read_only_session_cannot_upload(tmp_path: Path) -> None:
    client = Client(tmp_path, access="read-only")
    try:
        client.send((BEGIN + f'scp -r  -d -t "{client.home}"' + END + "\n").encode())
        assert client.line() == b"WinSCP: this is begin-of-file"
        assert client.until_end() == ([], 1)
        assert client.command(f'mkdir "{client.home}/x"') == ([], 1)
        assert not (client.home / "x").exists()
    finally:
        client.close()


def test_live_overlong_line_ends_the_session(tmp_path: Path) -> None:
    client = Client(tmp_path)
    client.send(b"x" * (winscp.MAX_LINE + 10) + b"\n")
    assert client.process.wait(timeout=10) == 1
    assert b"longer than" in client.process.stderr.read()  # type: ignore[union-attr]


# ---- the login shell hands interactive sessions to WinSCP mode only when enabled ----


class _Flags:
    isolated = True


class _Sys:
    flags = _Flags()


def _login(monkeypatch: pytest.MonkeyPatch, programs: tuple[str, ...], uid: int = 1000) -> list:
    from scponly_py import request as requests  # noqa: PLC0415
    from scponly_py import shell, supervise  # noqa: PLC0415
    from scponly_py.policy import LoadedConfig, normalise  # noqa: PLC0415

    calls: list = []
    interactive = request().replace(uid=uid)
    monkeypatch.setattr(shell, "sys", _Sys)
    monkeypatch.setitem(shell.posix.environ, requests.FRONT_VARIABLE.encode(), b"1")
    monkeypatch.setattr(requests, "from_process", lambda args, environment: interactive)
    loaded = LoadedConfig(normalise({"defaults": {"programs": list(programs)}}), "test")
    monkeypatch.setattr(shell, "load_config", lambda: loaded)
    monkeypatch.setattr(winscp, "serve", lambda req, pol: calls.append(("serve", req, pol)) or 7)
    # log_transfers (the default): the session runs in the supervisor's child.
    monkeypatch.setattr(
        supervise, "run", lambda req, name, start: calls.append(("supervise", name)) or start(())
    )
    monkeypatch.setattr(shell, "refuse", lambda req, dec, pol=None: calls.append(("refuse",)) or 1)
    calls.append(shell.login([]))
    return calls


def test_login_runs_winscp_mode_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _login(monkeypatch, ("winscp", "scp"))
    assert calls[0] == ("supervise", "winscp")
    assert calls[1][0] == "serve" and calls[-1] == 7
    assert calls[1][1].command is None
    assert "winscp" in calls[1][2].programs


def test_login_refuses_interactive_without_winscp(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _login(monkeypatch, ("scp", "sftp")) == [("refuse",), 1]


def test_login_never_gives_root_winscp_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _login(monkeypatch, ("winscp", "scp"), uid=0) == [("refuse",), 1]


def _allow(path: str, *arguments: str, cwd: str = "/") -> winscp.Allow:
    return winscp.Allow(
        argv=(path, *arguments), cwd=cwd, env=(("PATH", "/usr/bin:/bin"),), path=path,
        program="winscp:test", umask=0o022,
    )  # fmt: skip


def test_runner_statuses_and_relative_paths(tmp_path: Path) -> None:
    assert winscp._run(_allow("/bin/false")) == 1
    assert winscp._run(_allow("/bin/true")) == 0
    assert winscp._run(_allow("/nonexistent/program")) == 126
    assert winscp._run(_allow("/bin/true", cwd=str(tmp_path / "gone"))) == 126
    assert winscp._run(_allow("/bin/sh", "-c", "kill -9 $$")) == 128 + 9
    marker = tmp_path / "ran"
    script = tmp_path / "cd"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o700)
    relative = winscp.Allow(
        argv=("cd",), cwd=str(tmp_path), env=(), path="cd", program="x", umask=0o022
    )
    assert winscp._run(relative) == winscp.REFUSED_STATUS
    assert not marker.exists()


def test_builtins_are_logged_only_at_debug_level() -> None:
    quiet = session()
    assert not [a for a in quiet.handle("pwd" + END) if a[0] == winscp.LOG]
    assert [a for a in quiet.handle("ls -la" + END) if a[0] == winscp.LOG]
    chatty = winscp.Session(
        request(), policy().replace(log_level="debug"), DIRECTORIES.__contains__
    )
    logged = [a for a in chatty.handle("pwd" + END) if a[0] == winscp.LOG]
    assert len(logged) == 1 and "program=pwd" in logged[0][2]


def test_runner_children_cannot_set_set_id_bits(tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.write_bytes(b"#!/bin/sh\n")
    program.chmod(0o644)
    assert winscp._run(_allow("/bin/chmod", "4755", str(program))) == 1
    assert winscp._run(_allow("/bin/chmod", "0755", str(program))) == 0
    assert program.stat().st_mode & 0o7777 == 0o755
