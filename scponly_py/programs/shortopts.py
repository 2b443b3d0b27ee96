"""Short-option parsing the way BSD getopt(3) does it, driven by a data table.

OpenSSH's scp and sftp-server are built with OpenBSD's getopt (portable
OpenSSH ships it as BSDgetopt): clusters such as `-pt` are read letter by
letter, a value-taking letter swallows the rest of its cluster or the next
word, `--` ends the options, and the first operand ends them too (no GNU
permutation). Parsing exactly like the target program is what stops `-vS/x`
from hiding `-S`.

A table maps each option letter to a `Spec`: a plain flag, or a letter that
takes a value checked by a function. Letters missing from the table are
refused; so are letters listed in `refused` (with a reason that names the
danger, for a clearer message).
"""

from scponly_py.outcome import Record, Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Spec(Record):
    """One allowed option letter; `check` validates (and may normalise) its value."""

    __slots__ = ("check", "takes_value")
    check: "Callable[[str], str] | None"
    takes_value: bool


def flag() -> Spec:
    return Spec(takes_value=False, check=None)


def value(check: "Callable[[str], str]") -> Spec:
    return Spec(takes_value=True, check=check)


def parse(
    program: str,
    args: list[str],
    allowed: dict[str, Spec],
    refused: dict[str, str],
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Return (options in order as (letter, value), operands) or raise `Refusal`."""
    options: list[tuple[str, str | None]] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            index += 1
            break
        if len(word) < 2 or word[0] != "-":
            break
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
