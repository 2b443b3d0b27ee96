"""The jail commands of scponly-py-setup: create, update, add-user, remove-user, check, sshd-config.

Every mutating command plans first (plan.py), prints the plan, and with
--dry-run stops there; --json prints one JSON document instead of text.
Errors are one line on stderr, never a traceback.

Exit status: 0 done (or nothing to report), 1 error, 2 usage error,
3 `check` / `sshd-config --check` found problems.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import re
import stat
from dataclasses import replace

import click

from scponly_py import trusted
from scponly_py.programs import PROGRAMS
from setup_chroot import (
    accountdb,
    audit,
    batch,
    devlog,
    doctor,
    frozen,
    jailfs,
    pamstack,
    plan,
    sshd,
    sshdinstall,
    users,
)
from setup_chroot.manifest import STATE_DIR, ManifestError, Store

EXIT_FINDINGS = 3
ADD_MODES = ("scponly-pyc", "chroot-directory", "internal-sftp")
MODE_GROUPS = {
    "scponly-pyc": users.DEFAULT_GROUP,
    "chroot-directory": "scponly-chroot",
    "internal-sftp": "sftponly",  # the Arch wiki's name
}
FROZEN_DIR = os.path.dirname(users.SHELL_PATHS["scponly-pyc"])  # install-chroot-shell's --dest
NOLOGIN = "/usr/sbin/nologin"  # sshd wants an executable shell; internal-sftp never runs it
HOST, ADDR = "client.invalid", "192.0.2.1"  # sshd -T -C for account checks
DEFAULT_PROFILES = tuple(name for name, record in PROGRAMS.items() if record["default"])
WRITABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", re.ASCII)
ERRORS = (
    plan.PlanError,
    jailfs.JailFSError,
    ManifestError,
    users.UserError,
    sshd.SshdError,
    frozen.InstallError,
    devlog.DevLogError,
    OSError,
)

state_dir_option = click.option(
    "--state-dir",
    default=STATE_DIR,
    show_default=True,
    envvar="SCPONLY_PY_STATE_DIR",
    help="Where jail manifests are kept (outside every jail).",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
DEVLOG_CHOICES = ("auto", *devlog.DAEMONS, "none")


def _jail_path(jail: str) -> str:
    """The jail path as given, normalised; never resolved (symlinks are refused when opened)."""
    if not os.path.isabs(jail):
        raise click.ClickException(f"{jail}: give the jail as an absolute path")
    try:
        names = trusted.components(jail)
    except trusted.Untrusted as error:
        raise click.ClickException(f"{jail}: {error.reason}") from None
    if not names:
        raise click.ClickException("the jail may not be /")
    return "/" + "/".join(names)


def _need_root(dry_run: bool) -> None:
    if not dry_run and os.geteuid() != 0:
        raise click.ClickException("must run as root (jail files are root-owned; mknod)")


def _open_jail(jail: str, *, create: bool) -> jailfs.JailFS | None:
    """The jail by the trusted-path rule (made root-owned 0755 with `create`); None if missing."""
    try:
        fd = trusted.make_dirs(jail, 0o755) if create else trusted.open_path(jail, directory=True)
    except trusted.Untrusted as error:
        if error.missing and not create:
            return None
        raise click.ClickException(f"{jail}: refused: {error}") from None
    return jailfs.JailFS(jail, fd)


def _verify_opened(store: Store, jail: str, fs: jailfs.JailFS) -> None:
    """Refuse a jail whose path now leads to another directory than the manifest recorded."""
    recorded = store.opened(jail)
    info = os.fstat(fs.root_fd)
    if recorded is not None and recorded != [info.st_dev, info.st_ino]:
        raise click.ClickException(
            f"{jail}: refused: not the directory its manifest recorded (moved or replaced);"
            " check it, then run create to adopt it"
        )


def _emit(as_json: bool, document: dict[str, object], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=1))
    else:
        for line in lines:
            click.echo(line)


def _converge(
    store: Store,
    spec: plan.Spec,
    recorded: dict[str, dict[str, object]],
    *,
    dry_run: bool,
    as_json: bool,
    before: list[str] | None = None,
    adopt: bool = False,
) -> dict[str, object]:
    """Plan `spec` against the jail, show the plan, apply it unless dry-run, save the manifest."""
    for name in users.missing([user.name for user in spec.users]):
        click.echo(
            f"warning: {spec.jail}: user {name} has no account any more (userdel?): left out of"
            f" the jail's passwd, home kept; remove-user {name} --forget or update --prune"
            " drops it",
            err=True,
        )
    fs = _open_jail(spec.jail, create=not dry_run)
    try:
        if fs is not None and not adopt:
            _verify_opened(store, spec.jail, fs)
        planned = plan.make_plan(spec, fs, recorded.keys())
        ops = planned.ops
        header = f"{spec.jail}: {len(ops)} operation{'s' if len(ops) != 1 else ''}"
        document: dict[str, object] = {
            "jail": spec.jail,
            "dry_run": dry_run,
            "operations": [plan.to_json(op) for op in ops],
        }
        stale_tree = spec.frozen is not None and not _frozen_current(fs, spec.frozen)
        after = [f"copy     {spec.frozen}  (frozen scponly-py tree)"] if stale_tree else []
        if dry_run:
            _emit(as_json, document, [*(before or []), header, *map(plan.describe, ops), *after])
            return document
        if not as_json:
            for line in before or []:
                click.echo(line)
            click.echo(header)

        def progress(number: int, op: plan.Operation) -> None:
            if not as_json:
                click.echo(f"  [{number}/{len(ops)}] {plan.describe(op)}")

        assert fs is not None

        def warn(message: str) -> None:
            click.echo(f"warning: {message}", err=True)

        kept = plan.apply(ops, fs, progress, warn)
        if stale_tree and spec.frozen is not None:
            frozen.install_in_jail(spec.frozen, spec.jail, spec.frozen)
            if not as_json:
                click.echo(f"  {after[0]}")
        info = os.fstat(fs.root_fd)
        store.save(spec, planned.record(), (info.st_dev, info.st_ino))
        document["kept_non_empty"] = kept
        if as_json:
            click.echo(json.dumps(document, indent=1))
        for path in kept:
            if not as_json:
                click.echo(f"  kept {path}: not empty")
        return document
    finally:
        if fs is not None:
            fs.close()


def _frozen_current(fs: jailfs.JailFS | None, tree: str) -> bool:
    """Whether the jail holds the host's frozen tree at the same path (scponly-pyc aside)."""
    if fs is None:
        return False
    for directory, _subdirectories, files in os.walk(tree):
        for name in files:
            path = os.path.join(directory, name)
            if path == os.path.join(tree, "scponly-pyc") or os.path.islink(path):
                continue
            try:
                if fs.digest(path) != jailfs.hash_host_file(path):
                    return False
            except jailfs.JailFSError:
                return False
    return True


def _load(store: Store, jail: str) -> tuple[plan.Spec, dict[str, dict[str, object]]]:
    loaded = store.load(jail)
    if loaded is None:
        raise click.ClickException(f"{jail}: no manifest in {store.directory}; run create first")
    return loaded


def _devlog(choice: str) -> str | None:
    """--devlog: the daemon that listens on the jail's /dev/log (auto: the host's /dev/log's)."""
    if choice == "none":
        return None
    return devlog.detect() if choice == "auto" else choice


def _profiles(values: tuple[str, ...]) -> tuple[str, ...]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return tuple(dict.fromkeys(names)) or DEFAULT_PROFILES


# -- commands -----------------------------------------------------------------------------


@click.command()
@click.argument("jail")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    help=f"Programs to provide: {', '.join(PROGRAMS)} (comma-separated or repeated;"
    f" default {','.join(DEFAULT_PROFILES)}).",
)
@click.option("--bin", "binaries", multiple=True, help="Another program (absolute path).")
@click.option("--localtime/--no-localtime", default=True, help="Copy /etc/localtime.")
@click.option(
    "--devlog",
    "devlog_choice",
    type=click.Choice(DEVLOG_CHOICES),
    default=None,
    help="Have a syslog daemon listen on the jail's /dev/log (sshd ChrootDirectory jails):"
    " journald (a bind mount of its socket, a mount unit for boot), rsyslog (an imuxsock"
    " socket in an /etc/rsyslog.d drop-in), auto (whichever owns the host's /dev/log) or"
    " none (remove it). Default: as before.",
)
@state_dir_option
@dry_run_option
@json_option
def create(  # noqa: PLR0917 - click passes options as arguments
    jail: str,
    profiles: tuple[str, ...],
    binaries: tuple[str, ...],
    localtime: bool,
    devlog_choice: str | None,
    state_dir: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Build (or re-sync) the smallest jail that runs the chosen programs."""
    _need_root(dry_run)
    jail = _jail_path(jail)
    store = Store(state_dir)
    try:
        with store.lock(jail):
            loaded = store.load(jail)
            old = loaded[0] if loaded else plan.Spec(jail)
            recorded = loaded[1] if loaded else {}
            spec = plan.Spec(
                jail,
                _profiles(profiles),
                binaries,
                localtime,
                old.users,
                old.frozen,
                old.devlog if devlog_choice is None else _devlog(devlog_choice),
            )
            _converge(store, spec, recorded, dry_run=dry_run, as_json=as_json, adopt=True)
    except ERRORS as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.argument("jail", required=False)
@click.option("--all", "every", is_flag=True, help="Every jail that has a manifest.")
@click.option(
    "--prune",
    is_flag=True,
    help="Drop users whose account no longer exists (deleted with userdel) from the manifest.",
)
@click.option(
    "--devlog",
    "devlog_choice",
    type=click.Choice(DEVLOG_CHOICES),
    default=None,
    help="Change who listens on the jail's /dev/log: see create --devlog. Default: as before.",
)
@state_dir_option
@dry_run_option
@json_option
def update(  # noqa: PLR0917 - click passes options as arguments
    jail: str | None,
    every: bool,
    prune: bool,
    devlog_choice: str | None,
    state_dir: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Re-sync jails with the host after package upgrades (stale files removed)."""
    store = Store(state_dir)
    try:
        targets = _targets(store, jail, every)
        _need_root(dry_run)
        for path in targets:
            with store.lock(path):
                spec, recorded = _load(store, path)
                before = []
                if prune:
                    gone = set(users.missing([user.name for user in spec.users]))
                    before = [f"forget {name}: no account" for name in sorted(gone)]
                    spec = replace(spec, users=tuple(u for u in spec.users if u.name not in gone))
                if devlog_choice is not None:
                    spec = replace(spec, devlog=_devlog(devlog_choice))
                _converge(store, spec, recorded, dry_run=dry_run, as_json=as_json, before=before)
    except ERRORS as error:
        raise click.ClickException(str(error)) from None


def _targets(store: Store, jail: str | None, every: bool) -> list[str]:
    if every == (jail is not None):
        raise click.UsageError("give either JAIL or --all")
    return store.jails() if every else [_jail_path(jail)]  # type: ignore[arg-type]


@click.command("add-user")
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
    type=click.Choice(ADD_MODES),
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
    default=FROZEN_DIR,
    show_default=True,
    help="With --mode chroot-directory: where install-chroot-shell put the frozen tree (it is"
    " copied into the jail at the same path, and update keeps the copy current).",
)
@click.option(
    "--sshd-install/--no-sshd-install",
    default=True,
    help="With --mode chroot-directory or internal-sftp: install the Match block.",
)
@click.option(
    "--devlog",
    "devlog_choice",
    type=click.Choice(DEVLOG_CHOICES),
    default="auto",
    show_default=True,
    help="With --mode chroot-directory: who listens on the jail's /dev/log (the shell refuses"
    " a login it cannot log): see create --devlog.",
)
@click.option("-f", "sshd_main", default=sshdinstall.MAIN, help="The sshd_config to change.")
@state_dir_option
@dry_run_option
@json_option
def add_user(  # noqa: PLR0917 - click passes options as arguments
    user: str | None,
    jail: str | None,
    from_file: str | None,
    create_account: bool,
    writable: str,
    shell: str,
    group: str | None,
    mode: str,
    frozen_dir: str,
    sshd_install: bool,
    devlog_choice: str,
    sshd_main: str,
    state_dir: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Put USER in JAIL: account, group, home, passwd/group lines, /etc/shells."""
    _need_root(dry_run)
    store = Store(state_dir)
    group = group or MODE_GROUPS[mode]
    if from_file is not None:
        if user is not None or mode != "scponly-pyc":
            raise click.UsageError("give USER or --from FILE, not both; --from takes no --mode")
        defaults = {"jail": jail, "writable": writable, "group": group, "shell": shell}
        _add_batch(store, from_file, defaults, dry_run=dry_run, as_json=as_json)
        return
    if user is None or jail is None:
        raise click.UsageError("give USER and --jail (or --from FILE)")
    jail = _jail_path(jail)
    if not WRITABLE_NAME.fullmatch(writable) or writable == ".ssh":
        raise click.ClickException(f"--writable {writable!r}: one plain directory name")
    if mode == "chroot-directory":
        shell = f"{frozen_dir.rstrip('/')}/scponly-py"
    elif mode == "internal-sftp":
        shell = NOLOGIN
    try:
        users.check_name(user)
        shell_path = users.shell_path(shell)
        home = users.home_for(jail, user, shell_path)
        if mode != "scponly-pyc":
            _check_route(mode, frozen_dir, sshd_main, group, jail)
        with store.lock(jail):
            loaded = store.load(jail)
            if loaded is None and mode == "scponly-pyc":
                raise click.ClickException(
                    f"{jail}: no manifest in {store.directory}; run create first"
                )
            profiles = DEFAULT_PROFILES if mode == "chroot-directory" else ()
            spec, recorded = loaded or (plan.Spec(jail, profiles), {})
            if mode == "chroot-directory":
                spec = replace(spec, frozen=frozen_dir.rstrip("/"), devlog=_devlog(devlog_choice))
            existing = next((entry for entry in spec.users if entry.name == user), None)
            account = f"account {user}: home {home}, shell {shell_path}, group {group}"
            if dry_run:
                try:
                    users.ids(user)
                except users.UserError:
                    account += " (new: useradd; home and passwd lines follow)"
                    entry = None
                else:
                    entry = plan.User(user, writable)
            else:
                users.check_name(group)
                previous = users.ensure_account(user, home, shell_path, create=create_account)
                if users.register_shell(shell_path) and not as_json:
                    click.echo(f"added {shell_path} to {users.SHELLS}")
                if users.ensure_group(group) and not as_json:
                    click.echo(f"created group {group}")
                joined = users.join_group(user, group)
                entry = existing or plan.User(
                    user,
                    writable,
                    created=previous is None,
                    previous_home=previous[0] if previous else None,
                    previous_shell=previous[1] if previous else None,
                )
                entry = replace(
                    entry, writable=writable, group=group if joined else entry.group, mode=mode
                )
            others = tuple(item for item in spec.users if item.name != user)
            new_spec = replace(spec, users=others + ((entry,) if entry else ()))
            _converge(
                store,
                new_spec,
                recorded,
                dry_run=dry_run,
                as_json=as_json,
                before=[account],
                adopt=loaded is None,
            )
        if mode != "scponly-pyc" and sshd_install:
            _install_sshd(
                sshd_main,
                group=group,
                users=(),
                mode="internal-sftp" if mode == "internal-sftp" else "scponly",
                jail=jail,
                remove=False,
                reload=True,
                dry_run=dry_run,
            )
    except (*ERRORS, frozen.InstallError) as error:
        raise click.ClickException(str(error)) from None


def _check_route(mode: str, frozen_dir: str, main: str, group: str, jail: str) -> None:
    """Before any change: the frozen shell is installed, and the group's Match block (if any)
    chroots into this jail (one ChrootDirectory per Match group)."""
    if mode == "chroot-directory":
        frozen.check_source(frozen_dir, ("scponly-py",))
    path = sshdinstall.drop_in_path(main, sshdinstall.drop_in_name(group)) or main
    text = (sshdinstall.read(path) or b"").decode("utf-8", "replace")
    begin, end = sshdinstall.markers(group)
    block = text.partition(begin)[2].partition(end)[0]
    for line in block.splitlines():
        words = line.split()
        if words[:1] == ["ChrootDirectory"] and words[1:] != [jail]:
            raise click.ClickException(
                f"{path}: group {group}'s Match block chroots into {' '.join(words[1:])}:"
                " give another --group for this jail"
            )


def _checked(check: object) -> object:
    """A batch validator from a function raising UserError or ClickException."""

    def run(value: object) -> object:
        try:
            return check(value)  # type: ignore[operator]
        except (users.UserError, click.ClickException) as error:
            raise ValueError(getattr(error, "message", None) or str(error)) from None

    return run


def _uid(value: object) -> int | None:
    if value is None:
        return None
    number = int(str(value))
    if not 0 < number < 2**31 - 1:
        raise ValueError(f"uid {number} out of range")
    return number


def _writable(value: object) -> str:
    if not isinstance(value, str) or not WRITABLE_NAME.fullmatch(value) or value == ".ssh":
        raise ValueError(f"writable {value!r}: one plain directory name")
    return value


def _keys(value: object) -> str | None:
    if value is None:
        return None
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    for line in lines:
        if "\0" in line or len(line.split()) < 2:
            raise ValueError(f"keys: {line[:40]!r} is not an authorized_keys line")
    return "".join(line + "\n" for line in lines)


def _batch_jail(value: object) -> str:
    if value in (None, "none"):
        raise ValueError("no jail (accounts without a jail are not supported by --from yet)")
    return _jail_path(str(value))


BATCH_CHECKS = {
    "name": _checked(users.check_name),
    "uid": _uid,
    "jail": _batch_jail,
    "writable": _writable,
    "keys": _keys,
    "group": _checked(users.check_name),
    "shell": _checked(users.shell_path),
}


def _add_batch(
    store: Store, path: str, defaults: dict[str, str | None], *, dry_run: bool, as_json: bool
) -> None:
    """add-user --from: check every row, then accounts in one write, then one plan per jail."""
    try:
        rows = batch.read(path, {k: v for k, v in defaults.items() if v}, BATCH_CHECKS)
        jails = sorted({row.jail for row in rows})
        with contextlib.ExitStack() as stack:
            for jail in jails:
                stack.enter_context(store.lock(jail))
            specs = {jail: _batch_spec(store, jail, rows) for jail in jails}
            accounts, changes = _batch_accounts(rows)
            if dry_run:
                lines = [f"{len(accounts)} new accounts, {len(changes)} to change"]
            else:
                lines = _apply_accounts(rows, accounts, changes)
            for line in lines:
                if not as_json:
                    click.echo(line)
            for jail, (spec, recorded) in specs.items():
                wanted = {row.name: row for row in rows if row.jail == jail}
                kept = [user for user in spec.users if user.name not in wanted]
                previous = {user.name: user for user in spec.users}
                new_users = [
                    replace(
                        previous.get(name) or plan.User(name, created=name in accounts),
                        writable=row.writable,
                        keys=row.keys,
                        group=row.group,
                    )
                    for name, row in wanted.items()
                ]
                new_spec = replace(spec, users=tuple(kept + new_users))
                _converge(store, new_spec, recorded, dry_run=dry_run, as_json=as_json)
    except (batch.BatchError, accountdb.AccountDbError, *ERRORS) as error:
        raise click.ClickException(str(error)) from None


def _batch_spec(
    store: Store, jail: str, rows: list[batch.Row]
) -> tuple[plan.Spec, dict[str, dict[str, object]]]:
    loaded = store.load(jail)
    if loaded is None:
        line = next(row.line for row in rows if row.jail == jail)
        raise click.ClickException(f"line {line}: {jail}: no manifest; run create first")
    return loaded


def _batch_accounts(rows: list[batch.Row]) -> tuple[dict[str, batch.Row], list[batch.Row]]:
    """(rows whose account is new, rows whose existing account needs usermod); uid clashes fail."""
    present = {entry.pw_name: entry for entry in pwd.getpwall()}
    taken = {entry.pw_uid: entry.pw_name for entry in present.values()}
    new, changes = {}, []
    for row in rows:
        home = users.home_for(row.jail, row.name, users.shell_path(row.shell))
        entry = present.get(row.name)
        if entry is None:
            if row.uid is not None and row.uid in taken:
                raise click.ClickException(f"line {row.line}: uid {row.uid} is {taken[row.uid]}'s")
            new[row.name] = row
        elif entry.pw_uid == 0:
            raise click.ClickException(f"line {row.line}: {row.name} has uid 0")
        elif row.uid is not None and row.uid != entry.pw_uid:
            raise click.ClickException(
                f"line {row.line}: {row.name} exists with uid {entry.pw_uid}, not {row.uid}"
            )
        elif (entry.pw_dir, entry.pw_shell) != (home, users.shell_path(row.shell)):
            changes.append(row)
    return new, changes


def _apply_accounts(
    rows: list[batch.Row], new: dict[str, batch.Row], changes: list[batch.Row]
) -> list[str]:
    """Groups, the new accounts in one write per group, usermod for the others, /etc/shells."""
    lines = []
    for group in sorted({row.group for row in rows}):
        if users.ensure_group(group):
            lines.append(f"created group {group}")
        made = accountdb.add(
            [
                accountdb.NewAccount(
                    row.name,
                    users.home_for(row.jail, row.name, users.shell_path(row.shell)),
                    users.shell_path(row.shell),
                    row.uid,
                )
                for row in new.values()
                if row.group == group
            ],
            group,
        )
        if made:
            lines.append(f"created {len(made)} accounts in group {group}")
    for row in changes:
        shell = users.shell_path(row.shell)
        users.ensure_account(
            row.name, users.home_for(row.jail, row.name, shell), shell, create=False
        )
        lines.append(f"account {row.name}: home and shell changed")
    members = {group: set(grp.getgrnam(group).gr_mem) for group in {row.group for row in rows}}
    for row in rows:
        joins = row.name not in new and row.name not in members[row.group]
        if joins and users.join_group(row.name, row.group):
            lines.append(f"account {row.name}: joined {row.group}")
    for shell in sorted({users.shell_path(row.shell) for row in rows}):
        if users.register_shell(shell):
            lines.append(f"added {shell} to {users.SHELLS}")
    return lines


@click.command("remove-user")
@click.argument("user")
@click.option("--jail", required=True, help="The jail the user is in.")
@click.option("--purge", is_flag=True, help="Also delete the user's home in the jail.")
@click.option(
    "--forget",
    is_flag=True,
    help="Only drop USER from the jail's manifest and passwd; leave the account alone"
    " (for an account already deleted with userdel).",
)
@state_dir_option
@dry_run_option
@json_option
def remove_user(  # noqa: PLR0917 - click passes options as arguments
    user: str, jail: str, purge: bool, forget: bool, state_dir: str, dry_run: bool, as_json: bool
) -> None:
    """Undo add-user: userdel (or restore home and shell), jail passwd lines, --purge the home."""
    _need_root(dry_run)
    jail = _jail_path(jail)
    store = Store(state_dir)
    try:
        with store.lock(jail):
            spec, recorded = _load(store, jail)
            entry = next((item for item in spec.users if item.name == user), None)
            if entry is None:
                raise click.ClickException(f"{user} is not a user of {jail}")
            action = (
                f"account {user}: "
                + ("left alone" if forget else "userdel" if entry.created else "restore")
                + (f", leave group {entry.group}" if entry.group and not forget else "")
                + (f"; delete /home/{user} in the jail" if purge else "")
            )
            if not dry_run:
                if purge:
                    with jailfs.JailFS(jail) as fs:
                        if fs.lstat(f"/home/{user}") is not None:
                            fs.remove_tree(f"/home/{user}")
                previous = (
                    (entry.previous_home, entry.previous_shell)
                    if entry.previous_home is not None and entry.previous_shell is not None
                    else None
                )
                if not forget:
                    if entry.group:
                        users.leave_group(user, entry.group)
                    users.restore_account(user, entry.created, previous)
            others = tuple(item for item in spec.users if item.name != user)
            new_spec = replace(spec, users=others)
            if entry.mode == "chroot-directory" and all(
                item.mode != "chroot-directory" for item in others
            ):
                new_spec = replace(new_spec, devlog=None)  # its last user: /dev/log goes too
            _converge(store, new_spec, recorded, dry_run=dry_run, as_json=as_json, before=[action])
    except ERRORS as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.argument("jail", required=False)
@click.option("--all", "every", is_flag=True, help="Every jail that has a manifest.")
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
@state_dir_option
@dry_run_option
@json_option
def check(  # noqa: PLR0917 - click passes options as arguments
    jail: str | None,
    every: bool,
    user_names: tuple[str, ...],
    all_users: bool,
    fix: bool,
    with_sshd: bool,
    sshd_config: str | None,
    state_dir: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Report everything that makes a jail or an account unsafe; exit 3 if anything is found.

    `check JAIL` / `check --all` audit jails; `check --user NAME` / `check
    --all-users` audit accounts: each finding is one line saying what is wrong,
    what it allows and the fix (--json: a list of objects). `--fix` applies the
    safe fixes and exits by the check that follows them; `--dry-run` shows them.
    """
    if user_names or all_users:
        if jail is not None or every:
            raise click.UsageError("give either JAIL/--all or --user/--all-users")
        _check_accounts(
            user_names,
            all_users,
            fix=fix,
            dry_run=dry_run,
            sshd_config=sshd_config if with_sshd else None,
            with_sshd=with_sshd,
            as_json=as_json,
        )
        return
    if dry_run and not fix:
        raise click.UsageError("--dry-run goes with --fix")
    if fix and as_json:
        raise click.UsageError("--json does not go with --fix on jails")
    store = Store(state_dir)
    results: dict[str, list[dict[str, str]]] = {}
    lines: list[str] = []
    try:
        targets = _targets(store, jail, every)
        if fix:
            _need_root(dry_run)
            for path in targets:
                _fix_jail(store, path, dry_run=dry_run)
        for path in targets:
            if not os.path.isdir(path):
                raise click.ClickException(f"{path}: no such directory")
            loaded = store.load(path)
            spec, recorded = loaded if loaded else (None, None)
            found: list[audit.Finding | sshd.Finding] = list(audit.check(path, spec, recorded))
            if with_sshd and spec is not None:
                for user in spec.users:
                    found += _check_route_user(path, user, sshd_config)
            results[path] = [item.to_json() for item in found]
            lines.append(f"{path}: {len(found)} finding{'s' if len(found) != 1 else ''}")
            lines += [f"  {item}" for item in found]
    except ERRORS as error:
        raise click.ClickException(str(error)) from None
    _emit(as_json, {"jails": results}, lines)
    if any(results.values()):
        raise SystemExit(EXIT_FINDINGS)


def _check_route_user(jail: str, user: plan.User, config: str | None) -> list[sshd.Finding]:
    """sshd -T for a jail user, judged by its add-user --mode; for chroot-directory also the
    shell as sshd runs it after chroot (the passwd shell's path inside the jail)."""
    sshd_mode = "internal-sftp" if user.mode == "internal-sftp" else "scponly"
    chroot = None if user.mode == "scponly-pyc" else jail
    found = sshd.check_user(user.name, mode=sshd_mode, config=config, jail=chroot)
    if user.mode == "chroot-directory":
        with contextlib.suppress(KeyError):
            shell = pwd.getpwnam(user.name).pw_shell
            inside = os.path.join(jail, shell.lstrip("/"))
            if not (os.path.isfile(inside) and os.access(inside, os.X_OK)):
                why = "missing in the jail (sshd runs the shell after chroot): run update"
                found.append(sshd.Finding(user.name, "shell", shell, why))
    return found


def _fix_jail(store: Store, jail: str, *, dry_run: bool) -> None:
    """check JAIL --fix: the jail root, then `update`, then directories, homes and ~/.ssh.

    The path above the jail must pass the trusted-path rule (else nothing is done);
    the jail root itself may be fixed, since only root can replace it there. Every
    change goes through descriptors (doctor.apply_below); one line each.
    """
    parent, base = os.path.split(jail)
    try:
        parent_fd = trusted.open_path(parent, directory=True)
    except trusted.Untrusted as error:
        raise click.ClickException(
            f"{jail}: refused: {error} (the trusted-path rule): fix the path above the jail first"
        ) from None
    try:
        info = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
    finally:
        os.close(parent_fd)
    if not stat.S_ISDIR(info.st_mode):
        raise click.ClickException(f"{jail}: refused: not a directory (a symlink?)")
    root = doctor.plan_jail_fixes(parent, [((base,), info)])
    planned_paths: set[str] = set()
    with store.lock(jail):
        if dry_run:
            for line in doctor.preview(root):
                click.echo(line)
        else:
            for line in doctor.apply_below(lambda: _trusted_dir(parent), root):
                click.echo(line)
        loaded = store.load(jail)
        if loaded is None:
            click.echo(f"note: {jail} has no manifest: files and /dev/null are not re-synced")
        elif dry_run and root:
            click.echo("note: update runs once the jail root is fixed")
        else:
            document = _converge(store, *loaded, dry_run=dry_run, as_json=False)
            planned_paths = {str(op["path"]) for op in document["operations"]}  # type: ignore[attr-defined]
        spec, recorded = loaded if loaded else (None, None)
        found = audit.Audit(jail, spec, recorded)
        found.run()
        changes: list[doctor.Planned] = [
            change
            for change in doctor.plan_jail_fixes(jail, found.repairable)
            if not isinstance(change, doctor.Change)
            or "/" + "/".join(change.parts) not in planned_paths
        ]
        if dry_run:
            lines = doctor.preview(changes)
        else:
            lines = doctor.apply_below(lambda: _trusted_dir(jail), changes)
        for line in lines:
            click.echo(line)


def _trusted_dir(path: str) -> int:
    """A directory fd of `path` by the trusted-path rule (an OSError if it breaks the rule)."""
    try:
        handle = trusted.open_path(path, directory=True)
    except trusted.Untrusted as error:
        raise PermissionError(errno.EPERM, str(error)) from None
    try:
        return os.open(".", jailfs.DIR_FLAGS, dir_fd=handle)
    finally:
        os.close(handle)


def _audit_accounts(
    accounts: list[doctor.Account],
    sshd_config: str | None,
    with_sshd: bool,
) -> list[tuple[doctor.Account, dict[str, list[str]] | None, list[doctor.Finding]]]:
    """sshd -T once per account, the PAM stack and sshd's process once; findings per account."""
    settings = {
        who.name: sshd.effective(who.name, host=HOST, addr=ADDR, config=sshd_config)
        if with_sshd
        else None
        for who in accounts
    }
    first = next(iter(settings.values()), None)
    server = doctor.load_server(first, pamstack.PAM_DIRS)
    return [
        (who, settings[who.name], doctor.check_account(who, settings[who.name], server))
        for who in accounts
    ]


def _check_accounts(
    names: tuple[str, ...],
    all_users: bool,
    *,
    fix: bool,
    dry_run: bool,
    sshd_config: str | None,
    with_sshd: bool,
    as_json: bool,
) -> None:
    """`check --user/--all-users`: one line per finding; --fix plans, applies, checks again."""
    if fix and not dry_run and os.geteuid() != 0:
        raise click.ClickException("--fix must run as root (it changes owners and modes)")
    try:
        accounts = [doctor.account(name) for name in dict.fromkeys(names)]
        if all_users:
            known = {who.name for who in accounts}
            accounts += [who for who in doctor.restricted_accounts() if who.name not in known]
        results = _audit_accounts(accounts, sshd_config, with_sshd)
        changes: list[str] = []
        if fix or dry_run:
            for who, settings, items in results:
                planned = doctor.plan_fixes(who, settings, items)
                if dry_run:
                    changes += doctor.preview(planned)
                else:
                    changes += doctor.apply(who, planned)
            if not dry_run:
                results = _audit_accounts(accounts, sshd_config, with_sshd)
    except (doctor.DoctorError, *ERRORS) as error:
        raise click.ClickException(str(error)) from None
    found = [item for _who, _settings, items in results for item in items]
    if as_json:
        click.echo(json.dumps([item.to_json() for item in found], indent=1))
    else:
        for line in changes:
            click.echo(line)
        for item in found:
            click.echo(str(item))
        if not accounts:
            click.echo("no account has scponly-py or scponly-pyc as its shell")
        elif not found:
            click.echo(f"no findings ({', '.join(who.name for who in accounts)})")
    if found:
        raise SystemExit(EXIT_FINDINGS)


@click.command("sshd-config")
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
def sshd_config(  # noqa: PLR0917 - click passes options as arguments
    group: str | None,
    match_users: tuple[str, ...],
    mode: str,
    jail: str | None,
    check_user: str | None,
    host: str,
    addr: str,
    config: str | None,
    install: bool,
    uninstall: bool,
    reload: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Print, install or uninstall the sshd_config Match block; or check a user (exit 3)."""
    match_group = None if match_users else (group or users.DEFAULT_GROUP)
    if install or uninstall:
        if install and uninstall:
            raise click.UsageError("give --install or --uninstall, not both")
        _need_root(dry_run)
        _install_sshd(
            config or sshdinstall.MAIN,
            group=match_group,
            users=match_users,
            mode=mode,
            jail=jail,
            remove=uninstall,
            reload=reload,
            dry_run=dry_run,
        )
        return
    if check_user is None:
        text = sshd.match_block(group=match_group, users=match_users, mode=mode, jail=jail)
        _emit(as_json, {"mode": mode, "config": text}, [text.rstrip("\n")])
        return
    try:
        found = sshd.check_user(check_user, mode=mode, host=host, addr=addr, config=config)
    except sshd.SshdError as error:
        raise click.ClickException(str(error)) from None
    _emit(
        as_json,
        {"user": check_user, "findings": [item.to_json() for item in found]},
        [f"{check_user}: {len(found)} finding{'s' if len(found) != 1 else ''}"]
        + [f"  {item}" for item in found],
    )
    if found:
        raise SystemExit(EXIT_FINDINGS)


def _install_sshd(
    main: str,
    *,
    group: str | None,
    users: tuple[str, ...],
    mode: str,
    jail: str | None,
    remove: bool,
    reload: bool,
    dry_run: bool,
) -> None:
    """`sshd-config --install/--uninstall`: plan the file change, show it, apply it checked."""
    try:
        if remove:
            path = sshdinstall.drop_in_path(main, sshdinstall.drop_in_name(group)) or main
            old = sshdinstall.read(path)
            if path == main:
                new = sshdinstall.strip_blocks(old or b"", group)
            elif old is not None and not old.startswith(sshdinstall.markers(group)[0].encode()):
                raise click.ClickException(f"{path}: not written by sshd-config --install")
            else:
                new = None
        else:
            path, block = sshdinstall.render(main, group=group, users=users, mode=mode, jail=jail)
            old, new = sshdinstall.new_content(path, main, block, group)
        if old == new:
            click.echo(f"{path}: unchanged ({'not installed' if remove else 'already installed'})")
            return
        click.echo(sshdinstall.diff(path, old, new), nl=False)
        if dry_run:
            return
        verify = [] if remove else sshdinstall.managed_users(group, users)
        sshdinstall.change(path, old, new, main=main, verify=verify, mode=mode)
        click.echo(f"{'removed' if new is None else 'wrote'} {path}; sshd -t passed", nl=False)
        click.echo(f", sshd -T checked {', '.join(verify)}" if verify else "")
        if reload:
            click.echo(sshdinstall.reload(main))
    except (sshdinstall.InstallError, sshd.SshdError, OSError) as error:
        raise click.ClickException(str(error)) from None


COMMANDS = (create, update, add_user, remove_user, check, sshd_config)
