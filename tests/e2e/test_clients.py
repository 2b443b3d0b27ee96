"""lftp, sshfs, rclone, FileZilla's fzsftp and asyncssh through a real sshd, byte-exact both ways.

Each client runs against two accounts: `cli`, whose login shell is scponly-py,
and `jcli`, whose login shell is the frozen scponly-pyc chrooting into a jail
built by `scponly-py-setup create` (sftp, scp and the hashsum programs). Each
client also meets one refusal that must fail cleanly and within seconds. rclone
runs `copy`, `check`, `lsf` and `delete`: with `hashsum` enabled its `check`
compares MD5 digests computed on the server (`md5sum PATH`, see
scponly_py/programs/hashsum.py); a write-only account uploads but is refused
every digest; an account without hashsum is used with `shell_type = none`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import clients
from tests.e2e.sandbox import Sandbox

HERE = Path(__file__).parent
SETUP = str(Path(sys.executable).with_name("scponly-py-setup"))
PYC = "/srv/cap/scponly-py/scponly-pyc"
CONFIG = """
[defaults]
programs = ["sftp", "scp", "hashsum"]

[user.wo]
access = "write-only"

[user.plain]
programs = ["sftp", "scp"]

[user.noftp]
programs = ["scp"]
"""
JAIL_SCRIPT = """
mount -t tmpfs -o mode=0755 tmpfs /srv
mkdir -m 0755 /srv/cap /srv/state
"""
FAST = 10  # seconds a refusal may take, retries included


@dataclass(frozen=True)
class Account:
    user: str
    home: str  # as the client sees it (inside the jail for jcli)
    files: Path  # the same directory as the test process reaches it


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory(users=("cli", "wo", "plain", "noftp"), config=CONFIG)
    (sandbox.root / "payload.bin").write_bytes(os.urandom(300_000))
    return sandbox


def jail_account(sandbox: Sandbox, frozen_tree: Path) -> Account:
    """jcli: scponly-pyc (file capability) chrooting into /srv/jail, set up as an admin would."""
    sandbox.sh(JAIL_SCRIPT)
    sandbox.run(
        [SETUP, "install-chroot-shell", "--from", str(frozen_tree), "--dest", PYC.rsplit("/", 1)[0],
         "--no-register"],
        check=True,
    )  # fmt: skip
    sandbox.run(
        [SETUP, "create", "/srv/jail", "--profile", "sftp,scp,hashsum",
         "--state-dir", "/srv/state"],
        check=True,
    )  # fmt: skip
    sandbox.add_jail_user("jcli", "/srv/jail//home/jcli", PYC, "/srv/jail//home/jcli")
    return Account("jcli", "/home/jcli", sandbox.path("/srv/jail/home/jcli"))


@pytest.fixture(scope="module", params=["scponly-py", "scponly-pyc"])
def account(request: pytest.FixtureRequest, sandbox: Sandbox) -> Account:
    if request.param == "scponly-py":
        home = sandbox.users["cli"].home
        return Account("cli", str(home), home)
    if not hasattr(sandbox, "jail_account"):
        sandbox.jail_account = jail_account(sandbox, request.getfixturevalue("frozen_tree"))  # type: ignore[attr-defined]
    return sandbox.jail_account  # type: ignore[attr-defined]


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (scripts/setup-env.sh installs it)")


def refused_fast(sandbox: Sandbox, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    started = time.monotonic()
    result = sandbox.run(argv, timeout=60)
    assert result.returncode != 0, result
    assert time.monotonic() - started < FAST
    assert b"Traceback" not in result.stderr
    return result


# -- lftp -------------------------------------------------------------------------------------


def lftp(sandbox: Sandbox, user: str, script: str) -> list[str]:
    setup = (
        f"set sftp:connect-program 'ssh -a -x -F {sandbox.ssh_config}'; "
        "set net:max-retries 1; set net:reconnect-interval-base 1; "
    )
    return ["lftp", "-c", f"{setup}open sftp://{user}:@sandbox; {script}"]


def test_lftp(sandbox: Sandbox, account: Account) -> None:
    need("lftp")
    payload, back = sandbox.root / "payload.bin", sandbox.root / f"back-lftp-{account.user}"
    script = (
        f"mkdir lftp; put {payload} -o lftp/up.bin; mv lftp/up.bin lftp/moved.bin; "
        f"get lftp/moved.bin -o {back}; ls lftp"
    )
    result = sandbox.run(lftp(sandbox, account.user, script))
    assert result.returncode == 0, result.stderr
    assert b"moved.bin" in result.stdout
    assert (account.files / "lftp" / "moved.bin").read_bytes() == payload.read_bytes()
    assert back.read_bytes() == payload.read_bytes()
    clean = sandbox.run(lftp(sandbox, account.user, "rm lftp/moved.bin; rmdir lftp"))
    assert clean.returncode == 0 and not (account.files / "lftp").exists()
    refused_fast(sandbox, lftp(sandbox, "noftp", "ls"))


# -- sshfs ------------------------------------------------------------------------------------


def test_sshfs(sandbox: Sandbox, account: Account) -> None:
    need("sshfs")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    mount = sandbox.root / f"mnt-{account.user}"
    mount.mkdir()
    ssh = f"ssh_command=ssh -F {sandbox.ssh_config}"
    result = sandbox.run(["sshfs", "-o", ssh, f"{account.user}@sandbox:", str(mount)])
    assert result.returncode == 0, result.stderr
    payload, back = sandbox.root / "payload.bin", sandbox.root / f"back-fuse-{account.user}"
    try:
        script = (
            'set -e; cd "$1"; cp "$2" in.bin; mkdir dir; mv in.bin dir/moved.bin; '
            'cp dir/moved.bin "$3"; ls dir'
        )
        moved = sandbox.run(["sh", "-c", script, "-", str(mount), str(payload), str(back)])
        assert moved.returncode == 0 and moved.stdout == b"moved.bin\n", moved.stderr
        assert (account.files / "dir" / "moved.bin").read_bytes() == payload.read_bytes()
        assert back.read_bytes() == payload.read_bytes()
        removed = sandbox.run(
            ["sh", "-c", 'rm "$1/dir/moved.bin" && rmdir "$1/dir"', "-", str(mount)]
        )
        assert removed.returncode == 0 and not (account.files / "dir").exists(), removed.stderr
    finally:
        unmounted = sandbox.run(["fusermount3", "-u", str(mount)])
    assert unmounted.returncode == 0, unmounted.stderr
    refused = refused_fast(sandbox, ["sshfs", "-o", ssh, "noftp@sandbox:", str(mount)])
    assert b"disconnected" in refused.stderr


# -- rclone -----------------------------------------------------------------------------------


def rclone(sandbox: Sandbox, user: str, *args: str, settings: str = "") -> list[str]:
    remote = (
        f":sftp,host=127.0.0.1,user={user},key_file={sandbox.client_key},"
        f"known_hosts_file={sandbox.root / 'known_hosts'}{settings}:"
    )
    words = [word.replace("REMOTE:", remote) for word in args]
    return ["rclone", "--config", "/dev/null", "--retries", "1", "--low-level-retries", "1",
            *words]  # fmt: skip


def test_rclone_copy_check_lsf_delete(sandbox: Sandbox, account: Account, tmp_path: Path) -> None:
    need("rclone")
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.bin").write_bytes((sandbox.root / "payload.bin").read_bytes())
    (local / "with space's.txt").write_bytes(b"rclone escapes this name\n")
    mark = sandbox.log_mark()
    up = sandbox.run(rclone(sandbox, account.user, "copy", str(local), "REMOTE:rc"))
    assert up.returncode == 0, up.stderr
    for name in ("a.bin", "with space's.txt"):
        assert (account.files / "rc" / name).read_bytes() == (local / name).read_bytes()
    check = sandbox.run(rclone(sandbox, account.user, "check", str(local), "REMOTE:rc"))
    assert check.returncode == 0, check.stderr
    assert b"0 differences found" in check.stderr and b"hash" not in check.stderr.lower()
    digests = [line for line in sandbox.log_since(mark, "md5sum") if "program=hashsum" in line]
    assert any(
        "decision=allow" in line and f"{account.home}/rc/a.bin" in line for line in digests
    ), digests
    # A changed byte is found by the digest (same size, same time: only the hash differs).
    changed = bytearray((local / "a.bin").read_bytes())
    changed[1000] ^= 1
    stat = (local / "a.bin").stat()
    (local / "a.bin").write_bytes(changed)
    os.utime(local / "a.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    differs = sandbox.run(rclone(sandbox, account.user, "check", str(local), "REMOTE:rc"))
    assert differs.returncode != 0 and b"1 differences found" in differs.stderr
    down = tmp_path / "down"
    got = sandbox.run(rclone(sandbox, account.user, "copy", "REMOTE:rc", str(down)))
    assert got.returncode == 0, got.stderr
    assert (down / "a.bin").read_bytes() == (sandbox.root / "payload.bin").read_bytes()
    listing = sandbox.run(rclone(sandbox, account.user, "lsf", "REMOTE:rc"))
    assert sorted(listing.stdout.decode().splitlines()) == ["a.bin", "with space's.txt"]
    deleted = sandbox.run(rclone(sandbox, account.user, "delete", "REMOTE:rc"))
    assert deleted.returncode == 0 and list((account.files / "rc").iterdir()) == []


def test_rclone_without_hashsum_and_write_only(sandbox: Sandbox, tmp_path: Path) -> None:
    need("rclone")
    payload = sandbox.root / "payload.bin"
    # No hashsum: shell_type = none stops every command probe; check compares sizes.
    mark = sandbox.log_mark()
    none = ",shell_type=none"
    up = sandbox.run(rclone(sandbox, "plain", "copy", str(payload), "REMOTE:p", settings=none))
    check = sandbox.run(rclone(sandbox, "plain", "check", str(payload), "REMOTE:p", settings=none))
    assert up.returncode == 0 and check.returncode == 0, check.stderr
    assert (sandbox.users["plain"].home / "p" / "payload.bin").read_bytes() == payload.read_bytes()
    assert not [
        line for line in sandbox.log_since(mark) if "user=plain" in line and "refuse" in line
    ]
    # Write-only: the upload works; every digest is refused, so rclone has no hash to compare.
    mark = sandbox.log_mark()
    sent = sandbox.run(rclone(sandbox, "wo", "copy", str(payload), "REMOTE:w"))
    assert sent.returncode == 0, sent.stderr
    assert (sandbox.users["wo"].home / "w" / "payload.bin").read_bytes() == payload.read_bytes()
    digest = refused_fast(sandbox, rclone(sandbox, "wo", "md5sum", "REMOTE:w/payload.bin"))
    assert b"d41d8cd98f00b204e9800998ecf8427e" not in digest.stdout
    lines = sandbox.log_since(mark, "write-only")
    assert any("program=hashsum" in line and "decision=refuse" in line for line in lines), lines
    assert not any("program=hashsum" in line and "decision=allow" in line for line in lines)


# -- FileZilla's fzsftp -----------------------------------------------------------------------


def fzsftp(sandbox: Sandbox, user: str, *commands: str) -> list[str]:
    fingerprint = "SHA256:" + clients.host_key_sha256(sandbox)
    ppk = clients.putty_key(sandbox)
    return [sys.executable, str(HERE / "fzsftp_client.py"), user, str(ppk), fingerprint,
            *commands]  # fmt: skip


def test_filezilla_fzsftp(sandbox: Sandbox, account: Account) -> None:
    need("fzsftp")
    payload, back = sandbox.root / "payload.bin", sandbox.root / f"back-fz-{account.user}"
    home = account.home
    result = sandbox.run(
        fzsftp(sandbox, account.user,
               f'mkdir "{home}/fz"', f'put "{payload}" "{home}/fz/up.bin"',
               f'mv "{home}/fz/up.bin" "{home}/fz/moved.bin"',
               f'get "{home}/fz/moved.bin" "{back}"'),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (account.files / "fz" / "moved.bin").read_bytes() == payload.read_bytes()
    assert back.read_bytes() == payload.read_bytes()
    clean = sandbox.run(
        fzsftp(sandbox, account.user, f'rm "{home}/fz/moved.bin"', f'rmdir "{home}/fz"')
    )
    assert clean.returncode == 0 and not (account.files / "fz").exists(), clean.stdout
    refused = refused_fast(sandbox, fzsftp(sandbox, "noftp"))
    assert b"failed: open" in refused.stdout or b"end-of-file" in refused.stderr, refused


# -- asyncssh ---------------------------------------------------------------------------------


def asyncssh(sandbox: Sandbox, user: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / "asyncssh_client.py"), "--user", user,
            "--key", str(sandbox.client_key), "--known-hosts", str(sandbox.root / "known_hosts"),
            *args]  # fmt: skip


def test_asyncssh(sandbox: Sandbox, account: Account) -> None:
    pytest.importorskip("asyncssh")
    payload, back = sandbox.root / "payload.bin", sandbox.root / f"back-as-{account.user}"
    up = sandbox.run(asyncssh(sandbox, account.user, "put", str(payload), "as.bin"))
    assert up.returncode == 0, up.stderr
    assert (account.files / "as.bin").read_bytes() == payload.read_bytes()
    down = sandbox.run(asyncssh(sandbox, account.user, "get", "as.bin", str(back)))
    assert down.returncode == 0 and back.read_bytes() == payload.read_bytes(), down.stderr
    mark = sandbox.log_mark()
    refused = refused_fast(sandbox, asyncssh(sandbox, account.user, "exec", "id"))
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr == b"scponly-py: refused: command 'id' is not allowed\n"
    lines = sandbox.log_since(mark, "decision=refuse")
    assert any(f"user={account.user}" in line and "decision=refuse" in line for line in lines)
