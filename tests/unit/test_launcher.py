"""install-shell's byte-compiling, and what the launcher then loads (no root needed).

Each test copies the package into a temporary directory, as an installed tree
without __pycache__, and compiles it the way `launcher.install` does.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from setup_chroot import launcher

PACKAGE = Path(launcher.package_parent()) / "scponly_py"
LOGIN = "sys.exit(main())"
# Modules the login path must never import: each costs milliseconds (os, re, typing,
# dataclasses, enum, tomllib) or millions of instructions (ctypes; _ctypes, which only a login
# the front did not filter loads, for setid) per login.
HEAVY = ("os", "re", "typing", "dataclasses", "enum", "tomllib", "ctypes", "_ctypes", "__future__")


@pytest.fixture
def compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package, compiled under a strict umask; returns the package directory."""
    shutil.copytree(PACKAGE, tmp_path / "scponly_py", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1")  # would make py_compile write hash-based files
    old_umask = os.umask(0o077)
    try:
        launcher.compile_package(launcher.interpreter(), str(tmp_path))
    finally:
        os.umask(old_umask)
    return tmp_path / "scponly_py"


def run_launcher(package: Path, probe: str) -> subprocess.CompletedProcess[str]:
    """Run the launcher text for `package` with `-v`, its login replaced by `probe`."""
    text = launcher.render(launcher.interpreter(), str(package.parent))
    assert text.count(LOGIN) == 1
    script = package.parent / "launcher"
    script.write_text(text.replace(LOGIN, probe))
    return subprocess.run(
        [launcher.interpreter(), "-I", "-S", "-v", str(script)],
        check=True,
        capture_output=True,
        text=True,
    )


def test_every_module_gets_a_readable_timestamp_checked_pyc(compiled: Path) -> None:
    for module in compiled.rglob("*.py"):
        cache = module.parent / "__pycache__"
        assert cache.stat().st_mode & 0o777 == 0o755
        (pyc,) = cache.glob(f"{module.stem}.cpython-*.pyc")
        assert pyc.stat().st_mode & 0o777 == 0o644, pyc
        # PEP 552 flags: 0 is timestamp-checked (a stat of the source, nothing read).
        assert pyc.read_bytes()[4:8] == b"\0\0\0\0", pyc
    reasons = launcher.check_tree(launcher.interpreter(), str(compiled.parent))
    assert not [reason for reason in reasons if "__pycache__" in reason]


def test_an_isolated_login_loads_the_compiled_files(compiled: Path) -> None:
    probe = (
        "import scponly_py.programs.sftp\n"
        "print(sorted(module.__cached__ for name, module in sys.modules.items()"
        " if name.startswith('scponly_py')))\n"
        f"print([name for name in {HEAVY!r} if name in sys.modules])\n"
    )
    result = run_launcher(compiled, probe)
    cached, heavy = result.stdout.splitlines()
    assert heavy == "[]"
    for path in ast.literal_eval(cached):
        assert path.startswith(f"{compiled}/")
        assert f"code object from '{path}'" in result.stderr, path  # not compiled from source


def test_a_failed_compile_is_an_unsafe_install(compiled: Path) -> None:
    (compiled / "broken.py").write_text("def (:\n")
    with pytest.raises(launcher.UnsafeInstall, match="could not byte-compile"):
        launcher.compile_package(launcher.interpreter(), str(compiled.parent))
