"""Loading /etc/scponly-py/config.toml safely and fast (with `posix`, not `os`: see shell.py).

The file's path is fixed: a user must not be able to choose it. The directory
and the file are opened by the trusted-path rule (scponly_py/trusted.py: root's,
not writable by group or others, no symlink, up to /), and the file must be a
regular file; otherwise every login is refused (fail closed).
A missing directory or file means the built-in defaults.

Parsing TOML costs ~33 ms per login (`tomllib` imports `re`), three times the
interpreter's own start-up. So `scponly-py check-config` (run as root) writes
a compiled form next to it, `config.compiled`: the validated, normalised
config serialised with `marshal` (a built-in module), stamped with the
source's device, inode, size, mtime and ctime and with this package's version.
A login trusts the compiled form only if it passes the same ownership checks
and its stamp matches the source exactly; otherwise it parses the TOML itself
(slow but correct) and says so in syslog.
"""

import marshal
import posix

from scponly_py import __version__, trusted
from scponly_py.policy import ConfigError, default_config, normalise

CONFIG_DIR = "/etc/scponly-py"
CONFIG_NAME = "config.toml"
COMPILED_NAME = "config.compiled"
COMPILED_FORMAT = 1
MAX_CONFIG_SIZE = 1024 * 1024
READ_FLAGS = posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK | posix.O_CLOEXEC


class LoadedConfig:
    """A normalised config plus how it was obtained (for logs and `explain`)."""

    __slots__ = ("config", "source")

    def __init__(self, config: dict[str, object], source: str) -> None:
        self.config = config
        self.source = source  # "compiled", "toml", "defaults" or a file path


def _open_dir(config_dir: str) -> int | None:
    """The config directory's O_PATH fd by the trusted-path rule; None if it does not exist."""
    try:
        return trusted.open_path(config_dir, directory=True)
    except trusted.Untrusted as error:
        if error.missing:
            return None
        raise ConfigError(str(error)) from None


def _open_checked(name: str, dir_fd: int, what: str) -> int | None:
    """Open a trusted regular file in the config directory; None if it does not exist."""
    try:
        fd = trusted.open_existing_at(dir_fd, name, READ_FLAGS, what=what)
    except trusted.Untrusted as error:
        raise ConfigError(str(error)) from None
    if fd is None:
        return None
    if (posix.fstat(fd).st_mode & 0o170000) != 0o100000:
        posix.close(fd)
        raise ConfigError(f"{what} is not a regular file")
    return fd


def _read_all(fd: int, what: str) -> bytes:
    chunks = []
    total = 0
    while True:
        chunk = posix.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > MAX_CONFIG_SIZE:
            raise ConfigError(f"{what} is larger than {MAX_CONFIG_SIZE} bytes")
        chunks.append(chunk)


def source_stamp(info: posix.stat_result) -> tuple[int, int, int, int, int]:
    """What must not change between compiling and trusting the compiled form."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def parse_toml(data: bytes, what: str) -> dict[str, object]:
    """Parse and validate TOML text (imports tomllib: only on the slow path and in admin tools)."""
    import tomllib  # noqa: PLC0415 - deliberately lazy, see module docstring

    try:
        text = data.decode("utf-8")
        raw = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{what}: {error}") from None
    return normalise(raw)


def _load_compiled(dir_fd: int, stamp: tuple[int, ...] | None) -> dict[str, object] | None:
    fd = _open_checked(COMPILED_NAME, dir_fd, f"{CONFIG_DIR}/{COMPILED_NAME}")
    if fd is None:
        return None
    try:
        data = _read_all(fd, COMPILED_NAME)
    finally:
        posix.close(fd)
    try:
        envelope = marshal.loads(data)  # noqa: S302 - root-owned file, checked above
    except (EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(envelope, dict)
        or envelope.get("format") != COMPILED_FORMAT
        or envelope.get("version") != __version__
        or envelope.get("stamp") != stamp
        or stamp is None
    ):
        return None
    return envelope.get("config")  # type: ignore[return-value]


def load(config_dir: str = CONFIG_DIR) -> LoadedConfig:
    """The system configuration, checked; raises `ConfigError` when logins must be refused."""
    dir_fd = _open_dir(config_dir)
    if dir_fd is None:
        return LoadedConfig(default_config(), "defaults")
    try:
        source_fd = _open_checked(CONFIG_NAME, dir_fd, f"{config_dir}/{CONFIG_NAME}")
        if source_fd is None:
            return LoadedConfig(default_config(), "defaults")
        try:
            stamp = source_stamp(posix.fstat(source_fd))
            compiled = _load_compiled(dir_fd, stamp)
            if compiled is not None:
                return LoadedConfig(compiled, "compiled")
            data = _read_all(source_fd, CONFIG_NAME)
        finally:
            posix.close(source_fd)
        return LoadedConfig(parse_toml(data, f"{config_dir}/{CONFIG_NAME}"), "toml")
    finally:
        posix.close(dir_fd)


def compile_system_config(config_dir: str = CONFIG_DIR) -> dict[str, object]:
    """Validate the system config and write `config.compiled` atomically (run as root)."""
    dir_fd = _open_dir(config_dir)
    if dir_fd is None:
        raise ConfigError(f"{config_dir} does not exist")
    try:
        source_fd = _open_checked(CONFIG_NAME, dir_fd, f"{config_dir}/{CONFIG_NAME}")
        if source_fd is None:
            raise ConfigError(f"{config_dir}/{CONFIG_NAME} does not exist")
        try:
            stamp = source_stamp(posix.fstat(source_fd))
            config = parse_toml(_read_all(source_fd, CONFIG_NAME), f"{config_dir}/{CONFIG_NAME}")
        finally:
            posix.close(source_fd)
        envelope = {
            "format": COMPILED_FORMAT,
            "version": __version__,
            "stamp": stamp,
            "config": config,
        }
        temporary = f".{COMPILED_NAME}.{posix.getpid()}"
        try:  # a leftover of a crashed run with the same pid (the directory is root's)
            posix.unlink(temporary, dir_fd=dir_fd)
        except FileNotFoundError:
            pass

        def fill(fd: int) -> None:
            posix.fchmod(fd, 0o644)
            trusted.write_all(fd, marshal.dumps(envelope))

        trusted.write_new_at(dir_fd, temporary, fill)
        posix.rename(temporary, COMPILED_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return config
    finally:
        posix.close(dir_fd)
