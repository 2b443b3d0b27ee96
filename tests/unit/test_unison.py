"""unison: only the exact server forms the real client sends; every client form refused.

Recorded from unison 2.52.1 (Debian 12 `unison` 2.52+1) with
`unison -batch -sshcmd RECORDER a ssh://user@host//dir`; RECORDER got
`-l user host -e none unison -server __new-rpc-mode`, so the login shell gets
`unison -server __new-rpc-mode` (ssh joins the words with spaces). With
`-addversionno` the first word is `unison-2.52`, with `-servercmd P` it is P.
`-sshargs` stays on the client. The `live` tests re-record with the installed
client and run a real sync through `decide()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scponly_py.outcome import Allow
from scponly_py.policy import BUILTIN_PATHS
from tests import support
from tests.support import decision_for
from tests.unit import fake_ssh

UNISON = BUILTIN_PATHS["unison"]
REPOSITORY = str(Path(__file__).resolve().parents[2])


# decide() with unison alone enabled (other policy fields as keywords).
run = partial(decision_for, programs=("unison",))
refusal = partial(support.refusal, programs=("unison",))


# (client command line, what the server receives)
RECORDED = [
    ("unison -batch a ssh://user@host//dir", "unison -server __new-rpc-mode"),
    ("unison -batch -addversionno a ssh://user@host//dir", "unison-2.52 -server __new-rpc-mode"),
    (
        "unison -batch -servercmd /usr/bin/unison a ssh://user@host//dir",
        "/usr/bin/unison -server __new-rpc-mode",
    ),
    ("unison -batch -sshargs -C a ssh://user@host//dir", "unison -server __new-rpc-mode"),
    ("unison -batch a ssh://host:2222//dir", "unison -server __new-rpc-mode"),
]


@pytest.mark.parametrize(("client", "server_command"), RECORDED)
def test_recorded_server_commands_are_allowed(client: str, server_command: str) -> None:
    decision = run(server_command)
    assert isinstance(decision, Allow), decision
    assert decision.path == UNISON
    assert decision.argv == (UNISON, "-server", "__new-rpc-mode")
    assert decision.program == "unison"
    assert ("HOME", "/home/alice") in decision.env


def test_pre_252_server_form_is_allowed() -> None:
    decision = run("unison -server")
    assert isinstance(decision, Allow)
    assert decision.argv == (UNISON, "-server")


REFUSED = [
    # scponly 4.8 let these through: unison as a *client* that runs X.
    "unison -sshcmd X a ssh://evil//x",
    "unison -sshcmd=X a ssh://evil//x",
    "unison -sshargs=-oProxyCommand=X a ssh://evil//x",
    "unison -sshargs -oProxyCommand=X a ssh://evil//x",
    # CVE-2004-1162: -rsh / -rshcmd / -sshcmd through unison.
    "unison -rshcmd X a rsh://evil//x",
    "unison -rsh X a ssh://evil//x",
    "unison -servercmd X a ssh://evil//x",
    # Server form with anything extra, before or after.
    "unison -server -sshcmd X",
    "unison -sshcmd X -server",
    "unison -server __new-rpc-mode -sshcmd X",
    "unison -server __new-rpc-mode extra",
    "unison -server -server",
    "unison __new-rpc-mode -server",
    "unison -server=true",
    "unison --server",
    "unison -Server",
    "unison -server  __NEW-RPC-MODE",
    "unison -copyprog X -server",
    "unison -diff X -server",
    "unison -merge X -server",
    "unison -source /tmp/x.prf -server",
    "unison -socket 4000",
    "unison -ui text a b",
    "unison a b",
    "unison default",  # runs the user's ~/.unison/default.prf as a client
    "unison",
    # Program names that are not unison.
    "unison.exe -server",
    "./unison -server",
    "/tmp/unison -server",
    "unison-9.99 -server",
]


@pytest.mark.parametrize("command", REFUSED)
def test_client_forms_and_extras_are_refused(command: str) -> None:
    assert refusal(command)


def test_sshcmd_refusal_names_the_option() -> None:
    assert "-sshcmd" in refusal("unison -sshcmd X a ssh://evil//x")
    assert "-sshargs" in refusal("unison -sshargs=-oProxyCommand=X a ssh://evil//x")


@pytest.mark.parametrize(("access", "links"), [("read-only", True), ("write-only", True)])
def test_unison_cannot_be_narrowed_so_it_is_refused(access: str, links: bool) -> None:
    assert access in refusal("unison -server __new-rpc-mode", access=access, links=links)


def test_unison_refused_when_links_are_disabled() -> None:
    assert "links" in refusal("unison -server __new-rpc-mode", links=False)


def test_unison_is_off_unless_enabled() -> None:
    reason = refusal("unison -server __new-rpc-mode", programs=("scp", "sftp"))
    assert reason == "unison is not enabled for this account"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="-_=abcdeimnoprsuvwx_ .XP/", max_size=14), max_size=4))
def test_property_only_the_two_forms_are_ever_allowed(arguments: list[str]) -> None:
    words = [word for word in arguments if word.strip(" ")]
    command = " ".join(["unison", *[f"'{word}'" for word in words]])
    decision = run(command)
    if isinstance(decision, Allow):
        assert decision.argv in ((UNISON, "-server"), (UNISON, "-server", "__new-rpc-mode"))
        assert decision.path == UNISON


# ---- live: the installed client, recorded and synchronised through decide() ----

needs_unison = pytest.mark.skipif(shutil.which("unison") is None, reason="unison not installed")


def _live_env(tmp_path: Path, **settings_) -> dict[str, str]:
    server_home = tmp_path / "server-home"
    server_home.mkdir(exist_ok=True)
    client_home = tmp_path / "client-home"
    client_home.mkdir(exist_ok=True)
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(client_home),
        "FAKE_SSH_HOME": str(server_home),
        "FAKE_SSH_LOG": str(tmp_path / "commands.log"),
        "FAKE_SSH_POLICY": json.dumps({"programs": ["unison"], **settings_}),
    }
    return environment


def _unison(tmp_path: Path, environment: dict[str, str], *arguments: str):
    ssh = fake_ssh.write_wrapper(str(tmp_path), REPOSITORY)
    return subprocess.run(
        ["unison", "-batch", "-sshcmd", ssh, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_unison
def test_live_sync_both_ways_through_decide(tmp_path: Path) -> None:
    environment = _live_env(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    (local / "up.txt").write_bytes(b"upload \x00\xff" * 1000)
    remote = tmp_path / "server-home" / "remote"
    remote.mkdir(parents=True)
    (remote / "down.txt").write_bytes(b"download" * 333)
    result = _unison(tmp_path, environment, str(local), f"ssh://alice@host//{remote}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (remote / "up.txt").read_bytes() == b"upload \x00\xff" * 1000
    assert (local / "down.txt").read_bytes() == b"download" * 333
    recorded = (tmp_path / "commands.log").read_text().splitlines()
    assert recorded == ["unison -server __new-rpc-mode"]
    # The server kept its archive in the (server) user's HOME, as decided.
    assert any((tmp_path / "server-home" / ".unison").glob("ar*"))


@needs_unison
def test_live_addversionno_and_servercmd_are_recorded_as_documented(tmp_path: Path) -> None:
    environment = _live_env(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    remote = tmp_path / "server-home" / "r"
    remote.mkdir(parents=True)
    target = f"ssh://host//{remote}"
    _unison(tmp_path, environment, "-addversionno", str(local), target)
    _unison(tmp_path, environment, "-servercmd", "/usr/bin/unison", str(local), target)
    _unison(tmp_path, environment, "-sshargs", "-oProxyCommand=x", str(local), target)
    recorded = (tmp_path / "commands.log").read_text().splitlines()
    assert recorded == [
        "unison-2.52 -server __new-rpc-mode",
        "/usr/bin/unison -server __new-rpc-mode",
        "unison -server __new-rpc-mode",
    ]
    for command in recorded:
        assert isinstance(run(command), Allow), command


@needs_unison
def test_live_read_only_account_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    environment = _live_env(tmp_path, access="read-only")
    local = tmp_path / "local"
    local.mkdir()
    (local / "f").write_text("x")
    remote = tmp_path / "server-home" / "remote"
    remote.mkdir(parents=True)
    result = _unison(tmp_path, environment, str(local), f"ssh://host//{remote}")
    assert result.returncode != 0
    assert not (remote / "f").exists()
    assert "refused" in result.stderr or "Lost connection" in result.stdout + result.stderr
    assert os.listdir(remote) == []
