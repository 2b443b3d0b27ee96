"""The environment of the exec'd program, built from scratch.

Nothing is inherited by default. The child gets a fixed PATH, identity
variables from the passwd entry, and — only if their values look like what
they claim to be — the client's locale and SSH_CONNECTION/SSH_CLIENT.
LD_*, PYTHON*, BASH_ENV, ENV, IFS, TMPDIR, and everything else never pass.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.request import Request

FIXED_PATH = "/usr/bin:/bin"
LOCALE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-:")
CONNECTION_CHARACTERS = frozenset("0123456789abcdefABCDEF.: %")
LOCALE_NAMES = frozenset(
    {
        "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY",
        "LC_NUMERIC", "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT",
        "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
    }
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


def _sane_connection(value: str) -> bool:
    return 0 < len(value) <= MAX_CONNECTION_LENGTH and all(
        char in CONNECTION_CHARACTERS for char in value
    )


def build(request: Request, home: str) -> tuple[tuple[str, str], ...]:
    """The child's complete environment, sorted by name."""
    environment = {
        "PATH": FIXED_PATH,
        "HOME": home,
        "USER": request.user,
        "LOGNAME": request.user,
    }
    for name, value in request.environment:
        if (name in LOCALE_NAMES and _sane_locale(value)) or (
            name in ("SSH_CONNECTION", "SSH_CLIENT") and _sane_connection(value)
        ):
            environment[name] = value
    return tuple(sorted(environment.items()))
