"""Accounts around a jail: the Match block's group, /etc/shells, accounts deleted behind our back.

All in a private mount namespace (tests/root/jail_namespace.py) holding one small jail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.root.jail_namespace import JAIL, Namespace

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    with Namespace(tmp_path_factory.mktemp("jail-accounts")) as namespace:
        namespace.setup("create", JAIL, "--profile", "sftp", check=True)
        yield namespace


def members(ns: Namespace, group: str) -> list[str]:
    result = ns.run(["getent", "group", group])
    if result.returncode != 0:
        return []
    return [name for name in result.stdout.decode().strip().split(":")[3].split(",") if name]


def test_add_user_joins_the_match_group_and_remove_user_leaves_it(ns: Namespace) -> None:
    assert ns.run(["getent", "group", "scponly"]).returncode != 0
    out = ns.setup("add-user", "gina", "--jail", JAIL, "--create", check=True).stdout.decode()
    assert "groupadd scponly" in out and members(ns, "scponly") == ["gina"]
    ns.setup("add-user", "hank", "--jail", JAIL, "--create", "--group", "sftponly", check=True)
    assert members(ns, "sftponly") == ["hank"] and members(ns, "scponly") == ["gina"]
    ns.setup("remove-user", "gina", "--jail", JAIL, check=True)
    ns.setup("remove-user", "hank", "--jail", JAIL, check=True)
    assert members(ns, "scponly") == [] and members(ns, "sftponly") == []


def test_a_member_before_add_user_stays_one_after_remove_user(ns: Namespace) -> None:
    ns.run(["groupadd", "-f", "scponly"], check=True)
    ns.run(["useradd", "-M", "-U", "-G", "scponly", "ivan"], check=True)
    ns.setup("add-user", "ivan", "--jail", JAIL, check=True)
    ns.setup("remove-user", "ivan", "--jail", JAIL, check=True)
    assert "ivan" in members(ns, "scponly")


def test_only_our_shells_go_into_etc_shells(ns: Namespace) -> None:
    before = ns.path("/etc/shells").read_text()
    ns.setup(
        "add-user", "judy", "--jail", JAIL, "--create", "--shell", "/usr/sbin/nologin", check=True
    )
    assert ns.path("/etc/shells").read_text() == before
    ns.setup("remove-user", "judy", "--jail", JAIL, check=True)


def test_account_deleted_with_userdel_keeps_the_jail_working(ns: Namespace) -> None:
    ns.setup("add-user", "kate", "--jail", JAIL, "--create", check=True)
    ns.path(f"{JAIL}/home/kate/files/data").write_text("kept")
    ns.run(["userdel", "kate"], check=True)
    for argv in (("create", JAIL, "--profile", "sftp"), ("update", JAIL)):
        result = ns.setup(*argv)
        assert result.returncode == 0, result.stderr
        assert b"Traceback" not in result.stderr
        assert b"kate has no account" in result.stderr and b"--forget" in result.stderr
    assert "kate:" not in ns.path(f"{JAIL}/etc/passwd").read_text()
    assert ns.path(f"{JAIL}/home/kate/files/data").read_text() == "kept"
    pruned = ns.setup("update", JAIL, "--prune", check=True)
    assert b"forget kate" in pruned.stdout
    assert b"no account" not in ns.setup("update", JAIL, check=True).stderr
    assert ns.path(f"{JAIL}/home/kate/files/data").exists()  # not empty: kept, as before


ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/shells")
PYC = "/usr/lib/scponly-py/scponly-pyc"


def snapshot(ns: Namespace) -> dict[str, bytes]:
    """The account files and the jail's passwd/group, to show a dry run wrote nothing."""
    paths = (*ACCOUNT_FILES, f"{JAIL}/etc/passwd", f"{JAIL}/etc/group")
    return {path: ns.path(path).read_bytes() for path in paths}


def test_add_user_dry_run_lists_useradd_and_group_operations_and_writes_nothing(
    ns: Namespace,
) -> None:
    before = snapshot(ns)
    result = ns.setup(
        "add-user", "nora", "--jail", JAIL, "--create", "--group", "dryrun", "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    ops = json.loads(result.stdout)["operations"]
    home = f"{JAIL}//home/nora"
    assert ops[0] == {"op": "useradd", "name": "nora", "home": home, "shell": PYC}
    assert {"op": "groupadd", "group": "dryrun"} in ops
    assert {"op": "join-group", "name": "nora", "group": "dryrun"} in ops
    text = ns.setup("add-user", "nora", "--jail", JAIL, "--create", "--dry-run", check=True)
    assert f"useradd  nora  home {home}, shell {PYC}".encode() in text.stdout
    assert snapshot(ns) == before
    assert ns.run(["getent", "passwd", "nora"]).returncode != 0
    assert not ns.path(f"{JAIL}/home/nora").exists()


def test_add_user_dry_run_lists_usermod_and_the_home_and_writes_nothing(ns: Namespace) -> None:
    ns.run(["useradd", "-M", "-U", "-d", "/home/olga", "-s", "/bin/sh", "olga"], check=True)
    before = snapshot(ns)
    result = ns.setup("add-user", "olga", "--jail", JAIL, "--dry-run", "--json", check=True)
    ops = json.loads(result.stdout)["operations"]
    home = f"{JAIL}//home/olga"
    assert {"op": "usermod", "name": "olga", "home": home, "shell": PYC} in ops
    assert {"op": "join-group", "name": "olga", "group": "scponly"} in ops
    assert {"op": "dir", "path": "/home/olga", "mode": "0755", "uid": 0, "gid": 0} in ops
    assert snapshot(ns) == before and not ns.path(f"{JAIL}/home/olga").exists()
    assert ns.run(["getent", "passwd", "olga"], check=True).stdout.endswith(
        b":/home/olga:/bin/sh\n"
    )


def test_remove_user_purge_dry_run_lists_the_tree_removal_and_writes_nothing(
    ns: Namespace,
) -> None:
    ns.setup("add-user", "pia", "--jail", JAIL, "--create", check=True)
    ns.path(f"{JAIL}/home/pia/files/data").write_text("uploaded")
    before = snapshot(ns)
    argv = ("remove-user", "pia", "--jail", JAIL, "--purge", "--dry-run")
    text = ns.setup(*argv, check=True).stdout.decode()
    assert "rmtree   /home/pia" in text and "userdel  pia" in text
    assert "gpasswd  pia  leave group scponly" in text
    ops = json.loads(ns.setup(*argv, "--json", check=True).stdout)["operations"]
    assert ops[:3] == [
        {"op": "remove-tree", "path": "/home/pia"},
        {"op": "leave-group", "name": "pia", "group": "scponly"},
        {"op": "userdel", "name": "pia"},
    ]
    assert snapshot(ns) == before
    assert ns.path(f"{JAIL}/home/pia/files/data").read_text() == "uploaded"
    done = ns.setup("remove-user", "pia", "--jail", JAIL, "--purge", check=True).stdout.decode()
    assert "[1/3] rmtree   /home/pia" in done
    assert not ns.path(f"{JAIL}/home/pia").exists()
    assert ns.run(["getent", "passwd", "pia"]).returncode != 0


def test_remove_user_forget(ns: Namespace) -> None:
    ns.setup("add-user", "liam", "--jail", JAIL, "--create", check=True)
    ns.run(["userdel", "liam"], check=True)
    ns.setup("remove-user", "liam", "--jail", JAIL, "--forget", check=True)
    result = ns.setup("update", JAIL, check=True)
    assert b"liam" not in result.stderr


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestTestTestTestTestTestTestTestTestTe t@x"
TOML_BATCH = f"""
[[user]]
name = "tess"
keys = "{KEY}"

[[user]]
name = "uma"
uid = 47001
writable = "upload"
"""


def test_batch_from_toml_then_again_changes_nothing(ns: Namespace) -> None:
    ns.path("/mnt/batch.toml").write_text(TOML_BATCH)
    ns.setup("add-user", "--from", "/mnt/batch.toml", "--jail", JAIL, check=True)
    assert ns.run(["id", "-u", "uma"], check=True).stdout.strip() == b"47001"
    assert {"tess", "uma"} <= set(members(ns, "scponly"))
    passwd = ns.path(f"{JAIL}/etc/passwd").read_text()
    assert "tess:" in passwd and "uma:" in passwd
    keys = ns.path(f"{JAIL}/home/tess/.ssh/authorized_keys")
    info = keys.stat()
    # Root-owned, outside the writable tree: the user cannot add options or keys of her own.
    assert keys.read_text() == KEY + "\n" and (info.st_uid, info.st_mode & 0o777) == (0, 0o644)
    assert ns.path(f"{JAIL}/home/uma/upload").stat().st_uid == 47001
    shadow = ns.path("/etc/shadow").read_text()
    assert "\ntess:*:" in shadow and "\numa:*:" in shadow
    again = ns.setup("add-user", "--from", "/mnt/batch.toml", "--jail", JAIL, check=True)
    assert b": 0 operations" in again.stdout and b"created" not in again.stdout


def test_batch_with_a_bad_row_applies_nothing(ns: Namespace) -> None:
    before = ns.path("/etc/passwd").read_text(), ns.path(f"{JAIL}/etc/passwd").read_text()
    ns.path("/mnt/bad.csv").write_text("name,uid,writable\nvera,,files\nwade,,../x\n")
    result = ns.setup("add-user", "--from", "/mnt/bad.csv", "--jail", JAIL)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert result.stderr.decode().strip() == (
        "Error: /mnt/bad.csv:3: writable '../x': one plain directory name"
    )
    ns.path("/mnt/clash.csv").write_text("name,uid\nvera,\nwade,47001\n")  # uma's uid
    result = ns.setup("add-user", "--from", "/mnt/clash.csv", "--jail", JAIL)
    assert result.returncode == 1 and b"line 3: uid 47001 is uma's" in result.stderr
    after = ns.path("/etc/passwd").read_text(), ns.path(f"{JAIL}/etc/passwd").read_text()
    assert after == before
