"""The oracles used by the property tests and the fuzzers catch what they claim to catch."""

from __future__ import annotations

import pytest

from scponly_py import request as requests
from scponly_py.outcome import Allow, Refuse
from tests import oracles
from tests.support import HOME, make_policy, make_request

POLICY = make_policy(programs=("scp", "sftp", "rsync", "unison", "svnserve"), svn_root="/srv/svn")
ENV = (("HOME", HOME), ("LOGNAME", "alice"), ("PATH", requests.FIXED_PATH), ("USER", "alice"))


def allow(argv: tuple[str, ...], program: str = "scp", **changes: object) -> Allow:
    fields = {
        "argv": argv,
        "cwd": HOME,
        "env": ENV,
        "path": argv[0],
        "program": program,
        "umask": 0o022,
    }
    fields.update(changes)
    return Allow(**fields)  # type: ignore[arg-type]


def fails(decision: object, command: str = "scp -t x", policy=POLICY, uid: int = 1000) -> str:
    with pytest.raises(oracles.OracleFailure) as caught:
        oracles.check(command, make_request(command, uid=uid), policy, decision)
    return str(caught.value)


GOOD_SCP = allow(("/usr/bin/scp", "-t", "--", "x"))


def test_good_decisions_pass() -> None:
    oracles.check("scp -t x", make_request("scp -t x"), POLICY, GOOD_SCP)
    oracles.check("id", make_request("id"), POLICY, Refuse(program="-", reason="no"))
    sftp = allow(("/usr/lib/openssh/sftp-server", "-u", "0022"), program="sftp")
    oracles.check("sftp-server", make_request("sftp-server"), POLICY, sftp)
    rsync = allow(
        ("/usr/bin/rsync", "--server", "-logDtpre.iLsfxCIvu", "--", ".", "/in"),
        program="rsync",
        env=(("HOME", "/"), *ENV[1:]),
    )
    oracles.check("rsync", make_request("rsync"), POLICY, rsync)
    # "-e." without capability letters is a legal blob (found by the oracle being too strict).
    bare = rsync.replace(argv=("/usr/bin/rsync", "--server", "-Le.", "--", ".", "/in"))
    oracles.check("rsync", make_request("rsync"), POLICY, bare)


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (allow(("/usr/bin/scp", "-t", "--", "x"), path="/usr/bin/scp2"), "argv[0]"),
        (allow(("scp", "-t", "--", "x")), "configured path"),
        (allow(("/tmp/scp", "-t", "--", "x")), "configured path"),
        (allow(("/usr/bin/scp", "-t", "x")), "no --"),
        (allow(("/usr/bin/scp", "--", "x")), "exactly one of -t/-f"),
        (allow(("/usr/bin/scp", "-t", "-f", "--", "x")), "exactly one of -t/-f"),
        (allow(("/usr/bin/scp", "-S", "/x", "-t", "--", "x")), "not in the table"),
        (allow(("/usr/bin/scp", "-l", "\uff12", "-t", "--", "x")), "ASCII digits"),
        (allow(("/usr/bin/scp", "-t", "--", "x"), program="bash"), "unregistered"),
        (allow(("/usr/bin/scp", "-t", "--", "x"), env=(("LD_PRELOAD", "x"), *ENV)), "allowlist"),
        (allow(("/usr/bin/scp", "-t", "--", "x"), umask=0), "umask"),
        (allow(("/usr/bin/scp", "-t", "--", "x"), cwd="tmp"), "working directory"),
        (allow(("/usr/bin/scp", "-t", "--", "\ud800")), "execve"),
        ("not a decision", "neither"),
    ],
)
def test_bad_allows_fail(decision: object, message: str) -> None:
    assert message in fails(decision)


def test_control_characters_in_an_allowed_command_fail() -> None:
    assert "control characters" in fails(GOOD_SCP, command="scp -t x\nid")


def test_root_and_interactive_allows_fail() -> None:
    assert "root" in fails(GOOD_SCP, uid=0)
    with pytest.raises(oracles.OracleFailure, match="interactive"):
        oracles.check(None, make_request(None), POLICY, GOOD_SCP)


def test_access_modes() -> None:
    read_only = make_policy(access="read-only")
    assert "read-only upload" in fails(GOOD_SCP, policy=read_only)
    sftp = allow(("/usr/lib/openssh/sftp-server", "-u", "0022"), program="sftp")
    assert "without -R" in fails(sftp, policy=read_only)
    write_only = make_policy(access="write-only")
    assert "write-only sftp can read" in fails(sftp, policy=write_only)
    assert "links" in fails(sftp, policy=make_policy(links=False))
    assert "not enable" in fails(sftp, policy=make_policy(programs=("scp",)))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("/usr/bin/rsync", "-logDtpre.iLsfxCIvu", "--", ".", "/in"), "--server first"),
        (("/usr/bin/rsync", "--server", "--rsh=sh", "--", ".", "/in"), "not safe"),
        (("/usr/bin/rsync", "--server", "-s", "--", ".", "/in"), "not safe"),
        (("/usr/bin/rsync", "--server", "-e", "sh", "--", ".", "/in"), "protocol blob"),
        (("/usr/bin/rsync", "--server", "-vr", "--sender", "--", ".", "/x"), "--sender"),
    ],
)
def test_bad_rsync_allows_fail(argv: tuple[str, ...], message: str) -> None:
    assert message in fails(allow(argv, program="rsync", env=(("HOME", "/"), *ENV[1:])))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("-re.iLsfxCIvu",), "without --whole-file"),
        (("-rce.iLsfxCIvu", "--whole-file"), "with -c"),
        (("-vre.iLsfxCIvu", "--whole-file"), "with -v"),
        (("-nye.iLsfxCIvu", "--whole-file"), "with -ny"),
        (("-re.iLsfxCIvu", "--whole-file", "--existing"), "--existing"),
        (("-re.iLsfxCIvu", "--whole-file", "--log-format=%i"), "itemizes"),
    ],
)
def test_write_only_rsync_that_could_learn_fails(options: tuple[str, ...], message: str) -> None:
    argv = ("/usr/bin/rsync", "--server", *options, "--", ".", "/in")
    decision = allow(argv, program="rsync", env=(("HOME", "/"), *ENV[1:]))
    assert message in fails(decision, policy=make_policy(access="write-only", programs=("rsync",)))
    # the blob's letters (v: varint flist flags) are not verbosity
    good = ("/usr/bin/rsync", "--server", "-re.iLsfxCIvu", "--whole-file", "--", ".", "/in")
    request = make_request("rsync")
    write_only = make_policy(access="write-only", programs=("rsync",))
    oracles.check("rsync", request, write_only, decision.replace(argv=good, path=good[0]))


def test_rsync_with_the_users_home_fails() -> None:
    argv = ("/usr/bin/rsync", "--server", "-logDtpre.iLsfxCIvu", "--", ".", "/in")
    assert "~/.popt" in fails(allow(argv, program="rsync"))


def test_bad_unison_and_svnserve_allows_fail() -> None:
    unison = allow(("/usr/bin/unison", "-server", "-sshcmd", "x"), program="unison")
    assert "server form" in fails(unison)
    svn = allow(("/usr/bin/svnserve", "-t", "--root", "/r", "-d"), program="svnserve")
    assert "not from the policy" in fails(svn)
