"""A bounded run of every atheris harness (fuzz/), so CI fails on any finding.

Each harness runs a fixed number of inputs from its seed corpus (a few
seconds each); a crash, an oracle failure or a hang fails the test with the
reproducer's path. Longer campaigns: see fuzz/README.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
RUNS = {"words": 4000, "decide": 20000, "winscp": 4000, "serve": 400, "svnroot": 1000}

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed"),
]


@pytest.mark.parametrize("harness", sorted(RUNS))
def test_bounded_fuzz_run_finds_nothing(harness: str, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(FUZZ))
    try:
        import run_bounded  # noqa: PLC0415

        status = run_bounded.main(["--runs", str(RUNS[harness]), "--harness", harness])
    finally:
        sys.path.remove(str(FUZZ))
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert f"{harness:7} status=0" in out
