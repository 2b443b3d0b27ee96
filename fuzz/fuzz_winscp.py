#!/usr/bin/env python3
"""atheris harness for WinSCP's SCP-mode line protocol: `python fuzz/fuzz_winscp.py [options]`.

Input: the first byte selects a named policy (as in fuzz_decide.py), the rest
is split at newlines into the lines WinSCP would type into the session.
Every line goes through `Session.handle`; every RUN action it returns must
pass the same oracles as a login's Allow (configured absolute path, scrubbed
environment), plus the WinSCP rules: only the allowlisted tools or scp, `--`
before operands, access modes and `links` respected, no chmod that sets
set-user-ID/set-group-ID bits, and nothing run for a line with control bytes.
Every path is a directory for `cd` except names ending in ".txt".
Skipped (exits 0) when scponly_py.winscp does not exist.
"""

from __future__ import annotations

import atheris
import common

with atheris.instrument_imports(include=["scponly_py"]):
    common.import_instrumented()
    try:
        from scponly_py import winscp
    except ImportError:
        winscp = None
from tests import oracles
from tests.support import make_request

POLICIES = common.policies()
WRITE_TOOLS = {"chmod", "mkdir", "rm", "mv", "ln", "cp"}
MAX_LINES = 16


def check_run(line: str, effective, request, decision) -> None:
    if oracles.has_control_character(line):
        raise AssertionError(f"ran something for a line with control bytes: {line!r}")
    tool = decision.program.removeprefix("winscp:")
    if tool == "scp":
        oracles.check("scp", request, effective, decision.replace(program="scp"))
        return
    if tool not in winscp.TOOLS:
        raise AssertionError(f"ran an unlisted program: {decision!r}")
    if decision.path != dict(effective.paths).get(tool) or not decision.path.startswith("/"):
        raise AssertionError(f"not the configured absolute path: {decision!r}")
    if decision.argv[0] != decision.path or "--" not in decision.argv:
        raise AssertionError(f"argv[0] or -- missing: {decision!r}")
    env = dict(decision.env)
    if not set(env) <= oracles.ENV_NAMES:
        raise AssertionError(f"environment not allowlisted: {decision!r}")
    access = effective.access
    if access == "read-only" and tool in WRITE_TOOLS:
        raise AssertionError(f"read-only account modifies: {decision!r}")
    if access == "write-only" and tool in {"ls", "cp"}:
        raise AssertionError(f"write-only account reads: {decision!r}")
    if not effective.links and tool in {"ln", "cp"}:
        raise AssertionError(f"links disabled but {tool} ran: {decision!r}")
    if tool == "chmod":
        mode = decision.argv[decision.argv.index("--") + 1]
        if (mode.isdigit() and int(mode, 8) & 0o6000) or (not mode.isdigit() and "s" in mode):
            raise AssertionError(f"chmod sets set-id bits: {decision!r}")


def is_directory(path: str) -> bool:
    return not path.endswith(".txt")


def test_one_input(data: bytes) -> None:
    if winscp is None or not data:
        return
    effective = POLICIES[data[0] % len(POLICIES)]
    if "winscp" not in effective.programs:
        effective = effective.replace(programs=effective.programs | {"winscp", "scp"})
    request = make_request(None)
    session = winscp.Session(request, effective, is_directory)
    for raw in data[1:].split(b"\n")[:MAX_LINES]:
        line = common.decode(raw)
        for action in session.handle(line):
            if action[0] == winscp.RUN:
                check_run(line, effective, request, action[1])
            elif action[0] == winscp.EXIT:
                return


if __name__ == "__main__":
    common.fuzz(test_one_input)
