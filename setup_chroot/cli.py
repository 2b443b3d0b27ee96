"""scponly-py-setup: the administrator's tool (click)."""

from __future__ import annotations

import contextlib
import os

import click

from scponly_py import bundle
from setup_chroot import importcli, jailcli, launcher, login_bundle, sessionscli, users

EXIT_INTERRUPTED = 130


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


@main.command("install-shell")
@click.option(
    "--dest",
    default="/usr/local/bin/scponly-py",
    show_default=True,
    help="Where to write the login shell's front (the path you give to usermod -s).",
)
@click.option("--python", "python_path", default=None, help="Interpreter (default: this one).")
@click.option("--register/--no-register", default=True, help="Add it to /etc/shells.")
@click.option("--dry-run", is_flag=True, help="Print the launcher, write nothing.")
def install_shell(dest: str, python_path: str | None, register: bool, dry_run: bool) -> None:
    """Write the login shell: the secure-execution front and the isolated launcher it runs.

    The front (compiled from scponly_py/front.c with the machine's C compiler, given
    cap_wake_alarm+p) goes to --dest; the launcher, which runs Python isolated (-I) and
    without site (-S), to PREFIX/lib/scponly-py/launcher. It also compiles the package
    into its login bundle (__pycache__/login.bundle), which the launcher runs from while
    the package's files are unchanged. Run it again after every upgrade or change of the
    package; until then logins import the files on disk (slower) and say so in syslog.
    """
    interpreter = python_path or launcher.interpreter()
    parent = launcher.package_parent()
    if dry_run:
        click.echo(launcher.render(interpreter, parent), nl=False)
        for reason in launcher.check_tree(interpreter, parent):
            click.echo(f"warning: {reason}", err=True)
        return
    try:
        launcher.install(dest, interpreter, parent)
    except launcher.UnsafeInstall as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"wrote {dest} (front, cap_wake_alarm+p) and {launcher.script_path(dest)} "
        f"({interpreter} -IS, package and its login bundle in {parent})"
    )
    if register:
        _register_shell(dest)


@main.command("login-bundle")
@click.option(
    "--python", "python_path", default=None, help="The launcher's interpreter (default: this one)."
)
@click.option("--remove", is_flag=True, help="Delete the bundle instead (package removal).")
def login_bundle_command(python_path: str | None, remove: bool) -> None:
    """(Re)compile the installed package's login bundle, as install-shell does.

    For the packages' scripts: they ship the launcher and build its bundle on the
    machine itself after every install, upgrade or Python change, because the
    bundle is trusted only while each source file keeps its inode and ctime.
    """
    parent = launcher.package_parent()
    if remove:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bundle.location(os.path.join(parent, "scponly_py")))
        return
    try:
        path = launcher.write_bundle(python_path or launcher.interpreter(), parent)
    except login_bundle.BundleError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {path}")


def _register_shell(path: str) -> None:
    """Add `path` to /etc/shells once, saying so."""
    if users.register_shell(path):
        click.echo(f"added {path} to {users.SHELLS}")


for _command in (*jailcli.COMMANDS, *sessionscli.COMMANDS, importcli.import_group):
    main.add_command(_command)


@main.command("install-chroot-shell")
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
def install_chroot_shell(
    source: str, dest: str, setuid: bool, jail: str | None, register: bool
) -> None:
    """Install the frozen scponly-py and scponly-pyc (cap_sys_chroot+ep, or --setuid)."""
    from setup_chroot import frozen  # noqa: PLC0415 - only this command needs it

    try:
        if jail is not None:
            click.echo(f"installed {frozen.install_in_jail(source, jail, dest)}")
            return
        for line in frozen.install_tree(source, dest, setuid=setuid):
            click.echo(line)
    except (frozen.InstallError, OSError) as error:
        raise click.ClickException(str(error)) from None
    if register:
        for name in frozen.LOGIN_BINARIES:
            _register_shell(f"{dest.rstrip('/')}/{name}")
