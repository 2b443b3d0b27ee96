"""The attack corpus (tests/attacks/*.toml) sent as real `ssh host CMD` through a real sshd.

Every entry must come back refused by the login shell (exit status 1, its
one-line stderr reason, a syslog refuse line) and the marker file an attack
would create must never appear. One user per named policy; each user's
sessions share one ControlMaster connection, so the login shell still runs
once per attack.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scponly_py import shell
from tests.attacks import corpus
from tests.e2e.sandbox import Sandbox


def user_for(policy_name: str) -> str:
    return f"atk-{policy_name}"


def config_for_all_policies() -> str:
    """One [user.atk-NAME] section per named policy, holding that policy's [defaults]."""
    sections = []
    for name, raw in corpus.POLICIES.items():
        body = corpus.config_toml(name).replace("[defaults]", f'[user."{user_for(name)}"]')
        if raw.get("defaults") is None:
            body = f'[user."{user_for(name)}"]\n'
        sections.append(body)
    return "\n".join(sections)


@pytest.fixture(scope="module")
def sandbox(sandbox_factory) -> Sandbox:
    sandbox = sandbox_factory()
    for name in corpus.POLICIES:
        sandbox.add_user(user_for(name))
    sandbox.write_config(config_for_all_policies())
    return sandbox


def test_corpus_is_refused_through_sshd(sandbox: Sandbox) -> None:
    marker_dir = sandbox.root / "markers"
    marker_dir.mkdir()
    marker_dir.chmod(0o777)
    marker = marker_dir / "PWNED"
    attacks = [
        attack
        for attack in corpus.load(marker=str(marker))
        if attack.transmittable and attack.uid != 0
    ]
    assert len(attacks) >= 150
    control = str(sandbox.root / "ctl-%r")
    multiplex = [f"-oControlPath={control}", "-oControlMaster=auto", "-oControlPersist=300"]
    for name in corpus.POLICIES:
        sandbox.run([*sandbox.ssh_argv(user_for(name), *multiplex), "-fN"], check=True)

    mark = sandbox.log_mark()
    failures = []
    for attack in attacks:
        argv = [*sandbox.ssh_argv(user_for(attack.policy), *multiplex), attack.command]
        try:
            result = sandbox.run(argv, input=b"", timeout=30)
        except subprocess.TimeoutExpired:
            failures.append(f"{attack.id}: timed out")
            continue
        stderr = result.stderr.decode("utf-8", "replace")
        if result.returncode != 1 or not stderr.startswith("scponly-py: refused: "):
            failures.append(f"{attack.id}: exit {result.returncode}, stderr {stderr[:160]!r}")
        elif result.stdout and not (  # only a refused scp request answers in scp's protocol
            shell.is_scp_server_request(attack.command, None)
            and result.stdout == b"\x01" + result.stderr
        ):
            failures.append(f"{attack.id}: wrote {result.stdout[:80]!r} to stdout")
        elif attack.expect != "refuse" and attack.expect.isascii() and attack.expect not in stderr:
            failures.append(f"{attack.id}: expected {attack.expect!r} in {stderr[:160]!r}")
        if marker.exists():
            failures.append(f"{attack.id}: THE MARKER APPEARED")
            marker.unlink()
    assert not failures, "\n".join(failures[:30])
    refused = [
        line
        for line in sandbox.log_since(mark)
        if "scponly-py[" in line and "decision=refuse" in line
    ]
    assert len(refused) >= len(attacks)
    allowed = [line for line in sandbox.log_since(mark) if "]: decision=allow " in line]
    assert not allowed, allowed[:5]
    assert not Path(marker).exists()
