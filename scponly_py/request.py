"""Who asks for what, from where: the `Request`, built from the process without trusting the client.

Identity comes from `getuid()` and the passwd entry, never from USER or HOME.
The command comes from `-c CMD` when we are the login shell, and from
SSH_ORIGINAL_COMMAND only in forced-command mode (no arguments, or `-c`
naming scponly-py itself, which is how sshd runs `ForceCommand scponly-py`
through a user whose login shell is scponly-py).

Arguments and environment are taken as the bytes the kernel gave us and
decoded as UTF-8 with surrogateescape, so undecodable file names survive
unchanged whatever locale the client asked for.
"""

import grp
import posix
import pwd

from scponly_py.childenv import PASSED_VARIABLES
from scponly_py.outcome import Record, Refusal

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
    """The client variables the child might keep (their values are checked by `childenv`)."""
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
