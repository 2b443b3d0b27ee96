"""sftp-server (docs/design.md R2, R11): argv from the policy; the client can only narrow it.

OpenSSH 9.2 sftp-server getopt string `d:f:l:P:p:Q:u:cehR`.
"""

from __future__ import annotations

import pytest

from scponly_py.decide import decide
from scponly_py.outcome import Allow
from scponly_py.programs import PROGRAMS, sftp
from tests.support import allowed_argv, decision_for, make_policy, make_request, refusal

SFTP = "/usr/lib/openssh/sftp-server"
WRITE_ONLY_DENY = ["-P", "copy-data,opendir,read,readdir,readlink"]


def argv(
    command: str = SFTP, request: dict[str, object] | None = None, **policy: object
) -> list[str]:
    return allowed_argv(command, "sftp", request, **policy)


@pytest.mark.parametrize("name", sorted(PROGRAMS["sftp"]["words"]))
def test_every_known_sftp_server_name_runs_the_configured_path(name: str) -> None:
    policy = make_policy(paths={"sftp": "/usr/libexec/openssh/sftp-server"})
    decision = decide(make_request(name), policy)
    assert isinstance(decision, Allow)
    assert decision.argv == ("/usr/libexec/openssh/sftp-server", "-u", "0022")


def test_configured_path_itself_is_accepted() -> None:
    policy = make_policy(paths={"sftp": "/opt/ssh/sftp-server"})
    decision = decide(make_request("/opt/ssh/sftp-server"), policy)
    assert isinstance(decision, Allow)
    assert decision.path == "/opt/ssh/sftp-server"


def test_internal_sftp_is_not_a_program() -> None:
    assert "is not allowed" in refusal("internal-sftp")


# --- argv from policy -------------------------------------------------------------------------


def test_read_write_default() -> None:
    assert argv() == ["-u", "0022"]


def test_umask_from_policy() -> None:
    assert argv(umask=0o077) == ["-u", "0077"]
    assert argv(umask=0o002) == ["-u", "0002"]


def test_read_only_adds_R() -> None:
    assert argv(access="read-only") == ["-R", "-u", "0022"]


def test_write_only_denies_reading_and_listing() -> None:
    assert argv(access="write-only") == [*WRITE_ONLY_DENY, "-u", "0022"]


def test_links_false_denies_link_creation() -> None:
    assert argv(links=False) == ["-P", "hardlink,symlink", "-u", "0022"]


def test_write_only_without_links_merges_both_deny_lists() -> None:
    assert argv(access="write-only", links=False) == [
        "-P",
        "copy-data,hardlink,opendir,read,readdir,readlink,symlink",
        "-u",
        "0022",
    ]


def test_start_dir_is_below_home() -> None:
    assert argv(start_dir="upload") == ["-u", "0022", "-d", "/home/alice/upload"]
    assert argv(request={"home": "/"}, start_dir="in/box") == ["-u", "0022", "-d", "/in/box"]


def test_percent_in_home_is_doubled_for_sftp_server_expansion() -> None:
    # sftp-server %-expands -d (%d = home, %u = user); a literal % must survive.
    home = {"home": "/home/50%u"}
    assert argv(request=home, start_dir="x") == ["-u", "0022", "-d", "/home/50%%u/x"]


def test_start_dir_sets_the_working_directory_too() -> None:
    decision = decision_for(SFTP, start_dir="upload")
    assert isinstance(decision, Allow)
    assert decision.cwd == "/home/alice/upload"


# --- what the client (or the Subsystem line) may add ----------------------------------------


def test_client_directory_and_umask_are_replaced_by_policy() -> None:
    assert argv(f"{SFTP} -d /etc -u 000") == ["-u", "0022"]
    assert argv(f"{SFTP} -d /etc", start_dir="in") == ["-u", "0022", "-d", "/home/alice/in"]
    assert argv(f"{SFTP} -u0") == ["-u", "0022"]


def test_client_can_ask_for_read_only() -> None:
    assert argv(f"{SFTP} -R") == ["-R", "-u", "0022"]


def test_logging_options_are_kept_and_normalised() -> None:
    assert argv(f"{SFTP} -e -l verbose -f authpriv") == [
        "-l",
        "VERBOSE",
        "-f",
        "AUTHPRIV",
        "-e",
        "-u",
        "0022",
    ]
    assert argv(f"{SFTP} -lDEBUG3") == ["-l", "DEBUG3", "-u", "0022"]


@pytest.mark.parametrize(
    "value",
    ["TRACE", "", "debug4", "\u0131nfo", "\u017fome", "INFO ", "local8", "LOCAL\uff11"],
)
def test_log_values_outside_the_table_are_refused(value: str) -> None:
    # U+0131 dotless i upper-cases to "I" and U+017F long s to "S": non-ASCII never folds.
    reason = refusal(f"{SFTP} -l '{value}'")
    assert "log level" in reason
    assert "log facility" in refusal(f"{SFTP} -f '{value}'")


def test_client_deny_list_is_merged_with_the_policy_deny_list() -> None:
    assert argv(f"{SFTP} -P remove,rename", access="write-only") == [
        "-P",
        "copy-data,opendir,read,readdir,readlink,remove,rename",
        "-u",
        "0022",
    ]


def test_client_allow_list_is_kept_alongside_the_deny_list() -> None:
    # sftp-server applies both: a request must be allowed AND not denied.
    assert argv(f"{SFTP} -p open,read,close", access="write-only") == [
        *WRITE_ONLY_DENY,
        "-p",
        "open,read,close",
        "-u",
        "0022",
    ]


@pytest.mark.parametrize(
    "value",
    ["!read", "*", "read,!opendir", "re*", "", "read,", ",read", "READ", "read write", "nosuch"],
)
def test_request_lists_take_plain_known_names_only(value: str) -> None:
    # `!name` and wildcards would let the client cancel our deny list through match_list.
    for letter in "pP":
        assert "request list" in refusal(f"{SFTP} -{letter} '{value}'")


def test_a_second_deny_or_allow_list_is_refused() -> None:
    assert "given twice" in refusal(f"{SFTP} -P read -P write")
    assert "given twice" in refusal(f"{SFTP} -p read -p write")


@pytest.mark.parametrize("letter", sorted(sftp.REFUSED))
def test_options_that_do_not_start_a_session_are_refused(letter: str) -> None:
    reason = refusal(f"{SFTP} -{letter}")
    assert f"option -{letter} is not allowed" in reason
    # -c hidden in a cluster: it would make sftp-server ignore -R/-P that follow.
    assert f"option -{letter} is not allowed" in refusal(f"{SFTP} -e{letter} -R")


@pytest.mark.parametrize("letter", list("abgijkmnoqrstvwxyzABCDEFGHIJKLMNOSTUVWXYZ0123456789"))
def test_unknown_letters_are_refused(letter: str) -> None:
    if letter in sftp.ALLOWED or letter in sftp.REFUSED:
        pytest.skip("in a table")
    assert f"option -{letter} is not allowed" in refusal(f"{SFTP} -{letter}")


def test_operands_are_refused() -> None:
    assert refusal(f"{SFTP} /etc") == "sftp-server takes no operands"
    assert refusal(f"{SFTP} -- -c") == "sftp-server takes no operands"
    assert refusal(f"{SFTP} -e x") == "sftp-server takes no operands"


@pytest.mark.parametrize("umask", ["8", "0o22", "00000", "\uff10\uff12\uff12", "-22", ""])
def test_client_umask_must_parse_even_though_it_is_replaced(umask: str) -> None:
    assert "umask" in refusal(f"{SFTP} -u '{umask}'")


def test_value_options_need_values() -> None:
    for letter in "dfluPp":
        assert "needs a value" in refusal(f"{SFTP} -{letter}")
    assert "needs a directory" in refusal(f"{SFTP} -d ''")


@pytest.mark.parametrize("access", ["read-only", "write-only"])
def test_client_cannot_widen_access(access: str) -> None:
    # Whatever the client adds, the policy's restriction is in the argv.
    for extra in ("", "-R", "-P remove", "-p read,write,open", "-d /", "-u 0", "-e -l DEBUG3"):
        result = argv(f"{SFTP} {extra}".strip(), access=access)
        if access == "read-only":
            assert "-R" in result
        else:
            denied = result[result.index("-P") + 1].split(",")
            assert set(sftp.WRITE_ONLY_DENIED) <= set(denied)


def test_request_names_are_exactly_openssh_9_2s() -> None:
    assert len(sftp.REQUEST_NAMES) == 29
    assert {"symlink", "hardlink", "read", "opendir", "readdir", "copy-data"} <= sftp.REQUEST_NAMES
