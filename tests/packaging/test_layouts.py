"""The Arch and RPM packages build the same layout as the .deb, with each distribution's defaults.

packaging/stage.py is the one layout; these tests stage it for every distribution from a fake
frozen tree (no root needed), and, as root with the real frozen tree, really build the
PKGBUILD with makepkg (as a throwaway unprivileged user: makepkg refuses root; --nodeps, as
Arch's own packages are not installed here) and the spec with rpmbuild (--nodeps), then
compare the packages' file lists, scripts, capabilities and triggers with what they must be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO, require_tools, system_env

sys.path.insert(0, str(REPO / "packaging"))

import stage  # lives in packaging/

SFTP = {
    "debian": "/usr/lib/openssh/sftp-server",
    "arch": "/usr/lib/ssh/sftp-server",
    "rpm": "/usr/libexec/openssh/sftp-server",
}
NOBODY = 65534
SBIN_PROGRAMS = ("scponly-pyc", "scponly-py-setup")


def fake_frozen(directory: Path) -> Path:
    tree = directory / "scponly-py"
    (tree / "_internal" / "python3.11").mkdir(parents=True)
    for name in ("scponly-py", "scponly-pyc"):
        (tree / name).write_bytes(b"\x7fELF bootloader")
        (tree / name).chmod(0o755)
    (tree / "_internal" / "libpython3.11.so.1.0").write_bytes(b"\x7fELF")
    (tree / "_internal" / "libpython3.11.so.1.0").chmod(0o755)
    (tree / "_internal" / "base_library.zip").write_bytes(b"PK")
    (tree / "source-hash").write_text("x\n")
    return tree


def common(paths: list[str], sbindir: str) -> set[str]:
    """The distribution-neutral part of a file list: /usr/sbin folded, no docs, hooks, pyc."""
    neutral = set()
    for path in paths:
        if path.startswith(("/usr/share/doc/", "/usr/share/lintian/", "/usr/share/libalpm/")):
            continue
        if "__pycache__" in path or path.endswith(".pyc"):
            continue
        name = path.removeprefix(sbindir + "/")
        neutral.add(f"/usr/SBIN/{name}" if name in SBIN_PROGRAMS else path)
    return neutral


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    work = tmp_path_factory.mktemp("stage")
    tree = fake_frozen(work)
    result = {}
    for distro in ("debian", "arch", "rpm"):
        destdir = work / distro
        paths = stage.stage(distro, tree, destdir, compile_python=distro != "debian")
        result[distro] = (destdir, paths)
    return result


def test_same_layout_everywhere(staged: dict[str, tuple[Path, list[str]]]) -> None:
    debian = common(staged["debian"][1], "/usr/sbin")
    assert common(staged["arch"][1], "/usr/bin") == debian
    assert common(staged["rpm"][1], "/usr/sbin") == debian
    assert {
        "/usr/bin/scponly-py",
        "/usr/SBIN/scponly-pyc",
        "/usr/SBIN/scponly-py-setup",
        "/usr/lib/scponly-py/scponly-py",
        "/usr/lib/scponly-py/scponly-pyc",
        "/etc/scponly-py/config.toml",
        "/usr/share/man/man5/scponly-py.toml.5.gz",
    } <= debian
    assert "/usr/lib/scponly-py/source-hash" not in debian  # the build cache stamp stays behind


@pytest.mark.parametrize("distro", ["debian", "arch", "rpm"])
def test_distribution_defaults(staged: dict[str, tuple[Path, list[str]]], distro: str) -> None:
    destdir, paths = staged[distro]
    config = (destdir / "etc/scponly-py/config.toml").read_text()
    assert f'sftp = "{SFTP[distro]}"' in config
    sbindir = "usr/bin" if distro == "arch" else "usr/sbin"
    assert os.readlink(destdir / sbindir / "scponly-pyc") == "../lib/scponly-py/scponly-pyc"
    front = destdir / "usr/bin/scponly-py"  # the secure-execution front, compiled for LAUNCHER
    assert not front.is_symlink() and front.stat().st_mode & 0o777 == 0o755
    assert front.read_bytes().startswith(b"\x7fELF")
    assert b"/usr/lib/scponly-py/launcher" in front.read_bytes()
    shell = destdir / "usr/lib/scponly-py/launcher"  # the launcher install-shell writes
    assert not shell.is_symlink() and shell.stat().st_mode & 0o777 == 0o755
    text = shell.read_text()
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    assert "sys.path.append('/usr/share/scponly-py')" in text
    if distro != "debian":  # byte-compiled in the package (Debian's postinst runs py3compile)
        package = destdir / "usr/share/scponly-py/scponly_py"
        for module in package.rglob("*.py"):
            compiled = (module.parent / "__pycache__").glob(f"{module.stem}.cpython-*.pyc")
            assert list(compiled), module  # no login compiles a module
    setup = (destdir / sbindir / "scponly-py-setup").read_text()
    assert setup.startswith("#!/usr/bin/python3 -I\n") and "/usr/share/scponly-py" in setup
    hook = "/usr/share/libalpm/hooks/scponly-py.hook"
    assert (hook in paths) == (distro == "arch")
    if distro == "arch":
        text = (destdir / hook.lstrip("/")).read_text()
        assert "scponly-py-setup update --all" in text


def test_modes(staged: dict[str, tuple[Path, list[str]]]) -> None:
    destdir, paths = staged["debian"]
    for path in paths:
        info = (destdir / path.lstrip("/")).lstat()
        if os.path.islink(destdir / path.lstrip("/")):
            continue
        assert info.st_mode & 0o7022 == 0, path  # no setuid/setgid/sticky, not g/o-writable
    library = destdir / "usr/lib/scponly-py/_internal/libpython3.11.so.1.0"
    assert library.stat().st_mode & 0o777 == 0o644  # shared objects are not executables


def test_the_staged_admin_tool_runs(staged: dict[str, tuple[Path, list[str]]]) -> None:
    """The packaged scponly-py-setup imports its modules from the private directory."""
    destdir, _ = staged["rpm"]
    script = (destdir / "usr/sbin/scponly-py-setup").read_text()
    script = script.replace('"/usr/share/scponly-py"', repr(str(destdir / "usr/share/scponly-py")))
    result = subprocess.run(
        [sys.executable, "-c", script, "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "0.1.0" in result.stdout


# -- the real package builds (root: the frozen tree, and a throwaway user for makepkg) ------------


def test_pkgbuild_builds_the_layout(
    frozen_tree: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_tools("makepkg", "fakeroot", "setpriv", "bsdtar")
    # The throwaway user's own directory (pytest's tmp_path is private to root).
    work = Path(tempfile.mkdtemp(prefix="scponly-py-makepkg-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(work, ignore_errors=True))
    for name in ("build", "out", "home"):
        (work / name).mkdir(parents=True)
    for name in ("PKGBUILD", "scponly-py.install"):
        shutil.copy(REPO / "packaging" / "arch" / name, work / "build" / name)
    for directory, _, files in os.walk(work):
        os.chown(directory, NOBODY, NOBODY)
        for name in files:
            os.chown(os.path.join(directory, name), NOBODY, NOBODY)
    result = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "makepkg", "--nodeps", "--noconfirm", "--nocolor"],
        cwd=work / "build",
        env=system_env(
            HOME=str(work / "home"), SCPONLY_PY_SOURCE=str(REPO),
            SCPONLY_PY_FROZEN=str(frozen_tree), PKGDEST=str(work / "out"),
            BUILDDIR=str(work / "build" / "work"), PKGEXT=".pkg.tar.gz",
        ),
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (package,) = (work / "out").glob("scponly-py-0.1.0-1-*.pkg.tar.gz")
    with tarfile.open(package) as archive:
        members = {member.name: member for member in archive.getmembers()}
        pkginfo = archive.extractfile(".PKGINFO").read().decode()  # type: ignore[union-attr]
        install = archive.extractfile(".INSTALL").read().decode()  # type: ignore[union-attr]
        config = archive.extractfile("etc/scponly-py/config.toml").read().decode()  # type: ignore[union-attr]
    paths = sorted("/" + name for name, member in members.items()
                   if not name.startswith(".") and not member.isdir())  # fmt: skip
    staged = stage.installed_paths(_stage_real("arch", frozen_tree, tmp_path))
    assert paths == staged
    for member in members.values():
        assert member.uname == "root" and member.gname == "root", member.name
        assert member.mode & 0o7022 == 0 or member.issym(), member.name
    assert "usr/bin/scponly-pyc" in members and "usr/sbin/scponly-pyc" not in members
    assert "usr/share/libalpm/hooks/scponly-py.hook" in members
    assert 'sftp = "/usr/lib/ssh/sftp-server"' in config
    for line in ("backup = etc/scponly-py/config.toml", "depend = python-click",
                 "depend = python-pyelftools", "depend = libcap"):  # fmt: skip
        assert line in pkginfo
    assert "setcap cap_sys_chroot+ep" in install and "etc/shells" in install
    assert "/usr/bin/scponly-pyc" in install
    assert "setcap cap_wake_alarm+p" in install and "usr/lib/scponly-py/scponly-py)" in install


def _stage_real(distro: str, frozen_tree: Path, tmp_path: Path) -> Path:
    destdir = tmp_path / f"expected-{distro}"
    stage.stage(distro, frozen_tree, destdir, compile_python=True, docs=distro != "rpm")
    return destdir


def test_rpm_spec_builds_the_layout(frozen_tree: Path, tmp_path: Path) -> None:
    require_tools("rpmbuild", "rpm")
    top = tmp_path / "rpmbuild"
    top.mkdir()
    result = subprocess.run(
        ["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}",
         "--define", f"srcroot {REPO}", "--define", f"frozen {frozen_tree}",
         str(REPO / "packaging" / "rpm" / "scponly-py.spec")],
        env=system_env(), capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (package,) = top.glob("RPMS/*/scponly-py-0.1.0-1*.rpm")

    def query(*arguments: str) -> str:
        return subprocess.run(
            ["rpm", "-qp", *arguments, str(package)],
            capture_output=True, text=True, check=True, env=system_env(),
        ).stdout  # fmt: skip

    listed = query("--dump").splitlines()
    files = {}
    for line in listed:
        fields = line.split()
        files[fields[0]] = fields
    staged = stage.installed_paths(_stage_real("rpm", frozen_tree, tmp_path))
    expected = {*staged, "/usr/share/doc/scponly-py/README.md", "/etc/scponly-py/config.compiled"}
    regular = {path for path, fields in files.items() if not fields[4].startswith("04")}
    assert regular == expected
    for path, fields in files.items():
        assert fields[5:7] == ["root", "root"], path
        assert int(fields[4], 8) & 0o7022 == 0 or fields[4].startswith("012"), path
    capabilities = dict(
        line.split("\t", 1) if "\t" in line else (line, "")
        for line in query("--filecaps").splitlines()
    )
    assert {path: cap for path, cap in capabilities.items() if cap} == {
        "/usr/bin/scponly-py": "cap_wake_alarm=p",  # the front: secure-execution mode
        "/usr/lib/scponly-py/scponly-py": "cap_wake_alarm=p",  # the frozen one: the same
        "/usr/lib/scponly-py/scponly-pyc": "cap_sys_chroot=ep",
    }
    assert not any(path.startswith("/usr/lib/.build-id") for path in files)
    scripts = query("--scripts")
    assert "/etc/shells" in scripts and "scponly-py check-config" in scripts
    triggers = query("--filetriggers")
    assert "transfiletriggerin" in triggers and "scponly-py-setup update --all" in triggers
    provides = query("--provides")
    assert "libpython" not in provides and "libz" not in provides  # the bundle stays private
    configs = query("--configfiles").split()
    assert "/etc/scponly-py/config.toml" in configs
