"""Shared pytest set-up: root-only tests skip cleanly for a non-root developer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests import helpers such as tests.e2e.sandbox by package path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip_root = pytest.mark.skip(reason="needs root (namespaces, chroot, mknod); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip_root)
