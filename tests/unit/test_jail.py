"""The pure and file-system parts of scponly_py.jail (no chroot, no privilege drop)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scponly_py import jail
from setup_chroot import frozen

# -- the // split ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("home", "expected"),
    [
        ("/srv/jail//home/alice", ("/srv/jail", "/home/alice")),
        ("/srv/jail//", ("/srv/jail", "/")),
        ("/srv/jail", ("/srv/jail", "/")),
        ("/jail//u", ("/jail", "/u")),
        ("/a/b/c//d/e", ("/a/b/c", "/d/e")),
    ],
)
def test_split_home(home: str, expected: tuple[str, str]) -> None:
    assert jail.split_home(home) == expected


@pytest.mark.parametrize(
    "home",
    [
        "",
        "srv/jail//home/u",  # relative
        "//home/u",  # empty jail
        "/",  # the jail would be /
        "/srv//jail//home/u",  # two //
        "/srv/jail///home/u",  # ///
        "/srv/../etc//home/u",
        "/srv/./jail//home/u",
        "/srv/jail//home/../../u",
        "/srv/jail//home/./u",
        "/srv/jail/",  # empty last component
        "/srv/jail//home/u/",
        "/srv/jail\0//home/u",
    ],
)
def test_split_home_refuses(home: str) -> None:
    with pytest.raises(jail.JailError):
        jail.split_home(home)


# -- the jail path checks on real directories -----------------------------------------------


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A root-owned 0755 directory whose ancestors are safe (needs root; else skipped)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make root-owned directories")
    root = Path("/var/lib/scponly-py-test-jails")
    root.mkdir(mode=0o755, exist_ok=True)
    root.chmod(0o755)
    if jail.tree_problems(str(root), ""):
        pytest.skip(f"ancestors of {root} are not root-owned and safe")
    directory = root / tmp_path.name
    directory.mkdir(mode=0o755)
    yield directory
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            path.rmdir()
    directory.rmdir()
    try:
        root.rmdir()
    except OSError:
        pass  # another test's directory is still there


def test_open_jail_accepts_a_safe_path(base: Path) -> None:
    (base / "jail").mkdir(mode=0o755)
    fd = jail.open_jail(str(base / "jail"))
    try:
        assert os.fstat(fd).st_ino == (base / "jail").stat().st_ino
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda b: os.chown(b / "jail", 1000, 1000), "is not owned by root"),
        (lambda b: os.chmod(b / "jail", 0o775), "is writable by group or others"),  # noqa: S103
        (lambda b: os.chmod(b / "jail", 0o757), "is writable by group or others"),  # noqa: S103
        (lambda b: os.chmod(b / "jail", 0o1777), "is writable by group or others"),  # noqa: S103
    ],
)
def test_open_jail_refuses_unsafe_jail(base: Path, setup, reason: str) -> None:
    (base / "jail").mkdir(mode=0o755)
    setup(base)
    with pytest.raises(jail.JailError, match=reason):
        jail.open_jail(str(base / "jail"))


def test_open_jail_refuses_unsafe_parent(base: Path) -> None:
    (base / "parent" / "jail").mkdir(mode=0o755, parents=True)
    os.chown(base / "parent", 1000, 1000)
    with pytest.raises(jail.JailError, match=r"parent is not owned by root"):
        jail.open_jail(str(base / "parent" / "jail"))


def test_open_jail_refuses_symlinked_components(base: Path) -> None:
    (base / "real" / "jail").mkdir(mode=0o755, parents=True)
    (base / "link").symlink_to(base / "real")
    (base / "jaillink").symlink_to(base / "real" / "jail")
    with pytest.raises(jail.JailError, match="symlink"):
        jail.open_jail(str(base / "link" / "jail"))
    with pytest.raises(jail.JailError, match="symlink"):
        jail.open_jail(str(base / "jaillink"))


def test_open_jail_refuses_missing_and_files(base: Path) -> None:
    (base / "file").write_text("x")
    with pytest.raises(jail.JailError, match="No such file"):
        jail.open_jail(str(base / "missing"))
    with pytest.raises(jail.JailError, match="not a directory"):
        jail.open_jail(str(base / "file"))


def test_tree_problems(base: Path) -> None:
    (base / "tree" / "_internal").mkdir(mode=0o755, parents=True)
    binary = base / "tree" / "scponly-pyc"
    binary.write_text("")
    binary.chmod(0o755)
    assert jail.tree_problems(str(binary), str(base / "tree" / "_internal")) == []
    (base / "tree").chmod(0o775)
    assert any("writable" in p for p in jail.tree_problems(str(binary), ""))
    (base / "tree").chmod(0o755)
    os.chown(base / "tree" / "_internal", 1000, 0)
    assert any(
        "not owned" in p for p in jail.tree_problems(str(binary), str(base / "tree" / "_internal"))
    )
    assert jail.tree_problems("/tmp/x/scponly-pyc", "") == [
        "/tmp/x cannot be opened: No such file or directory"
    ]
    assert jail.tree_problems("/tmp", "") == ["/tmp is writable by group or others (mode 1777)"]


# -- the kernel's view, parsed -----------------------------------------------------------------

STATUS = b"""Name:\tprobe
Uid:\t1000\t1000\t1000\t1000
Gid:\t1000\t1000\t1000\t1000
Groups:\t1000 27
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
"""


def test_status_clean() -> None:
    identity = jail.Identity(1000, 1000, (27, 1000))
    assert jail.status_problems(jail.parse_status(STATUS), identity, "setuid") == []


@pytest.mark.parametrize(
    ("old", "new", "mode"),
    [
        (b"CapPrm:\t0000000000000000", b"CapPrm:\t0000000000040000", "caps"),
        (b"CapEff:\t0000000000000000", b"CapEff:\t0000000000040000", "caps"),
        (b"CapAmb:\t0000000000000000", b"CapAmb:\t0000000000000001", "caps"),
        (b"CapInh:\t0000000000000000", b"CapInh:\t0000000000000001", "caps"),
        (b"CapBnd:\t0000000000000000", b"CapBnd:\t000001ffffffffff", "setuid"),
        (b"NoNewPrivs:\t1", b"NoNewPrivs:\t0", "caps"),
        (b"Uid:\t1000\t1000\t1000\t1000", b"Uid:\t1000\t0\t1000\t1000", "caps"),
        (b"Uid:\t1000\t1000\t1000\t1000", b"Uid:\t1000\t1000\t0\t1000", "setuid"),
        (b"Gid:\t1000\t1000\t1000\t1000", b"Gid:\t1000\t1000\t0\t1000", "setuid"),
        (b"Groups:\t1000 27", b"Groups:\t0 1000 27", "setuid"),
        (b"NoNewPrivs:\t1\n", b"", "caps"),  # missing field
    ],
)
def test_status_problems(old: bytes, new: bytes, mode: str) -> None:
    identity = jail.Identity(1000, 1000, (1000, 27))
    assert jail.status_problems(jail.parse_status(STATUS.replace(old, new)), identity, mode)


def test_bounding_set_may_stay_for_the_capability_build() -> None:
    status = STATUS.replace(b"CapBnd:\t0000000000000000", b"CapBnd:\t000001ffffffffff")
    identity = jail.Identity(1000, 1000, (1000, 27))
    assert jail.status_problems(jail.parse_status(status), identity, "caps") == []


# -- the install step's pure parts ---------------------------------------------------------------


def test_capability_xattr_is_what_setcap_writes() -> None:
    # `setcap cap_sys_chroot+ep f; getfattr -e hex -n security.capability f`
    assert frozen.capability_xattr((18,)).hex() == "0100000200000400000000000000000000000000"
