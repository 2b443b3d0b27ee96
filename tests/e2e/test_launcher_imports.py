"""The launcher's plain imports through a real sshd: root's .pyc files, used as they are.

install-shell byte-compiles the package as root (the sandbox installs with it);
a login, isolated (-I) and without site (-S), loads the modules from those files
and cannot write the package's __pycache__.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from setup_chroot import launcher
from tests.e2e.sandbox import Sandbox
from tests.support import touch


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory()
    sandbox.add_user("plain")
    return sandbox


def package(sandbox: Sandbox) -> Path:
    return sandbox.root / "lib" / "scponly_py"


def sftp_login_lines(sandbox: Sandbox) -> list[str]:
    """Log in with sftp (it must work); return the syslog lines of that login."""
    mark = sandbox.log_mark()
    result = sandbox.sftp_batch("plain", "pwd\n")
    assert result.returncode == 0 and b"Remote working directory" in result.stdout, result.stderr
    return sandbox.log_since(mark, wait_for="decision=allow")


@contextmanager
def unreadable(paths: list[Path]) -> Iterator[None]:
    """Make `paths` unreadable to users (a chmod changes no mtime: .pyc files stay valid)."""
    for path in paths:
        path.chmod(0o600)
    try:
        yield
    finally:
        for path in paths:
            path.chmod(0o644)


def test_the_package_is_compiled_by_root_and_users_cannot_write_it(sandbox: Sandbox) -> None:
    for module in package(sandbox).rglob("*.py"):
        cache = module.parent / "__pycache__"
        compiled = list(cache.glob(f"{module.stem}.cpython-*.pyc"))
        assert compiled, module
        for path in (cache, *compiled):
            info = path.stat()
            assert info.st_uid == 0 and info.st_mode & 0o022 == 0, path


def test_logins_run_from_the_compiled_files(sandbox: Sandbox) -> None:
    # The user can read no source file, so a working login proves that an isolated
    # interpreter loads every module it runs from root's .pyc files.
    with unreadable(list(package(sandbox).rglob("*.py"))):
        lines = sftp_login_lines(sandbox)
    assert any("decision=allow user=plain" in line for line in lines)


def test_unloadable_package_is_one_line_not_a_traceback(sandbox: Sandbox) -> None:
    files = [path for path in package(sandbox).rglob("*") if path.suffix in (".py", ".pyc")]
    with unreadable(files):
        result = sandbox.ssh("plain", "scp -t upload.bin", input=b"")
    assert result.returncode == 1
    assert result.stderr.startswith(b"scponly-py: refused: cannot load the login shell")
    assert b"Traceback" not in result.stderr
    assert result.stdout == b""


def test_an_edited_module_is_used_at_once_and_its_cache_left_to_root(sandbox: Sandbox) -> None:
    source = package(sandbox) / "words.py"
    (cached,) = (source.parent / "__pycache__").glob("words.cpython-*.pyc")
    before = cached.read_bytes()
    touch(source)  # the .pyc no longer matches: the login compiles words.py in memory
    try:
        assert any("decision=allow user=plain" in line for line in sftp_login_lines(sandbox))
        assert cached.read_bytes() == before  # the user could not rewrite it
    finally:
        # What an administrator runs after changing the package: install-shell.
        interpreter = os.path.realpath(sandbox.launcher_python)
        launcher.install(str(sandbox.launcher), interpreter, str(package(sandbox).parent))
    assert cached.read_bytes() != before  # root wrote the current code
