"""A stand-in for `ssh` that runs the remote command through scponly-py's `decide()`.

Real clients (unison `-sshcmd`, svn `SVN_SSH`) start it the way they would
start ssh. It parses ssh's own options, joins the remaining words with spaces
exactly as OpenSSH does to form the command string the login shell would get,
records that string, asks `decide()` what to do for a test user, and execs the
decided argv with the decided environment, working directory and umask — the
same steps as the login shell after the Request is built, without sshd.

Configuration comes from the environment (set by the test):
FAKE_SSH_POLICY (JSON: programs, access, links, svn_root, svn_tunnel_user),
FAKE_SSH_HOME (the test user's home), FAKE_SSH_LOG (where commands are recorded).
It imports `tests.support`, so the repository root must be on sys.path: the
`write_wrapper` script puts it there.
"""

from __future__ import annotations

import json
import os
import sys

from scponly_py.decide import decide
from tests.support import make_policy, make_request

# ssh options that take a value (OpenSSH 9.2 getopt string).
VALUE_OPTIONS = frozenset("BbcDEeFIiJLlmOoPpQRSWw")


def command_from_ssh_arguments(arguments: list[str]) -> str:
    """The remote command string OpenSSH would send for these ssh arguments.

    OpenSSH keeps parsing options after the host (`host -e none cmd` is valid,
    and unison sends exactly that); the first non-option word after the host
    starts the command, whose words are joined with single spaces.
    """
    host = None
    index = 0
    while index < len(arguments):
        word = arguments[index]
        if word == "--":
            index += 1
            if host is None:
                host = arguments[index]
                index += 1
            break
        if not word.startswith("-") or word == "-":
            if host is not None:
                break
            host = word
            index += 1
            continue
        index += 1 if len(word) > 2 or word[1] not in VALUE_OPTIONS else 2
    return " ".join(arguments[index:])


def write_wrapper(directory: str, repository: str) -> str:
    """An executable `ssh` stand-in in `directory` (clients want one program path)."""
    path = os.path.join(directory, "fake-ssh")
    with open(path, "w", encoding="utf-8") as script:
        script.write(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {repository!r})\n"
            "from tests.unit.fake_ssh import main\n"
            "sys.exit(main())\n"
        )
    os.chmod(path, 0o700)
    return path


def main() -> int:
    settings = json.loads(os.environ["FAKE_SSH_POLICY"])
    home = os.environ["FAKE_SSH_HOME"]
    command = command_from_ssh_arguments(sys.argv[1:])
    with open(os.environ["FAKE_SSH_LOG"], "a", encoding="utf-8") as log:
        log.write(command + "\n")
    policy = make_policy(
        access=settings.get("access", "read-write"),
        links=settings.get("links", True),
        programs=settings["programs"],
        svn_root=settings.get("svn_root", ""),
        svn_tunnel_user=settings.get("svn_tunnel_user", False),
    )
    # uid 1000 whoever runs the test: decide() refuses uid 0 and the tests may run as root.
    request = make_request(command, home=home)
    decision = decide(request, policy)
    if not decision.allowed:
        sys.stderr.write(f"scponly-py: refused: {decision.reason}\n")
        return 1
    os.umask(decision.umask)
    os.chdir(decision.cwd)
    os.execve(decision.path, list(decision.argv), dict(decision.env))
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
