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


# Where clients name most programs (besides the bare name).
BIN_DIRECTORIES = ("/usr/bin", "/usr/local/bin", "/bin")


def _installed(name: str, *directories: str) -> "frozenset[str]":
    """`name` bare and in each of `directories`."""
    return frozenset({name, *(f"{directory}/{name}" for directory in directories)})


def _program(
    name: str,
    role: str,
    *,
    module: str = "",
    words: "frozenset[str] | None" = None,
    paths: dict[str, str] | None = None,
    distros: "dict[str, dict[str, str]] | None" = None,
    home: str = "",
    default: bool = False,
) -> "tuple[str, Program]":
    """(name, record). Left out: the grammar programs/NAME.py, NAME bare or in
    BIN_DIRECTORIES, [paths] NAME = /usr/bin/NAME, no distro paths, the account's HOME, off."""
    return name, {
        "module": module or f"scponly_py.programs.{name}",
        "words": _installed(name, *BIN_DIRECTORIES) if words is None else words,
        "paths": paths or {name: f"/usr/bin/{name}"},
        "distros": distros or {},
        "home": home,
        "default": default,
        "role": role,
    }


PROGRAMS: "dict[str, Program]" = dict(
    (
        # sshd sends the Subsystem path (the client cannot choose it); a client may also
        # send any distribution's path or the bare name.
        _program(
            "sftp",
            "OpenSSH's sftp-server",
            words=_installed(
                "sftp-server",
                "/usr/lib/openssh",  # Debian, Ubuntu
                "/usr/lib/ssh",  # Arch
                "/usr/libexec/openssh",  # Fedora, RHEL, SUSE
                "/usr/libexec",  # OpenBSD, Alpine
                "/usr/lib",
                "/usr/local/libexec",
            ),
            paths={"sftp": "/usr/lib/openssh/sftp-server"},
            distros={
                "arch": {"sftp": "/usr/lib/ssh/sftp-server"},
                "rpm": {"sftp": "/usr/libexec/openssh/sftp-server"},
            },
            default=True,
        ),
        # OpenSSH's scp sends the bare name.
        _program("scp", "OpenSSH's scp in server mode", default=True),
        # The bare name unless the client passes --rsync-path. HOME is root-owned: popt reads
        # `$HOME/.popt` before rsync knows it is a server, and a user-written one makes it
        # exec any program (programs/rsync.py).
        _program("rsync", "rsync --server", home="/"),
        # The bare name; `-servercmd PATH` sends PATH, `-addversionno` unison-X.Y.
        _program(
            "unison",
            "unison -server",
            words=_installed("unison", *BIN_DIRECTORIES)
            | {"unison-2.51", "unison-2.52", "unison-2.53"}
            | {"/usr/bin/unison-2.52", "/usr/bin/unison-2.53"},
        ),
        # svn+ssh:// sends the bare name (`svnserve -t`).
        _program("svnserve", "svnserve -t"),
        # No command names it: it answers an interactive login. /bin/NAME exists on
        # merged-/usr and classic layouts.
        _program(
            "winscp",
            "WinSCP's SCP mode",
            module="scponly_py.winscp",
            words=frozenset(),
            paths={tool: f"/bin/{tool}" for tool in WINSCP_TOOLS},
        ),
        # rclone's sftp backend sends the bare names (or its md5sum_command/sha1sum_command);
        # coreutils' place.
        _program(
            "hashsum",
            "hashsum (rclone's checks)",
            words=frozenset().union(
                *(_installed(tool, "/usr/bin", "/bin") for tool in HASHSUM_TOOLS)
            ),
            paths={tool: f"/usr/bin/{tool}" for tool in HASHSUM_TOOLS},
        ),
    )
)
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
