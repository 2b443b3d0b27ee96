"""The login shell: a secure-execution front (scponly_py/front.c) and the isolated launcher.

The front is what `usermod -s` names. It carries the file capability
cap_wake_alarm+p, so the kernel starts it with AT_SECURE and nothing PAM or sshd
put in the environment (LD_PRELOAD from ~/.pam_environment, ...) can run before
our code; it drops the capability and execs the launcher with only the variables
the shell reads (docs/design.md, "The login environment").

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
import shutil
import stat
import subprocess
import sys
import tempfile

import scponly_py
from scponly_py import request as requests
from scponly_py import setid, trusted
from setup_chroot import frozen, jailfs

# Kept short: the launcher is a script, and Python compiles a script's source on
# every run (about 50 000 instructions a statement). The package's modules come
# from the .pyc files root wrote (`compile_package`), which -I still reads.
LAUNCHER_TEMPLATE = """#!{interpreter} -IS
# scponly-py login shell, written by 'scponly-py-setup install-shell'; do not
# edit, re-run it. Isolated (-I) and without site (-S): nothing a user uploads
# or sets can change what Python loads. The first statement holds SIGHUP, SIGINT,
# SIGQUIT, SIGPIPE and SIGTERM until the exec (shell.HELD_SIGNALS: no traceback).
import _signal; _signal.pthread_sigmask(0, (1, 2, 3, 13, 15))  # 0: SIG_BLOCK
import sys
sys.path.append({package_parent!r})
try:
    from scponly_py.shell import main
except Exception as error:
    sys.exit(f"scponly-py: refused: cannot load the login shell ({{type(error).__name__}})")
sys.exit(main())
"""


FRONT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(scponly_py.__file__)), "front.c")
COMPILE_FLAGS = (  # hardened (as dpkg-buildflags), PIE, stripped
    "-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong",
    "-fstack-clash-protection", "-fPIE", "-pie", "-Wl,-z,relro,-z,now", "-s",
)  # fmt: skip


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
    return LAUNCHER_TEMPLATE.format(interpreter=interpreter_path, package_parent=parent)


def unsafe_reasons(path: str, *, need_read: bool) -> list[str]:
    """Why `path` breaks the trusted-path rule (scponly_py/trusted.py), or is unusable to users."""
    reasons = [f"{where} {why}" for where, why in trusted.problems(os.path.abspath(path))]
    current = os.path.realpath(path)
    first = True
    while True:
        info = os.stat(current)
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
        problem = trusted.entry_problem(info, os.stat(os.path.dirname(path)))
        if problem or info.st_mode & 0o022:
            reasons.append(f"{path} {problem or 'is writable by group or others'}")
        if not info.st_mode & 0o004:
            reasons.append(f"{path} is not readable by other users")
    return reasons


def script_path(destination: str) -> str:
    """Where the launcher script goes for a front at `destination`: PREFIX/lib/scponly-py/launcher.

    /usr/bin/scponly-py (the packages) -> /usr/lib/scponly-py/launcher;
    /usr/local/bin/scponly-py (install-shell) -> /usr/local/lib/scponly-py/launcher.
    """
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(destination)))
    return os.path.join(prefix, "lib", "scponly-py", "launcher")


def front_defines(launcher_path: str) -> list[str]:
    """The compiler's -D flags: the launcher's path, the variables the shell reads and, on a
    machine setid.ARCHES covers, the set-id filter's instructions (struct sock_filter)."""

    def c_string(text: str) -> str:
        if not text.isascii() or any(char in text for char in '"\\\n'):
            raise UnsafeInstall(f"{text!r} cannot be compiled into the front")
        return f'"{text}"'

    names = ",".join(c_string(name) for name in requests.READ_VARIABLES)
    defines = [f"-DLAUNCHER={c_string(launcher_path)}", f"-DPASSED_NAMES={names}"]
    if setid.MACHINE:
        code = ",".join("{" + ",".join(map(str, op)) + "}" for op in setid.program(setid.MACHINE))
        defines.append(f"-DSETID_FILTER={code}")
    return defines


def build_front(output: str, launcher_path: str, compiler: str = "cc") -> None:
    """Compile scponly_py/front.c into `output` (hardened, PIE) for `launcher_path`."""
    if shutil.which(compiler) is None:
        raise UnsafeInstall(f"no C compiler ({compiler}) to build the login shell's front")
    result = subprocess.run(
        [compiler, *COMPILE_FLAGS, *front_defines(launcher_path), FRONT_SOURCE, "-o", output],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise UnsafeInstall(f"building the front failed: {result.stderr.strip()[-500:]}")


def front_capability() -> bytes:
    """The front's `security.capability`: cap_wake_alarm+p (permitted only, never effective)."""
    return frozen.secure_start_capability()


def compile_package(interpreter_path: str, parent: str) -> None:
    """Byte-compile the package with the launcher's interpreter, as root, umask 022.

    Timestamp-checked .pyc files (what pip writes; the cheapest to validate), even
    when SOURCE_DATE_EPOCH is set. Users cannot write __pycache__, so without them
    every login would compile each module it imports.
    """
    package_dir = os.path.join(parent, "scponly_py")
    result = subprocess.run(
        [interpreter_path, "-I", "-S", "-m", "compileall", "-q",
         "--invalidation-mode", "timestamp", package_dir],
        capture_output=True, text=True, check=False, umask=0o022,
    )  # fmt: skip
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:]
        raise UnsafeInstall(f"{interpreter_path} could not byte-compile {package_dir}: {last}")


def install(destination: str, interpreter_path: str, parent: str, *, check: bool = True) -> str:
    """Install the login shell: .pyc files, launcher script, then the front at `destination`.

    Returns the launcher's text. The tree is checked before root writes the .pyc
    files into it and again after. The front is built in a private temporary
    directory, given cap_wake_alarm+p (read back), and renamed into place last,
    so `destination` is never a front without its launcher.
    """

    def refuse_unsafe_tree() -> None:
        reasons = check_tree(interpreter_path, parent) if check else []
        if reasons:
            raise UnsafeInstall("; ".join(reasons[:5]))

    refuse_unsafe_tree()
    text = render(interpreter_path, parent)
    directory = os.path.dirname(os.path.abspath(destination))
    script = script_path(destination)
    try:  # both places by the trusted-path rule; only root can change them afterwards
        os.close(trusted.open_path(directory, directory=True, follow=True))
        script_dir = trusted.make_dirs(os.path.dirname(script))
    except trusted.Untrusted as error:
        raise UnsafeInstall(f"untrusted path: {error}") from None
    try:
        compile_package(interpreter_path, parent)
        refuse_unsafe_tree()  # the new __pycache__ entries too
        _write_atomically(script_dir, os.path.basename(script), text.encode(), 0o755)
    finally:
        os.close(script_dir)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".scponly-py-front.") as build:
        built = os.path.join(build, "scponly-py")
        build_front(built, script)
        os.chmod(built, 0o755)  # noqa: S103 - a login shell every user runs
        reason = jailfs.give_capability(built, front_capability())
        if reason is not None:
            raise UnsafeInstall(
                f"cannot give {destination} cap_wake_alarm+p ({reason}): without it the "
                "login shell cannot start in secure-execution mode"
            )
        os.rename(built, destination)
    return text


def _write_atomically(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    temporary = f".{name}.{os.getpid()}.tmp"

    def fill(fd: int) -> None:
        trusted.write_all(fd, data)
        os.fchmod(fd, mode)

    trusted.write_new_at(dir_fd, temporary, fill)
    os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
