"""rsync through a real sshd with scponly-py as the login shell, driven by the real rsync client."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.sandbox import Sandbox

CONFIG = """
[defaults]
programs = ["sftp", "scp", "rsync"]

[user.rreader]
access = "read-only"

[user.rdrop]
access = "write-only"

[user.nolinks]
links = false
"""


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(users=("ralice", "rreader", "rdrop", "nolinks"), config=CONFIG)


def rsync(sandbox: Sandbox, *args: str):
    return sandbox.run(["rsync", "-e", f"ssh -F {sandbox.ssh_config}", *args], timeout=120)


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (tree / "sub" / "deeper" / "c with space.txt").write_text("gamma\n")
    os.symlink("a.txt", tree / "link-to-a")
    root.chmod(0o755)
    return tree


def same_tree(left: Path, right: Path) -> bool:
    comparison = filecmp.dircmp(left, right)
    if comparison.left_only or comparison.right_only or comparison.diff_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / name, right / name) for name in comparison.common_dirs)


@pytest.mark.parametrize(
    "options",
    [["-a"], ["-az"], ["-a", "--checksum"], ["-a", "--partial", "--inplace"], ["-rltH"]],
    ids=["a", "az", "checksum", "partial-inplace", "rltH"],
)
def test_push_and_pull(sandbox: Sandbox, tmp_path: Path, options: list[str]) -> None:
    tree = make_tree(tmp_path)
    name = "push-" + "".join(option.strip("-") for option in options)
    up = rsync(sandbox, *options, f"{tree}/", f"ralice@sandbox:{name}/")
    assert up.returncode == 0, up.stderr
    remote = sandbox.users["ralice"].home / name
    assert (remote / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    back = tmp_path / "back"
    down = rsync(sandbox, *options, f"ralice@sandbox:{name}/", f"{back}/")
    assert down.returncode == 0, down.stderr
    assert same_tree(tree, back)


def test_delete_removes_extraneous_files(sandbox: Sandbox, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    assert rsync(sandbox, "-a", f"{tree}/", "ralice@sandbox:mirror/").returncode == 0
    (tree / "a.txt").unlink()
    result = rsync(sandbox, "-a", "--delete", f"{tree}/", "ralice@sandbox:mirror/")
    assert result.returncode == 0, result.stderr
    assert not (sandbox.users["ralice"].home / "mirror" / "a.txt").exists()


def test_protect_args_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    mark = sandbox.log_mark()
    result = rsync(sandbox, "-a", "--protect-args", f"{tree}/", "ralice@sandbox:pa/")
    assert result.returncode != 0
    assert b"scponly-py: refused: rsync option -s is not allowed" in result.stderr
    assert any("decision=refuse" in line for line in sandbox.log_since(mark, "decision=refuse"))
    assert not (sandbox.users["ralice"].home / "pa").exists()


@pytest.mark.parametrize(
    "command",
    [
        "rsync --server --daemon .",
        "rsync --server -e 'sh -c id' . x",
        "rsync --rsh=/bin/sh --server . x",
        "rsync --server --rsync-path=/tmp/x . x",
        "rsync --server --write-batch=/tmp/b . x",
        "rsync -e.LsfxC --server . x",
        "rsync --server --log-file=/tmp/l . x",
    ],
)
def test_dangerous_rsync_commands_are_refused(sandbox: Sandbox, command: str) -> None:
    mark = sandbox.log_mark()
    result = sandbox.ssh("ralice", command, input=b"")
    assert result.returncode == 1
    assert b"scponly-py: refused: " in result.stderr
    assert any("decision=refuse" in line for line in sandbox.log_since(mark, "decision=refuse"))


def test_read_only_user_can_pull_not_push(sandbox: Sandbox, tmp_path: Path) -> None:
    home = sandbox.users["rreader"].home
    (home / "pub").mkdir()
    (home / "pub" / "doc.bin").write_bytes(os.urandom(50_000))
    pulled = tmp_path / "pulled"
    down = rsync(sandbox, "-a", "rreader@sandbox:pub/", f"{pulled}/")
    assert down.returncode == 0, down.stderr
    assert (pulled / "doc.bin").read_bytes() == (home / "pub" / "doc.bin").read_bytes()
    up = rsync(sandbox, "-a", f"{pulled}/", "rreader@sandbox:pub2/")
    assert up.returncode != 0
    assert b"uploads are not allowed for this account (read-only)" in up.stderr
    assert not (home / "pub2").exists()


def test_write_only_user_can_push_not_pull(sandbox: Sandbox, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    up = rsync(sandbox, "-a", f"{tree}/", "rdrop@sandbox:in/")
    assert up.returncode == 0, up.stderr
    assert (sandbox.users["rdrop"].home / "in" / "a.txt").read_text() == "alpha\n"
    down = rsync(sandbox, "-a", "rdrop@sandbox:in/", f"{tmp_path / 'out'}/")
    assert down.returncode != 0
    assert b"downloads are not allowed for this account (write-only)" in down.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_links_false_munges_symlinks(sandbox: Sandbox, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    result = rsync(sandbox, "-a", f"{tree}/", "nolinks@sandbox:m/")
    assert result.returncode == 0, result.stderr
    stored = sandbox.users["nolinks"].home / "m" / "link-to-a"
    # --munge-links stores the link with a prefix that makes it point nowhere.
    assert os.readlink(stored).startswith("/rsyncd-munged/")
    shutil.rmtree(sandbox.users["nolinks"].home / "m")
