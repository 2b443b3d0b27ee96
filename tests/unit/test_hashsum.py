"""hashsum: `md5sum`/`sha1sum`/`sha256sum`, bare or with one absolute path, as rclone sends them.

The forms come from rclone's sftp backend (backend/sftp/sftp.go, 1.60.1 and
master): a bare `md5sum` to test the command on empty input, then
`md5sum /ABS/PATH` with the path escaped by backslashes. The digests are
checked against hashlib by running the allowed argv for real.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from scponly_py.decide import decide
from scponly_py.outcome import Allow, Refuse
from scponly_py.policy import BUILTIN_PATHS, ConfigError, normalise
from tests import oracles
from tests.support import make_policy, make_request


def run(command: str, programs=("sftp", "hashsum"), **kwargs) -> Allow | Refuse:
    policy = make_policy(programs=programs, **kwargs)
    request = make_request(command)
    decision = decide(request, policy)
    oracles.check(command, request, policy, decision)
    return decision


@pytest.mark.parametrize("tool", ["md5sum", "sha1sum", "sha256sum"])
def test_rclone_forms_run_the_configured_program(tool: str) -> None:
    probe = run(tool)
    assert isinstance(probe, Allow) and probe.argv == (BUILTIN_PATHS[tool],)
    escaped = run(rf"{tool} /home/alice/My\ Files/it\'s\ \(1\).txt")
    assert isinstance(escaped, Allow), escaped
    assert escaped.argv == (BUILTIN_PATHS[tool], "--", "/home/alice/My Files/it's (1).txt")
    assert escaped.program == "hashsum"


def test_paths_section_names_each_program() -> None:
    decision = run("/usr/bin/sha1sum /x", paths={"sha1sum": "/opt/coreutils/sha1sum"})
    assert isinstance(decision, Allow) and decision.path == "/opt/coreutils/sha1sum"
    assert normalise({"paths": {"md5sum": "/opt/md5sum"}})["paths"]["md5sum"] == "/opt/md5sum"
    with pytest.raises(ConfigError, match="unknown program 'hashsum'"):
        normalise({"paths": {"hashsum": "/usr/bin/md5sum"}})


def test_read_only_may_hash_write_only_may_not() -> None:
    assert isinstance(run("md5sum /home/alice/a", access="read-only"), Allow)
    for command in ("md5sum", "sha256sum /home/alice/a"):
        refused = run(command, access="write-only")
        assert isinstance(refused, Refuse) and "write-only" in refused.reason


@pytest.mark.parametrize(
    "command",
    [
        "md5sum -c /home/alice/list",
        "md5sum --check /home/alice/list",
        "md5sum /home/alice/a --tag",
        "md5sum -- /home/alice/a",
        "md5sum -",
        "md5sum /a /b",
        "md5sum a",
        "md5sum ./a",
        "md5sum ../etc/shadow",
        "md5sum /home/alice/../bob/x",
        "md5sum /home/alice/./x",
        "md5sum //etc/shadow",
        "md5sum /home/alice/dir/",
        "md5sum ''",
        "sha512sum /a",
        "md5 -r /a",
        "rclone md5sum /a",
    ],
)
def test_everything_else_is_refused(command: str) -> None:
    assert isinstance(run(command), Refuse)


def test_not_enabled_by_default() -> None:
    decision = run("md5sum /home/alice/a", programs=("sftp", "scp"))
    assert isinstance(decision, Refuse)
    assert decision.reason == "hashsum is not enabled for this account"


def test_allowed_argv_prints_the_real_digest(tmp_path: Path) -> None:
    target = tmp_path / "a file's name"
    target.write_bytes(b"rclone check\n" * 1000)
    escaped = str(target).replace(" ", "\\ ").replace("'", "\\'")
    for tool, digest in (("md5sum", hashlib.md5), ("sha256sum", hashlib.sha256)):
        decision = run(f"{tool} {escaped}")
        assert isinstance(decision, Allow)
        output = subprocess.run(decision.argv, capture_output=True, check=True).stdout
        assert output.split()[0].decode() == digest(target.read_bytes()).hexdigest()
        empty = run(tool)
        assert isinstance(empty, Allow)
        output = subprocess.run(empty.argv, input=b"", capture_output=True, check=True).stdout
        assert output.split()[0].decode() == digest(b"").hexdigest()
