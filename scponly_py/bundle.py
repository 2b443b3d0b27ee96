"""The login bundle: the package's bytecode in one file, checked and served.

Through Python's path-based import every module a login needs costs a
directory scan, stats, an open and a read of its .pyc, and importlib's own
Python code; over a dozen modules that was most of the shell's cost above the
interpreter floor. `scponly-py-setup install-shell` therefore compiles every
module into `__pycache__/login.bundle` (setup_chroot/login_bundle.py). The
launcher loads this module straight from its .pyc (no search, no compiling)
and calls `activate()`, which reads the bundle, checks that it was written in
this format for this interpreter (tag and bytecode magic number) before it
unmarshals any code, and trusts it only while the source files still have the
stamps they had when they were compiled. Otherwise (an upgrade without
`install-shell`, an edited file) the login imports the files on disk, which
is correct, only slower, and logs why. It then runs the modules every login
needs in dependency order, directly (the import system's per-module
bookkeeping is the other half of the cost), and serves the rest (other
grammars, WinSCP's protocol, admin code) through an import hook.

The bundle sits in the package's `__pycache__`, next to the .pyc files Python
would otherwise load from the same directory, and is trusted exactly as much:
`install-shell` refuses a package tree that anyone but root can write.

Only built-in modules, and no annotations-future import: activating must not
cost what the bundle saves.
"""

import marshal
import posix
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

TAG = "scponly-py login bundle 3"
NAME = "login.bundle"


def location(package_dir: str) -> str:
    """Where the bundle of the package in `package_dir` lives."""
    return f"{package_dir}/__pycache__/{NAME}"


def file_stamp(info: posix.stat_result) -> tuple[int, int, int, int, int]:
    """What must not change between compiling a file and trusting the compiled form."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class BundleFinder:
    """Serves the package's modules from a verified bundle (an import hook and a loader).

    Each module's source stamp is checked when the module is loaded, so a login
    stats only the files it uses. A module that changed after the others were
    served raises ImportError (the login is refused) rather than mixing versions.
    Code is unmarshalled straight from the bundle's bytes, only when needed.
    """

    def __init__(
        self, path: str, data: bytes, index: tuple[tuple, ...], *, sources: bool = True
    ) -> None:
        self.path = path
        self.sources = sources
        self.view = memoryview(data)
        # name -> (source path, is a package, source stamp, offset, length)
        self.modules = {entry[0]: entry[1:] for entry in index}
        if not sources:  # a frozen tree: each module's .pyc beside the bundle is its location
            root = path.rpartition("/")[0]
            for name, (_, is_package, stamp, offset, length) in self.modules.items():
                location = f"{root}/{name.replace('.', '/')}{'/__init__' if is_package else ''}.pyc"
                self.modules[name] = (location, is_package, stamp, offset, length)

    def changed(self, name: str) -> str | None:
        """The source file of `name` if it is no longer the one compiled into the bundle."""
        if not self.sources:
            return None
        origin, _, stamp, _, _ = self.modules[name]
        try:
            current = file_stamp(posix.stat(origin))
        except OSError:
            current = None
        return None if current == stamp else origin

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        """A spec for `name` if the bundle holds it; None lets the normal finders look."""
        entry = self.modules.get(name)
        if entry is None:
            return None
        origin, is_package, _, _, _ = entry
        spec = ModuleSpec(name, self, origin=origin, is_package=is_package)
        if is_package:
            spec.submodule_search_locations.append(origin.rpartition("/")[0])
        spec.has_location = True
        return spec

    def create_module(self, spec: object) -> None:
        """Default module creation."""
        return None

    def exec_module(self, module: object) -> None:
        """Run the module's compiled code in its namespace, if its source is unchanged."""
        changed = self.changed(module.__name__)
        if changed is not None:
            raise ImportError(f"login bundle {self.path} is stale ({changed} changed)")
        self.run(module)

    def run(self, module: object) -> None:
        """Run the module's compiled code in its namespace."""
        _, _, _, offset, length = self.modules[module.__name__]
        code = marshal.loads(self.view[offset : offset + length])  # noqa: S302 - verified bundle
        exec(code, module.__dict__)  # noqa: S102 - from the verified bundle

    def load(self, name: str) -> None:
        """Import `name`, whose source stamp was checked, without the import system."""
        spec = self.find_spec(name)
        module = type(sys)(name)
        module.__spec__ = spec
        module.__loader__ = self
        module.__file__ = spec.origin
        if spec.submodule_search_locations is not None:
            module.__path__ = spec.submodule_search_locations
            module.__package__ = name
        else:
            module.__package__ = spec.parent
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        try:
            self.run(module)
        except BaseException:
            del sys.modules[name]
            raise


def activate(path: str, *, sources: bool = True) -> str | None:
    """Serve the package from the bundle at `path` (None), or say why not and change nothing.

    The file is `marshal((TAG, magic number, preload, index))` followed by each
    module's marshalled code; the first part is plain data, safe to read in any
    Python, and `index` locates each module's code. `preload` lists the modules
    every login imports, dependencies first: if any of their sources changed,
    the bundle is not used at all. `sources=False` (the frozen shells): there
    are no sources; the bundle was built with the root-owned tree it sits in.
    """
    with open(path, "rb") as file:
        data = file.read()
    tag, magic, preload, index = marshal.loads(data)  # noqa: S302 - plain data, checked next
    if tag != TAG or magic != MAGIC_NUMBER:
        return f"login bundle {path} was written for another version or another Python"
    finder = BundleFinder(path, data, index, sources=sources)
    for name in preload:
        changed = finder.changed(name)
        if changed is not None:
            return f"login bundle {path} is stale ({changed} changed)"
    sys.meta_path.insert(0, finder)
    for name in preload:
        finder.load(name)
    return None
