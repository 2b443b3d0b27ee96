"""OpenSSH's sftp-server, as sshd runs it for `Subsystem sftp /usr/lib/openssh/sftp-server`.

Facts (OpenSSH 9.2 sftp-server.c): getopt string `d:f:l:P:p:Q:u:cehR`.
`-d` is tilde- and %-expanded, `-c` makes it ignore every further argument,
`-Q`/`-h` print and exit, `-p`/`-P` are comma lists matched with `match_list`
(wildcards and `!negation` included) and a second `-P` is fatal.

The exec'd argv comes from the policy: `-R` for read-only, a `-P` deny list for
write-only and for `links = false`, `-u` from umask, `-d` from start_dir.
What the client (or the administrator's Subsystem line) adds is accepted only
if it parses and only if it can narrow, never widen, what the policy allows:
`-R`, `-p`, `-P` (plain request names only, so `!name` cannot cancel our deny
list) and logging options are kept; `-d` and `-u` are replaced by the policy;
`-c`, `-h`, `-Q` are refused. With `log_transfers` the policy's `-e -l LEVEL`
replaces the client's logging options: sftp-server then logs every operation
to its stderr, which the session supervisor reads (scponly_py/supervise.py).
"""

from scponly_py.outcome import Refusal
from scponly_py.words import flag, one_of, parse_options, value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "sftp"
# `sftp-server -Q requests` of OpenSSH 9.2.
REQUEST_NAMES = frozenset(
    {
        "open", "close", "read", "write", "lstat", "fstat", "setstat", "fsetstat",
        "opendir", "readdir", "remove", "mkdir", "rmdir", "realpath", "stat", "rename",
        "readlink", "symlink", "posix-rename", "statvfs", "fstatvfs", "hardlink", "fsync",
        "lsetstat", "limits", "expand-path", "copy-data", "home-directory",
        "users-groups-by-id",
    }
)  # fmt: skip
# A write-only (drop box) account may create and write, but not read or list.
WRITE_ONLY_DENIED = ("copy-data", "opendir", "read", "readdir", "readlink")
LINK_REQUESTS = ("hardlink", "symlink")
LOG_LEVELS = frozenset(
    {"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"}
)
LOG_FACILITIES = frozenset(
    {"DAEMON", "USER", "AUTH", "AUTHPRIV"} | {f"LOCAL{number}" for number in range(8)}
)


def _request_list(raw: str) -> str:
    names = raw.split(",")
    bad = [name for name in names if name not in REQUEST_NAMES]
    if bad:
        raise Refusal(f"sftp-server request list names unknown request {bad[0]!r}")
    return ",".join(names)


def _any_umask(raw: str) -> str:
    if not 1 <= len(raw) <= 4 or not all("0" <= char <= "7" for char in raw):
        raise Refusal(f"sftp-server umask {raw!r} is not octal")
    return raw


def _any_directory(raw: str) -> str:
    if not raw:
        raise Refusal("sftp-server -d needs a directory")
    return raw


ALLOWED = {
    "R": flag(),
    "e": flag(),
    "l": value(one_of(LOG_LEVELS, "sftp-server log level")),
    "f": value(one_of(LOG_FACILITIES, "sftp-server log facility")),
    "p": value(_request_list),
    "P": value(_request_list),
    "u": value(_any_umask),  # replaced by the policy's umask
    "d": value(_any_directory),  # replaced by the policy's start_dir
}
REFUSED = {
    "c": "it makes sftp-server ignore its other arguments",
    "h": "it does not start a session",
    "Q": "it does not start a session",
}


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate an sftp-server command; return the argv (after argv[0]) built from policy."""
    options, operands = parse_options("sftp-server", words[1:], ALLOWED, REFUSED)
    if operands:
        raise Refusal("sftp-server takes no operands")
    given: dict[str, str | None] = {}
    for letter, argument in options:
        if letter in "pP" and letter in given:
            raise Refusal(f"sftp-server option -{letter} given twice")
        given[letter] = argument

    argv: list[str] = []
    if policy.log_transfers:
        argv += ["-e", "-l", policy.transfer_log_level]
    else:
        for letter in ("l", "f"):
            if letter in given:
                argv += [f"-{letter}", given[letter]]  # type: ignore[list-item]
        if "e" in given:
            argv.append("-e")
    if policy.access == "read-only" or "R" in given:
        argv.append("-R")
    denied = set(_split(given.get("P")))
    if policy.access == "write-only":
        denied.update(WRITE_ONLY_DENIED)
    if not policy.links:
        denied.update(LINK_REQUESTS)
    if denied:
        argv += ["-P", ",".join(sorted(denied))]
    if "p" in given:
        argv += ["-p", given["p"]]  # type: ignore[list-item]
    argv += ["-u", f"{policy.umask:04o}"]
    if policy.start_dir:
        start = f"{request.home.rstrip('/')}/{policy.start_dir}"
        # sftp-server %-expands -d; a literal % in a home must be doubled.
        argv += ["-d", start.replace("%", "%%")]
    return argv


def _split(value: str | None) -> list[str]:
    return value.split(",") if value else []
