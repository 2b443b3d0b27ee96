"""What the dynamic loader reads from an ELF file: interpreter, DT_NEEDED, search paths.

Parsed with pyelftools from the program headers (PT_INTERP, PT_DYNAMIC), not
the section headers, because that is what ld.so itself uses and stripped or
hand-made files may have no sections. Nothing is ever executed: `ldd` can run
the file it inspects (a custom PT_INTERP is simply started), so it is only a
test oracle here.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.common.utils import struct_parse
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"
DF_1_NODEFLIB = 0x800
MAX_STRING = 4096  # PATH_MAX: no loader path or name is longer


class ElfError(Exception):
    """The file claims to be ELF but its headers cannot be read."""


@dataclass(frozen=True)
class ElfInfo:
    """The loader-relevant facts of one ELF object."""

    elf_class: int  # 32 or 64
    machine: str  # e_machine, e.g. "EM_X86_64"
    little_endian: bool
    interpreter: str | None  # PT_INTERP (programs only)
    needed: tuple[str, ...]  # DT_NEEDED, in order
    rpath: tuple[str, ...]  # DT_RPATH; empty when DT_RUNPATH exists (glibc ignores it then)
    runpath: tuple[str, ...] | None  # DT_RUNPATH; None when absent
    soname: str | None
    nodeflib: bool  # DF_1_NODEFLIB: no ld.so.cache, no default dirs

    @property
    def dynamic(self) -> bool:
        """Whether the loader has anything to do for this file."""
        return self.interpreter is not None or bool(self.needed) or self.soname is not None

    def compatible(self, other: ElfInfo) -> bool:
        """Whether glibc would accept `other` as a dependency of this object."""
        return (self.elf_class, self.machine, self.little_endian) == (
            other.elf_class,
            other.machine,
            other.little_endian,
        )


def _split_path(value: str) -> tuple[str, ...]:
    # An empty element would mean the current directory, which is meaningless
    # for a login process; glibc programs built sanely never carry one.
    return tuple(part for part in value.split(":") if part)


def _string(handle: BinaryIO, offset: int) -> str:
    handle.seek(offset)
    data = b""
    while b"\0" not in data:
        chunk = handle.read(256)
        if not chunk:
            raise ElfError("unterminated string in the dynamic string table")
        data += chunk
        if len(data) > MAX_STRING:
            raise ElfError("string in the dynamic string table is too long")
    return data[: data.index(b"\0")].decode("utf-8", "surrogateescape")


def parse(handle: BinaryIO) -> ElfInfo:
    """Read an open ELF file; raise ElfError if its headers are malformed.

    The dynamic table is read the way ld.so reads it: program headers, then
    the DT_STRTAB address mapped to a file offset through PT_LOAD. (pyelftools'
    DynamicSegment finds its string table through the section headers, which
    is both slower and wrong for a file without sections.)
    """
    try:
        elf = ELFFile(handle)
        structs = elf.structs
        headers = [
            struct_parse(structs.Elf_Phdr, handle, elf["e_phoff"] + index * elf["e_phentsize"])
            for index in range(elf["e_phnum"])
        ]
        interpreter = None
        entries: list[tuple[str, int]] = []
        for header in headers:
            if header["p_type"] == "PT_INTERP":
                handle.seek(header["p_offset"])
                raw = handle.read(header["p_filesz"])
                interpreter = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif header["p_type"] == "PT_DYNAMIC":
                size = structs.Elf_Dyn.sizeof()
                for index in range(header["p_filesz"] // size):
                    entry = struct_parse(structs.Elf_Dyn, handle, header["p_offset"] + index * size)
                    if entry["d_tag"] == "DT_NULL":
                        break
                    entries.append((entry["d_tag"], entry["d_val"]))
        tags = dict(entries)

        def string(value: int) -> str:
            address = tags["DT_STRTAB"] + value
            for header in headers:
                start = header["p_vaddr"]
                if header["p_type"] == "PT_LOAD" and start <= address < start + header["p_filesz"]:
                    return _string(handle, address - start + header["p_offset"])
            raise ElfError("dynamic string outside every PT_LOAD segment")

        needed = tuple(string(value) for tag, value in entries if tag == "DT_NEEDED")
        runpath = _split_path(string(tags["DT_RUNPATH"])) if "DT_RUNPATH" in tags else None
        rpath = _split_path(string(tags["DT_RPATH"])) if "DT_RPATH" in tags else ()
        return ElfInfo(
            elf_class=elf.elfclass,
            machine=elf["e_machine"],
            little_endian=elf.little_endian,
            interpreter=interpreter,
            needed=needed,
            rpath=() if runpath is not None else rpath,
            runpath=runpath,
            soname=string(tags["DT_SONAME"]) if "DT_SONAME" in tags else None,
            nodeflib=bool(tags.get("DT_FLAGS_1", 0) & DF_1_NODEFLIB),
        )
    except (_PyElfError, ValueError, KeyError, UnicodeDecodeError, OSError) as error:
        raise ElfError(str(error) or type(error).__name__) from None


def read(path: str) -> ElfInfo | None:
    """The ELF facts of a regular file, or None if it is not ELF (script, data, directory).

    Opened with O_NOFOLLOW and O_NONBLOCK, and only a regular file is read, so
    a planted FIFO cannot hang the tool and a final symlink is never followed
    (callers resolve symlinks themselves, inside the right root).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        if handle.read(4) != ELF_MAGIC:
            return None
        handle.seek(0)
        return parse(handle)
