"""scponly-py-setup: the administrator's tool. The one click layer.

Each command here only declares its options and hands them, by name, to the
function of the same name in `commands` (or `importer`), whose docstring is
the command's help. What a command does lives there; see the man page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from scponly_py.programs import PROGRAMS
from setup_chroot import commands, importer, migrate, plan, sshd, sshdinstall
from setup_chroot.manifest import STATE_DIR

EXIT_INTERRUPTED = 130
Command = TypeVar("Command", bound=Callable[..., Any])


class OneLineErrors(click.Group):
    """Every error is one line on stderr: an OSError too (exit 1), and Ctrl-C (exit 130)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise click.ClickException(f"{where}{error.strerror or error}") from None
        except KeyboardInterrupt:
            click.echo("scponly-py-setup: interrupted", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scponly-py")
def main() -> None:
    """Install the scponly-py login shell, build and audit chroot jails, check sshd."""


state_dir_option = click.option(
    "--state-dir",
    default=STATE_DIR,
    show_default=True,
    envvar="SCPONLY_PY_STATE_DIR",
    help="Where jail manifests are kept (outside every jail).",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
apply_option = click.option("--apply", is_flag=True, help="Do it (default: only show it).")


def plan_options(function: Command) -> Command:
    """--state-dir, --dry-run, --json: the options of every command that plans a jail."""
    return state_dir_option(dry_run_option(json_option(function)))


def jails_argument(function: Command) -> Command:
    """JAIL or --all (every jail that has a manifest): the jails `update` and `check` act on."""
    every = click.option("--all", "every", is_flag=True, help="Every jail that has a manifest.")
    return click.argument("jail", required=False)(every(function))


def devlog_option(help_text: str, default: str | None = None) -> Callable[[Command], Command]:
    """--devlog: who listens on the jail's /dev/log (commands.DEVLOG_CHOICES)."""
    return click.option(
        "--devlog",
        "devlog_choice",
        type=click.Choice(commands.DEVLOG_CHOICES),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


@main.command("install-shell", help=commands.install_shell.__doc__)
@click.option(
    "--dest",
    default="/usr/local/bin/scponly-py",
    show_default=True,
    help="Where to write the login shell's front (the path you give to usermod -s).",
)
@click.option("--python", "python_path", default=None, help="Interpreter (default: this one).")
@click.option("--register/--no-register", default=True, help="Add it to /etc/shells.")
@click.option("--dry-run", is_flag=True, help="Print the launcher, write nothing.")
def install_shell(**options: Any) -> None:
    commands.install_shell(**options)


@main.command(help=commands.sessions.__doc__)
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
@click.option("--kill", "kill_id", metavar="ID", help="End the session with this id.")
@click.option("--user", "kill_user", metavar="NAME", help="End every session of this user.")
def sessions(**options: Any) -> None:
    commands.sessions(**options)


@main.command(help=commands.report.__doc__)
@click.option("--user", metavar="NAME", help="Only this user.")
@click.option("--since", metavar="TIME", help="Journal only: from TIME (journalctl --since).")
@click.option("--file", "path", metavar="PATH", help="Read a syslog file instead of the journal.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def report(**options: Any) -> None:
    commands.report(**options)


@main.command("install-chroot-shell", help=commands.install_chroot_shell.__doc__)
@click.option(
    "--from",
    "source",
    default="build/frozen/scponly-py",
    show_default=True,
    help="The onedir tree built by packaging/build-frozen.sh.",
)
@click.option(
    "--dest", default="/usr/lib/scponly-py", show_default=True, help="Where the tree goes."
)
@click.option("--setuid", is_flag=True, help="setuid root instead of cap_sys_chroot+ep.")
@click.option(
    "--jail",
    default=None,
    help="Instead: copy the unprivileged scponly-py into this jail (sshd ChrootDirectory mode).",
)
@click.option("--register/--no-register", default=True, help="Add the shells to /etc/shells.")
def install_chroot_shell(**options: Any) -> None:
    commands.install_chroot_shell(**options)


@main.command(help=commands.create.__doc__)
@click.argument("jail")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    help=f"Programs to provide: {', '.join(PROGRAMS)} (comma-separated or repeated;"
    f" default {','.join(commands.DEFAULT_PROFILES)}).",
)
@click.option("--bin", "binaries", multiple=True, help="Another program (absolute path).")
@click.option("--localtime/--no-localtime", default=True, help="Copy /etc/localtime.")
@devlog_option(
    "Have a syslog daemon listen on the jail's /dev/log (sshd ChrootDirectory jails):"
    " journald (a bind mount of its socket, a mount unit for boot), rsyslog (an imuxsock"
    " socket in an /etc/rsyslog.d drop-in), auto (whichever owns the host's /dev/log) or"
    " none (remove it). Default: as before."
)
@plan_options
def create(**options: Any) -> None:
    commands.create(**options)


@main.command(help=commands.update.__doc__)
@jails_argument
@click.option(
    "--prune",
    is_flag=True,
    help="Drop users whose account no longer exists (deleted with userdel) from the manifest.",
)
@devlog_option(
    "Change who listens on the jail's /dev/log: see create --devlog. Default: as before."
)
@plan_options
def update(**options: Any) -> None:
    commands.update(**options)


@main.command("add-user", help=commands.add_user.__doc__)
@click.argument("user", required=False)
@click.option("--jail", default=None, help="The jail (made by create); with --from, the default.")
@click.option(
    "--from",
    "from_file",
    default=None,
    metavar="FILE",
    help="Add every user of FILE (.csv with a header row, or .toml [[user]] tables; columns"
    " name, uid, jail, writable, keys, group, shell) in one plan: a bad row is reported by"
    " its line and nothing is applied; running it again changes nothing.",
)
@click.option("--create", "create_account", is_flag=True, help="useradd if the account is new.")
@click.option(
    "--writable",
    default=plan.WRITABLE,
    show_default=True,
    help="The one directory in the (root-owned) home that the user may write.",
)
@click.option(
    "--shell",
    default="scponly-pyc",
    show_default=True,
    help="scponly-pyc (chroots itself; home JAIL//home/USER), scponly-py (for sshd's"
    " ChrootDirectory; home /home/USER), or an absolute path.",
)
@click.option(
    "--group",
    default=None,
    help="Also make USER a member of this group (created if missing): the one sshd-config's"
    " Match block names. Default: scponly; with --mode chroot-directory scponly-chroot, with"
    " --mode internal-sftp sftponly. Give the same --group to sshd-config.",
)
@click.option(
    "--mode",
    type=click.Choice(commands.ADD_MODES),
    default="scponly-pyc",
    show_default=True,
    help="scponly-pyc: the shell chroots itself (--shell). chroot-directory: sshd chroots"
    " (ChrootDirectory JAIL) and runs the frozen scponly-py copied into the jail with the"
    " libraries it needs, linked as /usr/bin/scponly-py. internal-sftp: sftp only, served by"
    " sshd in the jail (ForceCommand internal-sftp; shell /usr/sbin/nologin). Both make the"
    " jail if it has no manifest and install the group's Match block (sshd-config --install).",
)
@click.option(
    "--frozen-dir",
    default=commands.FROZEN_DIR,
    show_default=True,
    help="With --mode chroot-directory: where install-chroot-shell put the frozen tree (it is"
    " copied into the jail at the same path, and update keeps the copy current).",
)
@click.option(
    "--sshd-install/--no-sshd-install",
    default=True,
    help="With --mode chroot-directory or internal-sftp: install the Match block.",
)
@click.option("-f", "sshd_main", default=sshdinstall.MAIN, help="The sshd_config to change.")
@devlog_option(
    "With --mode chroot-directory: who listens on the jail's /dev/log (the shell refuses"
    " a login it cannot log): see create --devlog.",
    default="auto",
)
@plan_options
def add_user(**options: Any) -> None:
    commands.add_user(**options)


@main.command("remove-user", help=commands.remove_user.__doc__)
@click.argument("user")
@click.option("--jail", required=True, help="The jail the user is in.")
@click.option("--purge", is_flag=True, help="Also delete the user's home in the jail.")
@click.option(
    "--forget",
    is_flag=True,
    help="Only drop USER from the jail's manifest and passwd; leave the account alone"
    " (for an account already deleted with userdel).",
)
@plan_options
def remove_user(**options: Any) -> None:
    commands.remove_user(**options)


@main.command(help=commands.check.__doc__)
@jails_argument
@click.option(
    "--user",
    "user_names",
    multiple=True,
    metavar="NAME",
    help="Check this account instead of a jail (repeat for more): its PAM stack, sshd -T,"
    " login shell, home, ~/.ssh, login-time files and leftover jobs.",
)
@click.option(
    "--all-users",
    is_flag=True,
    help="Check every account whose login shell is scponly-py or scponly-pyc.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="With --user/--all-users: remove group/other write and foreign owners from the home,"
    " ~/.ssh and its key files; where systemd --user could read the home, make it root's with"
    " a user-owned ~/files (user files stay). With JAIL/--all: make the jail root, its"
    " directories, the users' homes, ~/.ssh and its files root's and at most 0755, and run"
    " update (stale files, /dev/null); never inside a user's writable directory, never on a"
    " jail whose path above it is unsafe. Prints each change, then checks again.",
)
@click.option("--sshd/--no-sshd", "with_sshd", default=True, help="Also run sshd -T per user.")
@click.option("-f", "sshd_config", default=None, help="sshd_config to check (sshd -f).")
@plan_options
def check(**options: Any) -> None:
    commands.check(**options)


@main.command("sshd-config", help=commands.sshd_config.__doc__)
@click.option("--group", default=None, help="Match Group (default: scponly).")
@click.option("--user", "match_users", multiple=True, help="Match User instead of a group.")
@click.option(
    "--mode",
    type=click.Choice(sshd.MODES),
    default="scponly",
    show_default=True,
    help="scponly: the login shell is scponly-py(c); internal-sftp: ForceCommand internal-sftp.",
)
@click.option("--jail", default=None, help="ChrootDirectory (sshd enters the jail itself).")
@click.option("--check", "check_user", default=None, metavar="USER", help="Check USER via sshd -T.")
@click.option("--host", default="client.invalid", show_default=True, help="For --check.")
@click.option("--addr", default="192.0.2.1", show_default=True, help="For --check.")
@click.option("-f", "config", default=None, help="sshd_config to check or change (default sshd's).")
@click.option(
    "--install",
    is_flag=True,
    help="Write the block where sshd reads it: a drop-in in the sshd_config.d the main file"
    " includes (else a marked block in the main file), never repeating a global keyword"
    " already set; sshd -t before and after (rolled back on failure), sshd -T per managed"
    " user, then reload sshd if it runs.",
)
@click.option("--uninstall", is_flag=True, help="Remove what --install wrote (same checks).")
@click.option("--reload/--no-reload", default=True, help="With --install/--uninstall.")
@dry_run_option
@json_option
def sshd_config(**options: Any) -> None:
    commands.sshd_config(**options)


@main.group("import")
def import_group() -> None:
    """Move accounts from rssh or the C scponly to scponly-py (a dry run unless --apply)."""


@import_group.command("rssh", help=importer.import_rssh.__doc__)
@click.argument("conf", default=migrate.RSSH_CONF)
@click.option(
    "--config",
    "output",
    default=importer.CONFIG,
    show_default=True,
    help="Where the config.toml goes (never overwritten).",
)
@state_dir_option
@apply_option
def import_rssh(**options: Any) -> None:
    importer.import_rssh(**options)


@import_group.command("scponly", help=importer.import_scponly.__doc__)
@state_dir_option
@apply_option
def import_scponly(**options: Any) -> None:
    importer.import_scponly(**options)
