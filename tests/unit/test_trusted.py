"""The one trusted-path rule (scponly_py/trusted.py): each kind of plant a local user can make."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scponly_py import trusted

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown plants)")


def as_nobody(*argv: str) -> None:
    """Run argv as an unprivileged uid, as a local user would."""
    subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv], check=True
    )


@pytest.fixture
def base() -> Iterator[Path]:
    """A fresh trusted directory under sticky /tmp that other uids can search (to plant in)."""
    path = Path(tempfile.mkdtemp(prefix="trusted-"))
    path.chmod(0o711)
    assert trusted.problems(str(path)) == []
    yield path
    shutil.rmtree(path)


@pytest.fixture
def sticky(base: Path) -> Path:
    """A root-owned world-writable sticky directory, like /tmp and /var/tmp."""
    path = base / "tmp"
    path.mkdir()
    path.chmod(0o1777)
    return path


def reasons(path: Path, **options: object) -> list[str]:
    return [f"{where} {why}" for where, why in trusted.problems(str(path), **options)]


def test_a_trusted_directory_opens_and_the_fd_is_the_one_checked(base: Path) -> None:
    (base / "a/b").mkdir(parents=True)
    fd = trusted.open_path(str(base / "a/b"), directory=True)
    try:
        checked = os.fstat(fd)
        (base / "a/b").rename(base / "a/old")  # swapped after the check ...
        (base / "a/b").symlink_to("/etc")
        assert os.fstat(fd).st_ino == checked.st_ino  # ... the fd still names what was checked
        assert os.listdir(f"/proc/self/fd/{fd}") == []
    finally:
        os.close(fd)


def test_owner_and_mode_of_every_component(base: Path) -> None:
    (base / "a/b/c").mkdir(parents=True)
    os.chown(base / "a", NOBODY, NOBODY)
    assert reasons(base / "a/b/c") == [f"{base}/a is not owned by root (uid {NOBODY})"]
    os.chown(base / "a", 0, 0)
    (base / "a/b").chmod(0o775)
    with pytest.raises(trusted.Untrusted, match="a/b is writable by group or others"):
        trusted.open_path(str(base / "a/b/c"))
    (base / "a/b").chmod(0o755)
    (base / "a/b/c").chmod(0o757)
    assert reasons(base / "a/b/c") == [f"{base}/a/b/c is writable by group or others (mode 0757)"]
    assert trusted.problems(str(base / "a/b"), owners=(0, NOBODY)) == []


def test_symlinks_are_refused_unless_roots_in_a_directory_only_root_writes(base: Path) -> None:
    (base / "real").mkdir()
    (base / "link").symlink_to("real")
    with pytest.raises(trusted.Untrusted, match="link is a symlink"):
        trusted.open_path(str(base / "link"))
    fd = trusted.open_path(str(base / "link"), follow=True)  # merged-/usr's /bin -> usr/bin
    assert os.fstat(fd).st_ino == os.stat(base / "real").st_ino
    os.close(fd)
    os.lchown(base / "link", NOBODY, NOBODY)
    assert reasons(base / "link") == [f"{base}/link is not owned by root (uid {NOBODY})"]
    (base / "up").symlink_to("../../../../../../../../etc")  # '..' is walked, not resolved
    assert trusted.problems(str(base / "up"), follow=True) == []
    with pytest.raises(trusted.Untrusted, match="too many levels"):
        (base / "loop").symlink_to("loop")
        trusted.open_path(str(base / "loop"), follow=True)


def test_the_running_system(base: Path) -> None:
    assert reasons(Path(os.path.realpath(sys.executable))) == []
    assert reasons(Path("/usr/bin/env"), follow=False) == []
    if os.path.islink("/bin"):
        assert reasons(Path("/bin/sh"), follow=False)[0] == "/bin is a symlink"
        assert reasons(Path("/bin/sh")) == []
    assert reasons(Path("/tmp")) == ["/tmp is writable by group or others (mode 1777)"]


def test_sticky_directories_keep_only_roots_directories(sticky: Path) -> None:
    (sticky / "roots").mkdir()
    assert reasons(sticky / "roots") == []
    assert reasons(sticky) == [f"{sticky} is writable by group or others (mode 1777)"]
    (sticky / "file").write_text("x")  # could be a user's hard link to a root file
    assert reasons(sticky / "file") == [
        f"{sticky}/file is not a directory, in a directory others can write"
        " (anyone could have put it there)"
    ]
    (sticky / "link").symlink_to("roots")
    assert len(reasons(sticky / "link")) == 1
    with pytest.raises(trusted.Untrusted):
        trusted.open_path(str(sticky / "link"), follow=True)


def test_a_directory_planted_by_a_user_in_tmp_is_refused_and_not_written(sticky: Path) -> None:
    as_nobody("mkdir", "-p", f"{sticky}/build/bin")
    as_nobody("sh", "-c", f"printf '#!/bin/sh\\ntouch {sticky}/ran\\n' > {sticky}/build/bin/python")
    with pytest.raises(
        trusted.Untrusted, match=re.escape(f"{sticky}/build is not owned by root (uid {NOBODY})")
    ):
        trusted.make_dirs(str(sticky / "build/bin"))
    as_nobody("ln", "-s", "/", f"{sticky}/newjail")
    with pytest.raises(trusted.Untrusted, match="newjail is a symlink"):
        trusted.make_dirs(str(sticky / "newjail/etc/x"))
    assert not os.path.exists("/etc/x") and not (sticky / "ran").exists()
    fd = trusted.make_dirs(str(sticky / "fresh/a"), 0o750)
    os.close(fd)
    assert oct(os.stat(sticky / "fresh/a").st_mode & 0o7777) == oct(0o750)


def test_open_at_and_bad_paths(base: Path) -> None:
    (base / "f").write_text("x")
    dir_fd = trusted.open_path(str(base), directory=True)
    try:
        os.close(trusted.open_at(dir_fd, "f", os.O_RDONLY))
        (base / "f").chmod(0o666)
        with pytest.raises(trusted.Untrusted, match="writable"):
            trusted.open_at(dir_fd, "f", os.O_RDONLY)
    finally:
        os.close(dir_fd)
    for bad in ("relative", f"{base}/../x", f"{base}/./x"):
        with pytest.raises(trusted.Untrusted):
            trusted.open_path(bad)
    with pytest.raises(trusted.Untrusted) as missing:
        trusted.open_path(str(base / "nothing"))
    assert missing.value.missing
    (base / "f").chmod(0o644)
    with pytest.raises(trusted.Untrusted, match="is not a directory"):
        trusted.open_path(str(base / "f/x"))


def test_the_command_line_form_for_shell_scripts(sticky: Path) -> None:
    script = trusted.__file__
    (sticky / "roots").mkdir()
    ok = subprocess.run([sys.executable, "-I", script, str(sticky / "roots")], check=False)
    assert ok.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-I", script, str(sticky)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert (
        bad.stderr
        == f"untrusted path {sticky}: {sticky} is writable by group or others (mode 1777)\n"
    )


def test_user_manager_home_checks_what_systemd_user_reads(base: Path) -> None:
    """A root-owned home passes; each place systemd --user reads must be root's too (the
    scponly-pyc form JAIL//home/NAME taken as given); a missing one under root's is fine."""
    home = base / "jail/home/alice"
    home.mkdir(parents=True)
    given = f"{base}/jail//home/alice"
    assert trusted.user_manager_problem(given) is None
    os.chown(home, NOBODY, NOBODY)
    assert trusted.user_manager_problem(given) == f"{given} is owned by uid {NOBODY}, not root"
    os.chown(home, 0, 0)
    home.chmod(0o775)
    assert "writable by group or others (mode 0775)" in str(trusted.user_manager_problem(given))
    home.chmod(0o755)
    for relative in ("/.config/systemd", "/.config/environment.d", "/.local/share/systemd"):
        (home / relative.lstrip("/")).mkdir(parents=True, exist_ok=True)
        assert trusted.user_manager_problem(given) is None
        os.chown(home / relative.lstrip("/"), NOBODY, NOBODY)
        assert trusted.user_manager_problem(given) == (
            f"{given}{relative} is owned by uid {NOBODY}, not root"
        )
        os.chown(home / relative.lstrip("/"), 0, 0)
    (home / ".local/share/systemd").rmdir()
    (home / ".local/share/systemd").symlink_to("/etc")
    assert trusted.user_manager_problem(given) == f"{given}/.local/share/systemd is a symlink"


def test_systemd_booted_is_sd_booted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trusted, "SYSTEMD_RUNNING", str(tmp_path / "system"))
    assert not trusted.systemd_booted()
    (tmp_path / "system").symlink_to(tmp_path)
    assert not trusted.systemd_booted()
    (tmp_path / "system").unlink()
    (tmp_path / "system").mkdir()
    assert trusted.systemd_booted()
