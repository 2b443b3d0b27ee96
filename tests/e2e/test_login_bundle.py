"""The login bundle through a real sshd: logins run from it, and a stale one is never silent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scponly_py import bundle
from setup_chroot import launcher
from tests.e2e.sandbox import Sandbox
from tests.support import touch


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory()
    sandbox.add_user("bundled")
    return sandbox


def package(sandbox: Sandbox) -> Path:
    return sandbox.root / "lib" / "scponly_py"


def sftp_works(sandbox: Sandbox) -> bool:
    result = sandbox.sftp_batch("bundled", "pwd\n")
    return result.returncode == 0 and b"Remote working directory" in result.stdout


def sftp_login_lines(sandbox: Sandbox) -> list[str]:
    """Log in with sftp (it must work); return the syslog lines of that login."""
    mark = sandbox.log_mark()
    assert sftp_works(sandbox)
    return sandbox.log_since(mark, wait_for="decision=allow")


def reinstall(sandbox: Sandbox, *, check: bool = True) -> None:
    """What an administrator runs after changing the package: install-shell."""
    parent = str(package(sandbox).parent)
    launcher.install(str(sandbox.launcher), launcher.interpreter(), parent, check=check)


@contextmanager
def unreadable_sources(sandbox: Sandbox) -> Iterator[None]:
    """Make every .py and .pyc of the package unreadable to users, then rebuild the bundle.

    Only the bundle's own loader stays readable: the launcher loads it from its .pyc.

    (A chmod changes a file's ctime, which is part of its stamp: the bundle is
    rebuilt afterwards, as an administrator would after changing the package.)
    """
    files = [
        path
        for path in package(sandbox).rglob("*")
        if path.suffix in (".py", ".pyc") and not path.name.startswith("bundle.")
    ]
    for path in files:
        path.chmod(0o600)
    reinstall(sandbox, check=False)  # install-shell itself refuses such a tree
    try:
        yield
    finally:
        for path in files:
            path.chmod(0o644)
        reinstall(sandbox)


def test_logins_run_from_the_bundle_alone(sandbox: Sandbox) -> None:
    # Without the bundle the user could not read a single module the login runs,
    # so a working login proves where its code came from.
    with unreadable_sources(sandbox):
        lines = sftp_login_lines(sandbox)
    assert any("decision=allow user=bundled" in line for line in lines)
    assert not any("login bundle" in line for line in lines)


def test_unreadable_package_without_bundle_is_one_line_not_a_traceback(sandbox: Sandbox) -> None:
    with unreadable_sources(sandbox):
        os.unlink(bundle.location(str(package(sandbox))))
        result = sandbox.ssh("bundled", "scp -t upload.bin", input=b"")
    assert result.returncode == 1
    assert result.stderr.startswith(b"scponly-py: refused: cannot load the login shell")
    assert b"Traceback" not in result.stderr
    assert result.stdout == b""


def test_stale_bundle_is_logged_and_the_files_on_disk_are_used(sandbox: Sandbox) -> None:
    touch(package(sandbox) / "words.py")
    try:
        lines = sftp_login_lines(sandbox)
        assert any("is stale" in line and "words.py changed" in line for line in lines)
    finally:
        reinstall(sandbox)
    assert not any("login bundle" in line for line in sftp_login_lines(sandbox))


def test_missing_bundle_is_logged(sandbox: Sandbox) -> None:
    os.unlink(bundle.location(str(package(sandbox))))
    try:
        lines = sftp_login_lines(sandbox)
        assert any("login bundle" in line and "not used" in line for line in lines)
    finally:
        reinstall(sandbox)


def test_a_grammar_changed_under_a_running_bundle_refuses_that_program(sandbox: Sandbox) -> None:
    touch(package(sandbox) / "programs" / "scp.py")
    try:
        mark = sandbox.log_mark()
        result = sandbox.ssh("bundled", "scp -t upload.bin", input=b"")
        assert result.returncode == 1
        assert b"scponly-py: refused: internal error" in result.stderr
        assert result.stdout == b""
        lines = sandbox.log_since(mark, wait_for="internal-error")
        assert any("error=ImportError" in line and "scp.py changed" in line for line in lines)
        assert sftp_works(sandbox)  # sftp's grammar is unchanged and preloaded
    finally:
        reinstall(sandbox)
