"""What each scponly-py-setup command does (cli.py declares their options; the
docstrings here are their help): install-shell, install-chroot-shell, create,
update, add-user, remove-user, check, sshd-config, sessions, report.

Every mutating command plans first (plan.py: the jail's files and the
accounts' useradd/usermod/userdel, groups and /etc/shells), prints the plan,
and with --dry-run stops there; plan.apply makes every change. --json prints
one JSON document instead of text.
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
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace

import click

from scponly_py import trusted
from scponly_py.programs import PROGRAMS
from setup_chroot import (
    accountdb,
    batch,
    devlog,
    doctor,
    finding,
    frozen,
    jailfs,
    launcher,
    livesessions,
    logread,
    pamstack,
    plan,
    sshd,
    sshdinstall,
    users,
)
from setup_chroot import check as jail_check
from setup_chroot.manifest import ManifestError, Store

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

DEVLOG_CHOICES = ("auto", *devlog.DAEMONS, "none")


def warn(message: str) -> None:
    """What was done but does not work yet (plan.apply's `warn`): one line on stderr."""
    click.echo(f"warning: {message}", err=True)


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


@contextlib.contextmanager
def _locked_jail(jail: str, state_dir: str, dry_run: bool) -> Iterator[tuple[Store, str]]:
    """A command's hold on one jail: root (unless dry-run), the path checked (`_jail_path`),
    its manifest store locked; (store, jail path) inside. ERRORS become one line."""
    _need_root(dry_run)
    jail = _jail_path(jail)
    store = Store(state_dir)
    try:
        with store.lock(jail):
            yield store, jail
    except ERRORS as error:
        raise click.ClickException(str(error)) from None


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
    first: list[plan.Operation] | None = None,
) -> dict[str, object]:
    """Plan `spec` against the jail, show the plan, apply it unless dry-run, save the manifest.

    `first` (account changes, a home to purge) is shown and applied before the jail's plan
    is made, since that plan reads the accounts: the text output shows it as its own
    numbered list ("accounts: N operations"), --json as the head of "operations".
    """
    fs = _open_jail(spec.jail, create=not dry_run)
    try:
        if fs is not None and not adopt:
            _verify_opened(store, spec.jail, fs)
        heading = [*(before or [])]
        if first is not None:
            heading.append(f"accounts: {_count(first)}")
        if dry_run:
            heading += map(plan.describe, first or [])
        else:
            if not as_json:
                for line in heading:
                    click.echo(line)
            plan.apply(first or [], fs, _progress(first or [], as_json), warn)
        for name in users.missing([user.name for user in spec.users]):
            click.echo(
                f"warning: {spec.jail}: user {name} has no account any more (userdel?): left"
                f" out of the jail's passwd, home kept; remove-user {name} --forget or update"
                " --prune drops it",
                err=True,
            )
        planned = plan.make_plan(spec, fs, recorded.keys())
        ops = planned.ops
        header = f"{spec.jail}: {_count(ops)}"
        document: dict[str, object] = {
            "jail": spec.jail,
            "dry_run": dry_run,
            "operations": [plan.to_json(op) for op in [*(first or []), *ops]],
        }
        stale_tree = spec.frozen is not None and not _frozen_current(fs, spec.frozen)
        after = [f"copy     {spec.frozen}  (frozen scponly-py tree)"] if stale_tree else []
        if dry_run:
            _emit(as_json, document, [*heading, header, *map(plan.describe, ops), *after])
            return document
        if not as_json:
            click.echo(header)
        assert fs is not None
        kept = plan.apply(ops, fs, _progress(ops, as_json), warn)
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


def _count(ops: list[plan.Operation]) -> str:
    return f"{len(ops)} operation{'s' if len(ops) != 1 else ''}"


def _progress(ops: list[plan.Operation], as_json: bool) -> Callable[[int, plan.Operation], None]:
    """plan.apply's progress: one numbered line per operation (none with --json)."""

    def progress(number: int, op: plan.Operation) -> None:
        if not as_json:
            click.echo(f"  [{number}/{len(ops)}] {plan.describe(op)}")

    return progress


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
    with _locked_jail(jail, state_dir, dry_run) as (store, path):
        loaded = store.load(path)
        old = loaded[0] if loaded else plan.Spec(path)
        recorded = loaded[1] if loaded else {}
        spec = plan.Spec(
            path,
            _profiles(profiles),
            binaries,
            localtime,
            old.users,
            old.frozen,
            old.devlog if devlog_choice is None else _devlog(devlog_choice),
        )
        _converge(store, spec, recorded, dry_run=dry_run, as_json=as_json, adopt=True)


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
            first = plan.account_ops(user, home, shell_path, group, create=create_account)
            before = users.account(user)
            entry = existing or plan.User(
                user,
                writable,
                created=before is None,
                previous_home=before.pw_dir if before else None,
                previous_shell=before.pw_shell if before else None,
            )
            joined = plan.JoinGroup(user, group) in first
            entry = replace(
                entry, writable=writable, group=group if joined else entry.group, mode=mode
            )
            others = tuple(item for item in spec.users if item.name != user)
            if dry_run and before is None:  # its uid is useradd's choice: no home planned yet
                account += " (new: its home and passwd lines follow useradd)"
                new_spec = replace(spec, users=others)
            else:
                new_spec = replace(spec, users=(*others, entry))
            _converge(
                store,
                new_spec,
                recorded,
                dry_run=dry_run,
                as_json=as_json,
                before=[account],
                adopt=loaded is None,
                first=list(first),
            )
        if mode != "scponly-pyc" and sshd_install:
            sshd_mode = "internal-sftp" if mode == "internal-sftp" else "scponly"
            match = sshd.Match(group, (), sshd_mode, jail)
            _install_sshd(sshd_main, match, remove=False, reload=True, dry_run=dry_run)
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
            if dry_run and not as_json:
                click.echo(f"{len(accounts)} new accounts, {len(changes)} to change")
            first: list[plan.Operation] | None = list(_batch_ops(rows, accounts, changes))
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
                if dry_run:  # the new accounts' uids are chosen when they are made
                    new_users = [user for user in new_users if user.name not in accounts]
                new_spec = replace(spec, users=tuple(kept + new_users))
                _converge(store, new_spec, recorded, dry_run=dry_run, as_json=as_json, first=first)
                first = None  # the accounts go with the first jail's plan
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
        home = _home(row)
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


def _batch_ops(
    rows: list[batch.Row], new: dict[str, batch.Row], changes: list[batch.Row]
) -> list[plan.Account]:
    """Groups, the new accounts in one write per group, usermod for the others, /etc/shells."""
    ops: list[plan.Account] = []
    present = {row.name: users.account(row.name) for row in rows if row.name not in new}
    for group in sorted({row.group for row in rows}):
        try:
            members = set(grp.getgrnam(group).gr_mem)
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            ops.append(plan.AddGroup(group))
            members, gid = set(), None
        made = tuple(
            accountdb.NewAccount(row.name, _home(row), users.shell_path(row.shell), row.uid)
            for row in new.values()
            if row.group == group
        )
        if made:
            ops.append(plan.AddAccounts(group, made))
        ops += [
            plan.JoinGroup(row.name, group)
            for row in rows
            if row.group == group
            and (entry := present.get(row.name)) is not None
            and row.name not in members
            and entry.pw_gid != gid
        ]
    ops += [
        plan.ChangeAccount(row.name, _home(row), users.shell_path(row.shell)) for row in changes
    ]
    for shell in sorted({users.shell_path(row.shell) for row in rows}):
        if users.is_ours(shell) and not users.registered(shell):
            ops.append(plan.RegisterShell(shell))
    return ops


def _home(row: batch.Row) -> str:
    return users.home_for(row.jail, row.name, users.shell_path(row.shell))


def remove_user(  # noqa: PLR0917 - click passes options as arguments
    user: str, jail: str, purge: bool, forget: bool, state_dir: str, dry_run: bool, as_json: bool
) -> None:
    """Undo add-user: userdel (or restore home and shell), jail passwd lines, --purge the home."""
    with _locked_jail(jail, state_dir, dry_run) as (store, path):
        spec, recorded = _load(store, path)
        entry = next((item for item in spec.users if item.name == user), None)
        if entry is None:
            raise click.ClickException(f"{user} is not a user of {path}")
        action = (
            f"account {user}: "
            + ("left alone" if forget else "userdel" if entry.created else "restore")
            + (f", leave group {entry.group}" if entry.group and not forget else "")
            + (f"; delete /home/{user} in the jail" if purge else "")
        )
        first: list[plan.Operation] = [plan.RemoveTree(f"/home/{user}")] if purge else []
        if not forget:
            first += plan.undo_account_ops(entry)
        others = tuple(item for item in spec.users if item.name != user)
        new_spec = replace(spec, users=others)
        if entry.mode == "chroot-directory" and all(
            item.mode != "chroot-directory" for item in others
        ):
            new_spec = replace(new_spec, devlog=None)  # its last user: /dev/log goes too
        _converge(
            store,
            new_spec,
            recorded,
            dry_run=dry_run,
            as_json=as_json,
            before=[action],
            first=first,
        )


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
            found: list[finding.Finding] = list(jail_check.check(path, spec, recorded))
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
        found = jail_check.Audit(jail, spec, recorded)
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
    match = sshd.Match(match_group, match_users, mode, jail)
    if install or uninstall:
        if install and uninstall:
            raise click.UsageError("give --install or --uninstall, not both")
        _need_root(dry_run)
        main = config or sshdinstall.MAIN
        _install_sshd(main, match, remove=uninstall, reload=reload, dry_run=dry_run)
        return
    if check_user is None:
        text = sshd.match_block(match)
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
    main: str, match: sshd.Match, *, remove: bool, reload: bool, dry_run: bool
) -> None:
    """`sshd-config --install/--uninstall`: plan the file change, show it, apply it checked."""
    group = match.group
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
            path, block = sshdinstall.render(main, match)
            old, new = sshdinstall.new_content(path, main, block, group)
        if old == new:
            click.echo(f"{path}: unchanged ({'not installed' if remove else 'already installed'})")
            return
        click.echo(sshdinstall.diff(path, old, new), nl=False)
        if dry_run:
            return
        verify = [] if remove else sshdinstall.managed_users(group, match.users)
        sshdinstall.change(path, old, new, main=main, verify=verify, mode=match.mode)
        click.echo(f"{'removed' if new is None else 'wrote'} {path}; sshd -t passed", nl=False)
        click.echo(f", sshd -T checked {', '.join(verify)}" if verify else "")
        if reload:
            click.echo(sshdinstall.reload(main))
    except (sshdinstall.InstallError, sshd.SshdError, OSError) as error:
        raise click.ClickException(str(error)) from None


def install_shell(dest: str, python_path: str | None, register: bool, dry_run: bool) -> None:
    """Write the login shell: the secure-execution front and the isolated launcher it runs.

    The front (compiled from scponly_py/front.c with the machine's C compiler, given
    cap_wake_alarm+p) goes to --dest; the launcher, which runs Python isolated (-I) and
    without site (-S), to PREFIX/lib/scponly-py/launcher. It byte-compiles the package
    as root with that interpreter, so that no login compiles a module.
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
        f"({interpreter} -IS, package in {parent})"
    )
    if register:
        _register_shell(dest)


def _register_shell(path: str) -> None:
    """Add `path` to /etc/shells once, saying so."""
    if users.register_shell(path):
        click.echo(f"added {path} to {users.SHELLS}")


def install_chroot_shell(
    source: str, dest: str, setuid: bool, jail: str | None, register: bool
) -> None:
    """Install the frozen scponly-py and scponly-pyc (cap_sys_chroot+ep, or --setuid)."""
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


def sessions(as_json: bool, kill_id: str | None, kill_user: str | None) -> None:
    """List live sessions (user, client, program, start, duration, bytes so far), or end some.

    Sessions are found by their supervisor (log_transfers on). Ending one sends
    SIGTERM to its program; the supervisor logs the end line and exits.
    """
    try:
        found = livesessions.live_sessions()
    except livesessions.SessionsError as error:
        raise click.ClickException(str(error)) from None
    if kill_id is None and kill_user is None:
        if as_json:
            click.echo(json.dumps(found))
            return
        click.echo(f"{'SESSION':<22} {'USER':<12} {'CLIENT':<16} {'PROGRAM':<12} "
                   f"{'START':<25} {'SECONDS':>8} {'READ':>12} {'WRITTEN':>12}")  # fmt: skip
        for session in found:
            click.echo(
                f"{session['session']:<22} {session['user']:<12} {session['client']:<16} "
                f"{session['program']:<12} {session['start']:<25} {session['duration']:>8} "
                f"{session['bytes_read'] if session['bytes_read'] is not None else '-':>12} "
                f"{session['bytes_written'] if session['bytes_written'] is not None else '-':>12}"
            )
        return
    chosen = [
        session
        for session in found
        if (kill_id is not None and session["session"] == kill_id)
        or (kill_user is not None and session["user"] == kill_user)
    ]
    if not chosen:
        raise click.ClickException("no such live session")
    left = livesessions.end(chosen)
    ended = [session for session in chosen if session not in left]
    if as_json:
        click.echo(json.dumps({"ended": ended, "still_running": left}))
    else:
        for session in ended:
            click.echo(f"ended {session['session']} ({session['user']}, pid {session['pid']})")
    if left:
        raise click.ClickException(
            f"{len(left)} session(s) still running after {livesessions.KILL_WAIT:g} s"
        )


def report(user: str | None, since: str | None, path: str | None, as_json: bool) -> None:
    """Transfers per user from the log: sessions, files and bytes up/down, refusals.

    Reads the journal (SYSLOG_IDENTIFIER=scponly-py) or a syslog file; both
    log formats (kv, json). Uploads are close lines with bytes written,
    downloads close lines with bytes read (sftp and scp in SFTP mode).
    """
    if path is not None:
        if since is not None:
            raise click.ClickException("--since needs the journal; filter the file instead")
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            totals = logread.summarise(handle, user)
    else:
        try:
            totals = logread.summarise(logread.journal_lines(since), user)
        except logread.LogReadError as error:
            raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(totals, sort_keys=True))
        return
    columns = logread.REPORT_COLUMNS
    click.echo(f"{'USER':<16}" + "".join(f"{column.upper():>12}" for column in columns))
    for name in sorted(totals):
        click.echo(f"{name:<16}" + "".join(f"{totals[name][column]:>12}" for column in columns))
    sys.stdout.flush()
