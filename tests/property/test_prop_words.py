"""Properties of the tokenizer (docs/design.md R1 and R10), including a bash differential.

- quote/join then split gives the words back, for any words;
- split never raises anything but Refusal, for any text;
- any control character, anywhere, is refused; so is any input beyond the limits;
- Unicode whitespace never separates words;
- for every input our tokenizer accepts, bash produces exactly the same words
  (`printf '%s\\0' INPUT`, batched: one bash per hypothesis example);
- every input with an expansion or an unquoted metacharacter is refused.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scponly_py import words
from scponly_py.outcome import Refusal

BASH = shutil.which("bash")
CONTROL = [chr(code) for code in range(0x20) if code != 0x09] + [
    chr(code) for code in range(0x7F, 0xA0)
]
UNICODE_SPACES = (
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2007\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
SURROGATES = [chr(code) for code in range(0xDC80, 0xDD00)]  # surrogateescape'd bytes


def no_control(char: str) -> bool:
    code = ord(char)
    return not ((code < 0x20 and char != "\t") or 0x7F <= code <= 0x9F)


# Characters a file name may contain: anything but control characters, lone
# surrogates only from surrogateescape (what undecodable bytes become).
name_chars = st.one_of(
    st.characters(blacklist_categories=("Cs", "Cc")),
    st.sampled_from(SURROGATES),
    st.sampled_from(" \t'\"\\$`;|&<>()*?[]{}~#!=%"),
)
word_text = st.text(name_chars, max_size=20)


def split_or_none(command: str) -> list[str] | None:
    try:
        return words.split(command)
    except Refusal:
        return None


# --- quote / join -----------------------------------------------------------------------------


@given(st.lists(word_text, min_size=1, max_size=12))
@example([""])
@example(["it's", '"', "\\", "$(id)", "\u3000", "\udcff"])
def test_join_then_split_gives_the_words_back(argv: list[str]) -> None:
    assert words.split(words.join(argv)) == argv


@given(word_text)
def test_quote_is_one_word(word: str) -> None:
    assert words.split("x " + words.quote(word)) == ["x", word]


@given(st.lists(word_text, min_size=1, max_size=6))
def test_concatenated_quoted_parts_form_one_word(parts: list[str]) -> None:
    assert words.split("".join(words.quote(part) for part in parts)) == ["".join(parts)]


# --- robustness -------------------------------------------------------------------------------


@given(st.text(max_size=300))
@settings(max_examples=400)
def test_split_raises_only_refusal(command: str) -> None:
    try:
        result = words.split(command)
    except Refusal as refusal:
        assert isinstance(refusal.reason, str)
        assert refusal.reason
    else:
        assert result
        assert all(isinstance(word, str) for word in result)
        assert len(result) <= words.MAX_WORDS


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=6),
            st.sampled_from([b"'", b'"', b"\\", b" ", b"\xc2", b"\x85", b"\x9b", b"\xe2\x80"]),
        ),
        max_size=30,
    ).map(b"".join)
)
@settings(max_examples=500)
@example(b"scp -t a\xc2'\x85'b")
def test_split_handles_any_bytes_as_the_login_decodes_them(raw: bytes) -> None:
    command = raw.decode("utf-8", "surrogateescape")
    result = split_or_none(command)
    if result is not None:
        for word in result:
            # Each word is exactly what execve will pass (found by fuzzing: quote
            # removal joined bytes into U+0085), and holds no control character.
            again = word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
            assert again == word
            assert all(no_control(char) for char in word)


@given(st.text(max_size=60), st.sampled_from(CONTROL), st.text(max_size=60))
def test_any_control_character_is_refused(before: str, control: str, after: str) -> None:
    with pytest.raises(Refusal, match="control character"):
        words.split(before + control + after)


@given(st.lists(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)))
def test_words_beyond_the_limit_are_refused_not_truncated(extra: list[str]) -> None:
    command = " ".join(["a"] * (words.MAX_WORDS + 1))
    with pytest.raises(Refusal, match="more than"):
        words.split(command + " " + " ".join(words.quote(word) for word in extra))


@given(st.text(max_size=50))
def test_length_beyond_the_limit_is_refused(tail: str) -> None:
    with pytest.raises(Refusal, match="longer than"):
        words.split("x" * (words.MAX_COMMAND_LENGTH + 1) + tail)


@given(
    st.text(st.sampled_from("abcxyz-/._019"), min_size=1, max_size=10),
    st.sampled_from(UNICODE_SPACES),
    st.text(st.sampled_from("abcxyz-/._019"), min_size=1, max_size=10),
)
def test_unicode_whitespace_never_separates(left: str, space: str, right: str) -> None:
    assert words.split(f"scp {left}{space}{right}") == ["scp", left + space + right]


@given(st.text(name_chars, max_size=40))
def test_split_is_deterministic_and_idempotent_under_join(command: str) -> None:
    first = split_or_none(command)
    assert first == split_or_none(command)
    if first is not None:
        assert words.split(words.join(first)) == first


# --- expansions and metacharacters are refused ------------------------------------------------

EXPANDING = ["$", "`", "${x}", "$(id)", "$x", "`id`", "$'a'", '$"a"', "$((1))"]
UNQUOTED_META = sorted(set(words.UNQUOTED_SPECIAL) - set("\"'\\"))
safe_text = st.text(st.sampled_from("abc-_./=:@%+,"), max_size=8)


@given(safe_text, st.sampled_from(UNQUOTED_META), safe_text)
def test_unquoted_metacharacter_is_refused(left: str, meta: str, right: str) -> None:
    with pytest.raises(Refusal):
        words.split(f"scp {left}{meta}{right}")


@given(safe_text, st.sampled_from(["$", "`"]), safe_text)
def test_expansion_inside_double_quotes_is_refused(left: str, meta: str, right: str) -> None:
    with pytest.raises(Refusal):
        words.split(f'scp "{left}{meta}{right}"')


@given(safe_text, st.sampled_from(EXPANDING), safe_text, st.booleans())
def test_expansions_are_refused_quoted_or_not(
    left: str, expansion: str, right: str, double: bool
) -> None:
    command = f'scp "{left}{expansion}{right}"' if double else f"scp {left}{expansion}{right}"
    with pytest.raises(Refusal):
        words.split(command)


# --- differential: bash gives the same words --------------------------------------------------

# Self-contained pieces a command is made of; any concatenation is a test input.
# Most are legal (so the differential compares many accepted inputs); a few
# are stray metacharacters or expansions, which ours must refuse.
PIECES = [
    # plain text, ASCII and not
    *["a", "bc", "X9", "-t", "--", "/in", ".", "_", "=", ":", "@", "%", "+", ",", "^", "-"],
    *["\u00a0", "\u3000", "\u2028", "é", "日", "\udcff", "\udc80"],
    # separators
    *[" ", " ", " ", "\t", "  ", " \t "],
    # single-quoted: everything literal
    *["''", "'a b'", "'$x'", "'`id`'", "';|&'", "'\"'", "'\\'", "'*?[]{}~#!'", "'\t'"],
    *["'\u3000'", "'\udcff'", "'<>()'"],
    # double-quoted: only $ ` " \ special; backslash kept before anything else
    *['""', '"a b"', '"\\$"', '"\\`"', '"\\""', '"\\\\"', '"\\a"', '"\\!"', '"\\\'"'],
    *['";|&<>()"', '"*?[]{}~#!"', '"\'"', '"\t"', '"\u3000é"'],
    # backslash escapes
    *["\\;", "\\|", "\\&", "\\$", "\\`", "\\'", '\\"', "\\ ", "\\\\", "\\*", "\\~"],
    *["\\#", "\\!", "\\a", "\\é", "\\\u3000", "\\\udcff"],
    # stray: must be refused
    *["$x", "$(id)", "`id`", "${x}", ";", "|", "&", "<", ">", "(", ")", "*", "?", "[", "]"],
    *["{", "}", "~", "#", "!", "'", '"', '"$x"', '"`id`"'],
]
noisy_command = st.lists(st.sampled_from(PIECES), min_size=1, max_size=16).map("".join)

END = b"\x01\x00"  # never in an accepted word (control characters are refused)


def bash_words(commands: list[str], locale: str) -> list[list[str]]:
    """The words bash gives for each command, one bash process for the whole batch."""
    script = "".join(f"printf '%s\\0' {command}\nprintf '\\1\\0'\n" for command in commands)
    result = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", script],  # type: ignore[list-item]
        input=b"",
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": locale},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    chunks = result.stdout.split(END)
    assert chunks[-1] == b"", "bash output does not end with the batch marker"
    return [
        [word.decode("utf-8", "surrogateescape") for word in chunk.split(b"\x00")[:-1]]
        for chunk in chunks[:-1]
    ]


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
@given(batch=st.lists(noisy_command, min_size=60, max_size=120))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bash_gives_the_same_words_for_every_accepted_input(locale: str, batch: list[str]) -> None:
    accepted = [(command, split_or_none(command)) for command in batch]
    accepted = [(command, ours) for command, ours in accepted if ours is not None]
    if not accepted:
        return
    theirs = bash_words([command for command, _ in accepted], locale)
    assert len(theirs) == len(accepted)
    for (command, ours), bash in zip(accepted, theirs, strict=True):
        assert ours == bash, f"tokenizer and bash disagree on {command!r}"


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_differential_on_client_commands() -> None:
    commands = [
        "scp -t /incoming",
        "scp -pf 'x'",
        "scp -t 'it'\"'\"'s'",
        "scp -t my\\ file",
        'scp -f "a b" c',
        "/usr/lib/openssh/sftp-server -e -l INFO",
        "rsync --server -logDtpre.iLsfxCIvu . /in",
        "scp -t '$(id)'",
        'x "\\$" "\\`" "\\"" "\\\\" "\\a"',
        "x ''",
        'x "" a',
        "x\tab\u3000cd",
    ]
    theirs = bash_words(commands, "C.UTF-8")
    for command, bash in zip(commands, theirs, strict=True):
        assert words.split(command) == bash, command
