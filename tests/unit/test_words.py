"""The tokenizer: POSIX quoting, nothing expanded, metacharacters and control characters refused.

docs/design.md R1 and R10. Every test names the rule it pins; the property
tests (tests/property/test_prop_words.py) add the bash differential.
"""

from __future__ import annotations

import pytest

from scponly_py import words
from scponly_py.outcome import Refusal


def refused(command: str) -> str:
    with pytest.raises(Refusal) as caught:
        words.split(command)
    return caught.value.reason


# --- plain splitting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("scp -t /incoming", ["scp", "-t", "/incoming"]),
        ("  scp   -t\t\t/in  ", ["scp", "-t", "/in"]),
        ("scp\t-f\tx", ["scp", "-f", "x"]),
        ("/usr/lib/openssh/sftp-server", ["/usr/lib/openssh/sftp-server"]),
        ("a=b c%d e+f g,h i:j k@l m.n o/p q-r s_t", None),
    ],
)
def test_splits_on_space_and_tab_only(command: str, expected: list[str] | None) -> None:
    assert words.split(command) == (expected or command.split(" "))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("scp -t 'my file'", ["scp", "-t", "my file"]),
        ('scp -t "my file"', ["scp", "-t", "my file"]),
        (r"scp -t my\ file", ["scp", "-t", "my file"]),
        # libssh2 (curl) quotes every path, with '"'"' for an embedded quote.
        ("scp -t 'it'\"'\"'s'", ["scp", "-t", "it's"]),
        # Adjacent quoted and unquoted parts form one word.
        ("a'b'\"c\"d", ["abcd"]),
        # Empty quotes give an empty word (bash does the same).
        ("scp -t ''", ["scp", "-t", ""]),
        ('x ""', ["x", ""]),
        # Metacharacters are literal inside single quotes.
        ("scp -t '$(id);`id`|&<>*?[]{}~#!\\'", ["scp", "-t", "$(id);`id`|&<>*?[]{}~#!\\"]),
        # Inside double quotes only $ ` " \ are special; the rest is literal.
        ('x "a;b|c&d<e>f*g?h[i]j{k}l~m#n!o(p)q\'r"', ["x", "a;b|c&d<e>f*g?h[i]j{k}l~m#n!o(p)q'r"]),
        # A backslash in double quotes escapes only $ ` " \ and is kept otherwise.
        (r'x "a\"b\\c\$d\`e"', ["x", 'a"b\\c$d`e']),
        (r'x "a\!b\nc"', ["x", r"a\!b\nc"]),
        # Unquoted backslash escapes anything, metacharacters included.
        (r"x \$HOME \; \| \* \~ \# \!", ["x", "$HOME", ";", "|", "*", "~", "#", "!"]),
        (r"x \'", ["x", "'"]),
        (r"x \"", ["x", '"']),
        (r"x \\", ["x", "\\"]),
    ],
)
def test_posix_quoting(command: str, expected: list[str]) -> None:
    assert words.split(command) == expected


# --- metacharacters (rule 1: no shell, nothing expanded) --------------------------------------

UNQUOTED_ONLY = sorted(set(words.UNQUOTED_SPECIAL) - set("\"'\\"))


@pytest.mark.parametrize("char", UNQUOTED_ONLY)
def test_every_unquoted_metacharacter_is_refused(char: str) -> None:
    reason = refused(f"scp -t a{char}b")
    assert "metacharacter" in reason
    assert repr(char) in reason
    # ... also at the start of a word and as a word of its own.
    assert "metacharacter" in refused(f"scp -t {char}x")
    assert "metacharacter" in refused(f"scp -t {char}")


@pytest.mark.parametrize("char", UNQUOTED_ONLY)
def test_every_metacharacter_is_literal_in_single_quotes(char: str) -> None:
    assert words.split(f"scp -t 'a{char}b'") == ["scp", "-t", f"a{char}b"]


@pytest.mark.parametrize("char", sorted(set(UNQUOTED_ONLY) - set("$`")))
def test_non_expanding_metacharacters_are_literal_in_double_quotes(char: str) -> None:
    assert words.split(f'scp -t "a{char}b"') == ["scp", "-t", f"a{char}b"]


@pytest.mark.parametrize(
    "command",
    [
        'scp -t "$HOME"',
        'scp -t "${HOME}"',
        'scp -t "$(id)"',
        'scp -t "`id`"',
        'scp -t "a$"',
        'scp -t "x"$HOME',
        "scp -t $'\\x41'",
        'scp -t $"x"',
    ],
)
def test_expansions_in_or_next_to_double_quotes_are_refused(command: str) -> None:
    reason = refused(command)
    assert "expansion" in reason or "metacharacter" in reason


@pytest.mark.parametrize(
    "command",
    [
        "scp -t x; id",
        "scp -t x && id",
        "scp -t x || id",
        "scp -t x | id",
        "scp -t x & id",
        "scp -t x > /etc/passwd",
        "scp -t x < /etc/shadow",
        "scp -t $(id)",
        "scp -t `id`",
        "scp -t ${IFS}",
        "scp -t ~root",
        "scp -t ~",
        "scp -f *",
        "scp -f /etc/pass?d",
        "scp -f /etc/[p]asswd",
        "scp -f {a,b}",
        "scp -t x #comment",
        "scp -t !!",
        "(scp -t x)",
        "scp -t <(id)",
        "scp -f >(id)",
    ],
)
def test_shell_constructs_are_refused(command: str) -> None:
    assert "metacharacter" in refused(command)


# --- control characters (rule 7) ---------------------------------------------------------------

CONTROL = [chr(code) for code in range(0x20) if code != 0x09] + [
    chr(code) for code in range(0x7F, 0xA0)
]


@pytest.mark.parametrize("char", CONTROL, ids=[f"{ord(char):#04x}" for char in CONTROL])
def test_control_characters_are_refused_anywhere(char: str) -> None:
    for command in (f"scp -t a{char}b", f"scp -t 'a{char}b'", f'scp -t "a{char}b"', f"{char}scp"):
        reason = refused(command)
        assert "control character" in reason
        assert f"{ord(char):#04x}" in reason


def test_control_character_reason_names_the_position() -> None:
    assert refused("scp -t x\ny") == "control character 0x0a at position 8"


def test_newline_cannot_smuggle_a_second_command() -> None:
    assert "control character" in refused("scp -t x\nid")
    assert "control character" in refused("scp -t x\r\nid")
    assert "control character" in refused("scp -t 'x\nid'")


def test_nul_is_refused() -> None:
    assert "0x00" in refused("scp -t x\x00-S/tmp/evil")


def test_control_check_runs_before_quote_parsing() -> None:
    # An unterminated quote after a control character still reports the control character.
    assert "control character" in refused("'\x07")


# --- Unicode (rule 7: ASCII-exact) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "space",
    ["\u00a0", "\u2028", "\u2029", "\u3000", "\u2003", "\u200b", "\ufeff", "\u1680", "\u205f"],
)
def test_unicode_spaces_do_not_split(space: str) -> None:
    # str.split() would split on most of these; a POSIX shell does not.
    assert words.split(f"scp -t a{space}b") == ["scp", "-t", f"a{space}b"]
    assert words.split(f"scp{space}-t") == [f"scp{space}-t"]


def test_ascii_separator_controls_are_refused_not_split() -> None:
    # \x1c-\x1f are whitespace to str.split(); here they are control characters.
    for char in "\x1c\x1d\x1e\x1f\x0b\x0c":
        assert "control character" in refused(f"scp -t a{char}b")


def test_c1_next_line_is_refused() -> None:
    # U+0085 is whitespace to str.split() and a line break to some log readers.
    assert "0x85" in refused("scp -t a\u0085b")


def test_surrogate_escaped_bytes_are_carried_through() -> None:
    # A file name that is not UTF-8 arrives as surrogateescape code points.
    name = b"caf\xe9-\xff".decode("utf-8", "surrogateescape")
    assert words.split(f"scp -t {name}") == ["scp", "-t", name]
    assert words.split(f"scp -t '{name}'") == ["scp", "-t", name]
    assert words.split(f"scp -t \\{name[-1]}") == ["scp", "-t", name[-1]]


@pytest.mark.parametrize(
    "raw",
    [
        b"scp -t a\xc2'\x85'b",  # U+0085 NEL
        b"scp -t a\xc2'\x9b'31m",  # U+009B CSI (a terminal escape)
        b'scp -t a\xc2"\x80"',
        b"scp -t a\xc2\\\x9f",  # joined by a backslash escape
        b"scp -t '\xc2'\xad\xc2'\x90'",
    ],
)
def test_c1_control_formed_by_quote_removal_is_refused(raw: bytes) -> None:
    # Found by fuzzing (fuzz/fuzz_words.py): neither byte decodes alone, so the
    # command-wide check passed, but the exec'd word held a C1 control character.
    command = raw.decode("utf-8", "surrogateescape")
    assert "formed by joining quoted bytes" in refused(command)


def test_words_are_what_the_program_will_see() -> None:
    # Bytes joined across quotes into valid UTF-8 come back decoded, like execve passes them.
    command = b"scp -t caf\xc3'\xa9' \xdf'\xff'".decode("utf-8", "surrogateescape")
    result = words.split(command)
    assert result == ["scp", "-t", "caf\u00e9", "\udcdf\udcff"]
    for word in result:
        assert word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") == word


def test_non_ascii_letters_are_ordinary_characters() -> None:
    assert words.split("scp -t Ünïcødé/日本語") == ["scp", "-t", "Ünïcødé/日本語"]


def test_fullwidth_metacharacters_are_plain_text() -> None:
    # U+FF1B FULLWIDTH SEMICOLON is not a shell separator; carried as text, never normalised.
    assert words.split("scp -t x\uff1bid") == ["scp", "-t", "x\uff1bid"]


# --- quotes and escapes that do not close ---------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("scp -t 'x", "unterminated single quote"),
        ('scp -t "x', "unterminated double quote"),
        ('scp -t "x\\"', "unterminated double quote"),
        ("scp -t x\\", "backslash at end of command"),
        ("", "empty command"),
        ("   \t  ", "empty command"),
    ],
)
def test_malformed_commands(command: str, reason: str) -> None:
    assert refused(command) == reason


# --- limits: refuse, never truncate ------------------------------------------------------------


def test_length_limit_is_inclusive_and_refuses_beyond() -> None:
    longest = "x" * words.MAX_COMMAND_LENGTH
    assert words.split(longest) == [longest]
    assert "longer than" in refused(longest + "x")


def test_length_is_checked_before_anything_else() -> None:
    assert "longer than" in refused("'" * (words.MAX_COMMAND_LENGTH + 1))


def test_word_count_limit_is_inclusive_and_refuses_beyond() -> None:
    most = " ".join(["a"] * words.MAX_WORDS)
    assert len(words.split(most)) == words.MAX_WORDS
    assert refused(most + " a") == f"more than {words.MAX_WORDS} words"
    # Trailing separators after the last word do not count.
    assert len(words.split(most + "   ")) == words.MAX_WORDS


def test_word_count_limit_counts_empty_words() -> None:
    assert refused(" ".join(["''"] * (words.MAX_WORDS + 1))) == f"more than {words.MAX_WORDS} words"


# --- quote / join ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain-word_1.2/x:y@z%a+b=c,d", "plain-word_1.2/x:y@z%a+b=c,d"),
        ("", "''"),
        ("two words", "'two words'"),
        ("it's", "'it'\"'\"'s'"),
        ("$HOME", "'$HOME'"),
        ("~", "'~'"),
        ("-t", "-t"),
        ("é", "'é'"),
    ],
)
def test_quote(word: str, quoted: str) -> None:
    assert words.quote(word) == quoted
    assert words.split(f"x {quoted}") == ["x", word]


def test_join_round_trips_awkward_words() -> None:
    argv = ["/usr/bin/scp", "-t", "--", "a b", "", "it's", "$(id)", "\\", '"', "\u3000"]
    assert words.split(words.join(argv)) == argv
