"""The environment of the exec'd program, built from scratch; the one allowlist.

Nothing is inherited by default. The child gets a fixed PATH, identity
variables from the passwd entry, and — only if their values look like what
they claim to be — the client variables of `PASSED_VARIABLES`: the locale and
SSH_CONNECTION/SSH_CLIENT. The request keeps only those, and the C front
passes only those (plus what request.py reads) to the launcher.
LD_*, PYTHON*, BASH_ENV, ENV, IFS, TMPDIR, and everything else never pass.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from scponly_py.request import Request

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


def build(request: "Request", home: str) -> tuple[tuple[str, str], ...]:
    """The child's complete environment, sorted by name."""
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
