"""Shared by the atheris harnesses: import path, named policies, oracles, seeds.

The harnesses import the project and the test oracles (tests/oracles.py) and
named policies (tests/attacks/corpus.py), so a fuzzer, a property test and
the attack corpus all judge decisions by the same rules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
# Selected by the bytes after POLICY_NAMES: policies the config loader would not build
# (a compiled config may predate a rule), so that the grammars' own checks run.
EXTRA_POLICIES = {
    # svnserve alone, read-write, with --tunnel-user
    "svn-only": {"programs": ("svnserve",), "svn_root": "/srv/svn", "svn_tunnel_user": True},
    # svnserve enabled without svn_root; a relative svn_root
    "svn-unconfigured": {"programs": ("svnserve", "hashsum")},
    "svn-relative": {"programs": ("svnserve", "hashsum"), "access": "read-only", "svn_root": "srv"},
    # WinSCP mode logging its built-ins; `ls` configured by a relative path
    "winscp-debug": {"programs": ("winscp", "scp"), "log_level": "debug", "paths": {"ls": "ls"}},
}
# The client environment every fuzzed request carries: sane and hostile variables.
ENVIRONMENT = (
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "../../home/alice/locale"),
    ("LD_PRELOAD", "/home/alice/evil.so"),
    ("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22"),
)


def policies() -> list:
    """The policies an input's first byte selects (modulo): POLICY_NAMES, then EXTRA_POLICIES."""
    from tests.attacks.corpus import policy  # noqa: PLC0415
    from tests.support import make_policy  # noqa: PLC0415

    named = [policy(name) for name in POLICY_NAMES]
    return named + [make_policy(**settings) for settings in EXTRA_POLICIES.values()]


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """A harness's entry point: libFuzzer runs `test_one_input` with this command line's options."""
    import atheris  # noqa: PLC0415 - measure_coverage.py never gets here, and needs no atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def selector(name: str) -> bytes:
    """The first byte that selects policy `name`."""
    return bytes([[*POLICY_NAMES, *EXTRA_POLICIES].index(name)])


def decode(data: bytes) -> str:
    """Bytes as the login shell decodes its arguments (UTF-8, surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def import_instrumented() -> None:
    """Import every module of the decision core (atheris instruments what is imported here)."""
    import scponly_py.decide  # noqa: PLC0415
    import scponly_py.policy  # noqa: PLC0415
    import scponly_py.programs  # noqa: PLC0415
    import scponly_py.words  # noqa: PLC0415

    for name in scponly_py.programs.PROGRAMS:
        scponly_py.programs.grammar(name)
