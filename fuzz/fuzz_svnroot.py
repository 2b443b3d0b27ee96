#!/usr/bin/env python3
"""atheris harness for svnserve's tree check, `root_problems()`: `python fuzz/fuzz_svnroot.py`.

Input: pairs of bytes (operation, argument) that build a directory tree
under a fresh `svn_root` in a root-owned scratch directory below /run (a
trusted path; removed after each input): make a directory (and enter it),
a file, a symlink (to /etc, /tmp, `..`, a sibling, a missing path, ...), a
repository (`format` and `db/`), chmod or chown the last entry (uid/gid 0
or 1000), go up. Needs root for chown (without it the chowns are skipped).

Oracle: `root_problems` never raises, and when it reports nothing then,
walking the tree independently, nobody but root can change what svnserve
runs: every directory on the way to a repository and everything in a
repository's hooks/ and conf/ (a symlink there: its target) is root's and
not writable by group or others, and no symlink lies outside a repository.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import atheris
import common

with atheris.instrument_imports(include=["scponly_py"]):
    common.import_instrumented()
    from scponly_py.programs import svnserve

NAMES = ("format", "db", "hooks", "conf", "locks", "repo", "a", "b", "pre-commit", "x.conf")
TARGETS = ("/etc", "/tmp", "..", "a", "hooks", "/nonexistent", "db", "../../a")
MAX_OPERATIONS = 48
MAX_DEPTH = 6
SCRATCH_PARENT = "/run" if os.geteuid() == 0 else None  # a trusted path when root


def build(root: str, data: bytes) -> None:
    """Interpret `data` as (operation, argument) pairs that build the tree below `root`."""
    os.mkdir(root, 0o755)
    here = [root]
    last = root
    for index in range(0, min(len(data) - 1, 2 * MAX_OPERATIONS), 2):
        operation, argument = data[index] % 8, data[index + 1]
        where = os.path.join(here[-1], NAMES[argument % len(NAMES)])
        try:
            if operation in (0, 1):
                os.mkdir(where, 0o755)
                last = where
                if operation == 1 and len(here) < MAX_DEPTH:
                    here.append(where)
            elif operation == 2:
                os.close(os.open(where, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                last = where
            elif operation == 3:
                os.symlink(TARGETS[argument // len(NAMES) % len(TARGETS)], where)
                last = where
            elif operation == 4 and not os.path.islink(last):
                os.chmod(last, 0o700 | (argument & 0o77) | (stat.S_ISVTX if argument & 0x40 else 0))
            elif operation == 5 and os.geteuid() == 0:
                os.lchown(last, 1000 * (argument & 1), 1000 * (argument >> 1 & 1))
            elif operation == 6 and len(here) > 1:
                here.pop()
            elif operation == 7:
                os.close(
                    os.open(
                        os.path.join(here[-1], "format"),
                        os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                        0o644,
                    )
                )
                os.mkdir(os.path.join(here[-1], "db"), 0o755)
        except OSError:  # the name exists already (O_EXCL: never through a symlink)
            continue


def trusted_entry(path: str, info: os.stat_result) -> bool:
    return info.st_uid == 0 and not info.st_mode & 0o022


def violations(path: str, in_repository: bool) -> list[str]:
    """What lets a non-root account change what svnserve runs below `path` (independent walk)."""
    names = sorted(os.listdir(path))
    repository = (
        not in_repository
        and "format" in names
        and "db" in names
        and os.path.isdir(os.path.join(path, "db"))
    )
    found = []
    for name in names:
        if repository and name not in ("hooks", "conf"):
            continue
        where = os.path.join(path, name)
        info = os.lstat(where)
        inside = in_repository or repository
        if stat.S_ISLNK(info.st_mode):
            if not inside:
                found.append(f"{where}: symlink outside a repository")
            elif os.path.exists(where) and not trusted_entry(where, os.stat(where)):
                found.append(f"{where}: symlink to an untrusted target")
            continue
        if not stat.S_ISDIR(info.st_mode) and not inside:
            continue
        if not trusted_entry(where, info):
            found.append(f"{where}: not root's or writable by others")
        elif stat.S_ISDIR(info.st_mode):
            found += violations(where, inside)
    return found


def test_one_input(data: bytes) -> None:
    scratch = tempfile.mkdtemp(prefix="scponly-py-fuzz-svn-", dir=SCRATCH_PARENT)
    try:
        root = os.path.join(scratch, "svn")
        build(root, data)
        reported = svnserve.root_problems(root)
        missed = [] if reported else violations(root, in_repository=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if missed:
        raise AssertionError(f"root_problems reported nothing, but {missed}")


if __name__ == "__main__":
    common.fuzz(test_one_input)
