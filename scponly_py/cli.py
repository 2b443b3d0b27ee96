"""Admin helpers on the scponly-py command: `explain` and `check-config`.

Never reachable through `-c` (sshd only ever passes `-c CMD` or nothing), and
imported only when asked for, so argparse stays off the login path.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys

from scponly_py import __version__, explain, shell
from scponly_py import request as requests
from scponly_py.outcome import Refusal
from scponly_py.policy import (
    COMPILED_NAME,
    CONFIG_DIR,
    CONFIG_NAME,
    ConfigError,
    compile_system_config,
    effective_policy,
    load_config,
    parse_toml,
)

CHECK_OK = 0
FAILED = 1
FINDINGS = 3  # check-config: the file is valid (and compiled), some accounts' places are not
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
    check_parser.add_argument("file", nargs="?", help=f"default: {CONFIG_DIR}/{CONFIG_NAME}")
    check_parser.add_argument(
        "--no-compile", action="store_true", help="do not write config.compiled"
    )
    return parser


def _check_config(file: str | None, no_compile: bool) -> int:
    if file is None or os.path.abspath(file) == f"{CONFIG_DIR}/{CONFIG_NAME}":
        if no_compile or os.geteuid() != 0:
            loaded = load_config()
            normalised = loaded.config
            print(f"ok: {CONFIG_DIR}/{CONFIG_NAME} is valid (read as {loaded.source})")
            if os.geteuid() != 0:
                print("note: run as root to write config.compiled (fast logins)")
        else:
            normalised = compile_system_config()
            print(
                f"ok: {CONFIG_DIR}/{CONFIG_NAME} is valid "
                f"({len(normalised['groups'])} group and {len(normalised['users'])} user "  # type: ignore[arg-type]
                f"sections); wrote {CONFIG_DIR}/{COMPILED_NAME}"
            )
    else:
        with open(file, "rb") as handle:
            data = handle.read()
        normalised = parse_toml(data, file)
        print(f"ok: {file} is valid")
    if os.geteuid() != 0:
        print("note: run as root to check the accounts' svn_root and start_dir")
        return CHECK_OK
    findings = place_findings(normalised)
    for finding in findings:
        print(f"scponly-py: check-config: {finding}", file=sys.stderr)
    return FINDINGS if findings else CHECK_OK


def place_findings(normalised: dict[str, object]) -> list[str]:
    """One line per account this config governs whose start_dir or svn_root is unsafe now.

    The accounts: every passwd entry whose login shell is scponly-py or scponly-pyc (a
    chroot account's places are checked inside its jail) and every [user.NAME] that
    exists. Each line says which logins are refused (`shell.place_problem` at login).
    """
    sections = normalised["users"]
    findings = []
    for entry in sorted(pwd.getpwall(), key=lambda entry: entry.pw_name):
        shell_name = os.path.basename(entry.pw_shell)
        if shell_name not in requests.OWN_NAMES and entry.pw_name not in sections:  # type: ignore[operator]
            continue
        request = requests.for_user(entry.pw_name, None)
        policy = effective_policy(normalised, request.user, request.groups)
        jail = ""
        if shell_name == "scponly-pyc":
            from scponly_py import jailpath as jails  # noqa: PLC0415 - only for chroot accounts

            try:
                jail, home = jails.split_home(request.home)
            except jails.JailError as error:
                findings.append(f"user {request.user}: {error}")
                continue
            request = request.replace(home=home)  # type: ignore[assignment]
        for program, refused in ((None, "every login"), ("svnserve", "svnserve")):
            if program is not None and program not in policy.programs:
                continue
            problem = shell.place_problem(request, policy, program, jail, missing_ok=True)  # type: ignore[arg-type]
            if problem is not None:
                findings.append(f"user {request.user}: {problem} ({refused} refused)")
    return findings


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
