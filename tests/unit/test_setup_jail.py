"""Jail building without root: jailfs never writes through a symlink, plans, manifests, findings."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from setup_chroot import check, jailfs, plan, sshd
from setup_chroot.cli import main
from setup_chroot.manifest import Store, escape


@pytest.fixture
def jail(tmp_path: Path) -> Path:
    root = tmp_path / "jail"
    (root / "etc").mkdir(parents=True)
    (root / "home/alice/files").mkdir(parents=True)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "passwd").write_text("host\n")
    return victim


def test_write_replaces_a_planted_final_symlink_instead_of_following_it(
    jail: Path, outside: Path
) -> None:
    (jail / "etc/passwd").symlink_to(outside / "passwd")
    with jailfs.JailFS(str(jail)) as fs:
        fs.write("/etc/passwd", b"jail\n", 0o644)
    assert (outside / "passwd").read_text() == "host\n"
    assert not (jail / "etc/passwd").is_symlink()
    assert (jail / "etc/passwd").read_text() == "jail\n"


def test_no_operation_walks_through_a_planted_directory_symlink(jail: Path, outside: Path) -> None:
    (jail / "etc").rmdir()
    (jail / "etc").symlink_to(outside)
    with jailfs.JailFS(str(jail)) as fs:
        for action in (
            lambda: fs.write("/etc/passwd", b"x", 0o644),
            lambda: fs.symlink("/etc/passwd", "x"),
            lambda: fs.make_dir("/etc/sub", 0o755),
            lambda: fs.install("/etc/passwd", "/bin/true", 0o755),
            lambda: fs.make_dir("/etc", 0o755),
            lambda: fs.remove_tree("/etc/passwd"),
        ):
            with pytest.raises(jailfs.JailFSError):
                action()
        assert fs.lstat("/etc/passwd") is None
    assert sorted(os.listdir(outside)) == ["passwd"]
    assert (outside / "passwd").read_text() == "host\n"


def test_remove_tree_deletes_links_not_their_targets(jail: Path, outside: Path) -> None:
    files = jail / "home/alice/files"
    (files / "to-dir").symlink_to(outside)
    (files / "to-file").symlink_to(outside / "passwd")
    (files / "sub").mkdir()
    (files / "sub/up").symlink_to("../../../../../outside")
    with jailfs.JailFS(str(jail)) as fs:
        fs.remove_tree("/home/alice")
    assert not (jail / "home/alice").exists()
    assert (outside / "passwd").read_text() == "host\n"


def test_install_strips_setuid_and_write_bits_and_never_hard_links(
    jail: Path, tmp_path: Path
) -> None:
    source = tmp_path / "prog"
    source.write_bytes(b"\x7fELF program")
    source.chmod(0o6777)
    with jailfs.JailFS(str(jail)) as fs:
        fs.install("/etc/prog", str(source), os.lstat(source).st_mode)
    copy = os.lstat(jail / "etc/prog")
    assert stat.S_IMODE(copy.st_mode) == 0o755
    assert copy.st_nlink == 1 and copy.st_ino != os.lstat(source).st_ino
    assert (jail / "etc/prog").read_bytes() == b"\x7fELF program"
    assert not [name for name in os.listdir(jail / "etc") if name.endswith(".tmp")]


def test_dotdot_is_refused(jail: Path) -> None:
    with jailfs.JailFS(str(jail)) as fs, pytest.raises(jailfs.JailFSError, match=r"'\.\.'"):
        fs.write("/etc/../../x", b"", 0o644)


def test_plan_for_sftp_copies_the_loader_chain(tmp_path: Path) -> None:
    spec = plan.Spec(str(tmp_path / "new"), ("sftp",))
    planned = plan.make_plan(spec, None)
    paths = {op.path: op for op in planned.ops}
    assert isinstance(paths["/usr/lib/openssh/sftp-server"], plan.File)
    interpreter = paths["/lib64"]
    assert isinstance(interpreter, plan.Link) and interpreter.target == "usr/lib64"
    assert paths["/dev/null"] == plan.Node("/dev/null", 1, 3, 0o666)
    assert b"passwd: files" in paths["/etc/nsswitch.conf"].data  # type: ignore[union-attr]
    for op in planned.ops:
        if isinstance(op, plan.Link):
            assert not check.escapes(op.path, op.target)
        if isinstance(op, plan.File | plan.Dir):
            assert not op.mode & 0o7022
    assert "/usr/bin/rsync" not in paths


def test_old_glibc_gets_libnss_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = plan.Spec(str(tmp_path / "new"), ("sftp",))
    assert not any("libnss_files" in path for path in plan.desired(spec))
    monkeypatch.setattr(plan, "glibc_version", lambda: (2, 31))
    assert any("libnss_files.so.2" in path for path in plan.desired(spec))


def test_plan_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(plan.PlanError, match="unknown profile 'ftp'"):
        plan.make_plan(plan.Spec(str(tmp_path), ("ftp",)), None)
    with pytest.raises(plan.PlanError, match="not found"):
        plan.make_plan(plan.Spec(str(tmp_path), (), ("/no/such/program",)), None)


def test_manifest_round_trip_and_escape(tmp_path: Path) -> None:
    assert escape("/srv/jail") == "srv-jail"
    assert escape("/srv/my jail/.x") == "srv-my\\x20jail-.x"
    assert escape("/.hidden") == "\\x2ehidden"
    store = Store(str(tmp_path / "state"))
    spec = plan.Spec("/srv/jail", ("sftp",), (), True, (plan.User("alice", created=True),))
    with store.lock(spec.jail):
        store.save(spec, {"/etc": {"kind": "dir"}}, (1, 2))
    assert store.load("/srv/jail") == (spec, {"/etc": {"kind": "dir"}})
    assert store.jails() == ["/srv/jail"]
    assert store.opened("/srv/jail") == [1, 2]
    assert store.load("/srv/other") is None


def test_symlink_escape_rule() -> None:
    assert check.escapes("/lib64", "/usr/lib64")
    assert check.escapes("/a/link", "../../etc")
    assert not check.escapes("/usr/lib64/ld.so", "../../lib/x/ld.so")
    assert not check.escapes("/lib", "usr/lib")


def test_sshd_findings_rules() -> None:
    safe = {key: ["no"] for key in sshd.MUST_BE_NO}
    safe["subsystem"] = ["sftp /usr/lib/openssh/sftp-server"]
    assert sshd.findings("u", safe, "scponly") == []
    disabled = {**safe, "disableforwarding": ["yes"], "allowtcpforwarding": ["yes"]}
    assert sshd.findings("u", disabled, "scponly") == []
    bad = {**safe, "permituserrc": ["yes"], "subsystem": ["sftp internal-sftp -l INFO"]}
    assert {item.setting for item in sshd.findings("u", bad, "scponly")} == {
        "permituserrc",
        "subsystem",
    }
    assert {item.setting for item in sshd.findings("u", safe, "internal-sftp")} == {
        "forcecommand",
        "chrootdirectory",
    }


def test_cli_dry_run_json_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(tmp_path / "state")]
    result = runner.invoke(
        main, ["create", str(tmp_path / "j"), "--profile", "scp", "--dry-run", "--json", *state]
    )
    assert result.exit_code == 0, result.output
    ops = json.loads(result.output)["operations"]
    scp = {"op": "file", "path": "/usr/bin/scp", "source": "/usr/bin/scp", "mode": "0755"}
    assert {**scp, "capability": None} in ops
    assert not (tmp_path / "j").exists()
    result = runner.invoke(main, ["create", "relative/jail", "--dry-run", *state])
    assert result.exit_code == 1 and "absolute path" in result.output
    result = runner.invoke(main, ["update", *state])
    assert result.exit_code == 2
    result = runner.invoke(main, ["check", str(tmp_path / "missing"), *state])
    assert result.exit_code == 1 and "no such directory" in result.output
    result = runner.invoke(main, ["update", str(tmp_path / "j"), "--dry-run", *state])
    assert result.exit_code == 1 and "run create first" in result.output
    text = runner.invoke(main, ["sshd-config", "--group", "sftponly"]).output
    assert "Match Group sftponly" in text and "AllowTcpForwarding no" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the non-root refusal")
def test_cli_refuses_to_write_without_root(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["create", str(tmp_path / "j")])
    assert result.exit_code == 1 and "must run as root" in result.output
