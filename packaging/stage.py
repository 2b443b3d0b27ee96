#!/usr/bin/env python3
"""Lay out the installed file tree of scponly-py under DESTDIR: one layout for every package.

    python3 packaging/stage.py --distro debian|arch|rpm --frozen DIR --destdir DIR
                               [--sbindir /usr/sbin] [--compile] [--docs]

The Debian build script, the Arch PKGBUILD's package() and the RPM spec's %install all call
this, so the three packages install the same files in the same places, with only each
distribution's conventions differing (sftp-server path, /usr/sbin on Arch being /usr/bin,
where hooks and docs go). Everything is written with the modes the package must carry
(directories 0755, programs 0755, data 0644); ownership is root's, set by the package tool.

    /usr/lib/scponly-py/            the frozen onedir shells: scponly-pyc, and scponly-py for
                                    ChrootDirectory jails (no Python in a jail; the package
                                    gives it cap_wake_alarm+p when installing), _internal/
                                    (--frozen: packaging/build-frozen.sh's tree)
    /usr/bin/scponly-py             the login shell: the secure-execution front
                                    (scponly_py/front.c, compiled here; the package gives it
                                    cap_wake_alarm+p when installing) that execs
    /usr/lib/scponly-py/launcher    the `#!/usr/bin/python3 -IS` launcher install-shell writes,
                                    for the modules in DATADIR (it starts in half the frozen
                                    shell's time), byte-compiled as root (--compile, or the
                                    package's py3compile)
    SBINDIR/scponly-pyc             -> ../lib/scponly-py/scponly-pyc (chroot login shell; the
                                    package adds cap_sys_chroot+ep when installing)
    SBINDIR/scponly-py-setup        the admin tool: /usr/bin/python3 -I, modules from
    /usr/share/scponly-py/          scponly_py, setup_chroot, scponly_py-VERSION.dist-info
    /etc/scponly-py/config.toml     example config (a conffile) with the distro's paths
    /usr/share/man/man5/scponly-py.toml.5.gz, man8/scponly-py{,c,-setup}.8.gz
    arch only: /usr/share/libalpm/hooks/scponly-py.hook (Debian has a dpkg file trigger,
                                    RPM a %transfiletriggerin, each in its own files)

The frozen shells never import anything from DATADIR; the launcher imports scponly_py from it.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import os
import shutil
import stat
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(ROOT))

from scponly_py import programs  # noqa: E402 - each distribution's sftp-server
from setup_chroot import launcher  # noqa: E402 - the launcher text install-shell writes

LIBDIR = "/usr/lib/scponly-py"
LAUNCHER = f"{LIBDIR}/launcher"
DATADIR = "/usr/share/scponly-py"
CONFDIR = "/etc/scponly-py"
PYTHON = "/usr/bin/python3"
FROZEN_FILES = ("scponly-py", "scponly-pyc", "_internal")

# Arch: /usr/sbin is a symlink to /usr/bin; packages install into /usr/bin only.
SBINDIRS = {"debian": "/usr/sbin", "arch": "/usr/bin", "rpm": "/usr/sbin"}
DISTROS = {
    distro: {"sftp_server": programs.default_paths(distro)["sftp"], "sbindir": SBINDIRS[distro]}
    for distro in programs.DISTROS
}

SETUP_SCRIPT = '''#!{python} -I
"""scponly-py-setup, as installed by the scponly-py package (modules in {datadir})."""

import sys

sys.path.insert(0, "{datadir}")

from setup_chroot.cli import main  # noqa: E402

sys.exit(main())
'''


class StageError(Exception):
    """The inputs are missing or unusable."""


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def python_packages() -> list[str]:
    """The packages pyproject.toml ships (the same list pip installs)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["tool"]["setuptools"]["packages"])


def target(destdir: Path, path: str) -> Path:
    return destdir / path.lstrip("/")


def make_dirs(path: Path) -> None:
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


def write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    make_dirs(path.parent)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    path.chmod(mode)


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9n: no name, no timestamp (reproducible, as lintian and rpmlint want)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def copy_frozen(source: Path, destination: Path) -> None:
    """The onedir tree, modes normalised, no setuid/setgid, symlinks only within the tree."""
    for name in FROZEN_FILES:
        if not (source / name).exists():
            raise StageError(f"{source} has no {name}: build it with packaging/build-frozen.sh")
    real_source = os.path.realpath(source)
    make_dirs(destination)
    for directory, subdirectories, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        for name in sorted(subdirectories + files):
            path = Path(directory) / name
            copied = destination / relative / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                link = os.readlink(path)
                resolved = os.path.realpath(path)
                if link.startswith("/") or not resolved.startswith(real_source + "/"):
                    raise StageError(f"{path} links outside the tree ({link})")
                copied.symlink_to(link)
            elif stat.S_ISDIR(info.st_mode):
                make_dirs(copied)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(path, copied)
                # Shared objects are mapped, not executed: 0644 (Debian policy 8.1).
                executable = info.st_mode & 0o111 and ".so" not in name
                copied.chmod(0o755 if executable else 0o644)
            else:
                raise StageError(f"{path} is neither a file, a directory nor a symlink")
    for name in ("source-hash",):
        (destination / name).unlink(missing_ok=True)


def copy_python(destdir: Path) -> Path:
    """The admin tool's modules (and scponly_py's, which it imports) plus a dist-info."""
    datadir = target(destdir, DATADIR)
    make_dirs(datadir)
    for package in python_packages():
        source = ROOT / package.replace(".", "/")
        for path in sorted(source.glob("*.py")):
            write(datadir / package.replace(".", "/") / path.name, path.read_bytes())
    dist_info = datadir / f"scponly_py-{version()}.dist-info"
    write(
        dist_info / "METADATA",
        f"Metadata-Version: 2.1\nName: scponly-py\nVersion: {version()}\n"
        "Summary: Restricted SSH login shell for file transfers only\n",
    )
    return datadir


def stage(
    distro: str,
    frozen: Path,
    destdir: Path,
    *,
    sbindir: str | None = None,
    compile_python: bool = False,
    docs: bool = True,
) -> list[str]:
    """Write the tree; return the installed paths (files and symlinks), sorted."""
    settings = DISTROS[distro]
    sbindir = sbindir or settings["sbindir"]
    make_dirs(destdir)

    copy_frozen(frozen, target(destdir, LIBDIR))
    link = target(destdir, f"{sbindir}/scponly-pyc")
    make_dirs(link.parent)
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(f"{LIBDIR}/scponly-pyc", sbindir))
    write(target(destdir, LAUNCHER), launcher.render(PYTHON, DATADIR), 0o755)
    front = target(destdir, "/usr/bin/scponly-py")
    make_dirs(front.parent)
    try:
        launcher.build_front(str(front), LAUNCHER)
    except launcher.UnsafeInstall as error:
        raise StageError(str(error)) from None
    front.chmod(0o755)

    datadir = copy_python(destdir)
    if compile_python:
        ok = compileall.compile_dir(str(datadir), quiet=1, ddir=DATADIR, workers=1, stripdir=None)
        if not ok:
            raise StageError("byte-compiling the admin tool failed")
    write(
        target(destdir, f"{sbindir}/scponly-py-setup"),
        SETUP_SCRIPT.format(python=PYTHON, datadir=DATADIR),
        0o755,
    )

    config = (PACKAGING / "config.toml.in").read_text(encoding="utf-8")
    write(
        target(destdir, f"{CONFDIR}/config.toml"),
        config.replace("@SFTP_SERVER@", settings["sftp_server"]),
    )

    sys.path.insert(0, str(PACKAGING / "man"))
    import manpages  # noqa: PLC0415 - the generator lives next to this script

    for name, text in manpages.all_pages(settings["sftp_server"]).items():
        section = name.rsplit(".", 1)[1]
        write(
            target(destdir, f"/usr/share/man/man{section}/{name}.gz"),
            gzip_bytes(text.encode("utf-8")),
        )

    if distro == "arch":
        write(
            target(destdir, "/usr/share/libalpm/hooks/scponly-py.hook"),
            (PACKAGING / "arch" / "scponly-py.hook").read_bytes(),
        )
    if docs and distro == "arch":
        write(
            target(destdir, "/usr/share/doc/scponly-py/README.md"),
            (ROOT / "README.md").read_bytes(),
        )
    if docs and distro == "debian":
        doc = target(destdir, "/usr/share/doc/scponly-py")
        write(doc / "README.md.gz", gzip_bytes((ROOT / "README.md").read_bytes()))
        write(doc / "copyright", (PACKAGING / "debian" / "copyright").read_bytes())
        write(
            doc / "changelog.Debian.gz",
            gzip_bytes((PACKAGING / "debian" / "changelog").read_bytes()),
        )
        write(
            target(destdir, "/usr/share/lintian/overrides/scponly-py"),
            (PACKAGING / "debian" / "lintian-overrides").read_bytes(),
        )
    return installed_paths(destdir)


def installed_paths(destdir: Path) -> list[str]:
    """Every file and symlink under destdir, as absolute installed paths."""
    found = []
    for directory, subdirectories, files in os.walk(destdir):
        for name in subdirectories + files:
            path = Path(directory) / name
            if path.is_symlink() or path.is_file():
                found.append("/" + str(path.relative_to(destdir)))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage scponly-py's installed file tree.")
    parser.add_argument("--distro", choices=sorted(DISTROS), required=True)
    parser.add_argument("--frozen", type=Path, required=True, help="build-frozen.sh's tree")
    parser.add_argument("--destdir", type=Path, required=True)
    parser.add_argument("--sbindir", help="default: the distribution's")
    parser.add_argument("--compile", action="store_true", help="byte-compile the admin tool")
    parser.add_argument("--no-docs", action="store_true", help="the package installs docs")
    options = parser.parse_args(argv)
    try:
        paths = stage(
            options.distro,
            options.frozen,
            options.destdir,
            sbindir=options.sbindir,
            compile_python=options.compile,
            docs=not options.no_docs,
        )
    except StageError as error:
        print(f"stage: {error}", file=sys.stderr)
        return 1
    print(f"stage: {len(paths)} files for {options.distro} in {options.destdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
