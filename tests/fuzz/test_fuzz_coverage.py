"""The committed seed corpora keep reaching >= 90 % of the lines of every module they target.

fuzz/measure_coverage.py replays every corpus through its harness under
coverage.py (no atheris needed) and fails on a harness error or a module
below the threshold: the words tokenizer, decide(), the child environment,
WinSCP mode (session and runner) and every grammar module.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(
        importlib.util.find_spec("coverage") is None, reason="coverage not installed"
    ),
    # fuzz_svnroot builds its trees below /run (a trusted path) and chowns: root only.
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (fuzz_svnroot.py)"),
]


def test_seed_corpora_cover_90_percent_of_every_target_module() -> None:
    # A child process: coverage.py measures there without meeting a tracer pytest may run.
    result = subprocess.run(
        [sys.executable, str(FUZZ / "measure_coverage.py"), "--fail-under", "90", "--missing"],
        capture_output=True,
        text=True,
        check=False,
        cwd=FUZZ.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for module in ("winscp.py", "svnserve.py", "hashsum.py", "rsync.py", "scp.py", "sftp.py"):
        assert module in result.stdout
