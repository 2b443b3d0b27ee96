"""Properties of decide() under every named policy (docs/design.md R1, R2, R4, R9, R10, R11).

- whatever the input, decide() returns Allow or Refuse and raises nothing;
- every Allow passes the oracles (tests/oracles.py): argv[0] is the configured
  absolute path, scp has exactly one of -t/-f, rsync has --server first, only
  table options, access modes hold, no control characters, scrubbed env;
- real-client scp and sftp-server commands generated from a model are
  allowed with exactly the argv the model predicts;
- adding a refused option, a shell prefix or a shell suffix to an allowed
  command makes it refused; non-ASCII digits never pass as numbers.
"""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from scponly_py import programs, words
from scponly_py.decide import decide
from scponly_py.outcome import Allow, Refuse
from scponly_py.programs import scp, sftp
from tests import oracles
from tests.attacks.corpus import POLICIES, policy
from tests.support import make_policy, make_request

POLICY_NAMES = sorted(POLICIES)
EFFECTIVE = {name: policy(name) for name in POLICY_NAMES}
CONFIGURED = sorted(
    {path for effective in EFFECTIVE.values() for _, path in effective.paths}
    | {word for record in programs.PROGRAMS.values() for word in record["words"]}
)
SURROGATES = [chr(code) for code in range(0xDC80, 0xDD00)]


def decide_and_check(command: str | None, policy_name: str, uid: int = 1000) -> Allow | Refuse:
    request = make_request(command, uid=uid)
    effective = EFFECTIVE[policy_name]
    decision = decide(request, effective)
    oracles.check(command, request, effective, decision)
    return decision


# --- token soup: programs, options of every table, metacharacters, awkward values -------------

OPTION_WORDS = [
    *[f"-{letter}" for letter in "tfdrpvqlSoFJDicPX3OsTRABCMhezQu"],
    *["-pt", "-pf", "-rt", "-tr", "-vt", "-qt", "-prf", "-vS/x", "-oProxyCommand=x", "-l1000"],
    *["-R", "-e", "-lDEBUG3", "-f", "AUTHPRIV", "-P", "-p", "read,write", "!read", "-u", "077"],
    *["-d", "/etc", "-c", "-h", "-Q", "requests"],
    *["--server", "--sender", "-logDtpre.iLsfxCIvu", "-e.iLsfxC", "-e", "-s", ".", "--"],
    *["--rsh=sh", "--daemon", "--config=x", "--temp-dir=/tmp", "--partial-dir=.p", "--delete"],
    *["--munge-links", "--no-munge-links", "--files-from=-", "-B1024", "-@-1", "-6e/x"],
    *["-server", "__new-rpc-mode", "-sshcmd", "-t", "--tunnel-user=root", "-r", "/"],
]
OPERAND_WORDS = [
    *["/in", "x", "dir/file", "-", "''", "'a b'", '"c d"', "\\-S", "é", "\u3000"],
    *["\uff11\uff10", "\uff12\uff12"],
    *["1000", "0", "-1", "$x", "$(id)", "`id`", ";", "&&", "|", "*", "~", "#", "!", "<", ">"],
    *SURROGATES[:3],
]
SEPARATORS = [" ", " ", " ", "\t", "  "]
soup = st.builds(
    lambda program, rest, seps: (
        program + "".join(sep + word for sep, word in zip(seps, rest, strict=False))
    ),
    st.sampled_from(
        [*CONFIGURED, "id", "sh", "bash", "/bin/sh", "scp\u00a0", "\uff53\uff43\uff50", "SCP"]
    ),
    st.lists(st.sampled_from(OPTION_WORDS + OPERAND_WORDS), max_size=8),
    st.lists(st.sampled_from(SEPARATORS), min_size=8, max_size=8),
)
any_bytes = st.binary(max_size=200).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
any_text = st.text(max_size=200).filter(
    # Lone surrogates outside surrogateescape's range never come from the kernel.
    lambda text: (
        not any(0xD800 <= ord(char) < 0xDC80 or 0xDD00 <= ord(char) <= 0xDFFF for char in text)
    )
)
controlled = st.tuples(soup, st.sampled_from(["\n", "\x00", "\r", "\x1b", "\x7f", "\x85"])).map(
    lambda pair: pair[0] + pair[1] + "x"
)
# Real client commands, then mutated word by word or character by character:
# most mutations are refused, but many stay allowed and exercise the oracles.
SEEDS = [
    "scp -t /in",
    "scp -pf 'x'",
    "scp -v -r -p -d -t /incoming",
    "scp -l 1000 -f a b c",
    "/usr/lib/openssh/sftp-server",
    "/usr/lib/openssh/sftp-server -e -l INFO -f AUTHPRIV",
    "sftp-server -R -P remove",
    "rsync --server -logDtpre.iLsfxCIvu . /in",
    "rsync --server --sender -logDtpre.iLsfxCIvu . /data",
    "rsync --server -logDtpre.iLsfxCIvu --delete --partial-dir=.p --munge-links . /in",
    "rsync --server -vlogDtpre.iLsfxCIvu -B1024 --temp-dir /home/alice/t . /in",
    "unison -server __new-rpc-mode",
    "svnserve -t",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    parts = draw(st.sampled_from(SEEDS)).split(" ")
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "replace", "delete", "char"]))
        position = draw(st.integers(1, len(parts)))
        token = draw(st.sampled_from(OPTION_WORDS + OPERAND_WORDS))
        if kind == "insert":
            parts.insert(position, token)
        elif kind == "replace" and position < len(parts):
            parts[position] = token
        elif kind == "delete" and position < len(parts) and len(parts) > 1:
            del parts[position]
        elif position < len(parts):
            word = parts[position]
            at = draw(st.integers(0, len(word)))
            char = draw(st.sampled_from(list("-tfSoelR.=/ '\"$;\u3000") + SURROGATES[:2]))
            parts[position] = word[:at] + char + word[at:]
    return " ".join(parts)


commands = st.one_of(soup, mutated(), mutated(), mutated(), any_bytes, any_text, controlled)


@given(commands, st.sampled_from(POLICY_NAMES))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example("scp -vS/x -t y", "all")
@example("rsync --server -e.iLsfxC . /in", "read-only")
@example("scp -t x\n", "all")
def test_every_decision_passes_the_oracles(command: str, policy_name: str) -> None:
    decide_and_check(command, policy_name)


@given(commands, st.sampled_from(POLICY_NAMES))
@settings(max_examples=200, deadline=None)
def test_root_and_interactive_are_never_allowed(command: str, policy_name: str) -> None:
    assert isinstance(decide_and_check(command, policy_name, uid=0), Refuse)
    assert isinstance(decide_and_check(None, policy_name), Refuse)


@given(soup, st.sampled_from([name for name in POLICY_NAMES if name.endswith("-only")]))
@settings(max_examples=400, deadline=None)
def test_a_single_program_policy_runs_only_that_program(command: str, policy_name: str) -> None:
    decision = decide_and_check(command, policy_name)
    enabled = EFFECTIVE[policy_name].programs
    if isinstance(decision, Allow) and len(enabled) == 1:
        assert decision.program in enabled


@given(st.text(max_size=20), st.sampled_from(POLICY_NAMES))
def test_overlong_commands_are_refused(tail: str, policy_name: str) -> None:
    command = "scp -t " + "a" * words.MAX_COMMAND_LENGTH + tail
    decision = decide_and_check(command, policy_name)
    assert isinstance(decision, Refuse)
    assert "longer than" in decision.reason


# --- scp: a model of what real clients send ---------------------------------------------------

safe_name = st.text(
    st.sampled_from("abcdefxyz0123456789._-/é\u3000 '\"$;*"), min_size=1, max_size=12
).filter(lambda name: not name.startswith("-"))


@st.composite
def scp_client(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """(command, expected argv after the path, direction) for a well-formed server command."""
    direction = draw(st.sampled_from("tf"))
    flags = draw(st.lists(st.sampled_from("vqrp" + ("d" if direction == "t" else "")), max_size=4))
    limit = draw(st.none() | st.integers(1, 100 * 1024 * 1024))
    letters = [*flags, direction]
    order = draw(st.permutations(letters))
    # Group the letters into clusters, like -pt, -rpf, or separate words.
    cut = sorted(draw(st.lists(st.integers(1, max(1, len(order))), max_size=3, unique=True)))
    clusters = []
    start = 0
    for end in [*cut, len(order)]:
        if end > start:
            clusters.append("-" + "".join(order[start:end]))
            start = end
    if limit is not None:
        position = draw(st.integers(0, len(clusters)))
        attached = draw(st.booleans())
        clusters.insert(position, f"-l{limit}" if attached else f"-l {limit}")
    names = draw(st.lists(safe_name, min_size=1, max_size=1 if direction == "t" else 4))
    dash_dash = draw(st.booleans())
    program = draw(st.sampled_from(sorted(programs.PROGRAMS["scp"]["words"])))
    command = " ".join(
        [program, *clusters, *(["--"] if dash_dash else []), *(words.quote(n) for n in names)]
    )
    expected = [f"-{letter}" for letter in scp.FLAG_ORDER if letter in flags]
    if limit is not None:
        expected += ["-l", str(limit)]
    expected += [f"-{direction}", "--", *names]
    return command, expected, direction


@given(scp_client(), st.sampled_from(["read-write", "read-only", "write-only"]))
@settings(max_examples=400, deadline=None)
def test_scp_real_client_forms_match_the_model(
    client: tuple[str, list[str], str], access: str
) -> None:
    command, expected, direction = client
    request = make_request(command)
    effective = make_policy(access=access)
    decision = decide(request, effective)
    oracles.check(command, request, effective, decision)
    blocked = (access == "read-only" and direction == "t") or (
        access == "write-only" and direction == "f"
    )
    if blocked:
        assert isinstance(decision, Refuse)
        assert access in decision.reason
    else:
        assert isinstance(decision, Allow), decision
        assert list(decision.argv) == ["/usr/bin/scp", *expected]


@given(scp_client(), st.sampled_from(sorted(scp.REFUSED)), st.data())
@settings(max_examples=300, deadline=None)
def test_a_refused_scp_letter_anywhere_in_the_options_is_refused(
    client: tuple[str, list[str], str], letter: str, data: st.DataObject
) -> None:
    command = client[0]
    parts = command.split(" ")
    options_end = 1
    while options_end < len(parts) and parts[options_end].startswith("-"):
        if parts[options_end] == "--":
            break
        options_end += 2 if parts[options_end] == "-l" else 1
    position = data.draw(st.integers(1, options_end))
    while parts[position - 1] == "-l":  # never between -l and its value
        position -= 1
    if data.draw(st.booleans()) and position < options_end and parts[position][:2] != "-l":
        parts[position] = parts[position] + letter  # hidden at the end of a cluster
    else:
        parts.insert(position, f"-{letter}" + ("/x" if letter in "SoFJDicPX" else ""))
    decision = decide_and_check(" ".join(parts), "all")
    assert isinstance(decision, Refuse)
    assert f"option -{letter} is not allowed" in decision.reason


NON_ASCII_DIGITS = [
    chr(code)
    for code in range(0x80, 0x10000)
    if unicodedata.category(chr(code)) == "Nd" or chr(code).isdigit()
]


@given(st.lists(st.sampled_from(NON_ASCII_DIGITS + list("0123456789")), min_size=1, max_size=6))
def test_non_ascii_digits_never_pass_as_a_number(digits: list[str]) -> None:
    value = "".join(digits)
    assume(not value.isascii())
    decision = decide_and_check(f"scp -l {value} -t x", "all")
    assert isinstance(decision, Refuse)
    assert "bandwidth limit" in decision.reason


# --- sftp-server: argv from the policy --------------------------------------------------------

request_names = st.lists(st.sampled_from(sorted(sftp.REQUEST_NAMES)), min_size=1, max_size=4)


@st.composite
def sftp_client(draw: st.DrawFn) -> str:
    words_ = [draw(st.sampled_from(sorted(programs.PROGRAMS["sftp"]["words"])))]
    for option in draw(st.lists(st.sampled_from("RelfPpud"), unique=True, max_size=6)):
        if option in "Re":
            words_.append(f"-{option}")
        elif option == "l":
            words_.append("-l " + draw(st.sampled_from(sorted(sftp.LOG_LEVELS))).lower())
        elif option == "f":
            words_.append("-f " + draw(st.sampled_from(sorted(sftp.LOG_FACILITIES))))
        elif option in "Pp":
            words_.append(f"-{option} " + ",".join(draw(request_names)))
        elif option == "u":
            words_.append("-u " + draw(st.sampled_from(["0", "022", "0777", "7"])))
        else:
            words_.append("-d /srv/elsewhere")
    return " ".join(words_)


@given(
    sftp_client(),
    st.sampled_from(["read-write", "read-only", "write-only"]),
    st.booleans(),
    st.sampled_from([0o022, 0o077, 0o002]),
    st.sampled_from(["", "in", "drop/box"]),
)
@settings(max_examples=400, deadline=None)
def test_sftp_client_forms_are_allowed_with_the_policys_restrictions(
    command: str, access: str, links: bool, umask: int, start_dir: str
) -> None:
    request = make_request(command)
    effective = make_policy(access=access, links=links, umask=umask, start_dir=start_dir)
    decision = decide(request, effective)
    oracles.check(command, request, effective, decision)
    assert isinstance(decision, Allow), decision
    argv = list(decision.argv)
    assert argv[argv.index("-u") + 1] == f"{umask:04o}"
    if start_dir:
        assert argv[argv.index("-d") + 1] == f"/home/alice/{start_dir}"
    else:
        assert "-d" not in argv
    assert "/srv/elsewhere" not in argv


# --- shell syntax around an allowed command ---------------------------------------------------


@given(
    scp_client(),
    st.sampled_from(
        [
            *["; id", " && id", " || id", " | id", " & id", " > /tmp/x", " < /etc/shadow"],
            *[" `id`", " $(id)", " #", "\nid", "\x00", " ${IFS}id"],
        ]
    ),
)
@settings(max_examples=200, deadline=None)
def test_shell_suffixes_make_an_allowed_command_refused(
    client: tuple[str, list[str], str], suffix: str
) -> None:
    assert isinstance(decide_and_check(client[0] + suffix, "all"), Refuse)


@given(
    scp_client(),
    st.sampled_from(
        ["exec ", "env ", "command ", "nice ", "LD_PRELOAD=/x.so ", "PATH=/tmp ", "sh -c ", "("]
    ),
)
@settings(max_examples=200, deadline=None)
def test_shell_prefixes_make_an_allowed_command_refused(
    client: tuple[str, list[str], str], prefix: str
) -> None:
    assert isinstance(decide_and_check(prefix + client[0], "all"), Refuse)
