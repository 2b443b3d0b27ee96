"""svnserve: only `svnserve -t`; root, read-only and tunnel user come from the policy.

Recorded from Subversion 1.14.2 (Debian 12 `subversion`) with
`SVN_SSH=RECORDER svn ls svn+ssh://user@host/repo`: RECORDER got
`user@host svnserve -t`, so the login shell receives `svnserve -t`. The live
tests check out, commit and read back through `decide()` with the real svn
client and a repository made by svnadmin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scponly_py.outcome import Allow
from scponly_py.policy import BUILTIN_PATHS, ConfigError, effective_policy, normalise
from tests import support
from tests.support import decision_for
from tests.unit import fake_ssh

SVNSERVE = BUILTIN_PATHS["svnserve"]
REPOSITORY = str(Path(__file__).resolve().parents[2])


# decide() with svnserve alone enabled and an svn_root (other policy fields as keywords).
SVN = {"programs": ("svnserve",), "svn_root": "/srv/svn"}
run = partial(decision_for, **SVN)
refusal = partial(support.refusal, **SVN)


def test_recorded_client_command_gets_the_policy_root() -> None:
    decision = run("svnserve -t")
    assert isinstance(decision, Allow), decision
    assert decision.argv == (SVNSERVE, "-t", "--root", "/srv/svn")
    assert decision.path == SVNSERVE


def test_relative_root_is_refused_even_from_a_compiled_config() -> None:
    """A config.compiled written before relative roots were refused must not serve HOME."""
    assert "svn_root is not an absolute path" in refusal("svnserve -t", svn_root="svn/repos")


@pytest.mark.parametrize("relative", ["svn", "svn/repos", "repos"])
def test_config_refuses_a_relative_root_and_says_why(relative: str) -> None:
    with pytest.raises(ConfigError, match="must be an absolute path") as refused:
        normalise({"user": {"alice": {"svn_root": relative}}})
    assert "hooks" in str(refused.value)


def test_read_only_adds_read_only() -> None:
    decision = run("svnserve -t", access="read-only")
    assert isinstance(decision, Allow)
    assert decision.argv == (SVNSERVE, "-t", "--root", "/srv/svn", "--read-only")


def test_tunnel_user_comes_from_the_passwd_name() -> None:
    decision = run("svnserve -t", svn_tunnel_user=True)
    assert isinstance(decision, Allow)
    assert decision.argv == (SVNSERVE, "-t", "--root", "/srv/svn", "--tunnel-user=alice")


def test_write_only_is_refused() -> None:
    assert "write-only" in refusal("svnserve -t", access="write-only")


def test_no_root_configured_is_refused() -> None:
    assert "svn_root" in refusal("svnserve -t", svn_root="")


@pytest.mark.parametrize("other", ["sftp", "scp", "rsync", "unison", "winscp"])
def test_commit_access_is_refused_beside_any_program_that_writes_files(other: str) -> None:
    """With db/ writable, an upload of REPO/db/x/{format,db,hooks/start-commit} and a commit
    to svn+ssh://host/REPO/db/x runs the account's hook: svnserve serves the deepest repository
    on the URL's path (reproduced with Subversion 1.14.2)."""
    reason = refusal("svnserve -t", programs=("svnserve", other))
    assert f"also has {other}" in reason and "db/" in reason
    read_only = run("svnserve -t", programs=("svnserve", other), access="read-only")
    assert isinstance(read_only, Allow)
    assert read_only.argv[-1] == "--read-only"


def test_off_unless_enabled() -> None:
    reason = refusal("svnserve -t", programs=("scp", "sftp"))
    assert reason == "svnserve is not enabled for this account"


REFUSED = [
    "svnserve",
    "svnserve -d",
    "svnserve --daemon",
    "svnserve -i",
    "svnserve --inetd",
    "svnserve -X",
    "svnserve --listen-once",
    "svnserve -t -d",
    "svnserve -td",
    "svnserve -tR",
    "svnserve --tunnel",  # the client never sends the long form; keep the grammar exact
    "svnserve -t --config-file /home/alice/evil.conf",
    "svnserve -t --config-file=/home/alice/evil.conf",
    "svnserve -t --listen-port 3690",
    "svnserve -t --listen-host 0.0.0.0",
    "svnserve -t --log-file /home/alice/.ssh/authorized_keys",
    "svnserve -t --pid-file /tmp/x",
    "svnserve -t -r /",
    "svnserve -t --root /",
    "svnserve -t --root=/",
    "svnserve -t --tunnel-user root",
    "svnserve -t --tunnel-user=root",
    "svnserve -t -T",
    "svnserve -t --threads",
    "svnserve -t -M 100000",
    "svnserve -t --foreground",
    "svnserve -t --single-thread",
    "svnserve -t --max-request-size 0",
    "svnserve -t -- x",
    "svnserve -t x",
    "svnserve -t -t",
    "svnserve -R -t",
    "svnserve -t -R",  # narrowing is the policy's job, not the client's
    # CVE-2007-6350: the svn *client* (editor-cmd, hooks of a repo the user made) is never run.
    "svn --config-option=config:helpers:editor-cmd=X commit",
    "svn --config-option config:helpers:editor-cmd=X ci -m x",
    "svn checkout file:///home/alice/repo",
    "svnadmin create /home/alice/repo",
    "svnlook youngest /srv/svn/repo",
    "/tmp/svnserve -t",
    "./svnserve -t",
]


@pytest.mark.parametrize("command", REFUSED)
def test_everything_but_the_exact_form_is_refused(command: str) -> None:
    assert refusal(command)


def test_refusal_names_the_extra_word() -> None:
    assert "--config-file" in refusal("svnserve -t --config-file /home/alice/evil.conf")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="-tdiXRr=/_abcefghilnoprstuvx ", max_size=12), max_size=4))
def test_property_argv_is_always_built_from_policy(arguments: list[str]) -> None:
    words = [word for word in arguments if word.strip(" ")]
    command = " ".join(["svnserve", *[f"'{word}'" for word in words]])
    decision = run(command)
    if isinstance(decision, Allow):
        assert decision.argv == (SVNSERVE, "-t", "--root", "/srv/svn")


def test_config_keys_are_validated_and_merged() -> None:
    config = normalise(
        {
            "defaults": {"svn_root": "/srv/svn-all"},
            "group": {"devs": {"svn_root": "/srv/svn", "svn_tunnel_user": True}},
        }
    )
    member = effective_policy(config, "bob", ("devs",))
    assert member.svn_root == "/srv/svn"
    assert member.svn_tunnel_user is True
    other = effective_policy(config, "carol", ())
    assert other.svn_root == "/srv/svn-all"
    assert other.svn_tunnel_user is False
    for bad in ("../x", "/srv/../x", "a//b", "/srv/svn/", "~/svn", "/srv/svn repos", "svn", 1):
        with pytest.raises(ConfigError):
            normalise({"defaults": {"svn_root": bad}})
    with pytest.raises(ConfigError):
        normalise({"defaults": {"svn_tunnel_user": "yes"}})


# ---- live: real svn client -> fake ssh -> decide() -> real svnserve -t ----

needs_svn = pytest.mark.skipif(
    shutil.which("svn") is None or shutil.which("svnadmin") is None, reason="subversion missing"
)


def _setup(tmp_path: Path, **settings_) -> tuple[dict[str, str], Path]:
    root = tmp_path / "svnroot"
    root.mkdir()
    subprocess.run(["svnadmin", "create", str(root / "repo")], check=True)
    conf = root / "repo" / "conf" / "svnserve.conf"
    conf.write_text("[general]\nanon-access = none\nauth-access = write\n")
    client_home = tmp_path / "client-home"
    client_home.mkdir()
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    ssh = fake_ssh.write_wrapper(str(tmp_path), REPOSITORY)
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(client_home),
        "SVN_SSH": ssh,
        "FAKE_SSH_HOME": str(server_home),
        "FAKE_SSH_LOG": str(tmp_path / "commands.log"),
        "FAKE_SSH_POLICY": json.dumps(
            {"programs": ["svnserve"], "svn_root": str(root), **settings_}
        ),
    }
    return environment, root


def _svn(environment: dict[str, str], cwd: Path, *arguments: str):
    return subprocess.run(
        ["svn", "--non-interactive", *arguments],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_svn
def test_live_checkout_commit_and_read_back(tmp_path: Path) -> None:
    environment, root = _setup(tmp_path, svn_tunnel_user=True)
    result = _svn(environment, tmp_path, "checkout", "svn+ssh://alice@host/repo", "wc")
    assert result.returncode == 0, result.stderr
    payload = bytes(range(256)) * 40
    (tmp_path / "wc" / "data.bin").write_bytes(payload)
    assert _svn(environment, tmp_path / "wc", "add", "data.bin").returncode == 0
    result = _svn(environment, tmp_path / "wc", "commit", "-m", "first")
    assert result.returncode == 0, result.stderr
    youngest = subprocess.run(
        ["svnlook", "youngest", str(root / "repo")], capture_output=True, text=True, check=True
    )
    assert youngest.stdout.strip() == "1"
    author = subprocess.run(
        ["svnlook", "author", str(root / "repo")], capture_output=True, text=True, check=True
    )
    assert author.stdout.strip() == "alice"  # --tunnel-user from the policy
    stored = subprocess.run(
        ["svnlook", "cat", str(root / "repo"), "data.bin"], capture_output=True, check=True
    )
    assert stored.stdout == payload
    recorded = set((tmp_path / "commands.log").read_text().splitlines())
    assert recorded == {"svnserve -t"}


@needs_svn
def test_live_read_only_account_cannot_commit(tmp_path: Path) -> None:
    environment, root = _setup(tmp_path, access="read-only")
    assert _svn(environment, tmp_path, "checkout", "svn+ssh://h/repo", "wc").returncode == 0
    (tmp_path / "wc" / "f").write_text("x")
    _svn(environment, tmp_path / "wc", "add", "f")
    result = _svn(environment, tmp_path / "wc", "commit", "-m", "nope")
    assert result.returncode != 0
    youngest = subprocess.run(
        ["svnlook", "youngest", str(root / "repo")], capture_output=True, text=True, check=True
    )
    assert youngest.stdout.strip() == "0"


@needs_svn
def test_live_root_confines_repository_paths(tmp_path: Path) -> None:
    environment, _ = _setup(tmp_path)
    outside = tmp_path / "outside"
    subprocess.run(["svnadmin", "create", str(outside)], check=True)
    for url in ("svn+ssh://h/../outside", f"svn+ssh://h/{outside}", "svn+ssh://h/%2e%2e/outside"):
        result = _svn(environment, tmp_path, "ls", url)
        assert result.returncode != 0, url
