"""The child's environment is built from scratch (docs/design.md R12)."""

from __future__ import annotations

import pytest

from scponly_py import request as requests
from setup_chroot import launcher
from tests.support import make_request


def build(*pairs: tuple[str, str], home: str = "/home/alice") -> dict[str, str]:
    return dict(requests.child_environment(make_request("x", environment=pairs), home))


def test_minimal_environment() -> None:
    assert build() == {
        "HOME": "/home/alice",
        "LOGNAME": "alice",
        "PATH": "/usr/bin:/bin",
        "USER": "alice",
    }


def test_home_is_what_the_caller_says() -> None:
    assert build(home="/")["HOME"] == "/"


def test_identity_comes_from_the_request_not_the_client() -> None:
    env = build(("USER", "root"), ("LOGNAME", "root"), ("HOME", "/root"))
    assert env["USER"] == env["LOGNAME"] == "alice"
    assert env["HOME"] == "/home/alice"


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "BASH_ENV",
        "ENV",
        "IFS",
        "TMPDIR",
        "TEMP",
        "TMP",
        "PATH",
        "SHELLOPTS",
        "PS4",
        "BASH_FUNC_x%%",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RSYNC_RSH",
        "RSYNC_CONNECT_PROG",
        "POPT_CONFIG",
        "SSH_AUTH_SOCK",
        "SSH_ORIGINAL_COMMAND",
        "LC_FOO",
        "lang",
    ],
)
def test_dangerous_or_unknown_variables_never_pass(name: str) -> None:
    env = build((name, "C"))
    assert name not in env or env[name] != "C"
    assert set(env) == {"HOME", "LOGNAME", "PATH", "USER"}


@pytest.mark.parametrize("name", sorted(requests.LOCALE_NAMES))
def test_sane_locales_pass(name: str) -> None:
    assert build((name, "en_US.UTF-8"))[name] == "en_US.UTF-8"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/home/alice/locale",
        "../../../home/alice/x",
        "en_US..UTF-8",
        "C UTF-8",
        "C;id",
        "en_US.UTF-8\n",
        "caf\u00e9",
        "x" * (requests.MAX_LOCALE_LENGTH + 1),
        "\uff23",
    ],
)
def test_insane_locales_are_dropped(value: str) -> None:
    assert "LANG" not in build(("LANG", value))
    assert "LC_ALL" not in build(("LC_ALL", value))


def test_locale_at_length_limit_passes() -> None:
    value = "C" * requests.MAX_LOCALE_LENGTH
    assert build(("LANG", value))["LANG"] == value


@pytest.mark.parametrize(
    "value",
    [
        "192.0.2.1 50000 192.0.2.2 22",
        "fe80::1%2 1 fe80::2 22",
        "fe80::1%eth0 1 fe80::2%eth0 22",
        "2001:db8::1 1 2001:db8::2 22",
    ],
)
def test_sane_connection_variables_pass(value: str) -> None:
    address, port, _, server_port = value.split(" ")
    client = f"{address} {port} {server_port}"
    env = build(("SSH_CONNECTION", value), ("SSH_CLIENT", client))
    assert env["SSH_CONNECTION"] == value
    assert env["SSH_CLIENT"] == client


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1.2.3.4 1 $(id) 22",
        "host.example 1 2 3",
        "1\n2",
        "1" * 161,
        "1.2.3.4 1 5.6.7.8",
        "1.2.3.4 x 5.6.7.8 22",
        "fe80::1%eth0/x 1 fe80::2 22",
    ],
)
def test_insane_connection_variables_are_dropped(value: str) -> None:
    assert "SSH_CONNECTION" not in build(("SSH_CONNECTION", value))


def test_environment_is_sorted_and_unique() -> None:
    pairs = requests.child_environment(
        make_request("x", environment=(("LANG", "C"), ("LC_ALL", "C"))), "/h"
    )
    names = [name for name, _ in pairs]
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_the_request_and_the_front_pass_exactly_this_allowlist() -> None:
    """One allowlist: the request keeps (and the front passes) these names, no others."""
    environment = {name.encode(): b"C" for name in (*requests.PASSED_VARIABLES, "LC_FOO", "X")}
    assert {name for name, _ in requests.passed_environment(environment)} == set(
        requests.PASSED_VARIABLES
    )
    names = [flag for flag in launcher.front_defines("/x") if flag.startswith("-DPASSED_NAMES=")]
    compiled = names[0].removeprefix("-DPASSED_NAMES=").replace('"', "").split(",")
    assert compiled == [*requests.PASSED_VARIABLES, "SSH_ORIGINAL_COMMAND"]
