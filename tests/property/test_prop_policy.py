"""Properties of the config: the documented merge order against a reference model, strictness.

policy.py documents: built-in defaults < [defaults] < each matching [group.NAME]
in the order the sections appear in the file < [user.NAME], key by key.
"""

from __future__ import annotations

import marshal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scponly_py.policy import (
    ACCESS_MODES,
    BUILTIN_DEFAULTS,
    PROGRAMS,
    SETTING_CHECKS,
    ConfigError,
    effective_policy,
    normalise,
)

GROUPS = ["staff", "drop", "ro", "web", "g5"]
USERS = ["alice", "bob", "carol"]

settings_values = {
    "programs": st.lists(st.sampled_from(PROGRAMS), min_size=1, max_size=4, unique=True),
    "access": st.sampled_from(ACCESS_MODES),
    "links": st.booleans(),
    "umask": st.sampled_from(["0022", "0077", "027", "0002", "0777", "000"]),
    "start_dir": st.sampled_from(["", "in", "drop/box", "a.b_c-d"]),
    "log_level": st.sampled_from(["info", "debug"]),
}
section = st.fixed_dictionaries({}, optional=settings_values)
config_strategy = st.fixed_dictionaries(
    {},
    optional={
        "defaults": section,
        "group": st.dictionaries(st.sampled_from(GROUPS), section, max_size=5),
        "user": st.dictionaries(st.sampled_from(USERS), section, max_size=3),
    },
)


def reference(raw: dict, user: str, groups: list[str]) -> dict[str, object]:
    """The documented merge, written as plainly as possible."""
    merged = {key: BUILTIN_DEFAULTS[key] for key in settings_values}
    merged.update(raw.get("defaults", {}))
    for name, table in raw.get("group", {}).items():  # file order
        if name in groups:
            merged.update(table)
    merged.update(raw.get("user", {}).get(user, {}))
    merged["programs"] = frozenset(merged["programs"])  # type: ignore[arg-type]
    merged["umask"] = (
        int(merged["umask"], 8) if isinstance(merged["umask"], str) else merged["umask"]
    )
    return merged


@given(
    config_strategy,
    st.sampled_from([*USERS, "dave"]),
    st.lists(st.sampled_from([*GROUPS, "other"]), unique=True, max_size=4),
    st.randoms(),
)
@settings(max_examples=300, deadline=None)
def test_merge_matches_the_documented_order(raw, user, groups, rng) -> None:
    config = normalise(raw)
    expected = reference(raw, user, groups)
    shuffled = list(groups)
    rng.shuffle(shuffled)  # the order of the user's groups does not matter
    for order in (groups, shuffled):
        policy = effective_policy(config, user, tuple(order))
        for key, value in expected.items():
            assert getattr(policy, key) == value, key


@given(config_strategy, st.sampled_from(USERS), st.lists(st.sampled_from(GROUPS), max_size=3))
@settings(max_examples=150, deadline=None)
def test_compiled_form_gives_the_same_policies(raw, user, groups) -> None:
    config = normalise(raw)
    restored = marshal.loads(marshal.dumps(config))  # noqa: S302 - our own bytes
    assert effective_policy(restored, user, tuple(groups)) == effective_policy(
        config, user, tuple(groups)
    )


@given(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
    st.sampled_from(["defaults", "group", "user"]),
)
def test_any_unknown_key_is_an_error(key: str, where: str) -> None:
    if key in SETTING_CHECKS:
        return
    table = {key: "read-only"}
    raw = {"defaults": table} if where == "defaults" else {where: {"x": table}}
    with pytest.raises(ConfigError, match="unknown key"):
        normalise(raw)


@given(st.text(max_size=8))
def test_umask_accepts_only_ascii_octal_up_to_0777(value: str) -> None:
    valid = (
        3 <= len(value) <= 4
        and all(char in "01234567" for char in value)
        and (len(value) == 3 or value[0] == "0")
    )
    try:
        config = normalise({"defaults": {"umask": value}})
    except ConfigError:
        assert not valid
    else:
        assert valid
        assert config["defaults"]["umask"] == int(value, 8) <= 0o777  # type: ignore[index]


@given(st.text(max_size=20))
def test_access_accepts_only_the_three_modes(value: str) -> None:
    try:
        normalise({"defaults": {"access": value}})
    except ConfigError:
        assert value not in ACCESS_MODES
    else:
        assert value in ACCESS_MODES
