"""Every entry of the attack corpus (tests/attacks/*.toml) is refused by decide() under its policy.

The same corpus runs through a real sshd in tests/e2e (with a marker file that
must never appear); here it runs against the pure decision, in milliseconds.
"""

from __future__ import annotations

import collections

import pytest

from scponly_py import programs
from scponly_py.decide import decide
from scponly_py.outcome import Refuse
from tests import oracles
from tests.attacks.corpus import POLICIES, load, policy
from tests.support import make_request

ATTACKS = load()


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.id for attack in ATTACKS])
def test_attack_is_refused(attack) -> None:
    request = make_request(attack.command, uid=attack.uid)
    effective = policy(attack.policy)
    decision = decide(request, effective)
    oracles.check(attack.command, request, effective, decision)
    assert isinstance(decision, Refuse), f"{attack.id} ({attack.source}) was allowed: {decision}"
    if attack.expect != "refuse":
        assert attack.expect in decision.reason, (attack.id, decision.reason)


def test_corpus_is_big_enough_and_well_sourced() -> None:
    assert len(ATTACKS) >= 150
    for attack in ATTACKS:
        assert attack.source.strip(), attack.id
        assert attack.program in {*programs.PROGRAMS, "winscp", "shell"}


def test_corpus_covers_every_program_and_policy() -> None:
    per_program = collections.Counter(attack.program for attack in ATTACKS)
    assert all(per_program[name] >= 5 for name in ("scp", "sftp", "rsync", "shell"))
    used = {attack.policy for attack in ATTACKS}
    assert {"all", "read-only", "write-only", "no-links"} <= used
    assert used <= set(POLICIES)


def test_markers_are_substituted() -> None:
    attacks = load(marker="/tmp/pwned-by-test")
    assert not any("@MARKER@" in attack.command for attack in attacks)
    assert any("/tmp/pwned-by-test" in attack.command for attack in attacks)


def test_transmittable_excludes_nul_and_huge_commands() -> None:
    by_id = {attack.id: attack for attack in ATTACKS}
    assert not by_id["unicode-nul-truncation"].transmittable
    assert by_id["scp-S-program"].transmittable


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_config_toml_gives_the_same_policy(name: str) -> None:
    # The end-to-end runner writes config_toml(name) as the real config file.
    from scponly_py.policy import effective_policy, parse_toml  # noqa: PLC0415
    from tests.attacks.corpus import config_toml  # noqa: PLC0415

    parsed = parse_toml(config_toml(name).encode(), name)
    assert effective_policy(parsed, "alice", ()) == policy(name)
