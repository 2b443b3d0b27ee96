"""The static resolver against glibc itself (`ldd` as the oracle) and hand-built ELF files.

`ldd` is run only here, as a test oracle, on the system's own binaries and
on files the test compiled itself.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from setup_chroot import elf, resolve

SYSTEM_DIRS = ("/usr/bin", "/usr/sbin", "/usr/lib/openssh")
ORACLE_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def ldd(path: str) -> tuple[str | None, dict[str, str | None]]:
    """(interpreter line, {name: path or None}) as glibc's ldd reports them."""
    result = subprocess.run(
        ["ldd", path], capture_output=True, text=True, env=ORACLE_ENV, timeout=30, check=False
    )
    interpreter = None
    mapping: dict[str, str | None] = {}
    for raw in result.stdout.splitlines():
        line = raw.strip()
        if "=>" in line:
            name, _, rest = line.partition(" => ")
            mapping[name] = None if rest.startswith("not found") else rest.rsplit(" (", 1)[0]
        elif line.startswith("/"):
            interpreter = line.rsplit(" (", 1)[0]
    return interpreter, mapping


def ours(path: str) -> tuple[str | None, dict[str, str | None]]:
    found = resolve.closure(path)
    mapping: dict[str, str | None] = dict(found.mapping())
    for name, _needed_by in found.missing:
        mapping.setdefault(name, None)
    return found.interpreter, mapping


def agreed(path: Path, name: str) -> str | None:
    """Where the resolver finds `name` for `path`, once it agrees with ldd on all of `path`."""
    found = ours(str(path))
    assert found == ldd(str(path))
    return found[1][name]


def dynamic_elfs() -> list[str]:
    """Every dynamically linked ELF file (by real path) in the system directories."""
    found = set()
    for directory in SYSTEM_DIRS:
        for entry in os.scandir(directory):
            real = os.path.realpath(entry.path)
            try:
                if not stat.S_ISREG(os.stat(real).st_mode):
                    continue
                info = elf.read(real)
            except (OSError, elf.ElfError):
                continue
            if info is not None and info.interpreter is not None:
                found.add(real)
    return sorted(found)


def test_resolver_agrees_with_ldd_on_every_system_binary() -> None:
    programs = dynamic_elfs()
    assert len(programs) > 50
    with ThreadPoolExecutor(max_workers=8) as pool:
        expected = dict(zip(programs, pool.map(ldd, programs), strict=True))
    differences = {}
    for program in programs:
        got = ours(program)
        if got != expected[program]:
            differences[program] = (got, expected[program])
    assert differences == {}


def test_cache_parser_matches_ldconfig() -> None:
    with open("/etc/ld.so.cache", "rb") as handle:
        entries = resolve.parse_cache(handle.read())
    listed = subprocess.run(
        ["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True, env=ORACLE_ENV
    ).stdout
    for name, path in entries:
        assert f"{name} (" in listed and f"=> {path}\n" in listed
    assert len(entries) >= len(listed.splitlines()) // 2 > 10


# -- synthetic objects --------------------------------------------------------------------


def cc(*argv: str | Path) -> None:
    subprocess.run(["gcc", *map(str, argv)], check=True, capture_output=True)


def library(path: Path, *link: str | Path) -> Path:
    """A tiny shared library, SONAME its file name, exporting a function named after it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_suffix(".c")
    function = path.name.split(".", maxsplit=1)[0].replace("-", "_")
    source.write_text(f"int {function}(void) {{ return 1; }}\n")
    soname = f"-Wl,-soname,{path.name}"
    cc("-shared", "-fPIC", "-o", path, source, soname, "-Wl,--no-as-needed", *link)
    return path


def needs(*libraries: Path) -> list[str]:
    """Linker flags making the object need each of `libraries` (lib*.so), found in its directory."""
    return [
        flag
        for library in libraries
        for flag in (
            f"-L{library.parent}",
            f"-l{library.name.removeprefix('lib').removesuffix('.so')}",
        )
    ]


def rpath(*directories: str | Path) -> tuple[str, str]:
    """Linker flags recording `directories` as DT_RPATH (inherited by the libraries loaded)."""
    return "-Wl,--disable-new-dtags", "-Wl,-rpath," + ":".join(map(str, directories))


def runpath(*directories: str | Path) -> tuple[str, str]:
    """Linker flags recording `directories` as DT_RUNPATH (the object's own search only)."""
    return "-Wl,--enable-new-dtags", "-Wl,-rpath," + ":".join(map(str, directories))


def program(path: Path, *link: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_suffix(".c")
    source.write_text("int main(void) { return 0; }\n")
    cc("-o", path, source, "-Wl,--no-as-needed", *link)
    return path


@needs_gcc
def test_rpath_origin_and_inheritance(tmp_path: Path) -> None:
    """Program RPATH=$ORIGIN/../lib is inherited by liba when liba needs libb."""
    liba = library(tmp_path / "lib" / "liba.so", *needs(library(tmp_path / "lib" / "libb.so")))
    main = program(tmp_path / "bin" / "main", *needs(liba), *rpath("$ORIGIN/../lib"))
    info = elf.read(str(main))
    assert info is not None and info.rpath == ("$ORIGIN/../lib",) and info.runpath is None
    assert agreed(main, "libb.so") == f"{tmp_path}/bin/../lib/libb.so"


@needs_gcc
def test_runpath_is_not_inherited(tmp_path: Path) -> None:
    """With RUNPATH, liba's own dependency libb is not found through the program's path."""
    liba = library(tmp_path / "lib" / "liba.so", *needs(library(tmp_path / "lib" / "libb.so")))
    main = program(tmp_path / "main", *needs(liba), *runpath(tmp_path / "lib"))
    found = resolve.closure(str(main))
    assert found.mapping()["liba.so"] == f"{tmp_path}/lib/liba.so"
    assert found.missing == [("libb.so", f"{tmp_path}/lib/liba.so")]
    assert ours(str(main)) == ldd(str(main))


@needs_gcc
def test_runpath_disables_rpath(tmp_path: Path) -> None:
    """An object with both: RPATH is ignored, so the RUNPATH copy wins."""
    in_rpath = library(tmp_path / "rpath" / "libc1.so")
    library(tmp_path / "runpath" / "libc1.so")
    program(tmp_path / "main", *needs(in_rpath))
    # A linker writes only one kind; append DT_RPATH by patching is fragile, so
    # check the parser's rule on a real object and the search on the ELF facts.
    info = elf.ElfInfo(64, "EM_X86_64", True, None, (), (), ("/x",), None, False)
    assert info.rpath == ()
    both = program(tmp_path / "both", *needs(in_rpath), *runpath(tmp_path / "runpath"))
    assert agreed(both, "libc1.so") == f"{tmp_path}/runpath/libc1.so"


@needs_gcc
def test_a_runpath_object_ignores_inherited_rpath(tmp_path: Path) -> None:
    """liba has RUNPATH: its libb comes from there, not from the program's RPATH dir."""
    library(tmp_path / "rpath" / "libb.so")
    libb = library(tmp_path / "runpath" / "libb.so")
    liba = library(tmp_path / "lib" / "liba.so", *needs(libb), *runpath(libb.parent))
    main = program(tmp_path / "main", *needs(liba), *rpath(liba.parent, tmp_path / "rpath"))
    assert agreed(main, "libb.so") == f"{tmp_path}/runpath/libb.so"


@needs_gcc
def test_missing_library_is_reported(tmp_path: Path) -> None:
    gone = library(tmp_path / "lib" / "libgone.so")
    main = program(tmp_path / "main", *needs(gone))
    gone.unlink()
    found = resolve.closure(str(main))
    assert found.missing == [("libgone.so", str(main))]
    assert ldd(str(main))[1]["libgone.so"] is None


@needs_gcc
def test_other_machine_is_skipped_and_garbage_is_fatal(tmp_path: Path) -> None:
    """glibc searches on past an ELF for another machine but stops at a broken file."""
    good = library(tmp_path / "good" / "libw.so")
    (tmp_path / "other").mkdir()
    foreign = bytearray(good.read_bytes())
    foreign[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    (tmp_path / "other" / "libw.so").write_bytes(bytes(foreign))
    main = program(tmp_path / "main", *needs(good), *rpath(tmp_path / "other", good.parent))
    assert agreed(main, "libw.so") == f"{tmp_path}/good/libw.so"
    (tmp_path / "other" / "libw.so").write_bytes(b"\x7fELF garbage")
    with pytest.raises(resolve.ResolveError, match=r"libw\.so"):
        resolve.closure(str(main))


@needs_gcc
def test_lib_and_platform_tokens(tmp_path: Path) -> None:
    linker = resolve.Linker.for_root(resolve.Root(), elf.read("/bin/true"))  # type: ignore[arg-type]
    libt = library(tmp_path / linker.lib / "libt.so")
    libp = library(tmp_path / linker.platform / "libp.so")
    main = program(
        tmp_path / "main",
        *needs(libt, libp),
        f"-Wl,-rpath,{tmp_path}/$LIB:{tmp_path}/${{PLATFORM}}",
    )
    assert agreed(main, "libt.so") == f"{tmp_path}/{linker.lib}/libt.so"


def test_not_elf_and_static(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert elf.read(str(script)) is None
    assert resolve.closure(str(script)).paths == []
    os.mkfifo(tmp_path / "fifo")
    assert elf.read(str(tmp_path / "fifo")) is None  # no hang on a planted FIFO
    (tmp_path / "broken").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9)
    with pytest.raises(elf.ElfError):
        elf.read(str(tmp_path / "broken"))


def test_lookup_inside_a_root_stays_inside(tmp_path: Path) -> None:
    """Absolute and climbing symlinks resolve inside the root, as after chroot."""
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "real").write_text("x")
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "usr" / "lib" / "abs").symlink_to("/lib/real")
    (tmp_path / "usr" / "lib" / "up").symlink_to("../../../../lib/real")
    root = resolve.Root(str(tmp_path))
    found = root.lookup("/lib/abs")
    assert found.path == "/usr/lib/real"
    assert [(link.path, link.target) for link in found.links] == [
        ("/lib", "usr/lib"),
        ("/usr/lib/abs", "../../lib/real"),
        ("/lib", "usr/lib"),
    ]
    assert root.lookup("/usr/lib/up").links[0].target == "../../lib/real"
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(resolve.ResolveError):
        root.lookup("/loop")


def test_contained_target() -> None:
    assert resolve.contained_target("/usr/lib64", "/lib/x/ld.so") == "../../lib/x/ld.so"
    assert resolve.contained_target("/", "usr/lib") == "usr/lib"
    assert resolve.contained_target("/a", "../../../etc/shadow") == "../etc/shadow"
    assert resolve.contained_target("/a/b", "../c") == "../c"
