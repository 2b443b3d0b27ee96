"""One syslog line per decision, facility authpriv, ident scponly-py.

Every line is built by `format_line` from ordered `key=value` fields: the
decisions (`line`), WinSCP's commands, internal errors and warnings. Values
that are not plain are double-quoted with `\\`, `"` and every non-printable
or non-ASCII byte escaped as `\\xNN`, so a command can never forge a log line
(no raw newlines or control bytes) and undecodable bytes stay visible.
"""

import _socket
import posix
import time

from scponly_py import words

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from scponly_py.outcome import Allow, Refuse
    from scponly_py.request import Request

IDENT = "scponly-py"
PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")
MAX_FIELD = 2048


def escape(value: str) -> str:
    """A log-safe rendering of `value` (bare if plain, else quoted and escaped)."""
    if value and all(char in PLAIN for char in value):
        return value
    out = ['"']
    for byte in value.encode("utf-8", "surrogateescape"):
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
        if len(out) > MAX_FIELD:
            out.append("...")
            break
    out.append('"')
    return "".join(out)


def format_line(fields: "Iterable[tuple[str, object]]") -> str:
    """The log line of `fields`, in their order: `key=value` with each value escaped."""
    return " ".join(f"{key}={escape(str(value))}" for key, value in fields)


def line(
    request: "Request | None", decision: "Allow | Refuse", uid: int, *, debug: bool = False
) -> str:
    """The log line for a decision (request may be None if it could not be built).

    With `debug` (log_level = "debug") an allowed exec also records its working
    directory, umask and the names of the environment variables it gets.
    """
    fields: list[tuple[str, object]] = [("decision", "allow" if decision.allowed else "refuse")]
    if request is not None:
        fields += [
            ("user", request.user),
            ("uid", request.uid),
            ("client", request.client),
            ("mode", request.mode),
        ]
    else:
        fields += [("uid", uid)]
    fields.append(("program", decision.program))
    if decision.allowed:
        fields.append(("argv", words.join(decision.argv)))  # type: ignore[union-attr]
        if debug:
            fields += [
                ("cwd", decision.cwd),  # type: ignore[union-attr]
                ("umask", f"{decision.umask:04o}"),  # type: ignore[union-attr]
                ("env", ",".join(name for name, _ in decision.env)),  # type: ignore[union-attr]
            ]
    else:
        fields.append(("reason", decision.reason))  # type: ignore[union-attr]
        if request is not None and request.command is not None:
            fields.append(("command", request.command))
    return format_line(fields)


FACILITY_AUTHPRIV = 10 << 3
INFO = 6
NOTICE = 5
WARNING = 4
LOG_SOCKET = "/dev/log"
SEND_TIMEOUT = 2.0


class AuditError(Exception):
    """The decision could not be logged; an allowed login must then be refused."""


# The one datagram socket to syslog, connected lazily (or early, before a chroot).
_channel: list[_socket.socket] = []


def connect() -> None:
    """Connect to /dev/log now (the chroot shell calls this before chroot, like LOG_NDELAY)."""
    if _channel:
        return
    channel = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    channel.settimeout(SEND_TIMEOUT)
    try:
        channel.connect(LOG_SOCKET)
    except OSError as error:
        channel.close()
        raise AuditError(f"cannot connect to {LOG_SOCKET}: {error.strerror}") from None
    _channel.append(channel)


def log(text: str, priority: int = INFO) -> None:
    """Deliver one line to syslog (authpriv), or raise `AuditError` within SEND_TIMEOUT seconds.

    glibc's syslog() is not used: it blocks for ever when the log daemon stops
    reading, and it silently drops lines when /dev/log is missing. A login
    whose decision cannot be recorded is refused instead (fail closed).
    """
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    message = f"<{FACILITY_AUTHPRIV | priority}>{stamp} {IDENT}[{posix.getpid()}]: {text}"
    try:
        connect()
        _channel[0].send(message.encode("utf-8", "surrogateescape"))
    except TimeoutError:
        raise AuditError(f"{LOG_SOCKET} is not accepting messages") from None
    except OSError as error:
        raise AuditError(f"cannot write to {LOG_SOCKET}: {error.strerror}") from None
