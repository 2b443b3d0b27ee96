#!/usr/bin/env python3
"""atheris harness for decide(): `python fuzz/fuzz_decide.py [libFuzzer options] [corpus dirs]`.

Input: the first byte selects a named policy (common.POLICY_NAMES: all
programs, sftp only, read-only, write-only, links = false, defaults, scp only,
winscp, all programs with start_dir/umask/svn settings), the rest is the SSH
command (decoded like the login decodes it). Every request carries a client
environment with sane and hostile variables (common.ENVIRONMENT).

Oracles (tests/oracles.py; any failure is a crash that libFuzzer saves):
- no exception escapes decide() (it returns Allow or Refuse; Refusal is internal);
- an Allow's argv[0] is the configured absolute path of an enabled program;
- an Allow holds only options the program's table lists as safe;
- an scp Allow has exactly one of -t/-f; an rsync Allow has --server first;
- no Allow for a command with control bytes; access modes hold; env allowlisted.
"""

from __future__ import annotations

import atheris
import common

with atheris.instrument_imports(include=["scponly_py"]):
    common.import_instrumented()
    from scponly_py.decide import decide
from tests import oracles
from tests.support import make_request

POLICIES = common.policies()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    effective = POLICIES[data[0] % len(POLICIES)]
    command = common.decode(data[1:])
    request = make_request(command, environment=common.ENVIRONMENT)
    decision = decide(request, effective)
    oracles.check(command, request, effective, decision)


if __name__ == "__main__":
    common.fuzz(test_one_input)
