"""`scponly-py-setup import rssh|scponly`: move accounts off rssh or the C scponly.

Both print what they would do (the config.toml, the jails, each account) and
change nothing unless --apply; then they run the same code as `create`,
`add-user` and `check` (commands.py), so the result is what those commands make.
"""

from __future__ import annotations

import os
import pwd
import stat

import click

from scponly_py import policy
from setup_chroot import commands, jailfs, migrate, plan, users
from setup_chroot.manifest import Store

CONFIG = os.path.join(policy.CONFIG_DIR, policy.CONFIG_NAME)
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # symlinks into /usr on merged hosts


def import_rssh(conf: str, output: str, state_dir: str, apply: bool) -> None:
    """rssh.conf's allow*, umask, chrootpath and user= lines -> config.toml sections, jails and
    accounts (shell rssh -> scponly-py, or scponly-pyc where rssh chrooted); cvs and rdist are
    dropped (no such program here), each said why."""
    try:
        with open(conf, "rb") as handle:
            text = handle.read(migrate.MAX_CONF).decode("utf-8", "replace")
        parsed = migrate.parse_rssh(text)
    except (OSError, migrate.MigrateError) as error:
        where = f"{conf}: " if not isinstance(error, OSError) else ""
        raise click.ClickException(f"{where}{getattr(error, 'strerror', None) or error}") from None
    moves = migrate.rssh_moves(parsed, pwd.getpwall())
    toml = migrate.rssh_config(parsed, migrate.svn_homes(parsed, moves))
    try:
        policy.parse_toml(toml.encode(), output)
    except policy.ConfigError as error:  # a bug here, never the administrator's input
        raise click.ClickException(f"the converted config is invalid: {error}") from None
    click.echo(f"# {output}")
    click.echo(toml, nl=False)
    for note in parsed.notes:
        click.echo(f"dropped: {note}")
    moved = {move.name for move in moves}
    for name in parsed.users:
        if name not in moved:
            click.echo(f"note: user={name}: no account with rssh as its shell (section kept)")
    _show(moves)
    if not apply:
        click.echo("dry run: nothing changed (--apply does it)")
        return
    commands._need_root(False)
    _write_config(output, toml)
    _apply(moves, state_dir)


def import_scponly(state_dir: str, apply: bool) -> None:
    """Accounts whose shell is scponly or scponlyc: their // homes and jails become ours (the
    user's writable directory moves into /home/NAME), shells switch to scponly-py(c), and each
    jail is checked."""
    moves = migrate.scponly_moves(pwd.getpwall())
    _show(moves)
    if not moves:
        click.echo("no account has scponly or scponlyc as its shell")
        return
    if not apply:
        click.echo("dry run: nothing changed (--apply does it)")
        return
    commands._need_root(False)
    _apply(moves, state_dir)


def _show(moves: list[migrate.Move]) -> None:
    for jail, programs in _jails(moves).items():
        click.echo(f"jail {jail}: create --profile {','.join(programs)}")
    for move in moves:
        where = f"--jail {move.jail}" if move.jail else "no jail"
        extra = f", {move.jail}/{move.writable} -> home" if move.writable else ""
        click.echo(
            f"account {move.name}: shell {move.shell} ({where}; was home {move.old_home}{extra})"
        )


def _jails(moves: list[migrate.Move]) -> dict[str, list[str]]:
    """jail -> profiles: the programs its users keep, else (C scponly) what the jail holds."""
    jails: dict[str, list[str]] = {}
    for move in moves:
        if move.jail:
            found = list(move.programs) or [  # C scponly: every program whose files it holds
                name
                for name, paths in plan.PROFILES.items()
                if all(os.path.exists(move.jail + path) for path in paths)
            ]
            jails[move.jail] = list(dict.fromkeys([*jails.get(move.jail, []), *found]))
    return {jail: programs or list(commands.DEFAULT_PROFILES) for jail, programs in jails.items()}


def _write_config(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o644)
    except FileExistsError:
        with open(path, encoding="utf-8") as handle:
            if handle.read() != text:
                raise click.ClickException(
                    f"{path} exists: merge the sections shown above into it by hand, then"
                    " run this again"
                ) from None
    click.echo(f"wrote {path}; run `scponly-py check-config` to compile it")


def _apply(moves: list[migrate.Move], state_dir: str) -> None:
    """create each jail, then add-user (jailed) or usermod -s (not jailed), then check the jails."""
    try:
        _apply_moves(moves, state_dir)
    except commands.ERRORS as error:
        raise click.ClickException(str(error)) from None


def _apply_moves(moves: list[migrate.Move], state_dir: str) -> None:
    store = Store(state_dir)
    for jail, programs in _jails(moves).items():
        if store.load(jail) is None:
            _set_aside(jail)
            _run("create", jail=jail, profiles=(",".join(programs),), state_dir=state_dir)
    for move in moves:
        if move.jail:
            _run(
                "add-user",
                user=move.name,
                jail=move.jail,
                writable=move.writable or plan.WRITABLE,
                shell=move.shell,
                sshd_install=False,
                devlog_choice="none",
                state_dir=state_dir,
            )
            if move.writable:
                _move_writable(move)
            if move.shell == "scponly-pyc" and not move.programs:
                _carry_keys(move)
        else:
            shell = users.shell_path(move.shell)
            group = users.DEFAULT_GROUP
            ops = plan.account_ops(move.name, move.old_home, shell, group, create=False)
            plan.apply(list(ops), None, lambda _number, _op: None, commands.warn)
            click.echo(f"account {move.name}: shell {shell}, group {group}")
    for jail in _jails(moves):
        try:
            _run("check", jail=jail, with_sshd=False, state_dir=state_dir)
        except SystemExit as status:  # findings (exit 3) are reported, the import is done
            if status.code not in (0, None, commands.EXIT_FINDINGS):
                raise


def _run(name: str, **options: object) -> None:
    """Run scponly-py-setup's command NAME with `options`, every other option at the default
    its command line gives it (the import runs inside that command line's context)."""
    root = click.get_current_context().find_root()
    assert isinstance(root.command, click.Group)
    root.invoke(root.command.commands[name], **options)


def _set_aside(jail: str) -> None:
    """Rename the jail's top-level /lib, /bin... directories to NAME.pre-import where the host has
    a symlink (merged /usr): rssh's mkchroot.sh and scponly's setup_chroot.sh made them
    directories, and `create` must lay the jail out as the host's loader will see it."""
    if not os.path.isdir(jail):
        return
    with jailfs.JailFS(jail) as fs:
        for name in MERGED:
            info = fs.lstat(f"/{name}")
            if info is None or not stat.S_ISDIR(info.st_mode) or not os.path.islink(f"/{name}"):
                continue
            aside = f"{name}.pre-import"
            os.rename(name, aside, src_dir_fd=fs.root_fd, dst_dir_fd=fs.root_fd)
            click.echo(f"moved {jail}/{name} to {jail}/{aside} (the host has /{name} -> usr/...)")


def _move_writable(move: migrate.Move) -> None:
    """rename JAIL/NAME-of-writable over the (new, empty) /home/USER/NAME, by descriptors."""
    source, target = f"/{move.writable}", f"/home/{move.name}/{move.writable}"
    with (
        jailfs.JailFS(move.jail) as fs,
        fs.parent(source) as (from_fd, from_name),
        fs.parent(target) as (to_fd, to_name),
    ):
        os.rename(from_name, to_name, src_dir_fd=from_fd, dst_dir_fd=to_fd)
    click.echo(f"moved {move.jail}{source} to {move.jail}{target} (its contents untouched)")


def _carry_keys(move: migrate.Move) -> None:
    """scponly's keys were in the jail root's .ssh (the old home): copy them, root-owned, to the
    new home's (sshd reads JAIL/home/USER/.ssh now), unless that file exists."""
    old, new = "/.ssh/authorized_keys", f"/home/{move.name}/.ssh/authorized_keys"
    with jailfs.JailFS(move.jail) as fs:
        if fs.lstat(old) is None or fs.lstat(new) is not None:
            return
        fs.write(new, fs.read(old), 0o644)
    click.echo(f"copied {move.jail}{old} to {move.jail}{new} (root-owned)")
