"""The isolated launcher that is the real login shell.

pip writes console scripts as `#!/path/to/python` with no flags, so a user
who uploads `~/.local/lib/python3.X/site-packages/x.pth` (or sets PYTHON*
variables through sshd) would run code on the next login, before any of our
code runs. The launcher is a script whose shebang holds an absolute
interpreter path and `-IS`: isolated mode (no PYTHON* variables, no user
site-packages, no script directory on sys.path) and no `site` at all (no .pth
files, no sitecustomize, and ~3 ms less start-up). The directory that holds
the installed `scponly_py` package is appended to sys.path explicitly.

Everything the launcher runs must be root-owned and not writable by group or
others, and readable by the users who log in; `install` checks both.
"""

from __future__ import annotations

import os
import stat
import sys

import scponly_py
from scponly_py import bundle
from setup_chroot import login_bundle

# Kept short: the launcher is a script, and Python compiles a script's source on
# every run (about 50 000 instructions a statement). The bundle's loader comes from
# its .pyc through importlib's own (frozen) loader, which checks the magic number
# and the source's mtime and size, without searching sys.path.
LAUNCHER_TEMPLATE = """#!{interpreter} -IS
# scponly-py login shell, written by 'scponly-py-setup install-shell'; do not
# edit, re-run it. Isolated (-I) and without site (-S): nothing a user uploads
# or sets can change what Python loads. The package is served from its login
# bundle (scponly_py/bundle.py) while that matches the files on disk, else
# imported from them. The first statement holds SIGHUP, SIGINT, SIGQUIT,
# SIGPIPE and SIGTERM until the exec (shell.HELD_SIGNALS: no traceback).
import _signal; _signal.pthread_sigmask(0, (1, 2, 3, 13, 15))  # 0: SIG_BLOCK
import sys
sys.path.append({package_parent!r})
try:
    from _frozen_importlib_external import SourceFileLoader
    loader = SourceFileLoader("scponly_py.bundle", {loader_path!r})
    exec(loader.get_code("scponly_py.bundle"), scope := {{"__name__": "scponly_py.bundle"}})
    problem = scope["activate"]({bundle_path!r})
except Exception as error:
    problem = f"login bundle {bundle_path} not used: {{error}}"
try:
    from scponly_py.shell import main
except Exception as error:
    sys.exit(f"scponly-py: refused: cannot load the login shell ({{type(error).__name__}})")
sys.exit(main(startup_warning=problem))
"""


class UnsafeInstall(Exception):
    """The interpreter or package could be changed by, or is unreadable to, ordinary users."""


def package_parent() -> str:
    """The directory that contains the installed `scponly_py` package."""
    return os.path.dirname(os.path.dirname(os.path.abspath(scponly_py.__file__)))


def interpreter() -> str:
    """The real interpreter behind this one (a venv's python is a symlink to it)."""
    return os.path.realpath(sys.executable)


def render(interpreter_path: str, parent: str) -> str:
    """The launcher's text."""
    if any(char in interpreter_path for char in " \t\n") or len(interpreter_path) > 100:
        raise UnsafeInstall(f"interpreter path {interpreter_path!r} cannot be used in a #! line")
    package_dir = os.path.join(parent, "scponly_py")
    return LAUNCHER_TEMPLATE.format(
        interpreter=interpreter_path,
        package_parent=parent,
        loader_path=os.path.join(package_dir, "bundle.py"),
        bundle_path=bundle.location(package_dir),
    )


def unsafe_reasons(path: str, *, need_read: bool) -> list[str]:
    """Why `path` (and each directory above it) is unsafe for a login shell to load."""
    reasons = []
    current = os.path.abspath(path)
    first = True
    while True:
        info = os.stat(current)
        if info.st_uid != 0:
            reasons.append(f"{current} is not owned by root")
        if info.st_mode & 0o022 and not (
            stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        ):
            reasons.append(f"{current} is writable by group or others")
        if stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o001:
            reasons.append(
                f"{current} is not searchable by other users (mode {info.st_mode & 0o7777:o})"
            )
        if first and need_read and not info.st_mode & 0o004:
            reasons.append(f"{current} is not readable by other users")
        first = False
        if current == "/":
            return reasons
        current = os.path.dirname(current)


def package_files(parent: str) -> list[str]:
    """Every file of the scponly_py package (each must be safe and readable)."""
    found = []
    for directory, _subdirectories, files in os.walk(os.path.join(parent, "scponly_py")):
        found.append(directory)
        found.extend(os.path.join(directory, name) for name in files)
    return found


def check_tree(interpreter_path: str, parent: str) -> list[str]:
    """All reasons the interpreter or package are unsafe or unusable for other users."""
    reasons = unsafe_reasons(interpreter_path, need_read=False)
    reasons += unsafe_reasons(parent, need_read=True)
    for path in package_files(parent):
        info = os.lstat(path)
        if info.st_uid != 0 or info.st_mode & 0o022:
            reasons.append(f"{path} is not root-owned or is writable by group or others")
        if not info.st_mode & 0o004:
            reasons.append(f"{path} is not readable by other users")
    return reasons


def install(destination: str, interpreter_path: str, parent: str, *, check: bool = True) -> str:
    """Write the login bundle and then the launcher at `destination` (mode 0755); return its text.

    The bundle first: a launcher never runs without the bundle of its package.
    """
    if check:
        reasons = check_tree(interpreter_path, parent)
        if reasons:
            raise UnsafeInstall("; ".join(reasons[:5]))
    text = render(interpreter_path, parent)
    try:
        write_bundle(interpreter_path, parent)
    except login_bundle.BundleError as error:
        raise UnsafeInstall(str(error)) from None
    _write_atomically(destination, text.encode(), 0o755)
    return text


def write_bundle(interpreter_path: str, parent: str) -> str:
    """Compile the package's login bundle with the launcher's interpreter; return its path."""
    package_dir = os.path.join(parent, "scponly_py")
    data = login_bundle.build(interpreter_path, package_dir)
    path = bundle.location(package_dir)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    _write_atomically(path, data, 0o644)
    return path


def _write_atomically(destination: str, data: bytes, mode: int) -> None:
    directory, name = os.path.split(os.path.abspath(destination))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.rename(temporary, destination)
