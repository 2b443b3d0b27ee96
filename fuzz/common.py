"""Shared by the atheris harnesses: import path, named policies, oracles, seeds.

The harnesses import the project and the test oracles (tests/oracles.py) and
named policies (tests/attacks/corpus.py), so a fuzzer, a property test and
the attack corpus all judge decisions by the same rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The policies a decide() fuzz input can select with its first byte.
POLICY_NAMES = (
    "all",
    "sftp-only",
    "read-only",
    "write-only",
    "no-links",
    "default",
    "scp-only",
    "winscp",
    "tuned",
)
# The client environment every fuzzed request carries: sane and hostile variables.
ENVIRONMENT = (
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "../../home/alice/locale"),
    ("LD_PRELOAD", "/home/alice/evil.so"),
    ("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22"),
)


def decode(data: bytes) -> str:
    """Bytes as the login shell decodes its arguments (UTF-8, surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def import_instrumented() -> None:
    """Import every module of the decision core (atheris instruments what is imported here)."""
    import scponly_py.childenv  # noqa: PLC0415
    import scponly_py.decide  # noqa: PLC0415
    import scponly_py.policy  # noqa: PLC0415
    import scponly_py.programs  # noqa: PLC0415
    import scponly_py.programs.shortopts  # noqa: PLC0415
    import scponly_py.words  # noqa: PLC0415

    for name in scponly_py.programs.PROGRAMS:
        scponly_py.programs.grammar(name)
