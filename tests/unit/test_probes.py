"""Legacy sftp-server probes: the one exact form real clients still send, and nothing near it.

When the server offers no sftp subsystem, PuTTY's psftp (psftp.c,
psftp_connect), WinSCP in SFTP-only mode (source/core/SecureShell.cpp) and
phpseclib fall back to an exec request with this exact string (three lines).
It is read here from the installed psftp binary (Debian `putty-tools`) when
available, so a client that changes it makes the test fail.

gFTP before 2.0.17 (2004) sent `echo -n xsftp ; <dir>/sftp-server` and waited
for "xsftp" on stdout; answering it would mean writing to stdout before the
exec, so it stays refused (gFTP has used the `-s sftp` subsystem since 2004).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scponly_py.decide import LEGACY_SFTP_PROBES, decide
from scponly_py.outcome import Allow, Refuse
from scponly_py.policy import Policy
from tests.support import make_policy, make_request

PROBE = (
    "test -x /usr/lib/sftp-server && exec /usr/lib/sftp-server\n"
    "test -x /usr/local/lib/sftp-server && exec /usr/local/lib/sftp-server\n"
    "exec sftp-server"
)
SFTP = "/usr/lib/openssh/sftp-server"


def policy(programs=("sftp", "scp"), access: str = "read-write", sftp: str = SFTP) -> Policy:
    return make_policy(programs=programs, access=access, paths={"sftp": sftp})


def test_table_is_tiny_and_exact() -> None:
    assert frozenset({PROBE}) == LEGACY_SFTP_PROBES


def test_psftp_binary_sends_exactly_this_probe() -> None:
    binary = Path("/usr/bin/psftp")
    if not binary.exists():
        pytest.skip("putty-tools not installed")
    assert PROBE.encode() in binary.read_bytes()


def test_probe_runs_the_configured_sftp_server() -> None:
    decision = decide(make_request(PROBE), policy())
    assert isinstance(decision, Allow), decision
    assert decision.program == "sftp"
    assert decision.path == SFTP
    assert decision.argv == (SFTP, "-u", "0022")


def test_probe_uses_the_configured_path_not_the_probed_ones() -> None:
    decision = decide(make_request(PROBE), policy(sftp="/usr/libexec/openssh/sftp-server"))
    assert isinstance(decision, Allow)
    assert decision.path == "/usr/libexec/openssh/sftp-server"
    assert "/usr/lib/sftp-server" not in decision.argv
    assert "/usr/local/lib/sftp-server" not in decision.argv


def test_probe_gets_the_same_policy_as_plain_sftp() -> None:
    plain = decide(make_request("sftp-server"), policy(access="read-only"))
    probed = decide(make_request(PROBE), policy(access="read-only"))
    assert isinstance(probed, Allow)
    assert probed == plain
    assert "-R" in probed.argv


def test_probe_refused_when_sftp_is_not_enabled() -> None:
    decision = decide(make_request(PROBE), policy(programs=("scp",)))
    assert isinstance(decision, Refuse)
    assert decision.reason == "sftp is not enabled for this account"


NEAR_MISSES = [
    PROBE + "\n",
    PROBE + " ",
    " " + PROBE,
    PROBE.replace("\n", " "),
    PROBE.replace("\n", "\r\n"),
    PROBE.replace("\n", ";"),
    PROBE.replace("\n", " ; "),
    PROBE.replace("exec sftp-server", "exec /bin/sh"),
    PROBE.replace("/usr/lib/sftp-server", "/home/alice/sftp-server"),
    PROBE.replace("/usr/lib/sftp-server", "./sftp-server"),
    PROBE + "\nexec /bin/sh",
    PROBE.split("\n", 1)[0],
    "test -x /usr/lib/sftp-server && exec /usr/lib/sftp-server",
    "exec sftp-server",
    "exec /usr/lib/openssh/sftp-server",
    "test -x /usr/lib/sftp-server",
    # gFTP < 2.0.17 (2003/2004): needs "xsftp" on stdout before the exec.
    "echo -n xsftp ; sftp-server",
    "echo -n xsftp ;  sftp-server",
    "echo -n xsftp ; /usr/lib/sftp-server",
    "echo -n xsftp ; /usr/lib/openssh/sftp-server",
    "sftp-server && sh",
    "sftp-server ; sh",
    "sftp-server\nsh",
    PROBE.upper(),
]


@pytest.mark.parametrize("command", NEAR_MISSES)
def test_anything_but_the_exact_probe_is_refused(command: str) -> None:
    assert isinstance(decide(make_request(command), policy()), Refuse), repr(command)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(PROBE)),
    st.integers(min_value=0, max_value=3),
    st.text(alphabet=" \n\t;&|$`x/-", max_size=3),
)
def test_property_every_edit_of_the_probe_is_refused(
    position: int, delete: int, insert: str
) -> None:
    edited = PROBE[:position] + insert + PROBE[position + delete :]
    decision = decide(make_request(edited), policy())
    if edited == PROBE:
        assert isinstance(decision, Allow)
    elif isinstance(decision, Allow):
        # Only a plain sftp-server command may be allowed, never the probe's shell syntax.
        assert "&&" not in edited and "\n" not in edited
        assert decision.path == SFTP
