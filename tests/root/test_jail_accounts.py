"""Accounts around a jail: the Match block's group, /etc/shells, accounts deleted behind our back.

All in a private mount namespace (tests/root/jail_namespace.py) holding one small jail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.root.jail_namespace import JAIL, Namespace

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    namespace = Namespace(tmp_path_factory.mktemp("jail-accounts"))
    try:
        namespace.setup("create", JAIL, "--profile", "sftp", check=True)
        yield namespace
    finally:
        namespace.close()


def members(ns: Namespace, group: str) -> list[str]:
    result = ns.run(["getent", "group", group])
    if result.returncode != 0:
        return []
    return [name for name in result.stdout.decode().strip().split(":")[3].split(",") if name]


def test_add_user_joins_the_match_group_and_remove_user_leaves_it(ns: Namespace) -> None:
    assert ns.run(["getent", "group", "scponly"]).returncode != 0
    out = ns.setup("add-user", "gina", "--jail", JAIL, "--create", check=True).stdout.decode()
    assert "created group scponly" in out and members(ns, "scponly") == ["gina"]
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


def test_remove_user_forget(ns: Namespace) -> None:
    ns.setup("add-user", "liam", "--jail", JAIL, "--create", check=True)
    ns.run(["userdel", "liam"], check=True)
    ns.setup("remove-user", "liam", "--jail", JAIL, "--forget", check=True)
    result = ns.setup("update", JAIL, check=True)
    assert b"liam" not in result.stderr
