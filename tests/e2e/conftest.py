"""Fixtures for end-to-end tests through a real OpenSSH sshd in private namespaces."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sandbox import SSHD, Sandbox

NEEDED = ("unshare", "nsenter", "ssh", "scp", "sftp", "ssh-keygen")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.root)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def sandbox_factory():
    """Create sandboxes (each its own sshd and namespaces); all are torn down after the module."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root for namespaces")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing or not os.path.exists(SSHD):
        pytest.skip(f"missing {missing or SSHD}; run scripts/test.sh to install them")
    created: list[Sandbox] = []

    def create(sshd_extra: str = "", **options: Any) -> Sandbox:
        """`Sandbox.create(sshd_extra, **options)`, stopped with the module."""
        sandbox = Sandbox.create(sshd_extra, **options)
        created.append(sandbox)
        return sandbox

    yield create
    for sandbox in created:
        sandbox.stop()
