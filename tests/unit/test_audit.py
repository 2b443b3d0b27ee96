"""Syslog lines (docs/design.md R4, "One of each"): key=value, nothing raw, bounded, fail closed."""

from __future__ import annotations

import ast
import socket
import time
from pathlib import Path

import pytest

from scponly_py import audit, words
from scponly_py.outcome import Allow, Refuse
from tests.support import make_request

ALLOW = Allow(
    argv=("/usr/bin/scp", "-t", "--", "my file"),
    cwd="/home/alice",
    env=(),
    path="/usr/bin/scp",
    program="scp",
    umask=0o022,
)


# --- escape -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["alice", "192.0.2.1", "/usr/bin/scp", "a=b", "50%", "x,y:z@w"])
def test_plain_values_are_bare(value: str) -> None:
    assert audit.escape(value) == value


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("", '""'),
        ("a b", '"a b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nforged=1", '"line\\x0aforged=1"'),
        ("cr\r", '"cr\\x0d"'),
        ("nul\x00", '"nul\\x00"'),
        ("del\x7f", '"del\\x7f"'),
        ("esc\x1b[31m", '"esc\\x1b[31m"'),
        ("caf\u00e9", '"caf\\xc3\\xa9"'),
        ("\u2028", '"\\xe2\\x80\\xa8"'),
        (b"\xff".decode("utf-8", "surrogateescape"), '"\\xff"'),
    ],
)
def test_everything_else_is_quoted_and_escaped_as_bytes(value: str, escaped: str) -> None:
    assert audit.escape(value) == escaped


def test_escaped_output_is_printable_ascii_only() -> None:
    every = "".join(chr(code) for code in range(0x300)) + "\udc80\udcff"
    out = audit.escape(every)
    assert all(0x20 <= ord(char) < 0x7F for char in out)


def test_long_values_are_cut_and_marked() -> None:
    out = audit.escape("\n" * 10_000)
    assert out.endswith('..."')
    assert len(out) < 4 * audit.MAX_FIELD + 10


# --- line -------------------------------------------------------------------------------------


def test_allow_line() -> None:
    line = audit.line(make_request("scp -t 'my file'"), ALLOW, 1000)
    assert line == (
        f"decision=allow user=alice uid=1000 client=192.0.2.1 mode=login "
        f'session={audit.session_id()} program=scp argv="{words.join(ALLOW.argv)}"'
    )


def test_refuse_line_carries_the_reason_and_the_command() -> None:
    request = make_request("scp -t x\nid")
    line = audit.line(request, Refuse(program="-", reason="control character 0x0a"), 1000)
    assert "decision=refuse" in line
    assert 'reason="control character 0x0a"' in line
    assert 'command="scp -t x\\x0aid"' in line
    assert "\n" not in line


def test_line_without_a_request_has_the_uid() -> None:
    line = audit.line(None, Refuse(program="-", reason="x"), 4242)
    assert line == f"decision=refuse uid=4242 session={audit.session_id()} program=- reason=x"


def test_interactive_refusal_has_no_command_field() -> None:
    line = audit.line(make_request(None), Refuse(program="-", reason="interactive login"), 1)
    assert "command=" not in line
    assert "mode=interactive" in line


def test_hostile_user_fields_cannot_forge_keys() -> None:
    request = make_request("x", user="eve decision=allow", client="1.2.3.4\nfake")
    line = audit.line(request, Refuse(program="-", reason="r"), 1)
    assert 'user="eve decision=allow"' in line
    assert "\n" not in line
    assert line.count("decision=") == 2  # the real key and the quoted text


# --- log: delivery or AuditError --------------------------------------------------------------


@pytest.fixture
def log_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    monkeypatch.setattr(audit, "LOG_SOCKET", str(path))
    monkeypatch.setattr(audit, "_channel", [])
    yield receiver
    for channel in audit._channel:
        channel.close()
    receiver.close()


def test_log_sends_one_authpriv_datagram(log_socket: socket.socket) -> None:
    audit.log("decision=allow user=alice", audit.INFO)
    message = log_socket.recv(65536).decode()
    assert message.startswith(f"<{(10 << 3) | 6}>")
    assert " scponly-py[" in message
    assert message.endswith("]: decision=allow user=alice")


def test_notice_priority(log_socket: socket.socket) -> None:
    audit.log("x", audit.NOTICE)
    assert log_socket.recv(65536).decode().startswith(f"<{(10 << 3) | 5}>")


def test_missing_log_socket_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "LOG_SOCKET", str(tmp_path / "absent"))
    monkeypatch.setattr(audit, "_channel", [])
    with pytest.raises(audit.AuditError, match="cannot connect"):
        audit.log("x")


def test_stuck_log_reader_is_an_error_within_the_timeout(
    log_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "SEND_TIMEOUT", 0.2)
    started = time.monotonic()
    with pytest.raises(audit.AuditError, match="not accepting"):
        for _ in range(100_000):  # nobody reads: the queue fills, then send times out
            audit.log("x" * 4000)
    assert time.monotonic() - started < 30


def test_debug_level_adds_cwd_umask_and_environment_names() -> None:
    allow = Allow(
        argv=("/usr/bin/scp", "-t", "--", "x"),
        cwd="/home/alice",
        env=(("HOME", "/home/alice"), ("PATH", "/usr/bin:/bin")),
        path="/usr/bin/scp",
        program="scp",
        umask=0o027,
    )
    info = audit.line(make_request("scp -t x"), allow, 1000)
    debug = audit.line(make_request("scp -t x"), allow, 1000, debug=True)
    assert "cwd=" not in info and "umask=" not in info and "env=" not in info
    assert debug.startswith(info)
    assert debug.endswith(" cwd=/home/alice umask=0027 env=HOME,PATH")


def test_every_line_the_shell_logs_is_built_by_format_line() -> None:
    """No module but audit.py escapes values or hands audit.log a text built by hand."""
    package = Path(audit.__file__).parent
    built_by = {"line", "format_line"}
    for path in sorted(package.rglob("*.py")):
        if path.name == "audit.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) != ("audit", "escape"), path
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) == ("audit", "log")
            ):
                continue
            text = node.args[0]
            if isinstance(text, ast.Subscript):  # winscp's LOG action: (LOG, priority, line)
                assert path.name == "winscp.py", path
                continue
            assert isinstance(text, ast.Call) and isinstance(text.func, ast.Attribute), path
            assert text.func.attr in built_by, f"{path}:{node.lineno}"


def test_format_line_keeps_order_and_escapes() -> None:
    assert audit.format_line([("b", 1), ("a", "x y"), ("c", "\n")]) == 'b=1 a="x y" c="\\x0a"'
