"""What local users plant cannot steer root's tools (issue 13): each plant is made as the user
first, then the root command runs, and nothing planted runs or is written through."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import JAIL, Namespace, jail_with_alice

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]
NOBODY = "65534"
DEPTH = 100_000
FILES = 20_000
DEEP_TREE = """
import os, sys
depth, files = int(sys.argv[2]), int(sys.argv[3])
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for index in range(files):
    os.close(os.open(f"f{index}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
for name in (b"\\x01\\xff\\n odd", b"-rf *"):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
os.mkfifo("fifo", dir_fd=fd)
os.close(os.open("setid", os.O_CREAT | os.O_WRONLY, 0o6755, dir_fd=fd))
os.chmod("setid", 0o6755, dir_fd=fd)
os.symlink("/etc/shadow", "shadow", dir_fd=fd)
for _ in range(depth):
    os.mkdir("d", dir_fd=fd)
    new = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = new
os.close(os.open("bottom", os.O_CREAT | os.O_WRONLY, 0o4755, dir_fd=fd))
os.chmod("bottom", 0o4755, dir_fd=fd)
"""


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with jail_with_alice(tmp_path) as namespace:
        namespace.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/var/tmp"], check=True)
        yield namespace


def as_user(ns: Namespace, user: str, argv: list[str]) -> None:
    """Run argv inside the namespace as `user` (a name or uid), without root's groups."""
    uid = ns.run(["id", "-u", user], check=True).stdout.decode().strip()
    gid = ns.run(["id", "-g", user], check=True).stdout.decode().strip()
    ns.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv], check=True)


def one_line_error(result: object) -> str:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    return stderr


def test_create_refuses_a_symlink_planted_in_tmp(ns: Namespace) -> None:
    passwd = ns.path("/etc/passwd").read_text()
    as_user(ns, NOBODY, ["ln", "-s", "/", "/var/tmp/newjail"])
    for extra in (["--dry-run"], []):
        result = ns.setup("create", "/var/tmp/newjail", "--state-dir", "/mnt/state", *extra)
        assert "/var/tmp/newjail is a symlink" in one_line_error(result)
        assert b"/etc/passwd" not in result.stdout
    as_user(ns, NOBODY, ["mkdir", "/var/tmp/userjail"])
    result = ns.setup("create", "/var/tmp/userjail", "--state-dir", "/mnt/state")
    assert "is not owned by root" in one_line_error(result)
    as_user(ns, NOBODY, ["mkdir", "-m", "0777", "/var/tmp/state"])
    result = ns.setup("create", "/mnt/jail2", "--state-dir", "/var/tmp/state")
    assert "state directory" in one_line_error(result)
    assert ns.path("/etc/passwd").read_text() == passwd
    assert not ns.path("/mnt/jail2/etc").exists()


def test_update_refuses_a_jail_path_that_now_leads_elsewhere(ns: Namespace) -> None:
    ns.run(["sh", "-c", f"mv {JAIL} /mnt/moved && mkdir -m 0755 {JAIL}"], check=True)
    result = ns.setup("update", "--all")
    assert "not the directory its manifest recorded" in one_line_error(result)
    assert os.listdir(ns.path(JAIL)) == []


def test_a_deep_hostile_upload_cannot_stop_check_or_purge(ns: Namespace) -> None:
    files = str(ns.path(JAIL) / "home/alice/files")
    inside = f"{JAIL}/home/alice/files"
    started = time.monotonic()
    as_user(ns, "alice", [sys.executable, "-c", DEEP_TREE, inside, str(DEPTH), str(FILES)])
    made = time.monotonic() - started
    assert os.path.islink(f"{files}/shadow")

    started = time.monotonic()
    result = ns.setup("check", JAIL, "--no-sshd", "--json")
    checked = time.monotonic() - started
    assert result.returncode == 3 and b"Traceback" not in result.stderr, result.stderr
    (found,) = json.loads(result.stdout)["jails"].values()
    codes = {(item["code"], item["path"]) for item in found}
    assert ("uploaded", "/home/alice/files/setid") in codes
    assert ("symlink", "/home/alice/files/shadow") in codes
    deep = [item for item in found if item["path"].endswith("/d/d/bottom")]
    assert [item["code"] for item in deep] == ["uploaded"]
    assert f"...{DEPTH + 4 - 24} more..." in deep[0]["path"]

    started = time.monotonic()
    ns.setup("remove-user", "alice", "--jail", JAIL, "--purge", check=True)
    purged = time.monotonic() - started
    assert not os.path.exists(ns.path(JAIL) / "home/alice")
    assert ns.path("/etc/shadow").exists()
    print(
        f"depth {DEPTH}, {FILES} files: made {made:.1f}s check {checked:.1f}s purge {purged:.1f}s"
    )


def test_admin_errors_are_one_line(ns: Namespace) -> None:
    result = ns.setup("install-shell", "--dest", "/nonexistent/dir/scponly-py", "--no-register")
    assert "No such file or directory" in one_line_error(result)
    result = ns.setup("check", "/mnt/missing", "--no-sshd")
    assert "no such directory" in one_line_error(result)
    result = ns.setup("create", "relative/jail")
    assert "absolute path" in one_line_error(result)
    result = ns.setup("create", "/mnt/../etc")
    assert "'..'" in one_line_error(result)


def test_install_sh_build_venv_is_never_a_users(ns: Namespace) -> None:
    """packaging/install.sh's build venv step, run alone: a planted /var/tmp venv never runs."""
    ran = "/var/tmp/ran-as-root"
    as_user(ns, NOBODY, ["mkdir", "-p", "/var/tmp/scponly-py-build/bin"])
    as_user(
        ns,
        NOBODY,
        ["sh", "-c", f"printf '#!/bin/sh\\ntouch {ran}\\n' > /var/tmp/scponly-py-build/bin/python"
         " && chmod 755 /var/tmp/scponly-py-build/bin/python"],
    )  # fmt: skip
    step = f'. {REPO}/packaging/build-venv.sh && build_venv && echo "$VENV"'
    planted = ns.run(
        ["env", "SCPONLY_PY_VENV=/var/tmp/scponly-py-build", "bash", "-c", step], timeout=120
    )
    assert planted.returncode == 1 and b"untrusted path" in planted.stderr, planted.stderr
    default = ns.run(["bash", "-c", step], timeout=120)
    assert default.returncode == 0, default.stderr
    venv = default.stdout.decode().split()[-1]
    assert venv == "/var/cache/scponly-py/build-venv"
    assert os.stat(ns.path(venv)).st_uid == 0
    assert not ns.path(ran).exists()
