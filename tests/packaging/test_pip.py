"""The pip/pipx route: the wheel's commands, and why it is not a login shell by itself.

A wheel built from this checkout is installed into a fresh venv (Debian's python3, its
python3-click and python3-pyelftools through --system-site-packages, nothing downloaded).
Its console scripts give scponly-py-setup and the admin helpers; used as a login shell, pip's
scponly-py refuses every login (pip writes no `-I`), and install-shell writes the isolated
launcher that is.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO, system_env

PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    probe = subprocess.run(
        [PYTHON, "-c", "import click, elftools, ensurepip, setuptools"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("needs Debian's python3-venv, python3-click, python3-pyelftools, setuptools")
    work = tmp_path_factory.mktemp("pip")
    wheels = work / "wheels"
    built = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, check=False, env=system_env(), timeout=300,
    )  # fmt: skip
    if built.returncode != 0 and "No module named pip" in built.stderr:
        pytest.skip("Debian's python3-pip is not installed")
    assert built.returncode == 0, built.stderr[-2000:]
    environment = work / "venv"
    subprocess.run(
        [PYTHON, "-m", "venv", "--system-site-packages", str(environment)],
        check=True, env=system_env(), timeout=120,
    )  # fmt: skip
    (wheel,) = wheels.glob("scponly_py-*.whl")
    installed = subprocess.run(
        [environment / "bin" / "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, check=False, env=system_env(), timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    return environment


def run(*argv: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in argv], capture_output=True, text=True, check=False,
        env=system_env(**extra), timeout=60,
    )  # fmt: skip


def test_wheel_has_both_commands_and_all_packages(venv: Path) -> None:
    (wheel,) = (venv.parent / "wheels").glob("scponly_py-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(name for name in names if name.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "scponly-py = scponly_py.shell:main" in scripts
    assert "scponly-py-setup = setup_chroot.cli:main" in scripts
    for module in ("scponly_py/shell.py", "scponly_py/programs/scp.py", "setup_chroot/cli.py"):
        assert module in names


def test_commands_and_admin_helpers(venv: Path) -> None:
    assert run(venv / "bin/scponly-py", "--version").stdout.strip() == "scponly-py 0.1.0"
    assert "0.1.0" in run(venv / "bin/scponly-py-setup", "--version").stdout
    explained = run(venv / "bin/scponly-py", "explain", "--user", "nobody", "--", "scp -f /x")
    assert explained.returncode == 0 and "ALLOW scp" in explained.stdout
    helped = run(venv / "bin/scponly-py-setup", "--help")
    for command in ("install-shell", "install-chroot-shell", "create", "check", "update"):
        assert command in helped.stdout


def test_pip_console_script_is_not_a_login_shell(venv: Path) -> None:
    refused = run(venv / "bin/scponly-py", "-c", "scp -f /etc/hostname")
    assert refused.returncode == 1
    assert "not running isolated" in refused.stderr
    assert refused.stdout == ""


def test_install_shell_writes_the_isolated_launcher(venv: Path) -> None:
    shown = run(venv / "bin/scponly-py-setup", "install-shell", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert first.startswith("#!/usr/bin/python3") and first.endswith(" -IS")
    assert str(venv) in shown.stdout  # imports the package the venv installed
