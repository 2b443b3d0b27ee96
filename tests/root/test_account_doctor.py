"""`check --user` on accounts made the old way and the safe way, with the host's stock
/etc/ssh/sshd_config and /etc/pam.d/sshd, inside a private namespace (users, /etc, /var)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.root.jail_namespace import Namespace

pytestmark = pytest.mark.root

OLD_SHELL = "/mnt/old/scponly-py"  # what install-shell used to write: a #! launcher
FRONT = "/mnt/front/scponly-py"  # an ELF with cap_wake_alarm+p, as the new front is


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    if os.geteuid() != 0 or shutil.which("setcap") is None:
        pytest.skip("needs root and setcap")
    if not os.path.exists("/etc/pam.d/sshd") or not os.path.exists("/etc/ssh/sshd_config"):
        pytest.skip("needs the host's stock sshd configuration")
    with Namespace(tmp_path_factory.mktemp("doctor")) as namespace:
        namespace.run(["mkdir", "-m", "0755", "/mnt/home", "/mnt/old", "/mnt/front"], check=True)
        namespace.path(OLD_SHELL).write_text("#!/usr/bin/python3 -IS\nimport scponly_py.cli\n")
        namespace.path(OLD_SHELL).chmod(0o755)
        shutil.copyfile("/bin/true", namespace.path(FRONT))
        namespace.path(FRONT).chmod(0o755)
        namespace.run(["setcap", "cap_wake_alarm+p", FRONT], check=True)
        # The old way: useradd -m, usermod -s, then what alice uploaded.
        namespace.run(["useradd", "-m", "-d", "/mnt/home/alice", "alice"], check=True)
        namespace.run(["usermod", "-s", OLD_SHELL, "alice"], check=True)
        home = namespace.path("/mnt/home/alice")
        uid = home.stat().st_uid
        (home / ".ssh").mkdir(mode=0o775)
        (home / ".pam_environment").write_text("LD_PRELOAD DEFAULT=/mnt/home/alice/x.so\n")
        (home / ".ssh/environment").write_text("LD_PRELOAD=/mnt/home/alice/x.so\n")
        for path in (home / ".ssh", home / ".pam_environment", home / ".ssh/environment"):
            os.chown(path, uid, uid)
        (home / ".ssh").chmod(0o775)
        # The safe way: root-owned home, the ELF front, sshd-config's Match block.
        namespace.run(["useradd", "-M", "-d", "/mnt/home/bob", "-s", FRONT, "bob"], check=True)
        namespace.run(["mkdir", "-m", "0755", "/mnt/home/bob"], check=True)
        block = namespace.setup("sshd-config", "--user", "bob", check=True).stdout.decode()
        stock = [
            line
            for line in namespace.path("/etc/ssh/sshd_config").read_text().splitlines()
            if not line.lower().startswith("subsystem")
        ]
        namespace.path("/mnt/sshd_config").write_text("\n".join(stock) + "\n" + block)
        yield namespace


def check(ns: Namespace, *args: str) -> tuple[int, list[dict[str, str]]]:
    result = ns.setup("check", *args, "--json")
    assert b"Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 3), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_old_way_account_is_reported(ns: Namespace) -> None:
    code, found = check(ns, "--user", "alice")
    assert code == 3
    by_code = {item["code"]: item for item in found}
    assert by_code["shell"]["severity"] == "high"
    assert "script" in by_code["shell"]["what"]
    assert by_code["pam-user-readenv"]["path"].startswith("/etc/pam.d/sshd:")
    assert "LD_PRELOAD" in by_code["pam-user-readenv"]["allows"]
    assert by_code["pam-environment"]["severity"] == "high"
    assert {"writable", "login-file", "sshd-allowtcpforwarding"} <= by_code.keys()
    text = ns.setup("check", "--user", "alice")
    lines = text.stdout.decode().splitlines()
    assert text.returncode == 3 and len(lines) == len(found)
    assert all("; fix: " in line for line in lines)


def test_fix_repairs_modes_then_checks_again(ns: Namespace) -> None:
    dry = ns.setup("check", "--user", "alice", "--dry-run")
    assert b"would fix: chmod 0755 /mnt/home/alice/.ssh" in dry.stdout
    assert ns.path("/mnt/home/alice/.ssh").stat().st_mode & 0o777 == 0o775
    fixed = ns.setup("check", "--user", "alice", "--fix")
    assert fixed.returncode == 3  # the planted files and the script shell are for the admin
    assert b"fixed: chmod 0755 /mnt/home/alice/.ssh (was uid" in fixed.stdout
    assert ns.path("/mnt/home/alice/.ssh").stat().st_mode & 0o777 == 0o755
    assert ns.path("/mnt/home/alice/.pam_environment").exists()
    _, found = check(ns, "--user", "alice")
    assert "writable" not in {item["code"] for item in found}


def test_safe_account_is_clean(ns: Namespace) -> None:
    assert check(ns, "--user", "bob", "-f", "/mnt/sshd_config") == (0, [])
    result = ns.setup("check", "--user", "bob", "-f", "/mnt/sshd_config")
    assert result.returncode == 0 and result.stdout.startswith(b"no findings")


def test_all_users_finds_both_shells_by_name(ns: Namespace) -> None:
    _, found = check(ns, "--all-users", "-f", "/mnt/sshd_config")
    assert {item["user"] for item in found} == {"alice"}


def test_errors_are_one_line(ns: Namespace) -> None:
    result = ns.setup("check", "--user", "nobody-here")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "Error: no such user: nobody-here"
    both = ns.setup("check", "/mnt", "--user", "alice")
    assert both.returncode == 2 and b"Traceback" not in both.stderr


def test_check_jail_fix_usage(ns: Namespace) -> None:
    assert ns.setup("check", "--all", "--dry-run").returncode == 2  # --dry-run needs --fix
    assert ns.setup("check", "--all", "--fix", "--json").returncode == 2
