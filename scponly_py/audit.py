"""One syslog line per decision, facility authpriv, ident scponly-py.

Lines are `key=value` pairs. Values that are not plain are double-quoted with
`\\`, `"` and every non-printable or non-ASCII byte escaped as `\\xNN`, so a
command can never forge a log line (no raw newlines or control bytes) and
undecodable bytes stay visible.
"""

from __future__ import annotations

import syslog

from scponly_py import words

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.decision import Allow, Refuse
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


def line(request: Request | None, decision: Allow | Refuse, uid: int) -> str:
    """The log line for a decision (request may be None if it could not be built)."""
    fields = [("decision", "allow" if decision.allowed else "refuse")]
    if request is not None:
        fields += [
            ("user", request.user),
            ("uid", str(request.uid)),
            ("client", request.client),
            ("mode", request.mode),
        ]
    else:
        fields += [("uid", str(uid))]
    fields.append(("program", decision.program))
    if decision.allowed:
        fields.append(("argv", words.join(decision.argv)))  # type: ignore[union-attr]
    else:
        fields.append(("reason", decision.reason))  # type: ignore[union-attr]
        if request is not None and request.command is not None:
            fields.append(("command", request.command))
    return " ".join(f"{key}={escape(value)}" for key, value in fields)


INFO = syslog.LOG_INFO
NOTICE = syslog.LOG_NOTICE
WARNING = syslog.LOG_WARNING


def log(text: str, priority: int = INFO) -> None:
    """Send one line to syslog (authpriv); never raises: logging must not block a refusal."""
    try:
        syslog.openlog(IDENT, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(priority, text)
    except Exception:  # noqa: BLE001, S110 - a broken syslog must not turn a refusal into a traceback
        pass
