"""scp in server mode (docs/design.md R2 and R11): exactly one of -t/-f, BSD getopt, allowlist.

Every client form below is what a real client sends (OpenSSH `scp -O`, libssh2
through curl, PuTTY's pscp, WinSCP, paramiko's scp module); the refusals are
the attacks that made scponly and rssh fall (-S, -o, -F, clusters that hide
them, option permutation).
"""

from __future__ import annotations

from functools import partial

import pytest

from scponly_py import shell
from scponly_py.decide import decide
from scponly_py.outcome import Allow, Refusal, Refuse
from scponly_py.programs import scp
from scponly_py.words import decimal
from tests.support import allowed_argv, make_policy, make_request, refusal

argv = partial(allowed_argv, program="scp")


# (command as sent, argv exec'd after the path)
CLIENTS = [
    # OpenSSH scp -O (legacy protocol): unquoted path, flags as separate words.
    ("scp -t /incoming", ["-t", "--", "/incoming"]),
    ("scp -f /outgoing/file", ["-f", "--", "/outgoing/file"]),
    ("scp -v -t /incoming", ["-v", "-t", "--", "/incoming"]),
    ("scp -r -t /incoming", ["-r", "-t", "--", "/incoming"]),
    ("scp -p -t /incoming", ["-p", "-t", "--", "/incoming"]),
    ("scp -d -t /incoming", ["-d", "-t", "--", "/incoming"]),
    ("scp -r -p -d -t /incoming", ["-r", "-p", "-d", "-t", "--", "/incoming"]),
    ("scp -v -r -p -f dir", ["-v", "-r", "-p", "-f", "--", "dir"]),
    ("scp -f -- -odd-name", ["-f", "--", "-odd-name"]),
    ("scp -t -- /in", ["-t", "--", "/in"]),
    # Clusters (WinSCP, older clients, paramiko's scp module).
    ("scp -pt /in", ["-p", "-t", "--", "/in"]),
    ("scp -pf /out", ["-p", "-f", "--", "/out"]),
    ("scp -qt /in", ["-q", "-t", "--", "/in"]),
    ("scp -tr /in", ["-r", "-t", "--", "/in"]),
    ("scp -vt /in", ["-v", "-t", "--", "/in"]),
    ("scp -rpf a b c", ["-r", "-p", "-f", "--", "a", "b", "c"]),
    ("scp -prdt dir", ["-r", "-p", "-d", "-t", "--", "dir"]),
    # libssh2 (curl) quotes paths.
    ("scp -t 'x'", ["-t", "--", "x"]),
    ("scp -pf 'x'", ["-p", "-f", "--", "x"]),
    ("scp -t 'it'\"'\"'s'", ["-t", "--", "it's"]),
    ("scp -f 'my file'", ["-f", "--", "my file"]),
    # Bandwidth limit (libssh2-based clients): separate or attached, last one wins.
    ("scp -l 1000 -t x", ["-l", "1000", "-t", "--", "x"]),
    ("scp -l1000 -t x", ["-l", "1000", "-t", "--", "x"]),
    ("scp -vl100 -t x", ["-v", "-l", "100", "-t", "--", "x"]),
    ("scp -l 5 -l 7 -f x", ["-l", "7", "-f", "--", "x"]),
    ("scp -l 0008 -f x", ["-l", "8", "-f", "--", "x"]),
    # Distribution paths of scp itself map to the configured one.
    ("/usr/bin/scp -t x", ["-t", "--", "x"]),
    ("/usr/local/bin/scp -f x", ["-f", "--", "x"]),
    ("/bin/scp -t x", ["-t", "--", "x"]),
    # Repeated direction letters are one direction.
    ("scp -t -t x", ["-t", "--", "x"]),
    # Non-UTF-8 names are carried through unchanged.
    (
        "scp -t " + b"\xff\xfe".decode("utf-8", "surrogateescape"),
        ["-t", "--", b"\xff\xfe".decode("utf-8", "surrogateescape")],
    ),
    ("scp -f dir/Ünïcødé", ["-f", "--", "dir/Ünïcødé"]),
]


@pytest.mark.parametrize(("command", "expected"), CLIENTS)
def test_real_client_commands(command: str, expected: list[str]) -> None:
    assert argv(command) == expected


def test_operands_always_follow_a_double_dash() -> None:
    # Rebuilt argv: an operand that looks like an option stays an operand for any getopt.
    assert argv("scp -f -- -S") == ["-f", "--", "-S"]
    assert argv("scp -f -- -oProxyCommand=x") == ["-f", "--", "-oProxyCommand=x"]


# --- rule 8: exactly one of -t / -f ------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "scp x y",
        "scp -r x",
        "scp -v -p -d x",
        "scp -l 10 x",
        "scp",
        "scp --",
        "scp -- -t x",
        "scp -tf x",
        "scp -t -f x",
        "scp -ft x",
        "scp x -t",
    ],
)
def test_server_mode_required(command: str) -> None:
    reason = refusal(command)
    assert "exactly one of -t or -f" in reason or "needs a file name" in reason


def test_no_permutation_an_option_after_an_operand_is_an_operand() -> None:
    # BSD getopt stops at the first operand, so `-t` after `x` is not a direction.
    assert "exactly one of -t or -f" in refusal("scp x -t")
    # For -f the words after the first operand are more file names, not options.
    assert argv("scp -f x -S /tmp/evil") == ["-f", "--", "x", "-S", "/tmp/evil"]
    # For -t there must be exactly one target, so they are refused.
    assert "exactly one target" in refusal("scp -t x -S /tmp/evil")


# --- rule 2: allowlist, parsed letter by letter -------------------------------------------------


@pytest.mark.parametrize("letter", sorted(scp.REFUSED))
def test_every_refused_letter_is_refused_alone_and_hidden_in_a_cluster(letter: str) -> None:
    for command in (
        f"scp -{letter} x -t /in",
        f"scp -t -{letter} x /in",
        f"scp -v{letter} x -t /in",
        f"scp -t{letter}x /in",
        f"scp -rp{letter} -t /in",
    ):
        reason = refusal(command)
        assert f"option -{letter} is not allowed" in reason
        assert scp.REFUSED[letter] in reason


@pytest.mark.parametrize(
    "command",
    [
        "scp -vS/tmp/evil -t x",  # -S hidden after -v (scponly 4.2, CVE-2005-4533)
        "scp -tS /tmp/evil x",
        "scp -oProxyCommand=/tmp/evil -t x",  # CVE-2007-6415
        "scp -o ProxyCommand=/tmp/evil -t x",
        "scp -F /home/alice/evil.conf -t x",  # CVE-2007-6415
        "scp -oPKCS11Provider=/home/alice/evil.so -t x",  # rssh CVE-2019-1000018
        "scp -qoPKCS11Provider=/home/alice/evil.so -f x",
        "scp -J evil@host -t x",
        "scp -D /tmp/evil -t x",
        "scp -3 -t x",
        "scp -T -f x",
    ],
)
def test_program_running_options_are_refused(command: str) -> None:
    assert "is not allowed" in refusal(command)


@pytest.mark.parametrize(
    "letter",
    sorted(set("abeghjkmnuwxyzEGHIKLNQUVWYZ0789%+=:,.@_") - set(scp.ALLOWED) - set(scp.REFUSED)),
)
def test_letters_in_no_table_are_refused(letter: str) -> None:
    assert f"option -{letter} is not allowed" in refusal(f"scp -{letter} -t x")


def test_long_options_are_refused_letter_by_letter() -> None:
    # `--foo` is not `--`; getopt reads it as the letters -, f, o, o.
    assert "option --" in refusal("scp --help -t x")
    assert "option --" in refusal("scp --sftp -t x")


# --- -l: ASCII decimal only (rule 7) ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "\uff12\uff12",  # full-width 22 (U+FF12): int() accepts it
        "\u0662\u0662",  # Arabic-Indic digits
        "\u00b2",  # superscript two: str.isdigit() is True
        "+5",
        "-5",
        " 5",
        "5 ",
        "1_000",
        "0x10",
        "1e3",
        "0",
        "",
        str(100 * 1024 * 1024 + 1),
        "9" * 13,
    ],
)
def test_bandwidth_limit_must_be_an_ascii_decimal_in_range(value: str) -> None:
    from scponly_py import words  # noqa: PLC0415 - only to quote awkward values

    assert "scp bandwidth limit -l" in refusal(f"scp -l {words.quote(value)} -t x")


def test_bandwidth_limit_needs_a_value() -> None:
    assert refusal("scp -f -l") == "scp option -l needs a value"


def test_bandwidth_limit_swallows_the_next_word_like_getopt() -> None:
    # `-l -t` takes "-t" as the value (and refuses it): the word is not a direction.
    assert "scp bandwidth limit -l" in refusal("scp -l -t x")


def test_decimal_checker_bounds() -> None:
    check = decimal(1, 10, "n")
    assert check("1") == "1"
    assert check("10") == "10"
    assert check("007") == "7"
    for bad in ("0", "11", "\uff11", "1.0", "\uff110"):
        with pytest.raises(Refusal):
            check(bad)


# --- access modes ---------------------------------------------------------------------------


def test_read_only_allows_only_downloads() -> None:
    assert argv("scp -f x", access="read-only") == ["-f", "--", "x"]
    assert "read-only" in refusal("scp -t x", access="read-only")
    assert "read-only" in refusal("scp -prt x", access="read-only")


def test_write_only_allows_only_uploads() -> None:
    assert argv("scp -t x", access="write-only") == ["-t", "--", "x"]
    assert "write-only" in refusal("scp -f x", access="write-only")
    assert "write-only" in refusal("scp -rpf x", access="write-only")


# --- operands ---------------------------------------------------------------------------------


def test_upload_takes_exactly_one_target() -> None:
    assert "exactly one target" in refusal("scp -t a b")


def test_download_source_count_is_limited_not_truncated() -> None:
    names = " ".join(f"f{index}" for index in range(scp.MAX_SOURCES))
    assert len(argv(f"scp -f {names}")) == 2 + scp.MAX_SOURCES
    assert "at most" in refusal(f"scp -f {names} extra")


def test_empty_names_and_missing_names_are_refused() -> None:
    assert "must not be empty" in refusal("scp -t ''")
    assert "must not be empty" in refusal("scp -f a '' b")
    assert "needs a file name" in refusal("scp -t")
    assert "needs a file name" in refusal("scp -f --")


def test_d_is_only_valid_with_t() -> None:
    assert "-d is only valid with -t" in refusal("scp -d -f x")


def test_program_name_must_match_exactly() -> None:
    for command in (
        "./scp -t x",
        "bin/scp -t x",
        "SCP -t x",
        "scp.exe -t x",
        "/tmp/scp -t x",
        "/usr/bin/../bin/scp -t x",
        "//usr/bin/scp -t x",
        "\uff53\uff43\uff50 -t x",  # full-width "scp" (U+FF53 U+FF43 U+FF50)
        "scp\u00a0-t x",
        "'scp -t' x",
    ):
        assert "is not allowed" in refusal(command)


def test_disabled_scp_is_refused_by_name() -> None:
    decision = decide(make_request("scp -t x"), make_policy(programs=("sftp",)))
    assert isinstance(decision, Refuse)
    assert decision.program == "scp"
    assert decision.reason == "scp is not enabled for this account"


def test_configured_path_is_what_runs() -> None:
    policy = make_policy(paths={"scp": "/opt/openssh/bin/scp"})
    decision = decide(make_request("scp -t x"), policy)
    assert isinstance(decision, Allow)
    assert decision.argv[0] == decision.path == "/opt/openssh/bin/scp"
    # The configured path is also accepted as the command word.
    decision = decide(make_request("/opt/openssh/bin/scp -f x"), policy)
    assert isinstance(decision, Allow)
    assert decision.path == "/opt/openssh/bin/scp"


# --- a refused scp request is answered in scp's protocol too (libssh2 reads only that) ---------

SCP_REQUESTS = ["scp -t x", "scp -f x", "/usr/bin/scp -v -d -t d", "scp -rf a b", "scp -l 10 -t x"]
NOT_SCP_REQUESTS = ["scp x y", "scp -- -t", "sftp-server", "rsync --server -t . x", "id -f", "'scp"]


@pytest.mark.parametrize("command", SCP_REQUESTS)
def test_refusing_an_scp_request_answers_in_scps_protocol(command: str, capfd) -> None:
    policy = make_policy(access="read-only")
    request = make_request(command)
    assert shell.refuse(request, Refuse(program="scp", reason="no\nmore"), policy) == 1
    out, err = capfd.readouterr()
    assert out == "\x01scponly-py: refused: no?more\n"
    assert err == "scponly-py: refused: no?more\n"


@pytest.mark.parametrize("command", NOT_SCP_REQUESTS)
def test_nothing_else_ever_gets_stdout(command: str, capfd) -> None:
    assert shell.refuse(make_request(command), Refuse(program="-", reason="no"), make_policy()) == 1
    out, err = capfd.readouterr()
    assert out == "" and err == "scponly-py: refused: no\n"
