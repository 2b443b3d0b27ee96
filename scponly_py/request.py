"""Who asks for what, from where: the `Request`, built from the process without trusting the client.

Identity comes from `getuid()` and the passwd entry, never from USER or HOME.
The command comes from `-c CMD` when we are the login shell, and from
SSH_ORIGINAL_COMMAND only in forced-command mode (no arguments, or `-c`
naming scponly-py itself, which is how sshd runs `ForceCommand scponly-py`
through a user whose login shell is scponly-py).

Arguments and environment are taken as the bytes the kernel gave us and
decoded as UTF-8 with surrogateescape, so undecodable file names survive
unchanged whatever locale the client asked for.

The one environment allowlist is here too: `PASSED_VARIABLES`, the client
variables (locale, SSH_CONNECTION/SSH_CLIENT) a request keeps, the C front
passes (with `READ_VARIABLES`) and `child_environment` gives the exec'd program
when their values look like what they claim to be; the child's environment is
otherwise built from scratch (fixed PATH, identity from the passwd entry).
LD_*, PYTHON*, BASH_ENV, ENV, IFS, TMPDIR and everything else never pass.
"""

import grp
import posix
import pwd

from scponly_py.outcome import Record, Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

FIXED_PATH = "/usr/bin:/bin"
LOCALE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-:")
ADDRESS_CHARACTERS = frozenset("0123456789abcdefABCDEF.:")
ZONE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
DIGITS = frozenset("0123456789")
LOCALE_NAMES = (
    "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY",
    "LC_NUMERIC", "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT",
    "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
)  # fmt: skip
MAX_LOCALE_LENGTH = 64
MAX_CONNECTION_LENGTH = 160


def _sane_locale(value: str) -> bool:
    # A locale name never contains "/" (glibc would then load it as a path) or "..".
    return (
        0 < len(value) <= MAX_LOCALE_LENGTH
        and all(char in LOCALE_CHARACTERS for char in value)
        and ".." not in value
    )


def _sane_address(field: str) -> bool:
    """An IPv4/IPv6 address, optionally with an IPv6 zone ("fe80::1%eth0")."""
    address, _, zone = field.partition("%")
    return (
        bool(address)
        and all(char in ADDRESS_CHARACTERS for char in address)
        and all(char in ZONE_CHARACTERS for char in zone)
    )


def _sane_connection(value: str, fields: int) -> bool:
    """SSH_CONNECTION is "addr port addr port", SSH_CLIENT "addr port port", as sshd sets them."""
    parts = value.split(" ")
    if len(value) > MAX_CONNECTION_LENGTH or len(parts) != fields:
        return False
    addresses = parts[0::2] if fields == 4 else parts[:1]
    ports = parts[1::2] if fields == 4 else parts[1:]
    return all(_sane_address(part) for part in addresses) and all(
        part and all(char in DIGITS for char in part) for part in ports
    )


# The client variables a child may keep: name -> the check its value must pass.
PASSED_VARIABLES: "dict[str, Callable[[str], bool]]" = {
    **dict.fromkeys(LOCALE_NAMES, _sane_locale),
    "SSH_CONNECTION": lambda value: _sane_connection(value, 4),
    "SSH_CLIENT": lambda value: _sane_connection(value, 3),
}


def child_environment(request: "Request", home: str) -> tuple[tuple[str, str], ...]:
    """The exec'd program's complete environment, sorted by name: built from scratch."""
    environment = {
        "PATH": FIXED_PATH,
        "HOME": home,
        "USER": request.user,
        "LOGNAME": request.user,
    }
    for name, value in request.environment:
        sane = PASSED_VARIABLES.get(name)
        if sane is not None and sane(value):
            environment[name] = value
    return tuple(sorted(environment.items()))


# Names under which a `-c` command means "run the forced command" (ourselves).
OWN_NAMES = frozenset({"scponly-py", "scponly-pyc"})
# Every variable the shell reads (the front passes only these to the launcher).
READ_VARIABLES = (*PASSED_VARIABLES, "SSH_ORIGINAL_COMMAND")
# Set by the front only: "1" when it started in secure-execution mode, FRONT_FILTERED when
# it also installed the set-id filter, else why not.
FRONT_VARIABLE = "SCPONLY_PY_FRONT"
FRONT_FILTERED = b"1+set-id-filter"
MAX_ENVIRONMENT_VALUE = 256


class Request(Record):
    """One login's request; everything `decide()` needs and nothing it could fetch itself."""

    __slots__ = ("client", "command", "environment", "gid", "groups", "home", "mode", "uid", "user")
    client: str
    command: str | None
    environment: tuple[tuple[str, str], ...]
    gid: int
    groups: tuple[str, ...]
    home: str
    # "login" (-c CMD), "forced" (SSH_ORIGINAL_COMMAND), "interactive" (no command), or
    # "winscp" (a command of WinSCP's SCP mode, checked by decide(): winscp.py)
    mode: str
    uid: int
    user: str


def decode(raw: bytes) -> str:
    """Bytes from the kernel to text, losslessly (surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    """The inverse of `decode`, for execve."""
    return text.encode("utf-8", "surrogateescape")


def names_itself(command: str) -> bool:
    """True if `command` is just the path or name of scponly-py (sshd's ForceCommand form)."""
    stripped = command.strip(" \t")
    return bool(stripped) and " " not in stripped and stripped.rsplit("/", 1)[-1] in OWN_NAMES


def command_and_mode(args: list[bytes], environment: dict[bytes, bytes]) -> tuple[str | None, str]:
    """Work out the command and the mode from our arguments, as sshd passes them."""
    if len(args) == 0:
        original = environment.get(b"SSH_ORIGINAL_COMMAND")
        if original is None:
            return None, "interactive"
        return decode(original), "forced"
    if len(args) == 2 and args[0] == b"-c":
        command = decode(args[1])
        if names_itself(command):
            original = environment.get(b"SSH_ORIGINAL_COMMAND")
            if original is None:
                return None, "interactive"
            return decode(original), "forced"
        return command, "login"
    raise Refusal("unsupported invocation (expected no arguments or -c COMMAND)")


def client_address(environment: dict[bytes, bytes]) -> str:
    """The client's address from SSH_CONNECTION (for logs only), or '-'."""
    connection = decode(environment.get(b"SSH_CONNECTION", b""))
    address = connection.split(" ", 1)[0]
    return address if address else "-"


def passed_environment(environment: dict[bytes, bytes]) -> tuple[tuple[str, str], ...]:
    """The client variables the child might keep (`child_environment` checks their values)."""
    kept = []
    for raw_name, raw_value in environment.items():
        name = decode(raw_name)
        if name in PASSED_VARIABLES and len(raw_value) <= MAX_ENVIRONMENT_VALUE:
            kept.append((name, decode(raw_value)))
    return tuple(sorted(kept))


def group_names(gid: int, gids: list[int]) -> tuple[str, ...]:
    """Names of the primary group and of every supplementary group of this process."""
    names = []
    for number in dict.fromkeys([gid, *gids]):
        try:
            names.append(grp.getgrgid(number).gr_name)
        except KeyError:
            continue
    return tuple(names)


def from_process(args: list[bytes], environment: dict[bytes, bytes]) -> Request:
    """Build the request of the running login (impure: reads uid, passwd, groups)."""
    command, mode = command_and_mode(args, environment)
    uid = posix.getuid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        raise Refusal(f"uid {uid} has no passwd entry") from None
    return Request(
        client=client_address(environment),
        command=command,
        environment=passed_environment(environment),
        gid=entry.pw_gid,
        groups=group_names(entry.pw_gid, posix.getgroups()),
        home=entry.pw_dir,
        mode=mode,
        uid=uid,
        user=entry.pw_name,
    )


def for_user(user: str, command: str | None, mode: str = "login") -> Request:
    """A request as `user` would make it (for `explain`, tests): groups from the user database."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Refusal(f"unknown user {user!r}") from None
    gids = posix.getgrouplist(entry.pw_name, entry.pw_gid)
    return Request(
        client="-",
        command=command,
        environment=(),
        gid=entry.pw_gid,
        groups=group_names(entry.pw_gid, gids),
        home=entry.pw_dir,
        mode=mode if command is not None else "interactive",
        uid=entry.pw_uid,
        user=entry.pw_name,
    )
