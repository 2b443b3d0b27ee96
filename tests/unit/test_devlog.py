"""The jail's /dev/log as data: unit names, the files written, what is planned (no root)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from setup_chroot import devlog, jailfs, plan

PATHS = ("/srv/jail/dev/log", "/srv/my jail/.x", "/.hidden", "/a/b.c/-x:y_z", "/srv/jä", "/")


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="needs systemd-escape")
def test_unit_names_are_systemd_escape_paths() -> None:
    expected = subprocess.run(
        ["systemd-escape", "--path", *PATHS], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [devlog.escape(path) for path in PATHS] == expected


def test_config_files_name_the_jail_socket() -> None:
    unit = devlog.config_text("journald", "/srv/jail").decode()
    assert unit.startswith(devlog.MARK)
    assert (
        devlog.config_path("journald", "/srv/jail") == "/etc/systemd/system/srv-jail-dev-log.mount"
    )
    for line in ("What=/run/systemd/journal/dev-log", "Where=/srv/jail/dev/log", "Options=bind",
                 "BindsTo=systemd-journald-dev-log.socket", "After=systemd-journald-dev-log.socket",
                 "WantedBy=systemd-journald-dev-log.socket"):  # fmt: skip
        assert line in unit.splitlines()
    drop_in = devlog.config_text("rsyslog", "/srv/jail").decode()
    assert devlog.config_path("rsyslog", "/srv/jail") == "/etc/rsyslog.d/scponly-py-srv-jail.conf"
    assert drop_in.splitlines()[1] == 'input(type="imuxsock" Socket="/srv/jail/dev/log")'
    for jail in ('/srv/a"b', "/srv/a b", "/srv/a\nb"):  # would need quoting in either file
        with pytest.raises(devlog.DevLogError, match="letters, digits"):
            devlog.config_text("rsyslog", jail)


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("UNIT_DIR", "RSYSLOG_DIR"):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(devlog, name, str(tmp_path / name))
    return tmp_path


def test_plan_sets_up_last_tears_down_first_and_refuses_foreign_files(etc: Path) -> None:
    jail = etc / "jail"
    (jail / "dev").mkdir(parents=True)
    with jailfs.JailFS(str(jail)) as fs:
        before, after = devlog.plan(str(jail), "rsyslog", fs)
        assert before == [] and [type(op) for op in after] == [devlog.LogSocket]
        assert after[0].config == devlog.config_path("rsyslog", str(jail))
        Path(after[0].config).write_bytes(after[0].data)  # as if applied, but nothing listens
        assert devlog.problem(fs, "rsyslog") == "missing"
        assert devlog.plan(str(jail), "rsyslog", fs)[1] == after  # not working: planned again
        before, after = devlog.plan(str(jail), "journald", fs)  # switching daemons
        old = devlog.config_path("rsyslog", str(jail))
        assert before == [devlog.NoLogSocket(str(jail), "rsyslog", old)]
        assert after[0].config == devlog.config_path("journald", str(jail))
        assert devlog.plan(str(jail), None, fs) == (before, [])
        Path(devlog.config_path("journald", str(jail))).write_text("[Mount]\n")
        with pytest.raises(devlog.DevLogError, match="not written by scponly-py-setup"):
            devlog.plan(str(jail), "journald", fs)
        (jail / "dev/log").write_bytes(b"")
        assert devlog.problem(fs, None) == "not a socket (nothing listens there)"


def test_spec_and_operations_show_the_log_socket(tmp_path: Path) -> None:
    spec = plan.Spec(str(tmp_path / "j"), devlog="journald")
    assert plan.Spec.from_json(spec.to_json()) == spec
    op = plan.make_plan(spec, None).ops[-1]
    assert isinstance(op, devlog.LogSocket)
    assert plan.describe(op).startswith(f"devlog   {spec.jail}/dev/log  journald bind mount:")
    shown = plan.to_json(op)
    assert shown["op"] == "logsocket" and shown["path"] == "/dev/log"
    assert "Options=bind" in str(shown["data"])
