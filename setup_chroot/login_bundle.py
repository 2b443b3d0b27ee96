"""Build the login bundle that the launcher serves the package from (see scponly_py/bundle.py).

The bytecode must be the launcher's interpreter's, so the compiling runs in
that interpreter (`-I -S`, a fixed snippet). Every source's stamp is taken
before and after; a file changed in between fails the build rather than give
a bundle whose stamps do not match its code. Which modules every login
imports, and in which order, is read from the top-level imports of `ENTRIES`
(with `ast`, never by running anything).
"""

from __future__ import annotations

import ast
import marshal
import os
import subprocess

from scponly_py import bundle

# What a login imports before it knows the command: the shell, and the sftp
# grammar, because since OpenSSH 9.0 scp speaks SFTP too, so nearly every
# login runs sftp-server. Other grammars load on demand through the hook.
ENTRIES = ("scponly_py.shell", "scponly_py.programs.sftp")
PACKAGE = "scponly_py"

# argv: the loader's source (byte-compiled to its .pyc, which the launcher loads without a
# search), then every source file. stdout: MAGIC_NUMBER + marshal([marshalled code, ...]).
COMPILE = """import marshal, py_compile, sys
from _frozen_importlib_external import MAGIC_NUMBER
py_compile.compile(
    sys.argv[1], doraise=True, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP
)
out = []
for path in sys.argv[2:]:
    with open(path, "rb") as source:
        out.append(marshal.dumps(compile(source.read(), path, "exec", dont_inherit=True)))
sys.stdout.buffer.write(MAGIC_NUMBER + marshal.dumps(out))
"""


class BundleError(Exception):
    """The bundle could not be built."""


def modules(package_dir: str) -> dict[str, tuple[str, bool]]:
    """Every module of the package: dotted name -> (source path, is a package)."""
    found = {}
    for directory, subdirectories, files in os.walk(package_dir):
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if os.path.isfile(os.path.join(directory, name, "__init__.py"))
        )
        relative = os.path.relpath(directory, package_dir)
        prefix = PACKAGE if relative == "." else f"{PACKAGE}.{relative.replace(os.sep, '.')}"
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                if name == "__init__.py":
                    found[prefix] = (path, True)
                else:
                    found[f"{prefix}.{name[:-3]}"] = (path, False)
    return found


def top_level_imports(path: str, name: str, is_package: bool, known: set[str]) -> list[str]:
    """The package modules that `name` imports when it is loaded (not inside functions).

    Imports under `if TYPE_CHECKING:` are skipped; `from X import y` counts y
    when y is itself a module. Parents come with every module.
    """
    with open(path, "rb") as source:
        tree = ast.parse(source.read(), path)
    package = name if is_package else name.rpartition(".")[0]
    imported = []

    def visit(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Import):
                imported.extend(alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom):
                base = statement.module or ""
                if statement.level:
                    anchor = package.rsplit(".", statement.level - 1)[0]
                    base = f"{anchor}.{base}" if base else anchor
                imported.append(base)
                imported.extend(f"{base}.{alias.name}" for alias in statement.names)
            elif isinstance(statement, ast.If):
                if not (
                    isinstance(statement.test, ast.Name) and statement.test.id == "TYPE_CHECKING"
                ):
                    visit(statement.body)
                visit(statement.orelse)
            elif isinstance(statement, ast.Try):
                visit(statement.body)

    visit(tree.body)
    result = []
    for target in imported:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            candidate = ".".join(parts[:end])
            if candidate in known and candidate not in result:
                result.append(candidate)
    return result


def preload_order(
    found: dict[str, tuple[str, bool]], entries: tuple[str, ...] = ENTRIES
) -> tuple[str, ...]:
    """`entries` and everything they import at load time, each after what it needs."""
    known = set(found)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return  # a cycle is left to the import system, which handles it
        visiting.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            visit(parent)
        path, is_package = found[name]
        for dependency in top_level_imports(path, name, is_package, known):
            if dependency != name:
                visit(dependency)
        visiting.discard(name)
        order.append(name)

    for entry in entries:
        visit(entry)
    return tuple(order)


def build(interpreter: str, package_dir: str) -> bytes:
    """The bundle of the package in `package_dir`, compiled by `interpreter`."""
    found = modules(package_dir)
    names = list(found)
    paths = [found[name][0] for name in names]
    stamps = [bundle.file_stamp(os.stat(path)) for path in paths]
    compiled = subprocess.run(
        [
            interpreter,
            "-I",
            "-S",
            "-c",
            COMPILE,
            found[bundle.__name__][0],
            *paths,
        ],
        capture_output=True,
        check=False,
    )
    if compiled.returncode != 0:
        last = compiled.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise BundleError(f"{interpreter} could not compile {package_dir}: {last}")
    if stamps != [bundle.file_stamp(os.stat(path)) for path in paths]:
        raise BundleError(f"{package_dir} changed while it was compiled; run this again")
    magic, payload = compiled.stdout[:4], compiled.stdout[4:]
    codes = list(zip(stamps, marshal.loads(payload), strict=True))  # noqa: S302 - our snippet
    # The index first, then every module's code: a login
    # unmarshals only the modules it runs, straight from the bytes it read.
    # Offsets are marshalled as fixed-size ints, so the header's length does
    # not depend on them and one extra pass makes them absolute.
    preload = preload_order(found)
    header_length = 0
    for _ in range(3):
        offset = header_length
        index = []
        for name, (stamp, code) in zip(names, codes, strict=True):
            path, is_package = found[name]
            index.append((name, path, is_package, stamp, offset, len(code)))
            offset += len(code)
        header = marshal.dumps((bundle.TAG, magic, preload, tuple(index)))
        if len(header) == header_length:
            return header + b"".join(code for _, code in codes)
        header_length = len(header)
    raise BundleError("the bundle's index did not settle")  # marshal ints have a fixed size
