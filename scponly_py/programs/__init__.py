"""The program table: one record per program a policy can enable, and lookups in it.

Everything that names programs derives from `PROGRAMS`: policy validation
(`programs`, the [paths] keys and their built-in paths), `decide()` (argv[0]
words, executable, child HOME), the chroot shell's preload, `create --profile`
(the files a jail needs), the frozen build's hidden imports, the man pages,
`explain`, the test oracles and the fuzz seeds. tests/unit/test_program_table.py
fails when one of them keeps a list of its own.

A record is plain data (the login path imports this module):
  module    imported by name only when a login needs it (`grammar()`): the grammar
            (`check(words, policy, request) -> argv after argv[0]`), or winscp's protocol
  words     what a client may send as argv[0]; empty: no command names it (winscp runs
            for an interactive login)
  paths     the [paths] keys it runs -> built-in path (Debian's); the files its jail needs
  distros   per packaged distribution, the built-in paths that differ from Debian's
  home      the child's HOME: "" for the account's own, else this fixed path
  default   enabled by the built-in `programs`
  role      what it is, for the man pages
The program exec'd is always the policy's absolute path, never the client's word.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import TypedDict

    class Program(TypedDict):
        module: str
        words: frozenset[str]
        paths: dict[str, str]
        distros: dict[str, dict[str, str]]
        home: str
        default: bool
        role: str


WINSCP_TOOLS = ("ls", "chmod", "mkdir", "rm", "mv", "ln", "cp")
HASHSUM_TOOLS = ("md5sum", "sha1sum", "sha256sum")

PROGRAMS: "dict[str, Program]" = {
    "sftp": {
        "module": "scponly_py.programs.sftp",
        # sshd sends the Subsystem path (the client cannot choose it); a client
        # may also send any distribution's path or the bare name.
        "words": frozenset(
            {
                "sftp-server",
                "/usr/lib/openssh/sftp-server",  # Debian, Ubuntu
                "/usr/lib/ssh/sftp-server",  # Arch
                "/usr/libexec/openssh/sftp-server",  # Fedora, RHEL, SUSE
                "/usr/libexec/sftp-server",  # OpenBSD, Alpine
                "/usr/lib/sftp-server",
                "/usr/local/libexec/sftp-server",
            }
        ),
        "paths": {"sftp": "/usr/lib/openssh/sftp-server"},
        "distros": {
            "arch": {"sftp": "/usr/lib/ssh/sftp-server"},
            "rpm": {"sftp": "/usr/libexec/openssh/sftp-server"},
        },
        "home": "",
        "default": True,
        "role": "OpenSSH's sftp-server",
    },
    "scp": {
        "module": "scponly_py.programs.scp",
        # OpenSSH's scp sends the bare name.
        "words": frozenset({"scp", "/usr/bin/scp", "/usr/local/bin/scp", "/bin/scp"}),
        "paths": {"scp": "/usr/bin/scp"},
        "distros": {},
        "home": "",
        "default": True,
        "role": "OpenSSH's scp in server mode",
    },
    "rsync": {
        "module": "scponly_py.programs.rsync",
        # The bare name unless the client passes --rsync-path.
        "words": frozenset({"rsync", "/usr/bin/rsync", "/bin/rsync", "/usr/local/bin/rsync"}),
        "paths": {"rsync": "/usr/bin/rsync"},
        "distros": {},
        # Root-owned: popt reads `$HOME/.popt` before rsync knows it is a server,
        # and a user-written one makes it exec any program (programs/rsync.py).
        "home": "/",
        "default": False,
        "role": "rsync --server",
    },
    "unison": {
        "module": "scponly_py.programs.unison",
        # The bare name; `-servercmd PATH` sends PATH, `-addversionno` unison-X.Y.
        "words": frozenset(
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
        "paths": {"unison": "/usr/bin/unison"},
        "distros": {},
        "home": "",
        "default": False,
        "role": "unison -server",
    },
    "svnserve": {
        "module": "scponly_py.programs.svnserve",
        # svn+ssh:// sends the bare name (`svnserve -t`).
        "words": frozenset(
            {"svnserve", "/usr/bin/svnserve", "/usr/local/bin/svnserve", "/bin/svnserve"}
        ),
        "paths": {"svnserve": "/usr/bin/svnserve"},
        "distros": {},
        "home": "",
        "default": False,
        "role": "svnserve -t",
    },
    "winscp": {
        "module": "scponly_py.winscp",
        "words": frozenset(),
        # /bin/NAME exists on merged-/usr and classic layouts.
        "paths": {tool: f"/bin/{tool}" for tool in WINSCP_TOOLS},
        "distros": {},
        "home": "",
        "default": False,
        "role": "WinSCP's SCP mode",
    },
    "hashsum": {
        "module": "scponly_py.programs.hashsum",
        # rclone's sftp backend sends the bare names (or its md5sum_command/sha1sum_command).
        "words": frozenset(
            directory + tool for tool in HASHSUM_TOOLS for directory in ("", "/usr/bin/", "/bin/")
        ),
        "paths": {tool: f"/usr/bin/{tool}" for tool in HASHSUM_TOOLS},  # coreutils' place
        "distros": {},
        "home": "",
        "default": False,
        "role": "hashsum (rclone's checks)",
    },
}
# The packaged distributions (packaging/stage.py): name -> who uses that layout.
DISTROS = {"debian": "Debian and Ubuntu", "arch": "Arch Linux", "rpm": "Fedora, RHEL and SUSE"}


def default_paths(distro: str = "debian") -> dict[str, str]:
    """Every [paths] key -> its built-in path on `distro` (one of DISTROS)."""
    paths: dict[str, str] = {}
    for record in PROGRAMS.values():
        paths.update(record["paths"])
        paths.update(record["distros"].get(distro, {}))
    return paths


def identify(first_word: str, configured_paths: tuple[tuple[str, str], ...]) -> str | None:
    """The policy name of the program a command's first word names, or None."""
    for name, record in PROGRAMS.items():
        if first_word in record["words"]:
            return name
    for name, path in configured_paths:
        if first_word == path and name in PROGRAMS:
            return name
    return None


def executable(name: str, command_words: list[str]) -> str:
    """The [paths] key program `name` runs for `command_words`.

    A program with several (hashsum) runs the one its first word names; the
    grammar refuses a word that names none of them.
    """
    paths = PROGRAMS[name]["paths"]
    if len(paths) == 1:
        return next(iter(paths))
    return command_words[0].rsplit("/", 1)[-1]


def child_home(name: str, home: str) -> str:
    """The HOME program `name` gets, for an account whose home is `home`."""
    return PROGRAMS[name]["home"] or home


def grammar(name: str) -> "ModuleType":
    """The module of program `name`: its grammar, or winscp's protocol (imported on first use)."""
    module_name = PROGRAMS[name]["module"]
    __import__(module_name)
    return sys.modules[module_name]
