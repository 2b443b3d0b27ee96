"""The programs a user may run: which words name them, and which module checks them.

Each grammar module is a data table plus `check(words, policy, request) -> argv`
(everything after argv[0]); it is imported only when a command names that
program and the policy enables it, so a login pays for one grammar, not all.
The program actually exec'd is always the policy's absolute path, never the
client's word.
"""

import sys

from scponly_py.policy import HASHSUM_TOOLS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

# policy name -> (grammar module, words a client may send as argv[0])
PROGRAMS: dict[str, tuple[str, frozenset[str]]] = {
    "sftp": (
        "scponly_py.programs.sftp",
        # sshd sends the Subsystem path (the client cannot choose it); a client
        # may also send any distribution's path or the bare name.
        frozenset(
            {
                "sftp-server",
                "/usr/lib/openssh/sftp-server",  # Debian, Ubuntu
                "/usr/lib/ssh/sftp-server",  # Arch
                "/usr/libexec/openssh/sftp-server",  # Fedora, RHEL
                "/usr/libexec/sftp-server",  # OpenBSD, Alpine
                "/usr/lib/sftp-server",
                "/usr/local/libexec/sftp-server",
            }
        ),
    ),
    # OpenSSH's scp sends the bare name.
    "scp": (
        "scponly_py.programs.scp",
        frozenset({"scp", "/usr/bin/scp", "/usr/local/bin/scp", "/bin/scp"}),
    ),
    # The bare name unless the client passes --rsync-path.
    "rsync": (
        "scponly_py.programs.rsync",
        frozenset({"rsync", "/usr/bin/rsync", "/bin/rsync", "/usr/local/bin/rsync"}),
    ),
    # The bare name; `-servercmd PATH` sends PATH, `-addversionno` unison-X.Y.
    "unison": (
        "scponly_py.programs.unison",
        frozenset(
            {
                "unison",
                "/usr/bin/unison",
                "/usr/local/bin/unison",
                "/bin/unison",
                "unison-2.51",
                "unison-2.52",
                "unison-2.53",
                "/usr/bin/unison-2.52",
                "/usr/bin/unison-2.53",
            }
        ),
    ),
    # svn+ssh:// sends the bare name (`svnserve -t`).
    "svnserve": (
        "scponly_py.programs.svnserve",
        frozenset({"svnserve", "/usr/bin/svnserve", "/usr/local/bin/svnserve", "/bin/svnserve"}),
    ),
    # rclone's sftp backend sends the bare names (or its md5sum_command/sha1sum_command).
    "hashsum": (
        "scponly_py.programs.hashsum",
        frozenset(
            f"{directory}{tool}"
            for tool in HASHSUM_TOOLS
            for directory in ("", "/usr/bin/", "/bin/")
        ),
    ),
}


def identify(first_word: str, configured_paths: tuple[tuple[str, str], ...]) -> str | None:
    """The policy name of the program a command's first word names, or None."""
    for name, (_, command_names) in PROGRAMS.items():
        if first_word in command_names:
            return name
    for name, path in configured_paths:
        if first_word == path and name in PROGRAMS:
            return name
    return None


def grammar(name: str) -> "ModuleType":
    """The grammar module of program `name` (imported on first use)."""
    module_name = PROGRAMS[name][0]
    __import__(module_name)
    return sys.modules[module_name]
