"""glibc's library search, done statically: which files a program needs, seen from a root.

A jail must hold exactly what the dynamic loader will open, at the paths it
will open them, with every symlink on the way. This module follows glibc's
order (elf/dl-load.c, `_dl_map_object`) instead of asking `ldd`, which can run
the file it inspects and cannot look inside a jail:

1. a name that contains a slash is used as it is (after `$ORIGIN` etc.);
2. an object already loaded under that name or SONAME (or the same file) is reused;
3. DT_RPATH of the requesting object, then of the object that loaded it, up to
   the program, unless the requesting object has DT_RUNPATH (RPATH is "inherited");
4. LD_LIBRARY_PATH: ignored (a login process never gets one from us);
5. DT_RUNPATH of the requesting object only (not inherited);
6. /etc/ld.so.cache, then the system directories, unless DF_1_NODEFLIB.

Each directory is also tried with glibc's hwcaps subdirectories. Dependencies
are loaded breadth first, which decides whose RPATH applies to a shared name.
Everything is relative to a `Root`: "/" for the host, the jail for `check`,
with symlinks resolved as the kernel would after chroot (absolute targets and
`..` stay inside the root).
"""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import struct
from collections import deque
from dataclasses import dataclass, field

from setup_chroot import elf

MAX_SYMLINKS = 40  # the kernel's limit on symlinks followed in one lookup
CACHE_MAGIC = b"glibc-ld.so.cache1.1"
CACHE_HEADER = struct.Struct("=II")  # nlibs, len_strings (after the 20-byte magic)
CACHE_HEADER_SIZE = 48
CACHE_ENTRY = struct.Struct("=iIIIQ")  # flags, key, value, osversion, hwcap
FLAG_TYPE_MASK = 0x00FF
FLAG_ELF_LIBC6 = 0x0003

# Debian's multiarch triplets (used for the system directories and $LIB).
TRIPLETS = {
    ("EM_X86_64", 64): "x86_64-linux-gnu",
    ("EM_386", 32): "i386-linux-gnu",
    ("EM_AARCH64", 64): "aarch64-linux-gnu",
    ("EM_ARM", 32): "arm-linux-gnueabihf",
    ("EM_PPC64", 64): "powerpc64le-linux-gnu",
    ("EM_S390", 64): "s390x-linux-gnu",
    ("EM_RISCV", 64): "riscv64-linux-gnu",
}
# glibc-hwcaps levels for x86-64 and the /proc/cpuinfo flags each one needs.
X86_64_LEVELS = (
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
)


class ResolveError(Exception):
    """A path cannot be looked up inside its root (loop, not a directory, unreadable ELF)."""


# -- paths inside a root ------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A symlink met on the way to a file, and the target to give its copy in a jail."""

    path: str  # absolute, inside the root, with no symlink in its parent directories
    target: str  # relative, and never climbing above the root from outside a chroot either


@dataclass(frozen=True)
class Lookup:
    """Where a path really leads inside a root, and the symlinks that lead there."""

    path: str  # absolute, inside the root, no symlink component
    links: tuple[Link, ...]
    mode: int  # st_mode of the final file


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def contained_target(parent: str, target: str) -> str:
    """A relative symlink target equivalent to `target` (read in `parent`) inside a chroot.

    The kernel clamps `..` at the root only inside a chroot; seen from the host
    the same link could point outside the jail. Absolute targets become
    `../`*depth + target and excess `..` are dropped, so the link means the same
    thing in both views.
    """
    depth = len(_components(parent))
    if target.startswith("/"):
        return "/".join([".."] * depth + _components(target)) or "."
    kept: list[str] = []
    level = depth
    for part in _components(target):
        if part == "..":
            if level == 0:
                continue
            level -= 1
        else:
            level += 1
        kept.append(part)
    return "/".join(kept) or "."


class Root:
    """A directory tree seen as "/" (the host itself, or a jail as its users see it)."""

    def __init__(self, path: str = "/") -> None:
        self.path = path

    def host(self, path: str) -> str:
        """The host path of an absolute path inside the root."""
        return os.path.join(self.path, *_components(path))

    def lookup(self, path: str) -> Lookup:
        """Resolve every symlink of `path` inside the root; raise FileNotFoundError if missing."""
        todo = deque(_components(path))
        done: list[str] = []
        links: list[Link] = []
        while True:
            if not todo:
                current = "/" + "/".join(done)
                return Lookup(current, tuple(links), os.lstat(self.host(current)).st_mode)
            part = todo.popleft()
            if part == "..":
                if done:
                    done.pop()
                continue
            parent = "/" + "/".join(done)
            candidate = posixpath.join(parent, part)
            info = os.lstat(self.host(candidate))
            if stat.S_ISLNK(info.st_mode):
                if len(links) >= MAX_SYMLINKS:
                    raise ResolveError(f"{path}: too many levels of symbolic links")
                target = os.readlink(self.host(candidate))
                links.append(Link(candidate, contained_target(parent, target)))
                todo.extendleft(reversed(_components(target)))
                if target.startswith("/"):
                    done = []
            elif todo and not stat.S_ISDIR(info.st_mode):
                raise ResolveError(f"{candidate}: not a directory (in {path})")
            else:
                done.append(part)

    def exists(self, path: str) -> bool:
        """Whether `path` leads to something inside the root."""
        try:
            self.lookup(path)
        except (FileNotFoundError, NotADirectoryError, ResolveError):
            return False
        return True


# -- the loader's configuration for one root and architecture ------------------------------


def parse_cache(data: bytes) -> list[tuple[str, str]]:
    """(name, path) of each plain ELF libc6 entry of an ld.so.cache (new format), in file order.

    Entries for glibc-hwcaps or legacy hwcap subdirectories are left out: a
    jail gets the baseline library, which every CPU can run.
    """
    start = data.find(CACHE_MAGIC)
    if start < 0 or len(data) < start + CACHE_HEADER_SIZE:
        return []
    count, _strings = CACHE_HEADER.unpack_from(data, start + len(CACHE_MAGIC))
    entries = []
    for index in range(count):
        offset = start + CACHE_HEADER_SIZE + index * CACHE_ENTRY.size
        if offset + CACHE_ENTRY.size > len(data):
            break
        flags, key, value, _osversion, hwcap = CACHE_ENTRY.unpack_from(data, offset)
        if flags & FLAG_TYPE_MASK != FLAG_ELF_LIBC6 or hwcap:
            continue
        entries.append((_cstring(data, start + key), _cstring(data, start + value)))
    return entries


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=4096)
def _read_elf(host: str, _dev: int, _ino: int, _mtime_ns: int, _size: int) -> elf.ElfInfo | None:
    """elf.read, remembered per file identity and version (a libc is read once, not per program)."""
    return elf.read(host)


def read_elf(root: Root, path: str) -> elf.ElfInfo | None:
    """ELF facts of `path` inside `root` (symlinks followed there), or None if not ELF."""
    host = root.host(root.lookup(path).path)
    info = os.stat(host, follow_symlinks=False)
    try:
        return _read_elf(host, info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
    except elf.ElfError as error:
        raise ResolveError(f"{path}: {error}") from None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


@dataclass
class Linker:
    """What glibc's loader would use in one root for one architecture."""

    root: Root
    system_dirs: tuple[str, ...]
    lib: str  # what $LIB expands to
    platform: str  # what $PLATFORM expands to (AT_PLATFORM)
    subdirs: tuple[str, ...]  # hwcaps subdirectories tried before each directory
    cache: dict[str, list[str]] = field(default_factory=dict)
    _dir_cache: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def for_root(cls, root: Root, reference: elf.ElfInfo) -> Linker:
        """The loader configuration in `root` for objects like `reference`.

        System directories depend on how glibc was built: Debian multiarch
        (/lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib, $LIB=lib/<triplet>),
        Fedora-style lib64, or plain lib (Arch). The layout of the root tells which.
        """
        triplet = TRIPLETS.get((reference.machine, reference.elf_class))
        if triplet and root.exists(f"/usr/lib/{triplet}"):
            dirs: tuple[str, ...] = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
            lib = f"lib/{triplet}"
        elif reference.elf_class == 64 and os.path.isdir(root.host("/usr/lib64")):
            dirs, lib = ("/lib64", "/usr/lib64"), "lib64"
        else:
            dirs, lib = ("/lib", "/usr/lib"), "lib"
        platform = os.uname().machine
        subdirs: list[str] = []
        if reference.machine == "EM_X86_64":
            flags = _cpu_flags()
            subdirs = [f"glibc-hwcaps/{name}" for name, need in X86_64_LEVELS if need <= flags]
        for prefix in ("tls", ""):
            for tail in (f"{platform}/{platform}", platform, ""):
                candidate = posixpath.join(prefix, tail).rstrip("/")
                if candidate and candidate not in subdirs:
                    subdirs.append(candidate)
        linker = cls(root, dirs, lib, platform, tuple(subdirs))
        try:
            found = root.lookup("/etc/ld.so.cache")
            with open(root.host(found.path), "rb") as handle:
                data = handle.read()
        except (OSError, ResolveError):
            data = b""
        for name, path in parse_cache(data):
            linker.cache.setdefault(name, []).append(path)
        return linker

    def read_elf(self, path: str) -> elf.ElfInfo | None:
        """ELF facts of `path` inside this linker's root."""
        return read_elf(self.root, path)

    def usable(self, path: str, reference: elf.ElfInfo) -> bool:
        """Whether glibc would map `path` for an object like `reference`.

        A missing file or an ELF object for another class or machine makes glibc
        search on; a file that is there but is not valid ELF stops the program
        (ResolveError), and so stops us.
        """
        try:
            info = self.read_elf(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as error:
            raise ResolveError(f"{path}: {error.strerror}") from None
        if info is None:
            raise ResolveError(f"{path}: not an ELF file")
        return reference.compatible(info)

    def expand(self, text: str, origin: str | None) -> str | None:
        """Substitute $ORIGIN, $LIB and $PLATFORM (both spellings); None if impossible."""
        for name, value in (("ORIGIN", origin), ("LIB", self.lib), ("PLATFORM", self.platform)):
            for token in (f"${{{name}}}", f"${name}"):
                if token in text:
                    if value is None:
                        return None
                    text = text.replace(token, value)
        return text

    def candidates(self, directory: str) -> tuple[str, ...]:
        """`directory` with the hwcaps subdirectories that exist in it, in glibc's order."""
        if directory not in self._dir_cache:
            present = [
                posixpath.join(directory, sub)
                for sub in self.subdirs
                if self.root.exists(posixpath.join(directory, sub))
            ]
            self._dir_cache[directory] = (*present, directory)
        return self._dir_cache[directory]


# -- the dependency closure ---------------------------------------------------------------


@dataclass(eq=False)
class Loaded:
    """One object in the load order."""

    path: str  # as the loader opens it (may contain symlinks)
    info: elf.ElfInfo
    loader: Loaded | None
    requested: str  # the name it was first loaded by (what `ldd` prints)
    names: set[str]  # every name that now refers to it (requests, SONAME, path)

    @property
    def origin(self) -> str:
        return posixpath.dirname(self.path) or "/"


@dataclass
class Closure:
    """Everything a program makes the loader open, and what it could not find."""

    program: str
    interpreter: str | None
    objects: list[Loaded]  # the program first, then dependencies in load order
    missing: list[tuple[str, str]]  # (DT_NEEDED name, path of the object that needs it)

    @property
    def paths(self) -> list[str]:
        """Every path the loader opens (program, interpreter, libraries), without repeats."""
        found = [obj.path for obj in self.objects]
        if self.interpreter and self.interpreter not in found:
            found.insert(1, self.interpreter)
        return found

    def mapping(self) -> dict[str, str]:
        """DT_NEEDED name -> path, as `ldd` prints it (the first name each object was loaded by)."""
        return {obj.requested: obj.path for obj in self.objects[1:]}


def _search(linker: Linker, name: str, loader: Loaded, main: Loaded) -> str | None:
    """The path glibc would open for DT_NEEDED `name` of `loader`, or None."""
    reference = main.info

    def try_dirs(dirs: tuple[str, ...], owner: Loaded) -> str | None:
        for raw in dirs:
            directory = linker.expand(raw, owner.origin)
            if directory is None:
                continue
            for candidate_dir in linker.candidates(directory.rstrip("/") or "/"):
                candidate = posixpath.join(candidate_dir, name)
                if linker.usable(candidate, reference):
                    return candidate
        return None

    if "/" in name:
        path = linker.expand(name, loader.origin)
        return path if path is not None and linker.usable(path, reference) else None
    if loader.info.runpath is None:
        did_main = False
        current: Loaded | None = loader
        while current is not None:
            if current.info.rpath:
                found = try_dirs(current.info.rpath, current)
                if found:
                    return found
                did_main |= current is main
            current = current.loader
        if not did_main and main.info.rpath:
            found = try_dirs(main.info.rpath, main)
            if found:
                return found
    if loader.info.runpath:
        found = try_dirs(loader.info.runpath, loader)
        if found:
            return found
    if loader.info.nodeflib:
        return None
    return system_library(linker, name, reference)


def system_library(linker: Linker, name: str, reference: elf.ElfInfo) -> str | None:
    """Where ld.so.cache or the system directories provide `name` (what dlopen from libc finds)."""
    for path in linker.cache.get(name, ()):
        if linker.usable(path, reference):
            return path
    for directory in linker.system_dirs:
        for candidate_dir in linker.candidates(directory):
            candidate = posixpath.join(candidate_dir, name)
            if linker.usable(candidate, reference):
                return candidate
    return None


def _identity(linker: Linker, path: str) -> tuple[int, int]:
    found = linker.root.lookup(path)
    info = os.lstat(linker.root.host(found.path))
    return info.st_dev, info.st_ino


def closure(program: str, root: Root | None = None, linker: Linker | None = None) -> Closure:
    """The load order of `program` (an absolute path inside `root`) as glibc would build it.

    A static program or a script yields just itself. `$ORIGIN` of the program is
    its real directory (the kernel gives ld.so the resolved /proc/self/exe).
    """
    root = root or Root()
    real = root.lookup(program).path
    info = read_elf(root, real)
    if info is None or not info.dynamic:
        return Closure(program, None, [], [])
    linker = linker or Linker.for_root(root, info)
    main = Loaded(real, info, None, program, {program, real})
    objects = [main]
    by_file: dict[tuple[int, int], Loaded] = {_identity(linker, real): main}
    interpreter = info.interpreter
    if interpreter:
        interp_info = linker.read_elf(interpreter) if root.exists(interpreter) else None
        if interp_info is not None:
            interp = Loaded(interpreter, interp_info, None, interpreter, {interpreter})
            if interp_info.soname:
                interp.names.add(interp_info.soname)
            by_file[_identity(linker, interpreter)] = interp
    missing: list[tuple[str, str]] = []
    queue = deque([main])
    while queue:
        current = queue.popleft()
        for name in current.info.needed:
            known = next((obj for obj in by_file.values() if name in obj.names), None)
            if known is None:
                known = next((obj for obj in by_file.values() if obj.info.soname == name), None)
            if known is not None:
                known.names.add(name)
                continue
            path = _search(linker, name, current, main)
            if path is None:
                missing.append((name, current.path))
                continue
            identity = _identity(linker, path)
            if identity in by_file:
                by_file[identity].names.add(name)
                continue
            new_info = linker.read_elf(path)
            assert new_info is not None  # usable() checked it
            new = Loaded(path, new_info, current, name, {name, path})
            if new.info.soname:
                new.names.add(new.info.soname)
            by_file[identity] = new
            objects.append(new)
            queue.append(new)
    return Closure(program, interpreter, objects, missing)
