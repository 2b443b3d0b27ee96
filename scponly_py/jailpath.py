"""The `//` split of a passwd home into (jail, in-jail home): pure, no privilege, no _prctl.

Used by scponly-pyc before it enters the jail (scponly_py/jail.py) and by
`scponly-py check-config`, which must run where python-prctl is not installed.
"""


class JailError(Exception):
    """The jail is unsafe or the privilege drop did not hold; the login is refused."""


# -- pure parts --------------------------------------------------------------------------------


def split_home(home: str) -> tuple[str, str]:
    """(jail, in-jail home) from a passwd home, strictly."""
    if "\0" in home:
        raise JailError("home directory contains NUL")
    if not home.startswith("/"):
        raise JailError(f"home directory {home!r} is not absolute")
    if "///" in home or home.count("//") > 1:
        raise JailError(f"home directory {home!r} has more than one '//'")
    jail, separator, inside = home.partition("//")
    inside = "/" + inside if separator else "/"
    if jail == "":
        raise JailError(f"home directory {home!r} has an empty jail before '//'")
    for part, what in ((jail, "jail"), (inside, "home inside the jail")):
        names = part.split("/")[1:]
        if part == "/":
            continue
        if any(name in ("", ".", "..") for name in names):
            raise JailError(f"{what} {part!r} has an empty, '.' or '..' component")
    if jail == "/":
        raise JailError("the jail may not be /")
    return jail, inside
