"""The configuration: config.toml loaded safely and fast, validated, merged into a `Policy`.

`load_config` opens /etc/scponly-py and its config.toml by the trusted-path rule
(trusted.py; anything else refuses every login; missing: the built-in defaults)
and uses `config.compiled` (marshal, written by `check-config` as root) only
when its stamp matches the source, else parses the TOML (tomllib: ~33 ms) and
says so. `normalise` validates parsed TOML into plain data: every key known,
values checked ASCII-exactly. `effective_policy` merges, later winning: built-in
defaults < [defaults] < each matching [group.NAME] in file order < [user.NAME].
Programs and [paths] keys come from the program table. Keys: scponly-py.toml(5);
the why: docs/design.md ("The pipeline of a login", "What a session can observe").
"""

import marshal
import posix

from scponly_py import __version__, trusted
from scponly_py.outcome import Record
from scponly_py.programs import PROGRAMS as TABLE
from scponly_py.programs import default_paths

PROGRAMS = tuple(TABLE)
ACCESS_MODES = ("read-write", "read-only", "write-only")
LOG_LEVELS = ("info", "debug")
LOG_FORMATS = ("kv", "json")
# sftp-server's own levels that name its per-operation lines (INFO) and its lookups (VERBOSE).
TRANSFER_LOG_LEVELS = ("INFO", "VERBOSE")

BUILTIN_DEFAULTS: dict[str, object] = {
    "programs": tuple(sorted(name for name, record in TABLE.items() if record["default"])),
    "access": "read-write",
    "links": True,
    "umask": 0o022,
    "start_dir": "",
    "log_level": "info",
    "log_format": "kv",
    "log_transfers": True,
    "transfer_log_level": "INFO",
    "svn_root": "",
    "svn_tunnel_user": False,
}
BUILTIN_PATHS = default_paths()
SECTIONS = ("defaults", "paths", "group", "user")
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
PATH_CHARACTERS = NAME_CHARACTERS | frozenset("/+@:,")


class ConfigError(Exception):
    """The configuration is invalid or unsafe; every login is refused until it is fixed."""


class Policy(Record):
    """What one user may do. Built only by `effective_policy` (or tests)."""

    __slots__ = (
        "access", "links", "log_format", "log_level", "log_transfers", "paths", "programs",
        "start_dir", "svn_root", "svn_tunnel_user", "transfer_log_level", "umask",
    )  # fmt: skip
    access: str
    links: bool
    log_format: str
    log_level: str
    log_transfers: bool
    paths: tuple[tuple[str, str], ...]
    programs: frozenset[str]
    start_dir: str
    svn_root: str
    svn_tunnel_user: bool
    transfer_log_level: str
    umask: int

    def path(self, program: str) -> str:
        """Absolute path of `program` (KeyError if the config names none)."""
        for name, path in self.paths:
            if name == program:
                return path
        raise KeyError(program)


def _check_programs(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: programs must be a list of names")
    unknown = [item for item in value if item not in PROGRAMS]
    if unknown:
        raise ConfigError(f"{where}: unknown program {unknown[0]!r} (known: {', '.join(PROGRAMS)})")
    return tuple(sorted(set(value)))


def _check_choice(choices: tuple[str, ...]):
    def check(value: object, where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
        return value  # type: ignore[return-value]

    return check


def _check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false")
    return value


def _check_umask(value: object, where: str) -> int:
    if (
        not isinstance(value, str)
        or not 3 <= len(value) <= 4
        or not all("0" <= char <= "7" for char in value)
        # A 4-digit value may not set the setuid/setgid/sticky digit: sftp-server
        # exits on `-u` above 0777, so every sftp login would fail.
        or (len(value) == 4 and value[0] != "0")
    ):
        raise ConfigError(
            f'{where}: must be an octal string from "000" to "0777" such as "0022", got {value!r}'
        )
    return int(value, 8)


def _check_start_dir(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string")
    if value == "":
        return value
    parts = value.split("/")
    if (
        value.startswith("/")
        or not all(char in NAME_CHARACTERS or char == "/" for char in value)
        or any(part in ("", ".", "..") for part in parts)
        or len(value) > 255
    ):
        raise ConfigError(
            f"{where}: must be a plain relative path inside HOME (letters, digits, . _ - /, "
            f"no '..'), got {value!r}"
        )
    return value


def _check_svn_root(value: object, where: str) -> str:
    """Empty (svnserve refused) or a normalised absolute path; never relative to HOME."""
    if value == "":
        return value
    if isinstance(value, str) and not value.startswith("/"):
        raise ConfigError(
            f"{where}: must be an absolute path outside the home directory, got {value!r}: "
            "svnserve runs the repositories' hooks as the account, and a repository below a "
            "home the account can write lets it install them"
        )
    return _check_path(value, where)


def _check_path(value: object, where: str) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value) > 1024
        or not all(char in PATH_CHARACTERS for char in value)
        or any(part in (".", "..") for part in value.split("/"))
        or "//" in value
        or value.endswith("/")
    ):
        raise ConfigError(f"{where}: must be a normalised absolute path, got {value!r}")
    return value


SETTING_CHECKS = {
    "programs": _check_programs,
    "access": _check_choice(ACCESS_MODES),
    "links": _check_bool,
    "umask": _check_umask,
    "start_dir": _check_start_dir,
    "log_level": _check_choice(LOG_LEVELS),
    "log_format": _check_choice(LOG_FORMATS),
    "log_transfers": _check_bool,
    "transfer_log_level": _check_choice(TRANSFER_LOG_LEVELS),
    "svn_root": _check_svn_root,
    "svn_tunnel_user": _check_bool,
}


def _check_settings(table: object, where: str) -> dict[str, object]:
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    settings: dict[str, object] = {}
    for key, value in table.items():
        check = SETTING_CHECKS.get(key)
        if check is None:
            raise ConfigError(
                f"[{where}]: unknown key {key!r} (known: {', '.join(SETTING_CHECKS)})"
            )
        settings[key] = check(value, f"[{where}] {key}")
    return settings


def _check_name(name: str, kind: str) -> str:
    if not name or len(name) > 64 or not all(char in NAME_CHARACTERS for char in name):
        raise ConfigError(f"invalid {kind} name {name!r} in a [{kind}.NAME] section")
    return name


def _check_sections(raw: dict[str, object], kind: str) -> tuple[tuple[str, dict], ...]:
    """The [kind.NAME] sections in file order, each validated."""
    sections = raw.get(kind, {})
    if not isinstance(sections, dict):
        raise ConfigError(f"[{kind}] must contain [{kind}.NAME] tables")
    return tuple(
        (_check_name(name, kind), _check_settings(table, f"{kind}.{name}"))
        for name, table in sections.items()
    )


def normalise(raw: dict[str, object]) -> dict[str, object]:
    """Validate the parsed TOML into plain data (str, int, bool, tuple, dict).

    The result contains only types `marshal` can store, for the compiled cache.
    """
    unknown = [key for key in raw if key not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    defaults = dict(BUILTIN_DEFAULTS)
    defaults.update(_check_settings(raw.get("defaults", {}), "defaults"))

    paths = dict(BUILTIN_PATHS)
    raw_paths = raw.get("paths", {})
    if not isinstance(raw_paths, dict):
        raise ConfigError("[paths] must be a table")
    for name, path in raw_paths.items():
        if name not in BUILTIN_PATHS:
            raise ConfigError(f"[paths]: unknown program {name!r}")
        paths[name] = _check_path(path, f"[paths] {name}")

    groups = _check_sections(raw, "group")
    users = dict(_check_sections(raw, "user"))
    return {"defaults": defaults, "paths": paths, "groups": groups, "users": users}


def effective_policy(
    config: dict[str, object], user: str, groups: tuple[str, ...] | frozenset[str]
) -> Policy:
    """The policy for `user` who belongs to `groups` (names), merged in the documented order."""
    settings = dict(config["defaults"])  # type: ignore[arg-type]
    member_of = set(groups)
    for name, section in config["groups"]:  # type: ignore[attr-defined]
        if name in member_of:
            settings.update(section)
    settings.update(config["users"].get(user, {}))  # type: ignore[attr-defined]
    return Policy(
        access=settings["access"],
        links=settings["links"],
        log_level=settings["log_level"],
        # .get: a config.compiled written before these keys existed lacks them.
        log_format=settings.get("log_format", "kv"),
        log_transfers=settings.get("log_transfers", True),
        transfer_log_level=settings.get("transfer_log_level", "INFO"),
        paths=tuple(sorted(config["paths"].items())),  # type: ignore[attr-defined]
        programs=frozenset(settings["programs"]),  # type: ignore[arg-type]
        start_dir=settings["start_dir"],
        # .get: a config.compiled written before these keys existed lacks them.
        svn_root=settings.get("svn_root", ""),
        svn_tunnel_user=settings.get("svn_tunnel_user", False),
        umask=settings["umask"],
    )


def default_config() -> dict[str, object]:
    """The configuration used when /etc/scponly-py/config.toml does not exist."""
    return normalise({})


# ---- loading: /etc/scponly-py/config.toml, or its compiled form, by the trusted-path rule ----

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


def load_config(config_dir: str = CONFIG_DIR) -> LoadedConfig:
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

        def fill(fd: int) -> None:
            posix.fchmod(fd, 0o644)
            trusted.write_all(fd, marshal.dumps(envelope))

        trusted.write_new_at(dir_fd, temporary, fill)
        posix.rename(temporary, COMPILED_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return config
    finally:
        posix.close(dir_fd)
