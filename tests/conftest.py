"""Shared pytest set-up: root-only tests skip cleanly for a non-root developer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays a fixed set of examples (a red CI must mean a regression, not a new random find);
# developer runs keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
# Tests import helpers such as tests.e2e.sandbox by package path.
sys.path.insert(0, str(REPO))
# The frozen onedir build is cached here between runs (packaging/build-frozen.sh skips the build
# while the sources are unchanged); the demo uses the same place: root's cache, never /var/tmp,
# where a user could plant a tree with a matching source hash.
FROZEN_BUILD_DIR = Path(os.environ.get("SCPONLY_PY_FROZEN_BUILD", "/var/cache/scponly-py/frozen"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip_root = pytest.mark.skip(reason="needs root (namespaces, chroot, mknod); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip_root)


@pytest.fixture(scope="session")
def frozen_tree() -> Path:
    """The onedir build (scponly-py, scponly-pyc, _internal/), made once and cached."""
    if os.geteuid() != 0:
        pytest.skip("the frozen build installs PyInstaller into the shared venv: root only")
    result = subprocess.run(
        [str(REPO / "packaging" / "build-frozen.sh"), str(FROZEN_BUILD_DIR)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return FROZEN_BUILD_DIR / "scponly-py"


@pytest.fixture(scope="session")
def deb(frozen_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """packaging/debian/build-deb.sh's package, built once from the cached frozen tree."""
    from tests.packaging.conftest import require_tools, system_env  # noqa: PLC0415

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
