"""A ChrootDirectory jail's /dev/log, set up by add-user alone, with a real sshd and sftp.

The frozen scponly-py in an sshd ChrootDirectory jail logs to the jail's /dev/log and
refuses a login it cannot log. With rsyslog owning the host's /dev/log (a real rsyslogd
in the sandbox; a stand-in /etc/init.d/rsyslog restarts it, as a non-systemd init would)
add-user writes the imuxsock drop-in and restarts rsyslog; with journald (a stand-in
listener at /run/systemd/journal/dev-log, /dev/log a symlink to it, no systemd as init) it
writes the mount unit and bind-mounts the socket now. Each time: the login's decision line
reaches the daemon, `check` finds a missing or stale /dev/log and `update` repairs it, and
remove-user takes everything away again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from setup_chroot import logread
from tests.e2e.sandbox import SYSLOG_LISTENER, Sandbox
from tests.e2e.test_chroot_routes import FROZEN, host_key, setup
from tests.e2e.test_sshd_install_login import reload_sshd

pytestmark = pytest.mark.e2e

# The distribution's rsyslog.conf without kernel logging (the ring buffer is the real host's).
RSYSLOG_CONF = """module(load="imuxsock")
$WorkDirectory /var/spool/rsyslog
$IncludeConfig /etc/rsyslog.d/*.conf
*.* {log}
"""
RSYSLOG_INIT = """#!/bin/sh
# Stand-in for the init script of a host without systemd: restart = stop, then start.
set -e
[ "$1" = restart ]
if [ -e /run/rsyslogd.pid ]; then
    kill "$(cat /run/rsyslogd.pid)"
    while [ -e /run/rsyslogd.pid ]; do sleep 0.05; done
fi
exec rsyslogd
"""
JOURNAL_SOCKET = "/run/systemd/journal/dev-log"


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sandbox(sandbox_factory, frozen_tree: Path) -> Sandbox:
    box = sandbox_factory(stock=True)
    box.run(["mkdir", "-p", "/var/opt", "/var/spool/rsyslog"], check=True)
    setup(box, "install-chroot-shell", "--from", str(frozen_tree), "--dest", FROZEN,
          "--no-register")  # fmt: skip
    return box


def login_logged(sandbox: Sandbox, user: str, jail: str, log: Path) -> None:
    """An sftp upload through sshd's chroot works and its lines reach `log`: the decision,
    the file's open and close (with its size) and the end line, under one session id."""
    result = sandbox.sftp_batch(user, "put /etc/hostname files/up\n")
    assert result.returncode == 0, result.stderr.decode() + sandbox.sshd_log.read_text()[-1500:]
    size = (sandbox.path(jail) / f"home/{user}/files/up").stat().st_size
    assert size == sandbox.path("/etc/hostname").stat().st_size
    wait_for("the end line", lambda: "event=end" in log.read_text())
    lines = [logread.parse(line) for line in log.read_text().splitlines() if f"user={user}" in line]
    path = f"/home/{user}/files/up"  # in the jail, as sftp sends it
    assert [fields["decision"] for fields in lines[:1]] == ["allow"], lines  # type: ignore[index]
    files = [
        (fields["event"], fields["path"], fields.get("bytes_written"))  # type: ignore[index]
        for fields in lines[1:-1]
    ]
    assert files == [("open", path, None), ("close", path, str(size))], lines
    end = lines[-1]
    assert end["event"] == "end" and end["status"] == "0" and end["dropped"] == "0", end  # type: ignore[index]
    # No /proc in the jail: a random session id, the same on every line, and no byte count.
    assert len({fields["session"] for fields in lines}) == 1, lines  # type: ignore[index]
    assert end["bytes_read"] == "unknown", end  # type: ignore[index]


def test_rsyslog_jail_logs_with_no_hand_setup(sandbox: Sandbox) -> None:
    jail, log = "/home/jailr", sandbox.root / "rsyslog.log"
    log.touch()
    sandbox.path("/etc/rsyslog.conf").write_text(RSYSLOG_CONF.format(log=log))
    init = sandbox.path("/etc/init.d/rsyslog")
    init.parent.mkdir(exist_ok=True)
    init.write_text(RSYSLOG_INIT)
    init.chmod(0o755)
    sandbox.run(["rsyslogd"], check=True)  # daemonizes; dies with the namespace
    wait_for("rsyslogd", lambda: sandbox.path("/run/rsyslogd.pid").exists())

    out = setup(sandbox, "add-user", "rita", "--jail", jail, "--mode", "chroot-directory",
                "--create", "--frozen-dir", FROZEN, "--group", "chroot-r")  # fmt: skip
    drop_in = sandbox.path("/etc/rsyslog.d/scponly-py-home-jailr.conf")
    assert f"devlog   {jail}/dev/log  rsyslog listen socket: write" in out
    assert f'input(type="imuxsock" Socket="{jail}/dev/log")' in drop_in.read_text()
    assert (sandbox.path(jail) / "dev/log").is_socket()
    host_key(sandbox, "rita")
    reload_sshd(sandbox)
    login_logged(sandbox, "rita", jail, log)
    assert setup(sandbox, "check", jail).strip() == f"{jail}: 0 findings"
    again = setup(sandbox, "add-user", "rita", "--jail", jail, "--mode", "chroot-directory",
                  "--frozen-dir", FROZEN, "--group", "chroot-r", "--no-sshd-install")  # fmt: skip
    assert f"{jail}: 0 operations" in again

    (sandbox.path(jail) / "dev/log").unlink()  # e.g. rsyslog stopped with Unlink on
    found = sandbox.setup("check", jail)
    assert found.returncode == 3
    assert f"devlog    /dev/log: missing: scponly-py refuses every login it cannot log; fix:" \
           f" scponly-py-setup update {jail}" in found.stdout.decode()  # fmt: skip
    setup(sandbox, "update", jail)
    assert setup(sandbox, "check", jail).strip() == f"{jail}: 0 findings"

    removed = setup(sandbox, "remove-user", "rita", "--jail", jail)
    assert f"undevlog {jail}/dev/log  rsyslog: stop, remove" in removed
    assert not drop_in.exists()
    assert not (sandbox.path(jail) / "dev/log").exists()

    # The trusted-path rule for what root writes outside the jail: a directory a user owns.
    rsyslog_d = sandbox.path("/etc/rsyslog.d")
    os.chown(rsyslog_d, 4242, 0)
    try:
        refused = sandbox.setup("update", jail, "--devlog", "rsyslog")
    finally:
        os.chown(rsyslog_d, 0, 0)
    assert refused.returncode == 1 and not drop_in.exists()
    message = refused.stderr.decode()
    assert message.count("\n") == 1 and "/etc/rsyslog.d is not owned by root (uid 4242)" in message


def test_journald_jail_logs_with_no_hand_setup(sandbox: Sandbox) -> None:
    jail, log = "/home/jailj", sandbox.root / "journal.log"
    log.touch()
    pidfile = sandbox.path("/run/rsyslogd.pid")
    if pidfile.exists():  # the previous test's daemon: journald owns /dev/log from now on
        sandbox.run(["sh", "-c", "kill $(cat /run/rsyslogd.pid)"], check=True)
        wait_for("rsyslogd to stop", lambda: not pidfile.exists())
    sandbox.run(["mkdir", "-p", "/run/systemd/journal"], check=True)

    def start_journal() -> None:
        listener = sandbox.spawn(
            [sys.executable, "-I", "-c", SYSLOG_LISTENER, JOURNAL_SOCKET, str(log)],
            stdout=subprocess.PIPE,
        )
        assert listener.stdout is not None and listener.stdout.readline().strip() == b"ready"

    start_journal()
    sandbox.run(["ln", "-sfn", JOURNAL_SOCKET, "/dev/log"], check=True)

    out = setup(sandbox, "add-user", "jo", "--jail", jail, "--mode", "chroot-directory",
                "--create", "--frozen-dir", FROZEN, "--group", "chroot-j")  # fmt: skip
    unit_name = "home-jailj-dev-log.mount"
    if shutil.which("systemd-escape"):
        escaped = subprocess.run(
            ["systemd-escape", "--path", "--suffix=mount", f"{jail}/dev/log"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert escaped.stdout.strip() == unit_name
    unit = sandbox.path(f"/etc/systemd/system/{unit_name}")
    assert f"devlog   {jail}/dev/log  journald bind mount: write {unit.name}" in out.replace(
        "/etc/systemd/system/", ""
    )
    text = unit.read_text()
    for line in (f"What={JOURNAL_SOCKET}", f"Where={jail}/dev/log", "Options=bind",
                 "BindsTo=systemd-journald-dev-log.socket",
                 "WantedBy=systemd-journald-dev-log.socket"):  # fmt: skip
        assert line in text.splitlines()
    inside = sandbox.path(jail) / "dev/log"
    assert inside.stat().st_ino == sandbox.path(JOURNAL_SOCKET).stat().st_ino
    host_key(sandbox, "jo")
    reload_sshd(sandbox)
    login_logged(sandbox, "jo", jail, log)
    assert setup(sandbox, "check", jail).strip() == f"{jail}: 0 findings"

    start_journal()  # journald's socket re-created: the jail's bind mount now holds a dead one
    found = sandbox.setup("check", jail)
    assert found.returncode == 3 and "(a stale bind mount)" in found.stdout.decode()
    setup(sandbox, "update", jail)
    assert setup(sandbox, "check", jail).strip() == f"{jail}: 0 findings"
    assert inside.stat().st_ino == sandbox.path(JOURNAL_SOCKET).stat().st_ino

    removed = setup(sandbox, "remove-user", "jo", "--jail", jail)
    assert f"undevlog {jail}/dev/log  journald: stop, remove" in removed
    assert not unit.exists() and not inside.exists()
    mounts = sandbox.run(["cat", "/proc/self/mountinfo"], check=True).stdout.decode()
    assert f"{jail}/dev/log" not in mounts
