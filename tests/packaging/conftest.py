"""Fixtures for the packaging tests: the frozen onedir tree and the built .deb, made once.

The frozen tree is the one tests/root/test_chroot_shell.py uses (packaging/build-frozen.sh
into SCPONLY_PY_FROZEN_BUILD, default /var/tmp/scponly-py-frozen), so a CI run builds it once
and reuses it while the sources are unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The distribution's own tools and Python (with python3-click and python3-pyelftools, the
# packages' dependencies), never a developer's PATH with pyenv or the dev venv first.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def system_env(**extra: str) -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root", **extra}


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool, path=SYSTEM_PATH) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run scripts/test.sh (scripts/setup-env.sh)")


@pytest.fixture(scope="session")
def deb(frozen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """packaging/debian/build-deb.sh's package, built from the cached frozen tree."""
    require_tools("dpkg-deb", "dpkg-shlibdeps")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        [str(REPO / "packaging/debian/build-deb.sh"), "--frozen", str(frozen_tree), str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=system_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out
    return path
