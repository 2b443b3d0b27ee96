"""Split an SSH command string into words the way a POSIX shell would, expanding nothing.

The client's command is meant for a shell, so quoting follows POSIX (`'…'`,
`"…"`, backslash), but anything a shell would *expand or act on* is refused
rather than interpreted: `$`, backquotes, globs, `~`, braces, redirections,
pipes, command separators, comments, history `!`. Only space and tab separate
words (ASCII-exact: `str.split()` would also split on `\\x1c` or U+2028).
Control characters, DEL, NUL and C1 controls are refused anywhere, quoted or
not, because nothing legitimate needs them and they corrupt logs.

Limits are explicit and refuse rather than truncate.

The words' options are read the way BSD getopt(3) does it, driven by a data
table: OpenSSH's scp and sftp-server are built with OpenBSD's getopt (portable
OpenSSH ships it as BSDgetopt): clusters such as `-pt` are read letter by
letter, a value-taking letter swallows the rest of its cluster or the next
word, `--` ends the options, and the first operand ends them too (no GNU
permutation). Parsing exactly like the target program is what stops `-vS/x`
from hiding `-S`. A table maps each option letter to a `Spec`: a plain flag, or
a letter that takes a value checked by a function. Letters missing from the
table are refused; so are letters listed in `refused` (with a reason that names
the danger, for a clearer message).
"""

from scponly_py.outcome import Record, Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_COMMAND_LENGTH = 16384
MAX_WORDS = 1024

SEPARATORS = " \t"
# Characters a shell treats specially when unquoted. `]` and `}` are literal
# on their own in bash, but refusing them keeps the rule easy to audit.
UNQUOTED_SPECIAL = frozenset("|&;<>()$`*?[]{}~#!\"'\\")
# Inside double quotes bash still expands `$` and backquotes.
DOUBLE_QUOTED_EXPANDING = frozenset("$`")
# Inside double quotes a backslash escapes only these.
DOUBLE_QUOTED_ESCAPABLE = frozenset('$`"\\')


def _refuse_control_characters(command: str) -> bool:
    """Refuse control characters; return True if `command` holds undecodable bytes."""
    escaped = False
    for position, char in enumerate(command):
        code = ord(char)
        if (code < 0x20 and char != "\t") or 0x7F <= code <= 0x9F:
            raise Refusal(f"control character {code:#04x} at position {position}")
        if 0xDC80 <= code <= 0xDCFF:
            escaped = True
    return escaped


def _word(current: list[str], escaped: bool) -> str:
    """Join a finished word; if it holds undecodable bytes, as the program will see it.

    Quote removal can join undecodable bytes into valid UTF-8: in `a\xc2'\x85'`
    neither byte decodes alone, but the word's bytes `a\xc2\x85` are U+0085, a
    C1 control character. The word is re-decoded and checked again.
    """
    word = "".join(current)
    if escaped:
        word = word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        for char in word:
            code = ord(char)
            if 0x7F <= code <= 0x9F:
                raise Refusal(f"control character {code:#04x} formed by joining quoted bytes")
    return word


def split(command: str) -> list[str]:
    """Return the words of `command`, or raise `Refusal` if a shell would do more than quote."""
    if len(command) > MAX_COMMAND_LENGTH:
        raise Refusal(f"command longer than {MAX_COMMAND_LENGTH} characters")
    escaped = _refuse_control_characters(command)

    words: list[str] = []
    current: list[str] = []
    in_word = False
    index = 0
    length = len(command)
    while index < length:
        char = command[index]
        if char in SEPARATORS:
            if in_word:
                words.append(_word(current, escaped))
                if len(words) > MAX_WORDS:
                    raise Refusal(f"more than {MAX_WORDS} words")
                current = []
                in_word = False
            index += 1
            continue
        in_word = True
        if char == "'":
            end = command.find("'", index + 1)
            if end < 0:
                raise Refusal("unterminated single quote")
            current.append(command[index + 1 : end])
            index = end + 1
        elif char == '"':
            index = _double_quoted(command, index + 1, current)
        elif char == "\\":
            if index + 1 >= length:
                raise Refusal("backslash at end of command")
            current.append(command[index + 1])
            index += 2
        elif char in UNQUOTED_SPECIAL:
            raise Refusal(f"shell metacharacter {char!r} is not allowed unquoted")
        else:
            current.append(char)
            index += 1
    if in_word:
        words.append(_word(current, escaped))
        if len(words) > MAX_WORDS:
            raise Refusal(f"more than {MAX_WORDS} words")
    if not words:
        raise Refusal("empty command")
    return words


def _double_quoted(command: str, index: int, current: list[str]) -> int:
    """Append the body of a double-quoted string starting at `index`; return the index after it."""
    length = len(command)
    while index < length:
        char = command[index]
        if char == '"':
            return index + 1
        if char in DOUBLE_QUOTED_EXPANDING:
            raise Refusal(f"shell expansion {char!r} inside double quotes is not allowed")
        if char == "\\" and index + 1 < length and command[index + 1] in DOUBLE_QUOTED_ESCAPABLE:
            current.append(command[index + 1])
            index += 2
            continue
        current.append(char)
        index += 1
    raise Refusal("unterminated double quote")


SAFE_UNQUOTED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_"
)


def quote(word: str) -> str:
    """Quote one word so that `split()` (and a POSIX shell) gives it back unchanged."""
    if word and all(char in SAFE_UNQUOTED for char in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def join(words: list[str] | tuple[str, ...]) -> str:
    """Quote and join words into one command string (for logs, explain, tests)."""
    return " ".join(quote(word) for word in words)


class Spec(Record):
    """One allowed option letter; `check` validates (and may normalise) its value."""

    __slots__ = ("check", "takes_value")
    check: "Callable[[str], str] | None"
    takes_value: bool


def flag() -> Spec:
    return Spec(takes_value=False, check=None)


def value(check: "Callable[[str], str]") -> Spec:
    return Spec(takes_value=True, check=check)


def parse_options(
    program: str,
    args: list[str],
    allowed: dict[str, Spec],
    refused: dict[str, str],
    long_options: tuple[str, ...] | None = None,
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Return (options in order as (letter, value), operands) or raise `Refusal`.

    `long_options` (WinSCP's tools, not BSD getopt): whole `--name` words allowed as
    options, returned as (word, None), any other `--name` refused; None: read as letters.
    """
    options: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            index += 1
            break
        if len(word) < 2 or word[0] != "-":
            break
        if long_options is not None and word[1] == "-":
            if word not in long_options:
                raise Refusal(f"{program} option {word[:64]} is not allowed")
            options.append((word, None))
            index += 1
            continue
        position = 1
        while position < len(word):
            letter = word[position]
            spec = allowed.get(letter)
            if spec is None:
                why = refused.get(letter)
                detail = f" ({why})" if why else ""
                raise Refusal(f"{program} option -{letter} is not allowed{detail}")
            position += 1
            if not spec.takes_value:
                options.append((letter, None))
                continue
            if position < len(word):
                raw = word[position:]
            else:
                index += 1
                if index >= len(args):
                    raise Refusal(f"{program} option -{letter} needs a value")
                raw = args[index]
            options.append((letter, spec.check(raw) if spec.check else raw))
            break
        index += 1
    return options, args[index:]


def decimal(low: int, high: int, what: str) -> "Callable[[str], str]":
    """A checker for an ASCII decimal in [low, high]: no sign, no spaces, no full-width digits."""

    def check(raw: str) -> str:
        if not raw or len(raw) > 12 or not all("0" <= char <= "9" for char in raw):
            raise Refusal(f"{what} must be a decimal number, got {raw!r}")
        number = int(raw)
        if not low <= number <= high:
            raise Refusal(f"{what} must be between {low} and {high}")
        return str(number)

    return check


def one_of(choices: frozenset[str], what: str) -> "Callable[[str], str]":
    """A checker for a value from a fixed set, compared ASCII-case-insensitively."""

    def check(raw: str) -> str:
        folded = raw.upper() if raw.isascii() else raw
        if folded not in choices:
            raise Refusal(f"{what} {raw!r} is not one of {', '.join(sorted(choices))}")
        return folded

    return check
