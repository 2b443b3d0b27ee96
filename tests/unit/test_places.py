"""Places a login uses that others could change: svn_root's tree and the start directory.

svnserve runs `REPO/hooks/*` as the account with `REPO/conf/hooks-env`, and finds the
*deepest* repository on the URL's path (libsvn_repos svn_repos_find_root_path), so
everything from / down to each repository and its hooks/ and conf/ must be root's.
A start directory others can write lets them plant symlinks that the account's uploads
follow. Both are judged by the one trusted-path rule (scponly_py/trusted.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scponly_py import shell
from scponly_py.programs import svnserve
from tests.support import make_policy, make_request

OTHER = 4242  # an account that is not root
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown plants)")


@pytest.fixture
def base() -> Iterator[Path]:
    """A fresh root-owned directory under sticky /tmp: trusted by the rule."""
    path = Path(tempfile.mkdtemp(prefix="places-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def repository(path: Path, writer: int = OTHER) -> Path:
    """svnadmin's layout, root's, with db/ and locks/ given to `writer` as commits need."""
    for directory in ("db/revs", "locks", "hooks", "conf"):
        (path / directory).mkdir(parents=True)
    (path / "format").write_text("5\n")
    (path / "hooks" / "post-commit.tmpl").write_text("#!/bin/sh\n")
    (path / "conf" / "svnserve.conf").write_text("[general]\n")
    for directory in ("db", "db/revs", "locks"):
        os.chown(path / directory, writer, writer)
    return path


def reasons(root: Path) -> list[str]:
    return [f"{where} {why}" for where, why in svnserve.root_problems(str(root))]


def test_svnadmins_layout_with_db_and_locks_writable_passes(base: Path) -> None:
    repository(base / "svn" / "project")
    repository(base / "svn" / "group" / "nested")
    assert reasons(base / "svn") == []


def test_svn_root_that_is_itself_a_repository_has_its_hooks_checked(base: Path) -> None:
    root = repository(base / "project")
    assert reasons(root) == []
    os.chown(root / "hooks", OTHER, OTHER)
    assert reasons(root) == [f"{root}/hooks is not owned by root (uid {OTHER})"]


@pytest.mark.skipif(shutil.which("svnadmin") is None, reason="subversion missing")
def test_a_real_svnadmin_repository_passes(base: Path) -> None:
    subprocess.run(["svnadmin", "create", str(base / "project")], check=True)
    assert reasons(base) == []


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        # The account owns hooks/: it writes a hook, svnserve runs it as the account.
        (lambda repo: os.chown(repo / "hooks", OTHER, OTHER), "hooks is not owned by root"),
        (lambda repo: (repo / "hooks").chmod(0o775), "hooks is writable by group or others"),
        (lambda repo: (repo / "hooks").chmod(0o1777), "hooks is writable by group or others"),
        # A hook file of its own, or one it can rewrite.
        (
            lambda repo: os.chown(repo / "hooks" / "post-commit.tmpl", OTHER, OTHER),
            "post-commit.tmpl is not owned by root",
        ),
        (
            lambda repo: (repo / "hooks" / "post-commit.tmpl").chmod(0o666),
            "post-commit.tmpl is writable by group or others",
        ),
        # conf/hooks-env sets the hooks' environment (LD_PRELOAD ...).
        (
            lambda repo: os.chown(repo / "conf" / "svnserve.conf", OTHER, OTHER),
            "svnserve.conf is not owned by root",
        ),
        # The repository's top: whoever can write it replaces hooks/ wholesale.
        (lambda repo: os.chown(repo, OTHER, OTHER), "project is not owned by root"),
        (lambda repo: repo.chmod(0o777), "project is writable by group or others"),
        # Below hooks/: a library a hook sources.
        (
            lambda repo: (
                (repo / "hooks" / "lib").mkdir(mode=0o777) or (repo / "hooks/lib").chmod(0o777)
            ),
            "hooks/lib is writable by group or others",
        ),
    ],
)
def test_each_way_the_account_could_change_a_hook_is_found(base: Path, plant, expected) -> None:
    repo = repository(base / "svn" / "project")
    plant(repo)
    found = reasons(base / "svn")
    assert len(found) == 1 and expected in found[0], found


def test_a_directory_above_the_repositories_the_account_can_write_is_found(base: Path) -> None:
    """In it the account could make a repository of its own, hooks included."""
    repository(base / "svn" / "project")
    (base / "svn" / "team").mkdir()
    os.chown(base / "svn" / "team", OTHER, OTHER)
    assert reasons(base / "svn") == [f"{base}/svn/team is not owned by root (uid {OTHER})"]


def test_svn_root_itself_and_its_parents_follow_the_rule(base: Path) -> None:
    (base / "svn").mkdir(mode=0o755)
    base.chmod(0o775)
    assert reasons(base / "svn") == [f"{base} is writable by group or others (mode 0775)"]


def test_symlinks_beside_the_repositories_are_refused(base: Path) -> None:
    """svnserve follows them to repositories nobody checked."""
    repository(base / "elsewhere")
    (base / "svn").mkdir()
    (base / "svn" / "project").symlink_to(base / "elsewhere")
    assert reasons(base / "svn") == [
        f"{base}/svn/project is a symlink outside a repository's hooks/ and conf/"
    ]


def test_a_hook_symlink_is_judged_up_to_its_target(base: Path) -> None:
    repo = repository(base / "svn" / "project")
    shared = base / "shared-hook"
    shared.write_text("#!/bin/sh\n")
    (repo / "hooks" / "post-commit").symlink_to(shared)
    assert reasons(base / "svn") == []
    os.chown(shared, OTHER, OTHER)
    assert reasons(base / "svn") == [f"{shared} is not owned by root (uid {OTHER})"]


def test_files_beside_the_repositories_are_not_svnserves_business(base: Path) -> None:
    repository(base / "svn" / "project")
    (base / "svn" / "README").write_text("x")
    os.chown(base / "svn" / "README", OTHER, OTHER)
    assert reasons(base / "svn") == []


def test_a_missing_svn_root_is_a_problem_at_login(base: Path) -> None:
    assert reasons(base / "missing") == [
        f"{base}/missing cannot be opened: No such file or directory"
    ]


# ---- what the login does with them ----


def login_problem(home: Path, program: str | None, **settings: object) -> str | None:
    request = make_request("svnserve -t", uid=OTHER, home=str(home))
    return shell.place_problem(request, make_policy(**settings), program)  # type: ignore[arg-type]


def test_svnserve_login_is_refused_while_a_hook_is_the_accounts(base: Path) -> None:
    repo = repository(base / "svn" / "project")
    settings = {"programs": ("svnserve",), "svn_root": str(base / "svn")}
    assert login_problem(base, "svnserve", **settings) is None
    os.chown(repo / "hooks", OTHER, OTHER)
    assert login_problem(base, "svnserve", **settings) == (
        f"svn_root: {repo}/hooks is not owned by root (uid {OTHER})"
    )
    assert login_problem(base, "scp", **settings) is None  # other programs are not affected


def test_a_start_dir_others_can_write_refuses_the_login(base: Path) -> None:
    home = base / "home"
    (home / "drop").mkdir(parents=True)
    os.chown(home, OTHER, OTHER)
    os.chown(home / "drop", OTHER, OTHER)
    assert login_problem(home, None, start_dir="drop") is None
    (home / "drop").chmod(0o775)
    assert login_problem(home, None, start_dir="drop") == (
        f"start_dir: {home}/drop is writable by group or others (mode 0775)"
    )
    assert login_problem(home, None) is None  # without start_dir the home is not judged here


def test_a_start_dir_owned_by_another_account_refuses_the_login(base: Path) -> None:
    home = base / "home"
    (home / "drop").mkdir(parents=True)
    os.chown(home, OTHER, OTHER)
    os.chown(home / "drop", OTHER + 1, OTHER + 1)
    assert login_problem(home, None, start_dir="drop") == (
        f"start_dir: {home}/drop is not owned by root (uid {OTHER + 1})"
    )


def test_check_config_skips_what_does_not_exist_yet_but_a_login_does_not(base: Path) -> None:
    request = make_request("scp -t x", uid=OTHER, home=str(base))
    policy = make_policy(start_dir="later")
    assert shell.place_problem(request, policy, None, missing_ok=True) is None
    assert "No such file or directory" in str(shell.place_problem(request, policy, None))


# ---- the original report: a relative svn_root was accepted silently ----


def test_check_config_refuses_a_relative_svn_root_and_says_why(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[user.alice]\nprograms = ["svnserve"]\nsvn_root = "repos"\n')
    result = subprocess.run(
        [sys.executable, "-I", "-m", "scponly_py", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "[user.alice] svn_root: must be an absolute path" in result.stderr
    assert "hooks" in result.stderr and "Traceback" not in result.stderr
