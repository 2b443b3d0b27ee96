"""The login bundle: built by install-shell, served by the launcher, never stale in silence.

Each test copies the package into a temporary directory, writes the bundle with
the launcher's interpreter and runs the real launcher text, with its last line
(the login) replaced by a probe that prints why the bundle was not used (None if
it was) and which loader served the shell module.
"""

from __future__ import annotations

import ast
import marshal
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scponly_py import bundle
from setup_chroot import launcher, login_bundle
from tests.support import touch

PACKAGE = Path(launcher.package_parent()) / "scponly_py"
LOGIN = "sys.exit(main(startup_warning=problem))"
PROBE = (
    "print(repr(problem)); "
    "print(type(sys.modules['scponly_py.shell'].__loader__).__name__); "
    "print(sorted(name for name in sys.modules if name.startswith('scponly_py')))"
)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the package with its bundle; returns the package directory."""
    shutil.copytree(PACKAGE, tmp_path / "scponly_py", ignore=shutil.ignore_patterns("__pycache__"))
    launcher.write_bundle(launcher.interpreter(), str(tmp_path))
    return tmp_path / "scponly_py"


def run_launcher(package: Path, extra: str = "") -> list[str]:
    """Run the launcher text for `package` up to the login; return the probe's lines."""
    text = launcher.render(launcher.interpreter(), str(package.parent))
    assert text.count(LOGIN) == 1
    script = package.parent / "launcher"
    script.write_text(text.replace(LOGIN, extra + PROBE))
    result = subprocess.run(
        [launcher.interpreter(), "-I", "-S", str(script)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def read_bundle(package: Path) -> tuple[bytes, tuple]:
    """The bundle's bytes and its unmarshalled outer layer (plain data)."""
    with open(bundle.location(str(package)), "rb") as file:
        data = file.read()
    return data, marshal.loads(data)  # noqa: S302 - written by this test


def test_the_launcher_serves_the_login_path_from_the_bundle(package: Path) -> None:
    # The copy had no __pycache__: building the bundle also byte-compiled its loader,
    # which the launcher loads from that .pyc without searching or compiling.
    assert list((package / "__pycache__").glob("bundle.cpython-*.pyc"))
    problem, loader, loaded = run_launcher(package)
    assert problem == "None"
    assert loader == "BundleFinder"
    # Everything a login needs before it knows the command is loaded, and only that.
    assert ast.literal_eval(loaded) == sorted(
        login_bundle.preload_order(login_bundle.modules(str(package)))
    )


def test_preload_order_puts_what_a_module_imports_before_it() -> None:
    found = login_bundle.modules(str(PACKAGE))
    order = login_bundle.preload_order(found)
    assert order[0] == "scponly_py"
    assert {"scponly_py.shell", "scponly_py.programs.sftp"} <= set(order)
    for position, name in enumerate(order):
        path, is_package = found[name]
        for dependency in login_bundle.top_level_imports(path, name, is_package, set(found)):
            if dependency != name:
                assert order.index(dependency) < position, (name, dependency)


def test_preload_matches_what_python_really_imports() -> None:
    """The ast reading of imports agrees with an ordinary import of the same entries."""
    code = (
        f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r}); "
        + "; ".join(f"import {entry}" for entry in login_bundle.ENTRIES)
        + "; print(sorted(n for n in sys.modules if n.startswith('scponly_py')))"
    )
    result = subprocess.run(
        [launcher.interpreter(), "-I", "-S", "-c", code],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    preload = login_bundle.preload_order(login_bundle.modules(str(PACKAGE)))
    assert ast.literal_eval(result.stdout) == sorted(preload)


def test_type_checking_imports_are_not_preloaded(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from scponly_py import words\n"
        "TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n    from scponly_py import policy\n"
        "def f():\n    from scponly_py import winscp\n"
    )
    known = {"scponly_py", "scponly_py.words", "scponly_py.policy", "scponly_py.winscp"}
    imports = login_bundle.top_level_imports(str(module), "scponly_py.m", False, known)
    assert imports == ["scponly_py", "scponly_py.words"]


def test_a_changed_preloaded_source_leaves_the_bundle_unused(package: Path) -> None:
    touch(package / "words.py")
    problem, loader, _ = run_launcher(package)
    assert "is stale" in problem and "words.py changed" in problem
    assert loader == "SourceFileLoader"  # imported from disk: the current code


def test_a_replaced_source_with_the_same_times_is_noticed(package: Path) -> None:
    source = package / "decide.py"
    info = source.stat()
    replacement = package / "decide.py.new"
    replacement.write_bytes(source.read_bytes())
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    replacement.rename(source)  # what a package manager does: a new inode
    problem, loader, _ = run_launcher(package)
    assert "decide.py changed" in problem
    assert loader == "SourceFileLoader"


def test_a_changed_module_loaded_later_is_refused_not_mixed(package: Path) -> None:
    touch(package / "programs" / "scp.py")
    lines = run_launcher(
        package,
        "try:\n    import scponly_py.programs.scp\nexcept ImportError as error:\n"
        "    print(error)\n",
    )
    assert "is stale" in lines[0] and "scp.py changed" in lines[0]
    assert lines[1] == "None"  # the preloaded modules were still served from the bundle


def test_missing_bundle_means_imports_from_disk(package: Path) -> None:
    os.unlink(bundle.location(str(package)))
    problem, loader, _ = run_launcher(package)
    assert "not used" in problem and "No such file" in problem
    assert loader == "SourceFileLoader"


def test_bundle_of_another_interpreter_is_not_unmarshalled(package: Path) -> None:
    data, (tag, magic, preload, index) = read_bundle(package)
    header = marshal.dumps((tag, b"\x00\x00\r\n", preload, index))
    rest = data[len(marshal.dumps((tag, magic, preload, index))) :]
    with open(bundle.location(str(package)), "wb") as file:
        file.write(header + rest)
    problem, loader, _ = run_launcher(package)
    assert "written for another version or another Python" in problem
    assert loader == "SourceFileLoader"


def test_damaged_bundle_means_imports_from_disk(package: Path) -> None:
    path = bundle.location(str(package))
    with open(path, "r+b") as file:
        file.truncate(100)
    problem, loader, _ = run_launcher(package)
    assert "not used" in problem
    assert loader == "SourceFileLoader"


def test_a_frozen_tree_is_served_without_sources(package: Path) -> None:
    """sources=False (the frozen entries): no stamps to check; locations are beside the bundle."""
    frozen = package.parent / "frozen"
    frozen.mkdir()
    os.rename(bundle.location(str(package)), frozen / bundle.NAME)
    shutil.rmtree(package)  # a frozen tree has no sources: stamps would all say "changed"
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(PACKAGE.parent)!r})\n"  # only for the loader itself
        "from scponly_py import bundle\n"
        "sys.path.pop(0)\n"
        "del sys.modules['scponly_py'], sys.modules['scponly_py.bundle']\n"
        f"print(bundle.activate({str(frozen / bundle.NAME)!r}, sources=False))\n"
        "shell = sys.modules['scponly_py.shell']\n"
        "print(type(shell.__loader__).__name__, shell.__file__)\n"
        "import scponly_py.programs.rsync\n"  # not preloaded: served by the hook
        "print(type(scponly_py.programs.rsync.__loader__).__name__)\n"
    )
    result = subprocess.run(
        [launcher.interpreter(), "-I", "-S", "-c", script],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "None",
        f"BundleFinder {frozen}/scponly_py/shell.pyc",
        "BundleFinder",
    ]


def test_bundled_code_is_the_code_on_disk(package: Path) -> None:
    data, (_, _, _, index) = read_bundle(package)
    names = {entry[0] for entry in index}
    assert names == set(login_bundle.modules(str(package)))
    for name, origin, _, _, offset, length in index:
        code = marshal.loads(data[offset : offset + length])  # noqa: S302 - as above
        expected = compile(Path(origin).read_bytes(), origin, "exec", dont_inherit=True)
        assert code.co_code == expected.co_code, name
        assert code.co_filename == origin


def test_login_bundle_command_writes_and_removes(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the packages' scripts run: `scponly-py-setup login-bundle [--remove]`."""
    from click.testing import CliRunner  # noqa: PLC0415 - only this test needs click

    from setup_chroot import cli  # noqa: PLC0415

    monkeypatch.setattr(launcher, "package_parent", lambda: str(package.parent))
    path = Path(bundle.location(str(package)))
    removed = CliRunner().invoke(cli.main, ["login-bundle", "--remove"])
    assert removed.exit_code == 0, removed.output
    assert not path.exists()
    assert CliRunner().invoke(cli.main, ["login-bundle", "--remove"]).exit_code == 0
    written = CliRunner().invoke(cli.main, ["login-bundle"])
    assert written.exit_code == 0, written.output
    assert written.output == f"wrote {path}\n"
    assert run_launcher(package)[:2] == ["None", "BundleFinder"]
    failed = CliRunner().invoke(cli.main, ["login-bundle", "--python", "/bin/false"])
    assert failed.exit_code == 1
    assert "could not compile" in failed.output


def test_a_source_changed_while_compiling_fails_the_build(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = subprocess.run

    def run_then_edit(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
        result = real_run(*args, **kwargs)  # type: ignore[call-overload]
        touch(package / "words.py")
        return result

    monkeypatch.setattr(login_bundle.subprocess, "run", run_then_edit)
    with pytest.raises(login_bundle.BundleError, match="changed while it was compiled"):
        login_bundle.build(launcher.interpreter(), str(package))
