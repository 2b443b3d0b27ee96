"""Syslog lines, facility authpriv, ident scponly-py.

Every line is built by `format_line` from ordered fields: the decisions
(`line`), WinSCP's commands, the supervisor's operation and end lines
(supervise.py), internal errors and warnings. In the "kv" format (the
default) values that are not plain are double-quoted with `\\`, `"` and
every non-printable or non-ASCII byte escaped as `\\xNN`; in "json"
(`use_format`, from the policy's log_format) a line is one JSON object with
the same fields, ASCII only (`\\uXXXX`; an undecodable byte is the lone
surrogate U+DC80+byte, as Python's surrogateescape). Either way a command can
never forge a line (no raw newline or control byte reaches syslog).
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


def json_string(value: str) -> str:
    """`value` as a JSON string literal, ASCII only, cut after MAX_FIELD characters."""
    out = ['"']
    for char in value[:MAX_FIELD]:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('..."' if len(value) > MAX_FIELD else '"')
    return "".join(out)


# The format of every line this process writes: "kv" or "json" (`use_format`).
_format = ["kv"]


def use_format(name: str) -> None:
    """Write every further line in `name` ("kv" or "json"; policy.LOG_FORMATS)."""
    _format[0] = name


def format_line(fields: "Iterable[tuple[str, object]]") -> str:
    """The log line of `fields`, in their order: `key=value` pairs, or one JSON object.

    In JSON an int is a number, anything else a string.
    """
    if _format[0] == "json":
        return (
            "{"
            + ", ".join(
                f'"{key}": {value}' if type(value) is int else f'"{key}": {json_string(str(value))}'
                for key, value in fields
            )
            + "}"
        )
    return " ".join(f"{key}={escape(str(value))}" for key, value in fields)


_session: list[str] = []


def session_id() -> str:
    """This login's id, on each of its lines: PID-STARTTIME, or r + 16 hex digits.

    PID and STARTTIME (clock ticks after boot, /proc/self/stat field 22) are what
    `scponly-py-setup sessions` reads back from /proc for a live session; the
    chroot shell computes it before its chroot. Without /proc (sshd ChrootDirectory
    jails) the id is random and such sessions are not listed by id.
    """
    if not _session:
        try:
            fd = posix.open("/proc/self/stat", posix.O_RDONLY | posix.O_CLOEXEC)
            try:
                data = posix.read(fd, 4096)
            finally:
                posix.close(fd)
            _session.append(f"{posix.getpid()}-{int(data[data.rindex(b')') + 2 :].split()[19])}")
        except (OSError, ValueError, IndexError):
            _session.append("r" + posix.urandom(8).hex())
    return _session[0]


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
    fields += [("session", session_id()), ("program", decision.program)]
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


def message(text: str, priority: int = INFO) -> bytes:
    """The syslog datagram for one line (RFC 3164 header, authpriv, our ident and pid)."""
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    header = f"<{FACILITY_AUTHPRIV | priority}>{stamp} {IDENT}[{posix.getpid()}]: "
    return (header + text).encode("utf-8", "surrogateescape")


def channel() -> _socket.socket:
    """The connected syslog socket (connecting now if needed); raises `AuditError`."""
    connect()
    return _channel[0]


def log(text: str, priority: int = INFO) -> None:
    """Deliver one line to syslog (authpriv), or raise `AuditError` within SEND_TIMEOUT seconds.

    glibc's syslog() is not used: it blocks for ever when the log daemon stops
    reading, and it silently drops lines when /dev/log is missing. A login
    whose decision cannot be recorded is refused instead (fail closed).
    """
    try:
        channel().send(message(text, priority))
    except TimeoutError:
        raise AuditError(f"{LOG_SOCKET} is not accepting messages") from None
    except OSError as error:
        raise AuditError(f"cannot write to {LOG_SOCKET}: {error.strerror}") from None
