"""Admin helpers on the scponly-py command: `explain` and `check-config`.

Never reachable through `-c` (sshd only ever passes `-c CMD` or nothing), and
imported only when asked for, so argparse stays off the login path.
"""

from __future__ import annotations

import argparse
import os
import sys

from scponly_py import __version__, config, explain
from scponly_py.decision import Refusal
from scponly_py.policy import ConfigError

CHECK_OK = 0
FAILED = 1
INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scponly-py",
        description="Restricted login shell for file transfers. As a login shell it is run by "
        "sshd as 'scponly-py -c COMMAND'; these subcommands are for administrators.",
    )
    parser.add_argument("--version", action="version", version=f"scponly-py {__version__}")
    commands = parser.add_subparsers(dest="subcommand", required=True)

    explain_parser = commands.add_parser(
        "explain", help="show the decision and the exact argv/env that would be exec'd"
    )
    explain_parser.add_argument("--user", help="the user to decide for (default: yourself)")
    explain_parser.add_argument(
        "--config", help="a config.toml to use instead of the system one (ownership not checked)"
    )
    explain_parser.add_argument("command", nargs="+", help="the SSH command string (after --)")

    check_parser = commands.add_parser(
        "check-config",
        help="validate a config file; for the system config, also write config.compiled",
    )
    check_parser.add_argument(
        "file", nargs="?", help=f"default: {config.CONFIG_DIR}/{config.CONFIG_NAME}"
    )
    check_parser.add_argument(
        "--no-compile", action="store_true", help="do not write config.compiled"
    )
    return parser


def _check_config(file: str | None, no_compile: bool) -> int:
    if file is None or os.path.abspath(file) == f"{config.CONFIG_DIR}/{config.CONFIG_NAME}":
        if no_compile or os.geteuid() != 0:
            loaded = config.load()
            print(
                f"ok: {config.CONFIG_DIR}/{config.CONFIG_NAME} is valid (read as {loaded.source})"
            )
            if os.geteuid() != 0:
                print("note: run as root to write config.compiled (fast logins)")
            return CHECK_OK
        normalised = config.compile_system_config()
        print(
            f"ok: {config.CONFIG_DIR}/{config.CONFIG_NAME} is valid "
            f"({len(normalised['groups'])} group and {len(normalised['users'])} user sections); "  # type: ignore[arg-type]
            f"wrote {config.CONFIG_DIR}/{config.COMPILED_NAME}"
        )
        return CHECK_OK
    with open(file, "rb") as handle:
        data = handle.read()
    config.parse_toml(data, file)
    print(f"ok: {file} is valid")
    return CHECK_OK


def run(args: list[str]) -> int:
    """Run an admin subcommand; errors are one line on stderr and exit status 1 (Ctrl-C: 130)."""
    try:
        options = _parser().parse_args(args)
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else FAILED
    try:
        if options.subcommand == "explain":
            return explain.run(options.user, options.config, " ".join(options.command))
        return _check_config(options.file, options.no_compile)
    except (ConfigError, Refusal, OSError) as error:
        print(f"scponly-py: {options.subcommand}: {error}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print(f"scponly-py: {options.subcommand}: interrupted", file=sys.stderr)
        return INTERRUPTED
