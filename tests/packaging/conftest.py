"""Helpers for the packaging tests (the .deb itself is the session fixture `deb` in
tests/conftest.py, shared with the fleet test)."""

from __future__ import annotations

import shutil
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
