"""scponly-pyc imports nothing after the chroot: `preload(policy)` loads all a login can need.

A fresh isolated interpreter imports what the chroot shell has loaded before
`enter_jail` runs, calls `preload` for a policy enabling everything, then
records every import (audit hook) while decide(), the log line and the
refusal path handle every command shape decide() accepts, the legacy sftp
probe included, and the child launch up to its execve (which installs the
set-id filter: scponly-pyc has no front). Inside the jail such an import would
fail ("internal error").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scponly_py import programs
from scponly_py.decide import LEGACY_SFTP_PROBES

REPO = Path(__file__).resolve().parents[2]
TAILS = {
    "sftp": "",
    "scp": " -t x",
    "rsync": " --server -logDtpre.iLsfxCIvu . x",
    "unison": " -server __new-rpc-mode",
    "svnserve": " -t",
    "hashsum": " /x",
}
COMMANDS = sorted(
    {word + TAILS[name] for name, record in programs.PROGRAMS.items() for word in record["words"]}
    | set(LEGACY_SFTP_PROBES)
    | {"scp -f x", "rsync --server --sender -e.LsfxCIvu . x", "id", "scp -S x -t y"}
)
CHILD = """
import json, sys
sys.path.insert(0, {repo!r})
from scponly_py import audit, chroot_shell, shell
from scponly_py.decide import decide
from scponly_py.policy import PROGRAMS
from tests.support import make_policy, make_request

policy = make_policy(programs=PROGRAMS, svn_root="/srv/svn")
chroot_shell.preload(policy)
imported = []
sys.addaudithook(lambda event, args: event == "import" and imported.append(args[0]))
for command in json.loads(sys.argv[1]):
    request = make_request(command)
    decision = decide(request, policy)
    audit.line(request, decision, 1000)
    if not decision.allowed:
        shell.refuse(request, decision, policy)
    else:
        allowed = decision


def no_exec(*arguments):
    raise OSError(1, "not in this test")


shell.posix.execve = no_exec
assert shell.launch(allowed.replace(cwd="/")).startswith("cannot run")
from scponly_py import winscp  # the interactive session's protocol, already loaded
print(json.dumps(imported))
"""


def test_nothing_is_imported_after_preload_for_any_command() -> None:
    child = CHILD.format(repo=str(REPO))
    result = subprocess.run(
        [sys.executable, "-I", "-c", child, json.dumps(COMMANDS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
