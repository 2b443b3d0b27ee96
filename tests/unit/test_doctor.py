"""The account doctor's pure parts: PAM stacks of stock distributions, sshd -T text, the
secure-start test on real files, and the home findings on temporary homes."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from scponly_py import trusted
from setup_chroot import doctor, pamstack

DATA = Path(__file__).resolve().parents[1] / "data" / "pam"
# Recorded from Debian 12's `sshd -T -C user=alice,...` with the stock sshd_config.
STOCK_SSHD_T = """usepam yes
x11forwarding yes
permituserrc yes
allowtcpforwarding yes
allowagentforwarding yes
disableforwarding no
allowstreamlocalforwarding yes
pidfile /run/sshd.pid
forcecommand none
chrootdirectory none
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
acceptenv LANG
acceptenv LC_*
subsystem sftp /usr/lib/openssh/sftp-server
permittunnel no
permituserenvironment no
"""


def parse_t(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


def distro_stack(name: str) -> pamstack.Stack:
    return pamstack.stack("sshd", pamstack.directory_reader((str(DATA / name),)))


# -- PAM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distro", "readers"),
    [
        ("debian12", [("session", False), ("session", True)]),
        ("ubuntu2404", [("session", False), ("session", True)]),
        ("fedora", [("auth", False)]),
        ("arch", [("auth", False), ("session", False)]),
    ],
)
def test_stock_stacks_resolve_and_show_their_pam_env(
    distro: str, readers: list[tuple[str, bool]]
) -> None:
    stack = distro_stack(distro)
    assert stack.problems == ()
    reads = pamstack.env_reads(stack.rules)
    assert [(read.rule.type, read.user_readenv) for read in reads] == readers
    assert {rule.type for rule in stack.rules} == set(pamstack.TYPES)


def test_debian_user_readenv_line_and_its_options() -> None:
    (_, locale) = pamstack.env_reads(distro_stack("debian12").rules)
    assert locale.rule.origin.endswith("debian12/sshd:47")
    assert (locale.envfile, locale.user_envfile, locale.readenv) == (
        "/etc/default/locale",
        ".pam_environment",
        True,
    )
    assert pamstack.modules(distro_stack("debian12").rules, "session", "pam_systemd.so")


def test_includes_keep_only_their_type_and_arch_goes_two_levels_deep() -> None:
    rules = distro_stack("arch").rules
    auth = [rule for rule in rules if rule.type == "auth"]
    assert auth[0].module == "pam_shells.so" and auth[0].origin.endswith("system-login:5")
    assert any(rule.origin.endswith("system-auth:11") for rule in auth)  # pam_env.so
    fedora = distro_stack("fedora").rules
    assert fedora[0].module == "pam_env.so" and fedora[0].origin.endswith("password-auth:7")


def test_brackets_continuations_and_comments() -> None:
    text = (
        "auth [success=1 default=ignore] pam_x.so [b c\\]d] # comment \\\n"
        "session required \\\n  pam_env.so \\\n user_readenv=1 # tail\n"
        "#session required pam_env.so user_readenv=1\n"
    )
    read = {"svc": ("svc", text)}.get
    stack = pamstack.stack("svc", read)
    assert [(rule.control, rule.module, rule.args) for rule in stack.rules] == [
        ("[success=1 default=ignore]", "pam_x.so", ("b c]d",)),
        ("required", "pam_env.so", ("user_readenv=1",)),
    ]
    assert stack.rules[1].origin == "svc:2"
    assert pamstack.env_reads(stack.rules)[0].user_readenv


def test_cycles_and_missing_files_are_problems_not_hangs() -> None:
    files = {
        "a": ("a", "session include b\n@include missing\n"),
        "b": ("b", "session include a\n-session optional pam_env.so user_readenv=1\n"),
    }
    stack = pamstack.stack("a", files.get)
    assert any("depth" in problem for problem in stack.problems)
    assert any("cannot read missing" in problem for problem in stack.problems)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), False),
        (("user_readenv=1",), True),
        (("user_readenv=1", "user_readenv=0"), False),
        (("user_readenv=yes",), False),  # atoi("yes") == 0
        (("user_readenv= 7x",), True),
    ],
)
def test_user_readenv_is_read_as_pam_env_reads_it(args: tuple[str, ...], expected: bool) -> None:
    rule = pamstack.Rule("session", "required", "/usr/lib/security/pam_env.so", args, "x:1")
    assert pamstack.env_reads([rule])[0].user_readenv is expected


def test_account_stack_pam_env_is_not_an_env_read() -> None:
    rule = pamstack.Rule("account", "required", "pam_env.so", ("user_readenv=1",), "x:1")
    assert pamstack.env_reads([rule]) == []


# -- sshd -T ---------------------------------------------------------------------------------


def test_stock_sshd_settings() -> None:
    found = doctor.settings_findings("alice", parse_t(STOCK_SSHD_T), secure=True, rc_present=False)
    assert {item.code for item in found} == {
        "sshd-allowtcpforwarding",
        "sshd-allowstreamlocalforwarding",
        "sshd-x11forwarding",
        "sshd-allowagentforwarding",
    }
    assert all(str(item).count("\n") == 0 and "; fix: " in str(item) for item in found)


def test_rc_only_with_the_file_and_disableforwarding() -> None:
    text = STOCK_SSHD_T.replace("disableforwarding no", "disableforwarding yes")
    found = doctor.settings_findings("alice", parse_t(text), secure=True, rc_present=True)
    assert {item.code for item in found} == {"sshd-permituserrc"}
    assert found[0].severity == "low"


@pytest.mark.parametrize(
    ("patterns", "admitted"),
    [
        ("LANG LC_*", False),
        ("*", True),
        ("LD_*", True),
        ("PYTHON*", True),
        ("GCONV_?ATH", True),
        ("L*", True),
        ("ld_*", False),  # sshd patterns are case-sensitive
    ],
)
def test_accept_env_patterns(patterns: str, admitted: bool) -> None:
    settings = {"acceptenv": patterns.split()}
    found = doctor.accept_env("alice", settings, secure=False)
    assert bool(found) is admitted
    assert all(item.severity == "high" for item in found)


def test_permit_user_environment_and_internal_sftp() -> None:
    text = (
        STOCK_SSHD_T.replace("permituserenvironment no", "permituserenvironment yes")
        .replace("forcecommand none", "forcecommand internal-sftp")
        .replace("chrootdirectory none", "chrootdirectory /srv/jail")
    )
    found = {
        item.code: item
        for item in doctor.settings_findings("alice", parse_t(text), secure=False, rc_present=False)
    }
    assert found["sshd-permituserenvironment"].severity == "high"
    assert "never runs the login shell" in found["sshd-internal-sftp"].allows


def test_sshd_process_privileges() -> None:
    status = "Name:\tsshd\nNoNewPrivs:\t1\nCapBnd:\t000001ffffffffff\n"
    assert doctor.parse_status(status) == (True, 0x1FFFFFFFFFF)
    caps = doctor.Start(None, capabilities=1 << 35)
    assert doctor.privilege_findings("a", caps, (True, 0))[0].code == "sshd-nnp"
    assert doctor.privilege_findings("a", caps, (False, 1 << 18))[0].code == "sshd-capbnd"
    assert doctor.privilege_findings("a", caps, (False, (1 << 41) - 1)) == []
    assert doctor.privilege_findings("a", caps, None) == []


# -- secure_start ------------------------------------------------------------------------------


def test_capability_decoding() -> None:
    v2 = struct.pack("<I4I", 0x02000001, 0, 0, 1 << 3, 0)  # cap_wake_alarm (35) permitted
    assert doctor.decode_capability(v2) == (1 << 35, 0)
    v3 = struct.pack("<I4II", 0x03000000, 1 << 18, 0, 0, 0, 1000)
    assert doctor.decode_capability(v3) == (1 << 18, 1000)
    with pytest.raises(ValueError, match="revision"):
        doctor.decode_capability(struct.pack("<I4I", 0x05000000, 0, 0, 0, 0))


@pytest.fixture
def elf(tmp_path: Path) -> Path:
    path = tmp_path / "front"
    shutil.copyfile("/bin/true", path)
    path.chmod(0o755)
    return path


def test_script_and_plain_elf_are_not_secure(tmp_path: Path, elf: Path) -> None:
    script = tmp_path / "launcher"
    script.write_text("#!/usr/bin/python3 -IS\n")
    script.chmod(0o4755)
    assert "script" in (doctor.secure_start(str(script)) or "")
    assert "neither" in (doctor.secure_start(str(elf)) or "")
    elf.chmod(0o644)
    assert "not an executable" in (doctor.secure_start(str(elf)) or "")
    assert "cannot be opened" in (doctor.secure_start(str(tmp_path / "none")) or "")


def test_setuid_elf_is_secure_unless_it_is_the_users_own(elf: Path) -> None:
    elf.chmod(0o4755)
    owner = elf.stat().st_uid
    assert doctor.secure_start(str(elf)) is None
    assert doctor.secure_start(str(elf), uid=owner + 1) is None
    assert doctor.secure_start(str(elf), uid=owner, gid=-1) is not None


def test_real_file_capability(elf: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setcap") is None:
        pytest.skip("setcap needs root and libcap2-bin")
    subprocess.run(["setcap", "cap_wake_alarm+p", str(elf)], check=True)
    start = doctor.start_mode(str(elf))
    assert start.reason is None and start.capabilities == 1 << 35
    subprocess.run(["setcap", "cap_wake_alarm+i", str(elf)], check=True)
    assert "empty permitted" in (doctor.secure_start(str(elf)) or "")


# -- files --------------------------------------------------------------------------------------


def make_account(home: Path, uid: int | None = None) -> doctor.Account:
    uid = os.getuid() if uid is None else uid
    return doctor.Account("alice", uid, uid, frozenset({uid}), str(home), "/bin/false")


def codes(found: list[doctor.Finding]) -> set[str]:
    return {item.code for item in found}


def debian_reads() -> list[pamstack.EnvRead]:
    return pamstack.env_reads(distro_stack("debian12").rules)


def test_old_way_home(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    (home / ".ssh").mkdir(parents=True)
    home.chmod(0o777)
    (home / ".pam_environment").write_text("LD_PRELOAD DEFAULT=/home/alice/x.so\n")
    (home / ".ssh/environment").write_text("LD_PRELOAD=/x.so\n")
    (home / ".ssh/authorized_keys").write_text(
        'environment="LD_PRELOAD=/x.so",command="id" ssh-ed25519 AAAA x\nssh-ed25519 AAAA y\n'
    )
    who = make_account(home)
    found = doctor.file_findings(
        who, parse_t(STOCK_SSHD_T), secure=False, pam_reads=debian_reads(), pam_systemd=True
    )
    assert codes(found) >= {
        "writable",
        "pam-environment",
        "pam-user-readenv",
        "login-file",
        "key-environment",
        "key-command",
        "systemd-user",
    }
    line = next(item for item in found if item.code == "pam-user-readenv")
    assert "LD_PRELOAD" in line.allows and line.severity == "high"


def test_secure_shell_still_reports_a_planted_pam_environment(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    home.mkdir(mode=0o755)
    who = make_account(home)
    clean = doctor.file_findings(
        who, None, secure=True, pam_reads=debian_reads(), pam_systemd=False
    )
    assert clean == []
    (home / ".pam_environment").write_text("X DEFAULT=1\n")
    found = doctor.file_findings(
        who, None, secure=True, pam_reads=debian_reads(), pam_systemd=False
    )
    assert codes(found) == {"pam-environment"} and found[0].severity == "medium"


def test_symlinks_are_reported_never_followed(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    home.mkdir(mode=0o755)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "authorized_keys").write_text('environment="A=1" ssh-ed25519 AAAA\n')
    (home / ".ssh").symlink_to(target)
    who = make_account(home)
    found = doctor.file_findings(who, None, secure=True, pam_reads=[], pam_systemd=False)
    assert "symlink" in codes(found) and "key-environment" not in codes(found)
    assert doctor.plan_fixes(who, None) == []


def test_fix_plans_and_applies_modes_only(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/authorized_keys").write_text("ssh-ed25519 AAAA\n")
    home.chmod(0o777)
    (home / ".ssh").chmod(0o775)
    (home / ".ssh/authorized_keys").chmod(0o666)
    (home / ".pam_environment").write_text("X DEFAULT=1\n")
    (home / ".pam_environment").chmod(0o666)
    who = make_account(home)
    planned = doctor.plan_fixes(who, None)
    assert [change.parts for change in planned] == [(), (".ssh",), (".ssh", "authorized_keys")]
    lines = doctor.apply(who, planned)
    assert all(line.startswith("fixed: chmod ") for line in lines)
    assert (home.stat().st_mode & 0o777, (home / ".ssh").stat().st_mode & 0o777) == (0o755, 0o755)
    assert (home / ".ssh/authorized_keys").stat().st_mode & 0o777 == 0o644
    assert (home / ".pam_environment").stat().st_mode & 0o777 == 0o666  # the user's file
    assert doctor.plan_fixes(who, None) == []


def test_fix_refuses_a_file_swapped_for_a_symlink(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh").chmod(0o777)
    who = make_account(home)
    planned = doctor.plan_fixes(who, None)
    (home / ".ssh").rename(home / "old")
    (home / ".ssh").symlink_to(tmp_path)
    before = tmp_path.stat().st_mode
    assert doctor.apply(who, planned)[0].startswith("refused: ")
    assert tmp_path.stat().st_mode == before


def test_foreign_owner_is_fixed_by_chown(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    home = tmp_path / "alice"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    os.chown(home, 4242, 4242)
    os.chown(home / ".ssh", 4343, 4242)
    who = make_account(home, uid=4242)
    found = doctor.file_findings(who, None, secure=True, pam_reads=[], pam_systemd=False)
    assert [(item.code, item.path) for item in found] == [("owner", str(home / ".ssh"))]
    lines = doctor.apply(who, doctor.plan_fixes(who, None))
    assert lines == [f"fixed: chown 4242 {home / '.ssh'} (was uid 4343, mode 0700)"]
    assert (home / ".ssh").stat().st_uid == 4242


def test_key_options_parser() -> None:
    text = (
        '# comment\nrestrict,command="a b,c" ssh-ed25519 AAAA\n'
        'from="1.2.3.4",environment="X=\\"1\\"" ecdsa-sha2-nistp256 AAAA\n'
        "sk-ssh-ed25519@openssh.com AAAA k\n"
    )
    assert doctor.key_options(text) == [(2, "command"), (3, "environment")]


def user_home(tmp_path: Path, uid: int = 4242) -> tuple[Path, doctor.Account]:
    """A `useradd -m` home (the user's, 0755, a .bashrc) of a uid that is not ours."""
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    home = tmp_path / "alice"
    home.mkdir(mode=0o755)
    (home / ".bashrc").write_text("# skel\n")
    for path in (home, home / ".bashrc"):
        os.chown(path, uid, uid)
    return home, make_account(home, uid=uid)


def test_systemd_home_fix_makes_the_home_roots_with_files_for_uploads(tmp_path: Path) -> None:
    home, who = user_home(tmp_path)
    (home / ".config/systemd/user").mkdir(parents=True)
    for path in (home / ".config", home / ".config/systemd", home / ".config/systemd/user"):
        os.chown(path, 4242, 4242)
    found = doctor.file_findings(who, None, secure=True, pam_reads=[], pam_systemd=True)
    finding = next(item for item in found if item.code == "systemd-user")
    assert finding.severity == "high" and "pam_systemd" in finding.what
    assert "check --user alice --fix" in finding.fix
    planned = doctor.plan_fixes(who, None, found)
    assert doctor.preview(planned)[:2] == [
        f"would fix: chown 0:0 {home} (was uid 4242, gid 4242, mode 0755)",
        f"would fix: mkdir -m 0755 {home / 'files'} (owner 4242:4242, for uploads)",
    ]
    lines = doctor.apply(who, planned)
    assert sum(line.startswith("fixed: chown 0:0 ") for line in lines) == 4, lines
    assert lines[-1].startswith(f"note: {home} keeps 1 entries of alice's where they are (.bashrc)")
    info = (home / "files").stat()
    assert (info.st_uid, info.st_mode & 0o7777) == (4242, 0o755)
    assert (home / ".config/systemd/user").stat().st_uid == 0
    assert (home / ".bashrc").stat().st_uid == 4242
    assert trusted.user_manager_problem(str(home)) is None
    again = doctor.file_findings(who, None, secure=True, pam_reads=[], pam_systemd=True)
    assert codes(again) == set()


def test_systemd_home_fix_leaves_user_files_and_says_so(tmp_path: Path) -> None:
    home, who = user_home(tmp_path)
    (home / ".config").mkdir(mode=0o700)
    (home / ".config/htoprc").write_text("x\n")
    os.chown(home / ".config", 4242, 4242)
    found = doctor.file_findings(
        who, None, secure=True, pam_reads=[], pam_systemd=False, booted=True
    )
    finding = next(item for item in found if item.code == "systemd-user")
    assert finding.severity == "medium" and "refuses every login" in finding.allows
    lines = doctor.apply(who, doctor.plan_fixes(who, None, found))
    assert any(
        line.startswith(f"note: {home / '.config'} holds 1 non-directories") for line in lines
    )
    assert (home / ".config").stat().st_uid == 4242 and (home / ".config/htoprc").exists()
    assert trusted.user_manager_problem(str(home)) == (
        f"{home}/.config is owned by uid 4242, not root"
    )
