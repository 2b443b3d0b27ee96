"""Config validation and the per-user merge (docs/design.md "The pipeline of a login")."""

from __future__ import annotations

import marshal

import pytest

from scponly_py.policy import (
    BUILTIN_DEFAULTS,
    BUILTIN_PATHS,
    ConfigError,
    Policy,
    default_config,
    effective_policy,
    normalise,
)


def invalid(raw: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        normalise(raw)
    return str(caught.value)


def policy_for(raw: dict[str, object], user: str = "alice", groups: tuple[str, ...] = ()) -> Policy:
    return effective_policy(normalise(raw), user, groups)


# --- defaults ---------------------------------------------------------------------------------


def test_missing_config_means_sftp_and_scp_read_write() -> None:
    policy = effective_policy(default_config(), "anyone", ())
    assert policy.programs == frozenset({"sftp", "scp"})
    assert policy.access == "read-write"
    assert policy.links is True
    assert policy.umask == 0o022
    assert policy.start_dir == ""
    assert dict(policy.paths) == BUILTIN_PATHS


def test_builtin_paths_are_absolute() -> None:
    assert all(path.startswith("/") for path in BUILTIN_PATHS.values())


# --- unknown keys are errors (a typo must not widen access) --------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"default": {}}, "unknown section [default]"),
        ({"users": {}}, "unknown section [users]"),
        ({"defaults": {"program": ["sftp"]}}, "unknown key 'program'"),
        ({"defaults": {"acess": "read-only"}}, "unknown key 'acess'"),
        ({"defaults": {"Access": "read-only"}}, "unknown key 'Access'"),
        ({"user": {"bob": {"acces": "read-only"}}}, "[user.bob]: unknown key 'acces'"),
        ({"group": {"g": {"readonly": True}}}, "[group.g]: unknown key 'readonly'"),
        ({"paths": {"ssh": "/usr/bin/ssh"}}, "[paths]: unknown program 'ssh'"),
        ({"paths": {"bash": "/bin/bash"}}, "[paths]: unknown program 'bash'"),
        ({"defaults": {"programs": ["sftp", "ssh"]}}, "unknown program 'ssh'"),
        ({"defaults": {"programs": ["SFTP"]}}, "unknown program 'SFTP'"),
    ],
)
def test_unknown_names_are_errors(raw: dict[str, object], message: str) -> None:
    assert message in invalid(raw)


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("programs", "sftp"),
        ("programs", [1]),
        ("programs", None),
        ("access", "readonly"),
        ("access", "READ-ONLY"),
        ("access", True),
        ("links", "false"),
        ("links", 0),
        ("umask", 18),
        ("umask", "22"),
        ("umask", "00022"),
        ("umask", "0028"),
        ("umask", "0o22"),
        ("umask", "\uff10\uff10\uff12\uff12"),  # full-width digits: int(x, 8) would accept them
        ("umask", "0_22"),  # int("0_22", 8) == 18
        ("umask", " 022"),
        # sftp-server refuses `-u` above 0777 (found while testing: accepted before).
        ("umask", "1777"),
        ("umask", "7022"),
        ("start_dir", "/etc"),
        ("start_dir", "../x"),
        ("start_dir", "a/../b"),
        ("start_dir", "a//b"),
        ("start_dir", "a/"),
        ("start_dir", "."),
        ("start_dir", "~/x"),
        ("start_dir", "a b"),
        ("start_dir", "in%u"),
        ("start_dir", "caf\u00e9"),
        ("start_dir", "x" * 256),
        ("start_dir", 5),
        ("log_level", "warning"),
    ],
)
def test_invalid_values_are_errors(key: str, value: object) -> None:
    message = invalid({"defaults": {key: value}})
    assert f"[defaults] {key}" in message


@pytest.mark.parametrize(
    "path",
    [
        "usr/bin/scp",
        "/usr/bin/../bin/scp",
        "/usr/bin/./scp",
        "//usr/bin/scp",
        "/usr//bin/scp",
        "/usr/bin/",
        "/usr/bin/scp ",
        "/usr/bin/sc p",
        "/usr/bin/scp;id",
        "/usr/bin/$x",
        "/usr/bin/sc\u00e9p",
        "",
        "/" + "x" * 1024,
        5,
    ],
)
def test_paths_must_be_normalised_absolute_plain(path: object) -> None:
    assert "[paths] scp" in invalid({"paths": {"scp": path}})


def test_valid_values_are_normalised() -> None:
    config = normalise(
        {
            "defaults": {
                "programs": ["scp", "sftp", "scp"],
                "access": "write-only",
                "links": False,
                "umask": "0077",
                "start_dir": "in/box",
                "log_level": "debug",
            },
            "paths": {"sftp": "/usr/libexec/openssh/sftp-server"},
        }
    )
    defaults = config["defaults"]
    assert (
        defaults
        | {  # type: ignore[operator]
            "programs": ("scp", "sftp"),
            "access": "write-only",
            "links": False,
            "umask": 0o077,
            "start_dir": "in/box",
            "log_level": "debug",
        }
        == defaults
    )
    assert config["paths"]["sftp"] == "/usr/libexec/openssh/sftp-server"  # type: ignore[index]
    assert config["paths"]["scp"] == BUILTIN_PATHS["scp"]  # type: ignore[index]


def test_umask_range() -> None:
    assert policy_for({"defaults": {"umask": "077"}}).umask == 0o077
    assert policy_for({"defaults": {"umask": "0777"}}).umask == 0o777
    assert policy_for({"defaults": {"umask": "000"}}).umask == 0


@pytest.mark.parametrize("name", ["", "a b", "a/b", "ali\u00e7e", "x" * 65, "a;b", "é"])
def test_section_names_are_plain(name: str) -> None:
    assert "invalid user name" in invalid({"user": {name: {}}})
    assert "invalid group name" in invalid({"group": {name: {}}})


def test_sections_must_be_tables() -> None:
    assert "[defaults] must be a table" in invalid({"defaults": ["x"]})
    assert "[paths] must be a table" in invalid({"paths": "x"})
    assert "[user] must contain" in invalid({"user": "x"})
    assert "[user.bob] must be a table" in invalid({"user": {"bob": "x"}})


def test_normalised_config_survives_marshal() -> None:
    # The compiled cache stores exactly this; it must come back equal.
    config = normalise(
        {
            "defaults": {"programs": ["sftp"]},
            "group": {"a": {"access": "read-only"}, "b": {"links": False}},
            "user": {"alice": {"umask": "0077"}},
        }
    )
    assert marshal.loads(marshal.dumps(config)) == config  # noqa: S302 - our own bytes


# --- merge order: built-in < [defaults] < groups in file order < [user.NAME] ---------------------


MERGE = {
    "defaults": {"access": "read-only", "umask": "0027"},
    "group": {
        "first": {"access": "write-only", "links": False},
        "second": {"access": "read-write"},
        "third": {"start_dir": "drop"},
    },
    "user": {"alice": {"programs": ["sftp"]}, "carol": {"access": "read-only", "links": True}},
}


def test_defaults_override_builtin() -> None:
    policy = policy_for(MERGE, user="nobody")
    assert policy.access == "read-only"
    assert policy.umask == 0o027
    assert policy.links is BUILTIN_DEFAULTS["links"]


def test_a_group_applies_only_to_members() -> None:
    assert policy_for(MERGE, groups=("first",)).access == "write-only"
    assert policy_for(MERGE, groups=("other",)).access == "read-only"


def test_later_group_sections_win_in_file_order_not_membership_order() -> None:
    # "second" comes after "first" in the file, so it wins whatever order the user's groups have.
    for groups in (("first", "second"), ("second", "first")):
        policy = policy_for(MERGE, user="bob", groups=groups)
        assert policy.access == "read-write"
        assert policy.links is False  # from "first", not overridden by "second"


def test_file_order_is_what_decides_when_sections_are_swapped() -> None:
    swapped = dict(MERGE)
    swapped["group"] = {"second": {"access": "read-write"}, "first": {"access": "write-only"}}
    assert policy_for(swapped, groups=("first", "second")).access == "write-only"


def test_merge_is_key_by_key() -> None:
    policy = policy_for(MERGE, user="bob", groups=("first", "third"))
    assert policy.access == "write-only"
    assert policy.links is False
    assert policy.start_dir == "drop"
    assert policy.umask == 0o027


def test_user_section_wins_over_groups() -> None:
    policy = policy_for(MERGE, user="carol", groups=("first", "second"))
    assert policy.access == "read-only"
    assert policy.links is True
    policy = policy_for(MERGE, user="alice", groups=("first",))
    assert policy.programs == frozenset({"sftp"})
    assert policy.access == "write-only"


def test_user_section_is_for_that_user_only() -> None:
    assert policy_for(MERGE, user="alice").programs == frozenset({"sftp"})
    assert policy_for(MERGE, user="alicex").programs == frozenset({"scp", "sftp"})
    assert policy_for(MERGE, user="Alice").programs == frozenset({"scp", "sftp"})


def test_group_named_like_a_user_is_not_the_user() -> None:
    raw = {"group": {"alice": {"access": "read-only"}}}
    assert policy_for(raw, user="alice", groups=()).access == "read-write"
    assert policy_for(raw, user="bob", groups=("alice",)).access == "read-only"


def test_merge_does_not_mutate_the_config() -> None:
    config = normalise(MERGE)
    snapshot = marshal.dumps(config)
    effective_policy(config, "carol", ("first", "second", "third"))
    assert marshal.dumps(config) == snapshot


def test_paths_are_global_not_per_user() -> None:
    raw = {"paths": {"scp": "/opt/scp"}, "user": {"alice": {}}}
    assert policy_for(raw).path("scp") == "/opt/scp"
    assert "unknown key 'paths'" in invalid({"user": {"alice": {"paths": {"scp": "/tmp/scp"}}}})


def test_policy_path_lookup() -> None:
    policy = policy_for({})
    assert policy.path("sftp") == BUILTIN_PATHS["sftp"]
    with pytest.raises(KeyError):
        policy.path("winscp")


def test_policy_is_immutable() -> None:
    policy = policy_for({})
    with pytest.raises(AttributeError):
        policy.access = "read-write"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del policy.access
