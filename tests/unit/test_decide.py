"""decide(request, policy): the pure decision (docs/design.md R1, R2, R4, R9, R13)."""

from __future__ import annotations

import sys

import pytest

from scponly_py import decide as decide_module
from scponly_py import programs
from scponly_py import request as requests
from scponly_py.decide import decide, start_directory
from scponly_py.outcome import Allow, Refuse
from tests.support import HOME, make_policy, make_request, must_allow, must_refuse

ALL = tuple(programs.PROGRAMS)


def refused(command: str | None, **request: object) -> Refuse:
    return must_refuse(command, request, programs=ALL)


def allowed(command: str, **policy: object) -> Allow:
    policy.setdefault("programs", ALL)
    return must_allow(command, **policy)


# --- rule 11 and the shapes of a login --------------------------------------------------------


def test_root_is_refused_whatever_the_command() -> None:
    for command in ("scp -t x", "/usr/lib/openssh/sftp-server", None):
        decision = refused(command, uid=0)
        assert decision.reason == "root may not use this shell"


def test_interactive_login_is_refused() -> None:
    assert refused(None).reason == "interactive login"


@pytest.mark.parametrize(
    "command", ["/bin/sh .ssh/rc", "/bin/sh /home/alice/.ssh/rc", "/bin/sh ~/.ssh/rc"]
)
def test_ssh_rc_is_not_run(command: str) -> None:
    reason = refused(command).reason
    assert "~/.ssh/rc is not run" in reason or "metacharacter" in reason


# --- rule 1: only named programs, by exact word -----------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "id",
        "sh",
        "bash -i",
        "/bin/sh -c id",
        "sh -c 'scp -t x'",
        "python3 -c 'import os'",
        "exec scp -t x",
        "command scp -t x",
        "env scp -t x",
        "nice scp -t x",
        "LD_PRELOAD=/home/alice/x.so scp -t x",
        "PATH=/home/alice scp -t x",
        "./sftp-server",
        "internal-sftp",
        "/usr/lib/openssh/sftp-server/",
        "/usr/lib/openssh/../openssh/sftp-server",
        "sftp",
        "ssh localhost",
        "git-upload-pack '/repo'",
        "cd /tmp",
        "echo hi",
        "true",
    ],
)
def test_anything_else_is_refused_by_name(command: str) -> None:
    decision = refused(command)
    assert decision.program == "-"
    assert decision.reason.startswith("command ")
    assert decision.reason.endswith("is not allowed")


def test_refused_command_name_is_shortened_in_the_reason() -> None:
    reason = refused("x" * 5000).reason
    assert len(reason) < 120


def test_program_not_enabled_names_the_program() -> None:
    decision = decide(make_request("/usr/lib/openssh/sftp-server"), make_policy(programs=("scp",)))
    assert decision == Refuse(program="sftp", reason="sftp is not enabled for this account")


def test_tokenizer_refusal_has_no_program() -> None:
    assert refused("scp -t x; id").program == "-"


def test_grammar_refusal_names_the_program() -> None:
    decision = refused("scp -S /tmp/x -t y")
    assert decision.program == "scp"
    assert "option -S" in decision.reason


# --- rule 3: the Allow is exactly what runs ---------------------------------------------------


def test_allow_carries_everything_the_exec_needs() -> None:
    decision = allowed("scp -t /in", umask=0o027, start_dir="drop")
    assert decision.program == "scp"
    assert decision.path == "/usr/bin/scp"
    assert decision.argv == ("/usr/bin/scp", "-t", "--", "/in")
    assert decision.cwd == f"{HOME}/drop"
    assert decision.umask == 0o027
    assert dict(decision.env) == {
        "HOME": HOME,
        "LOGNAME": "alice",
        "PATH": requests.FIXED_PATH,
        "USER": "alice",
    }


def test_argv0_is_the_configured_path_not_the_clients_word() -> None:
    paths = {"scp": "/opt/bin/scp", "sftp": "/opt/libexec/sftp-server"}
    for command, path in [
        ("scp -t x", "/opt/bin/scp"),
        ("/usr/bin/scp -t x", "/opt/bin/scp"),
        ("/usr/local/bin/scp -f x", "/opt/bin/scp"),
        ("sftp-server", "/opt/libexec/sftp-server"),
        ("/usr/lib/openssh/sftp-server", "/opt/libexec/sftp-server"),
    ]:
        decision = allowed(command, paths=paths)
        assert decision.path == decision.argv[0] == path


def test_working_directory_is_home_without_start_dir() -> None:
    assert allowed("scp -t x").cwd == HOME


def test_start_directory_joins_without_double_slashes() -> None:
    policy = make_policy(start_dir="in")
    assert start_directory(make_request("x", home="/"), policy) == "/in"
    assert start_directory(make_request("x", home="/home/a/"), policy) == "/home/a/in"


def test_child_environment_is_scrubbed() -> None:
    hostile = (
        ("BASH_ENV", "/home/alice/x"),
        ("ENV", "/home/alice/x"),
        ("IFS", "/"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "../../home/alice/locale"),
        ("LD_LIBRARY_PATH", "/home/alice"),
        ("LD_PRELOAD", "/home/alice/x.so"),
        ("PATH", "/home/alice/bin"),
        ("PYTHONPATH", "/home/alice"),
        ("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22"),
        ("TMPDIR", "/home/alice/tmp"),
    )
    decision = decide(make_request("scp -t x", environment=hostile), make_policy())
    assert isinstance(decision, Allow)
    assert dict(decision.env) == {
        "HOME": HOME,
        "LANG": "C.UTF-8",
        "LOGNAME": "alice",
        "PATH": requests.FIXED_PATH,
        "SSH_CONNECTION": "192.0.2.1 50000 192.0.2.2 22",
        "USER": "alice",
    }


@pytest.mark.skipif("rsync" not in programs.PROGRAMS, reason="rsync not registered")
def test_rsync_child_home_is_not_the_users() -> None:
    decision = allowed("rsync --server -logDtpre.iLsfxCIvu . /in")
    env = dict(decision.env)
    assert env["HOME"] != HOME
    assert env["HOME"] == "/"
    assert decision.cwd == HOME


# --- the PuTTY / WinSCP sftp-server probe -----------------------------------------------------


PROBE = (
    "test -x /usr/lib/sftp-server && exec /usr/lib/sftp-server\n"
    "test -x /usr/local/lib/sftp-server && exec /usr/local/lib/sftp-server\n"
    "exec sftp-server"
)


@pytest.mark.skipif(
    not getattr(decide_module, "LEGACY_SFTP_PROBES", None), reason="no legacy probe support"
)
def test_exact_putty_probe_runs_the_configured_sftp_server() -> None:
    decision = allowed(PROBE)
    assert decision.program == "sftp"
    assert decision.argv == ("/usr/lib/openssh/sftp-server", "-u", "0022")
    # The probe is mapped to plain sftp-server: policy restrictions still apply.
    assert "-R" in allowed(PROBE, access="read-only").argv


@pytest.mark.parametrize(
    "variant",
    [
        PROBE + "\n",
        PROBE + "; id",
        PROBE.replace("exec sftp-server", "exec /tmp/sftp-server"),
        PROBE.replace("\n", "; "),
        PROBE.replace("/usr/lib/sftp-server", "/home/alice/sftp-server"),
        " " + PROBE,
        PROBE.upper(),
    ],
)
def test_probe_variants_are_refused(variant: str) -> None:
    refused(variant)


def test_probe_is_refused_when_sftp_is_not_enabled() -> None:
    decision = decide(make_request(PROBE), make_policy(programs=("scp",)))
    assert isinstance(decision, Refuse)


# --- purity: decide() touches no OS state -----------------------------------------------------


class _Recorder:
    active = False
    events: list[str] = []  # noqa: RUF012 - a process-wide hook's scratch list


def _hook(event: str, args: tuple) -> None:
    if _Recorder.active:
        _Recorder.events.append(event)


def test_decide_makes_no_system_calls_python_can_see() -> None:
    commands = [
        "scp -t x",
        "scp -f a b",
        "/usr/lib/openssh/sftp-server -R",
        "rsync --server -logDtpre.iLsfxCIvu . /in",
        "scp -S /tmp/x -t y",
        "id; id",
        PROBE,
    ]
    policy = make_policy(programs=ALL, start_dir="in", links=False, access="write-only")
    for command in commands:  # import every grammar module first
        decide(make_request(command), policy)
    sys.addaudithook(_hook)
    _Recorder.events.clear()
    _Recorder.active = True
    try:
        for command in commands:
            decide(make_request(command), policy)
    finally:
        _Recorder.active = False
    touching = [
        event
        for event in _Recorder.events
        if event.split(".")[0] in {"open", "os", "subprocess", "socket", "syslog", "import"}
        or event in {"exec", "compile", "ctypes.dlopen"}
    ]
    assert touching == []


def test_decide_is_deterministic() -> None:
    policy = make_policy(programs=ALL)
    for command in ("scp -t x", "scp -S x -t y", "/usr/lib/openssh/sftp-server -l debug"):
        assert decide(make_request(command), policy) == decide(make_request(command), policy)
