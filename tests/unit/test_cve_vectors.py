"""Every restricted-shell CVE named in issue 3, as a refused case, with every program enabled.

What each one was (NVD / distribution advisories / the tools' changelogs):

- scponly CVE-2004-1162 (fixed in 4.0): scp, sftp-server, unison and rsync
  accept "ssh drop-in" options that run a program: unison `-rshcmd`/`-sshcmd`
  (and `-rsh`), rsync `-e`/`--rsh`, scp `-S`.
- scponly CVE-2005-4533 (4.1 and earlier, fixed in 4.2): scp arguments were
  compared literally, so getopt forms slipped through: `-S` inside a cluster
  (`-vS/tmp/x`), attached values (`-S/tmp/x`), `-oProxyCommand=…`.
- scponly CVE-2007-6350 (4.6 and earlier; DSA-1473, Joachim Breitner): svn,
  svnserve, rsync and unison run subcommands: an svn repository the user
  created with a hook, `svn --config-option …:editor-cmd=X`, rsync `-e`,
  unison `-rshcmd`/`-sshcmd`/`-servercmd`. (CVE-2007-6415, same advisory: scp
  `-F` and `-o`.)
- rssh CVE-2012-2252 (2.3.3 and earlier): incomplete blocklist; rsync
  `--rsh=X` ran X. (CVE-2012-2251, same fix round: rsync `-e X` variants.)
- rssh CVE-2019-3463 (2.3.4; DSA-4382, Nick Cleaton): insufficient
  sanitisation of rsync *arguments*: anything that makes the "server" act as
  a client or daemon and run a program (`-e`/`--rsh` in forms the blocklist
  missed, `--rsync-path`, `--daemon --config=FILE`, option abbreviations).
- rssh CVE-2019-3464 (2.3.4; DSA-4382): insufficient sanitisation of the
  *environment* passed to rsync: rsync's popt reads `$HOME/.popt`, where an
  uploaded alias (`rsync alias --server --rsh=X`) brings `--rsh` back.

scponly 4.8 (issue 3) additionally still let `unison -sshcmd X` (two words),
`unison -sshargs=-oProxyCommand=X` and `svn --config-option=…:editor-cmd=X`
through, and ran a relative `cd` in WinSCP mode (an uploaded `./cd` ran).
"""

from __future__ import annotations

import pytest

from scponly_py import winscp
from scponly_py.decide import decide
from scponly_py.decision import Allow, Refuse
from scponly_py.policy import BUILTIN_PATHS, PROGRAMS, Policy
from scponly_py.programs import rsync
from scponly_py.request import Request
from tests.support import make_policy, make_request

HOME = "/home/alice"
HOSTILE_ENVIRONMENT = (("LD_PRELOAD", "/home/alice/evil.so"), ("LANG", "C.UTF-8"))


def policy() -> Policy:
    # everything enabled: the grammar alone must refuse
    return make_policy(programs=PROGRAMS, svn_root="/srv/svn")


def request(command: str | None) -> Request:
    return make_request(command, environment=HOSTILE_ENVIRONMENT)


VECTORS = {
    "CVE-2004-1162": [
        "unison -rshcmd /tmp/x a rsh://h//x",
        "unison -sshcmd /tmp/x a ssh://h//x",
        "unison -rsh /tmp/x a ssh://h//x",
        "rsync --server -e /tmp/x . /x",
        "rsync -e /tmp/x --server . /x",
        "rsync --server --rsh=/tmp/x . /x",
        "scp -S /tmp/x -t /x",
        "scp -S /tmp/x host:y /x",
    ],
    "CVE-2005-4533": [
        "scp -vS/tmp/x -t /x",
        "scp -S/tmp/x -t /x",
        "scp -tS /tmp/x /x",
        "scp -pqrS /tmp/x -f /x",
        "scp -oProxyCommand=/tmp/x -t /x",
        "scp -o ProxyCommand=/tmp/x -t /x",
        "scp -vo ProxyCommand=/tmp/x -f /x",
    ],
    "CVE-2007-6350": [
        "svn --config-option=config:helpers:editor-cmd=/tmp/x commit",
        "svn --config-option config:helpers:editor-cmd=/tmp/x ci",
        "svn checkout file:///home/alice/myrepo",
        "svnadmin create /home/alice/myrepo",
        "svnserve -t -r /home/alice",
        "svnserve -t --root=/home/alice",
        "svnserve -t --config-file=/home/alice/svnserve.conf",
        "svnserve -d --listen-port 4000",
        "rsync --server -e sh . /x",
        "unison -servercmd /tmp/x a ssh://h//x",
        "unison default",
    ],
    "CVE-2007-6415": [
        "scp -F /home/alice/ssh_config -t /x",
        "scp -F/home/alice/ssh_config -f /x",
        "scp -o ProxyCommand=/tmp/x host:y /x",
    ],
    "CVE-2012-2252": [
        "rsync --server --rsh=/tmp/x . /x",
        "rsync --server --rsh /tmp/x . /x",
        "rsync --server -vlogDtpre.iLsfxCIvu --rsh=/tmp/x . /x",
    ],
    "CVE-2012-2251": [
        "rsync --server -e /tmp/x . /x",
        "rsync --server -vlogDtpre.iLsfxCIvu -e /tmp/x . /x",
        "rsync --server -vlogDtpr -e/tmp/x . /x",
        "rsync --server -vlogDtpre.iLsfxCIvu . /x -e /tmp/x",
    ],
    "CVE-2019-3463": [
        "rsync --server --rs=/tmp/x . /x",
        "rsync --server --rsync-path=/tmp/x . /x",
        "rsync --server --daemon --config=/home/alice/rsyncd.conf .",
        "rsync --daemon --config=/home/alice/rsyncd.conf",
        "rsync --server --config=/home/alice/rsyncd.conf . /x",
        "rsync --server -M--rsh=/tmp/x . /x",
        "rsync --server --remote-option=--rsh=/tmp/x . /x",
        "rsync --server --protect-args . /x",
        "rsync --server -s . /x",
        "rsync /home/alice/a evil:/b",
    ],
    "scponly-4.8": [
        "unison -sshcmd X a ssh://evil//x",
        "unison -sshargs=-oProxyCommand=X a ssh://evil//x",
        "svn --config-option=config:helpers:editor-cmd=X commit",
        "./cd",
        "cd /tmp",
    ],
}


@pytest.mark.parametrize(
    ("cve", "command"),
    [(cve, command) for cve, commands in VECTORS.items() for command in commands],
)
def test_vector_is_refused(cve: str, command: str) -> None:
    decision = decide(request(command), policy())
    assert isinstance(decision, Refuse), f"{cve}: {command!r} -> {decision}"


def test_operand_that_looks_like_an_option_stays_an_operand() -> None:
    decision = decide(request("scp -t -- -S/tmp/x"), policy())
    # scp -t takes one target; the rebuilt argv keeps it after "--".
    assert isinstance(decision, Allow)
    assert decision.argv[-2:] == ("--", "-S/tmp/x")


def test_cve_2019_3464_rsync_never_gets_the_users_home() -> None:
    decision = decide(request("rsync --server -vlogDtpre.iLsfxCIvu . /x"), policy())
    assert isinstance(decision, Allow)
    environment = dict(decision.env)
    assert environment["HOME"] != HOME  # so popt never reads an uploaded ~/.popt
    assert rsync.child_home(request(None)) == environment["HOME"]
    assert "LD_PRELOAD" not in environment


def test_no_child_ever_gets_the_clients_loader_variables() -> None:
    svn_only = make_policy(programs=("svnserve",), svn_root="/srv/svn")
    for command, policy_ in (
        ("scp -t /x", policy()), ("sftp-server", policy()), ("unison -server", policy()),
        ("svnserve -t", svn_only),
    ):  # fmt: skip
        decision = decide(request(command), policy_)
        assert isinstance(decision, Allow), command
        assert "LD_PRELOAD" not in dict(decision.env)


def test_scponly_relative_cd_in_winscp_mode_never_runs() -> None:
    session = winscp.Session(request(None), policy(), lambda path: True)
    end = ' ; echo "WinSCP: this is end-of-file:$status"'
    for line in ("./cd x", "cd x", "cd", "./cd", "cd ; ./cd", "/home/alice/cd"):
        for action in session.handle(line + end):
            if action[0] == winscp.RUN:
                assert action[1].path in BUILTIN_PATHS.values()
                assert "cd" not in action[1].path.rsplit("/", 1)[-1]
