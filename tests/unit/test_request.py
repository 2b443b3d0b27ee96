"""How sshd's call becomes a Request (docs/design.md "The pipeline of a login"): -c, forced
command, interactive; bytes kept."""

from __future__ import annotations

import posix

import pytest

from scponly_py import request as requests
from scponly_py.outcome import Refusal

ORIGINAL = b"SSH_ORIGINAL_COMMAND"


# --- command_and_mode -------------------------------------------------------------------------


def test_login_shell_with_c() -> None:
    assert requests.command_and_mode([b"-c", b"scp -t x"], {}) == ("scp -t x", "login")


def test_login_shell_ignores_ssh_original_command() -> None:
    # As a plain login shell the -c string is the request; the variable is not trusted.
    env = {ORIGINAL: b"rsync --server --daemon ."}
    assert requests.command_and_mode([b"-c", b"scp -t x"], env) == ("scp -t x", "login")


def test_interactive_without_arguments_or_original_command() -> None:
    assert requests.command_and_mode([], {}) == (None, "interactive")


def test_forced_command_without_arguments() -> None:
    assert requests.command_and_mode([], {ORIGINAL: b"scp -f y"}) == ("scp -f y", "forced")


@pytest.mark.parametrize(
    "own",
    [
        b"scponly-py",
        b"scponly-pyc",
        b"/usr/bin/scponly-py",
        b"/usr/local/sbin/scponly-pyc",
        b"  /usr/bin/scponly-py\t",
    ],
)
def test_c_naming_ourselves_means_forced_command(own: bytes) -> None:
    assert requests.command_and_mode([b"-c", own], {ORIGINAL: b"scp -t z"}) == (
        "scp -t z",
        "forced",
    )
    assert requests.command_and_mode([b"-c", own], {}) == (None, "interactive")


@pytest.mark.parametrize(
    "command",
    [
        b"scponly-py -x",
        b"scponly-py scp",
        b"scponly",
        b"scponly-py.sh",
        b"/usr/bin/scponly-py/",
        b"",
    ],
)
def test_c_with_anything_else_is_the_command_itself(command: bytes) -> None:
    result = requests.command_and_mode([b"-c", command], {ORIGINAL: b"scp -t z"})
    assert result == (command.decode(), "login")


@pytest.mark.parametrize(
    "args",
    [
        [b"-c"],
        [b"-c", b"a", b"b"],
        [b"-l"],
        [b"--", b"-c", b"x"],
        [b"-i"],
        [b"-s"],
        [b"x"],
        [b"-c", b"x", b"-c"],
        [b"-lc", b"id"],
    ],
)
def test_other_invocations_are_refused(args: list[bytes]) -> None:
    with pytest.raises(Refusal, match="unsupported invocation"):
        requests.command_and_mode(args, {})


def test_non_utf8_bytes_survive_decode_and_encode() -> None:
    raw = b"scp -t caf\xe9/\xff\xfe"
    command, _ = requests.command_and_mode([b"-c", raw], {})
    assert command is not None
    assert requests.encode(command) == raw
    forced, _ = requests.command_and_mode([], {ORIGINAL: raw})
    assert requests.encode(forced) == raw  # type: ignore[arg-type]


# --- names_itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("scponly-py", True),
        ("scponly-pyc", True),
        ("/usr/bin/scponly-py", True),
        (" scponly-py ", True),
        ("scponly-py -c x", False),
        ("scponly-py\tx", False),
        ("", False),
        ("   ", False),
        ("/", False),
        ("scponly-py/", False),
        ("SCPONLY-PY", False),
    ],
)
def test_names_itself(command: str, expected: bool) -> None:
    assert requests.names_itself(command) is expected


# --- passed_environment and client_address ----------------------------------------------------


def test_passed_environment_keeps_only_locale_and_connection() -> None:
    env = {
        b"LANG": b"C.UTF-8",
        b"LC_ALL": b"de_DE.UTF-8",
        b"LC_ANYTHING": b"x",
        b"LANGUAGE": b"de",
        b"SSH_CONNECTION": b"192.0.2.1 1 192.0.2.2 22",
        b"SSH_CLIENT": b"192.0.2.1 1 22",
        b"LD_PRELOAD": b"/x.so",
        b"PYTHONPATH": b"/x",
        b"SSH_ORIGINAL_COMMAND": b"id",
        b"HOME": b"/root",
        b"PATH": b"/tmp",
    }
    kept = dict(requests.passed_environment(env))
    assert set(kept) == {
        "LANG",
        "LC_ALL",
        "LANGUAGE",
        "SSH_CONNECTION",
        "SSH_CLIENT",
    }


def test_passed_environment_is_sorted() -> None:
    env = {b"LC_TIME": b"1", b"LANG": b"2", b"LC_CTYPE": b"3"}
    assert [name for name, _ in requests.passed_environment(env)] == ["LANG", "LC_CTYPE", "LC_TIME"]


def test_passed_environment_drops_long_values() -> None:
    limit = requests.MAX_ENVIRONMENT_VALUE
    env = {b"LANG": b"x" * limit, b"LC_ALL": b"x" * (limit + 1)}
    assert dict(requests.passed_environment(env)) == {"LANG": "x" * limit}


def test_passed_environment_keeps_undecodable_bytes_losslessly() -> None:
    kept = dict(requests.passed_environment({b"LANG": b"\xff"}))
    assert requests.encode(kept["LANG"]) == b"\xff"


@pytest.mark.parametrize(
    ("connection", "address"),
    [
        (b"192.0.2.1 50000 192.0.2.2 22", "192.0.2.1"),
        (b"2001:db8::1 50000 2001:db8::2 22", "2001:db8::1"),
        (b"", "-"),
        (b" 1 2 3", "-"),
    ],
)
def test_client_address(connection: bytes, address: str) -> None:
    assert requests.client_address({b"SSH_CONNECTION": connection}) == address


def test_client_address_without_the_variable() -> None:
    assert requests.client_address({}) == "-"


# --- from_process: identity from the kernel, never from the environment -----------------------


def test_from_process_uses_getuid_not_user_or_home() -> None:
    env = {b"USER": b"root", b"HOME": b"/tmp/evil", b"LOGNAME": b"root"}
    request = requests.from_process([b"-c", b"scp -t x"], env)
    assert request.uid == posix.getuid()
    import pwd  # noqa: PLC0415

    entry = pwd.getpwuid(posix.getuid())
    assert request.user == entry.pw_name
    assert request.home == entry.pw_dir
    assert request.command == "scp -t x"
    assert request.mode == "login"
    assert request.groups[0] == __import__("grp").getgrgid(entry.pw_gid).gr_name


def test_from_process_refuses_bad_invocations() -> None:
    with pytest.raises(Refusal):
        requests.from_process([b"-x"], {})


def test_for_user_unknown() -> None:
    with pytest.raises(Refusal, match="unknown user"):
        requests.for_user("no-such-user-scponly-py", "scp -t x")
