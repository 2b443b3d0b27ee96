"""Loading the config safely (docs/design.md R4, R7): ownership, modes, the compiled cache.

Each test builds its own config directory under a root-owned temporary
directory. Ownership tests need root (os.chown); the non-root behaviour is
tested by loading in a child process that has dropped to uid/gid 65534.
"""

from __future__ import annotations

import marshal
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scponly_py import __version__, policy
from scponly_py.policy import ConfigError, default_config, effective_policy

NOBODY = 65534
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to chown files")

VALID = textwrap.dedent(
    """\
    [defaults]
    programs = ["sftp"]
    access = "read-only"

    [group.drop]
    access = "write-only"

    [user.alice]
    programs = ["sftp", "scp"]
    """
)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "etc-scponly-py"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    return directory


def write(directory: Path, text: str = VALID, mode: int = 0o644) -> Path:
    path = directory / policy.CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def error(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        policy.load_config(str(directory))
    return str(caught.value)


# --- missing means built-in defaults ------------------------------------------------------------


def test_missing_directory_means_defaults(tmp_path: Path) -> None:
    loaded = policy.load_config(str(tmp_path / "absent"))
    assert loaded.source == "defaults"
    assert loaded.config == default_config()


def test_missing_file_means_defaults(config_dir: Path) -> None:
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "defaults"
    assert loaded.config == default_config()


def test_valid_file_is_parsed(config_dir: Path) -> None:
    write(config_dir)
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "toml"
    bob = effective_policy(loaded.config, "bob", ("drop",))
    assert bob.access == "write-only"
    assert bob.programs == frozenset({"sftp"})


# --- invalid content refuses every login ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[defaults]\nprogram = ['sftp']\n", "unknown key 'program'"),
        ("[default]\n", "unknown section [default]"),
        ("[defaults]\naccess = 'read-only'\naccess = 'read-write'\n", "config.toml"),
        ("[defaults\n", "config.toml"),
        ("[user.bob]\nacess = 'read-only'\n", "unknown key 'acess'"),
        ("[defaults]\numask = '0_22'\n", "umask"),
    ],
)
def test_invalid_config_is_an_error(config_dir: Path, text: str, message: str) -> None:
    write(config_dir, text)
    assert message in error(config_dir)


def test_non_utf8_config_is_an_error(config_dir: Path) -> None:
    path = write(config_dir)
    path.write_bytes(b"[defaults]\n# caf\xe9\n")
    assert "config.toml" in error(config_dir)


def test_oversized_config_is_an_error(config_dir: Path) -> None:
    write(config_dir, "#" * (policy.MAX_CONFIG_SIZE + 1))
    assert "larger than" in error(config_dir)


# --- unsafe files and directories (fail closed) ------------------------------------------------


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o777, 0o660, 0o602])
def test_group_or_other_writable_config_is_refused(config_dir: Path, mode: int) -> None:
    write(config_dir, mode=mode)
    assert "writable by group or others" in error(config_dir)


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777, 0o777])
def test_group_or_other_writable_directory_is_refused(config_dir: Path, mode: int) -> None:
    write(config_dir)
    config_dir.chmod(mode)
    assert "writable by group or others" in error(config_dir)


def test_read_only_modes_are_fine(config_dir: Path) -> None:
    write(config_dir, mode=0o600)
    config_dir.chmod(0o700)
    assert policy.load_config(str(config_dir)).source == "toml"


@needs_root
def test_config_not_owned_by_root_is_refused(config_dir: Path) -> None:
    path = write(config_dir)
    os.chown(path, NOBODY, 0)
    assert "not owned by root" in error(config_dir)


@needs_root
def test_config_owned_by_root_but_group_other_is_fine(config_dir: Path) -> None:
    path = write(config_dir, mode=0o644)
    os.chown(path, 0, NOBODY)
    assert policy.load_config(str(config_dir)).source == "toml"


@needs_root
def test_directory_not_owned_by_root_is_refused(config_dir: Path) -> None:
    write(config_dir)
    os.chown(config_dir, NOBODY, NOBODY)
    assert "not owned by root" in error(config_dir)


@needs_root
def test_directory_not_owned_by_root_is_refused_even_without_a_file(config_dir: Path) -> None:
    os.chown(config_dir, NOBODY, NOBODY)
    assert "not owned by root" in error(config_dir)


def test_symlinked_config_is_refused(config_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.toml"
    target.write_text(VALID)
    target.chmod(0o644)
    (config_dir / policy.CONFIG_NAME).symlink_to(target)
    assert "cannot be opened" in error(config_dir)


def test_directory_in_place_of_config_is_refused(config_dir: Path) -> None:
    (config_dir / policy.CONFIG_NAME).mkdir(mode=0o755)
    assert "not a regular file" in error(config_dir)


def test_fifo_in_place_of_config_is_refused_without_blocking(config_dir: Path) -> None:
    os.mkfifo(config_dir / policy.CONFIG_NAME, 0o644)
    assert "not a regular file" in error(config_dir)


def test_config_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        policy.load_config(str(path))


# --- the compiled cache ---------------------------------------------------------------------


def compile_in(directory: Path) -> Path:
    policy.compile_system_config(str(directory))
    return directory / policy.COMPILED_NAME


def test_compiled_cache_is_written_root_owned_and_read_only(config_dir: Path) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    info = compiled.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o644
    assert info.st_uid == os.geteuid()
    assert not [name for name in os.listdir(config_dir) if name.startswith(".")]


def test_a_leftover_temp_file_of_a_crashed_compile_does_not_block_the_next(
    config_dir: Path,
) -> None:
    write(config_dir)
    leftover = config_dir / f".{policy.COMPILED_NAME}.{os.getpid()}"
    leftover.write_bytes(b"half written")
    compiled = compile_in(config_dir)
    assert compiled.exists()
    assert not leftover.exists()


def test_compiled_cache_is_used_when_the_stamp_matches(config_dir: Path) -> None:
    write(config_dir)
    compile_in(config_dir)
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "compiled"
    assert loaded.config == policy.parse_toml(VALID.encode(), "x")


def test_compiled_cache_is_trusted_only_through_its_stamp(config_dir: Path) -> None:
    # A compiled form whose stamp matches is believed without parsing the TOML
    # (that is the point of it): prove it by planting different content.
    source = write(config_dir)
    planted = policy.parse_toml(b"[defaults]\naccess = 'write-only'\n", "x")
    envelope = {
        "format": policy.COMPILED_FORMAT,
        "version": __version__,
        "stamp": policy.source_stamp(os.stat(source)),
        "config": planted,
    }
    compiled = config_dir / policy.COMPILED_NAME
    compiled.write_bytes(marshal.dumps(envelope))
    compiled.chmod(0o644)
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "compiled"
    assert loaded.config == planted


def test_edited_config_makes_the_cache_stale(config_dir: Path) -> None:
    write(config_dir)
    compile_in(config_dir)
    write(config_dir, VALID.replace("read-only", "read-write"))
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "toml"
    assert effective_policy(loaded.config, "bob", ()).access == "read-write"


def test_same_size_same_mtime_rewrite_still_makes_the_cache_stale(config_dir: Path) -> None:
    # ctime (and the inode for an editor's rename) is part of the stamp, and cannot be reset.
    source = write(config_dir)
    compile_in(config_dir)
    before = os.stat(source)
    data = source.read_bytes()
    with open(source, "r+b") as handle:
        handle.seek(data.index(b'["sftp"]'))
        handle.write(b'["scp"] ')  # same size, different meaning
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(source)
    assert after.st_size == before.st_size
    assert after.st_mtime_ns == before.st_mtime_ns
    loaded = policy.load_config(str(config_dir))
    assert loaded.source == "toml"
    assert effective_policy(loaded.config, "bob", ()).programs == frozenset({"scp"})


def test_replaced_config_file_makes_the_cache_stale(config_dir: Path) -> None:
    write(config_dir)
    compile_in(config_dir)
    replacement = config_dir / "new.toml"
    replacement.write_text(VALID)
    replacement.chmod(0o644)
    replacement.rename(config_dir / policy.CONFIG_NAME)
    assert policy.load_config(str(config_dir)).source == "toml"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda envelope: envelope.update(version="0.0.0-other"),
        lambda envelope: envelope.update(format=policy.COMPILED_FORMAT + 1),
        lambda envelope: envelope.update(stamp=None),
        lambda envelope: envelope.update(stamp=list(envelope["stamp"])),
        lambda envelope: envelope.pop("stamp"),
    ],
    ids=["version", "format", "no-stamp", "stamp-as-list", "stamp-missing"],
)
def test_mismatched_envelope_falls_back_to_toml(config_dir: Path, mutate) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    envelope = marshal.loads(compiled.read_bytes())  # noqa: S302 - our own file
    mutate(envelope)
    compiled.write_bytes(marshal.dumps(envelope))
    assert policy.load_config(str(config_dir)).source == "toml"


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"\xff" * 64, marshal.dumps([1, 2]), marshal.dumps("x")]
)
def test_corrupt_cache_falls_back_to_toml(config_dir: Path, data: bytes) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    compiled.write_bytes(data)
    assert policy.load_config(str(config_dir)).source == "toml"


def test_truncated_cache_falls_back_to_toml(config_dir: Path) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    compiled.write_bytes(compiled.read_bytes()[:-7])
    assert policy.load_config(str(config_dir)).source == "toml"


def test_unsafe_cache_refuses_instead_of_being_ignored(config_dir: Path) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    compiled.chmod(0o666)
    assert "config.compiled is writable by group or others" in error(config_dir)


@needs_root
def test_cache_not_owned_by_root_is_refused(config_dir: Path) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    os.chown(compiled, NOBODY, NOBODY)
    assert "config.compiled is not owned by root" in error(config_dir)


def test_symlinked_cache_is_refused(config_dir: Path) -> None:
    write(config_dir)
    compiled = compile_in(config_dir)
    moved = config_dir.parent / "moved.compiled"
    compiled.rename(moved)
    compiled.symlink_to(moved)
    assert "cannot be opened" in error(config_dir)


def test_cache_without_a_source_is_ignored(config_dir: Path) -> None:
    write(config_dir)
    compile_in(config_dir)
    (config_dir / policy.CONFIG_NAME).unlink()
    assert policy.load_config(str(config_dir)).source == "defaults"


def test_compile_refuses_an_invalid_config_and_keeps_no_cache(config_dir: Path) -> None:
    write(config_dir, "[defaults]\nbogus = 1\n")
    with pytest.raises(ConfigError):
        policy.compile_system_config(str(config_dir))
    assert not (config_dir / policy.COMPILED_NAME).exists()


def test_compile_refuses_an_unsafe_config(config_dir: Path) -> None:
    write(config_dir, mode=0o666)
    with pytest.raises(ConfigError, match="writable"):
        policy.compile_system_config(str(config_dir))


def test_compile_without_a_config_is_an_error(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        policy.compile_system_config(str(config_dir))


# --- as the user: what a login (non-root) sees --------------------------------------------

AS_NOBODY = textwrap.dedent(
    """\
    import os, sys
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    from scponly_py.policy import ConfigError, load_config
    try:
        loaded = load_config(sys.argv[1])
    except ConfigError as error:
        print("ERROR", error)
    else:
        print("OK", loaded.source)
    """
)


def load_as_nobody(directory: Path) -> str:
    # The temporary tree's ancestors are root-only (0700): give the user a way in.
    for parent in directory.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    result = subprocess.run(
        [sys.executable, "-I", "-c", AS_NOBODY, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={"PYTHONPATH": ""},
        timeout=30,
    )
    return result.stdout.strip()


@pytest.fixture
def reachable(config_dir: Path):
    """Make the package importable for uid 65534 (the venv may live under /root)."""
    package = Path(policy.__file__).resolve().parent.parent
    probe = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import os; os.setresuid(65534, 65534, 65534); import scponly_py.policy",
        ],
        capture_output=True,
        check=False,
        cwd="/",
    )
    if probe.returncode != 0:
        pytest.skip(f"{package} or the interpreter is not readable by uid 65534")
    return config_dir


@needs_root
def test_user_reads_a_root_owned_world_readable_config(reachable: Path) -> None:
    write(reachable)
    assert load_as_nobody(reachable) == "OK toml"
    compile_in(reachable)
    assert load_as_nobody(reachable) == "OK compiled"


@needs_root
def test_unreadable_config_refuses_the_user(reachable: Path) -> None:
    write(reachable, mode=0o600)
    assert load_as_nobody(reachable).endswith("cannot be opened: Permission denied")


@needs_root
def test_unreadable_cache_refuses_the_user(reachable: Path) -> None:
    write(reachable)
    compile_in(reachable).chmod(0o600)
    assert load_as_nobody(reachable).endswith("cannot be opened: Permission denied")


@needs_root
def test_unsearchable_directory_refuses_the_user(reachable: Path) -> None:
    write(reachable)
    reachable.chmod(0o700)
    # The directory opens (O_RDONLY needs read, which 0700 denies): refused either way.
    assert load_as_nobody(reachable).endswith("cannot be opened: Permission denied")


@needs_root
def test_user_owned_config_directory_is_refused_for_the_user(reachable: Path) -> None:
    write(reachable)
    os.chown(reachable, NOBODY, NOBODY)
    assert load_as_nobody(reachable) == f"ERROR {reachable} is not owned by root (uid {NOBODY})"
