"""rsync in server mode, as a client runs it over ssh: `rsync --server [--sender] OPTS . PATHS`.

Input: the words after argv[0] and the policy; output: the argv to exec, rebuilt with `--`
before `.`; anything not in the tables below is refused (reference: rsync 3.5.0's
`support/rrsync` and `options.c`). argv[1] must be `--server`, `--sender` may only be
argv[2]; short clusters are read letter by letter as popt does, `-e` only as the protocol
blob `.LETTERS`, a value-taking letter must carry its value; nothing starting with `-`
after `.` (popt permutes). Path-valued options are confined textually to HOME, no `..`.
Refused whatever the policy: `SHORT_REFUSED`, `LONG_REFUSED`, each with its reason.
Access: read-only needs `--sender`; write-only refuses it, refuses
`WRITE_ONLY_REFUSED_LETTERS`/`_LONG`, drops the receiver's `-v` and adds `--whole-file`;
`links = false` adds `--munge-links` and refuses hard links when receiving. The child's
HOME is `/` (rsync reads `$HOME/.popt` before it sees `--server`). The why:
docs/design.md R11, R12 and "What a session can observe".
"""

from scponly_py.outcome import Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "rsync"

MAX_VALUE_LENGTH = 4096
MAX_BLOB_LENGTH = 32
ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
DIGITS = frozenset("0123456789")
SUFFIX_CHARACTERS = ASCII_LETTERS | DIGITS | frozenset("._+~,:@=-")

# Short letters without a value: rrsync's `short_no_arg` minus `s`.
SHORT_FLAGS = frozenset("ACDEHIJKLNORSUWXbcdgklmnopqrtuvxyz")
# Letters whose value is attached (`-B1024`, `-@-1`, `-e.iLsfxCIvu`).
SHORT_WITH_VALUE = frozenset("B@e")
SHORT_REFUSED = {
    "s": "it makes rsync take its real arguments from the connection, unchecked",
    "M": "it passes options to the remote side",
    "f": "a client sends filter rules over the protocol, not as options",
    "F": "a client sends filter rules over the protocol, not as options",
    "T": "use --temp-dir",
    "a": "a client sends -a as its letters",
    "P": "a client sends -P as --partial",
    "h": "it asks for help",
    "V": "it asks for the version",
    "i": "a client sends --log-format instead",
    "0": "use --from0",
}


def _refuse_long(option: str, raw: str) -> None:
    # Control characters never get here (the tokenizer refuses them); names in
    # any encoding are legal in paths, so only the length is limited.
    if len(raw) > MAX_VALUE_LENGTH:
        raise Refusal(f"rsync {option} is too long")


def _charset(allowed: str, what: str, max_length: int = 256) -> "Callable[[str, str], str]":
    characters = frozenset(allowed) | ASCII_LETTERS | DIGITS

    def check(option: str, raw: str) -> str:
        if not raw or len(raw) > max_length or not all(char in characters for char in raw):
            raise Refusal(f"rsync option {option} needs {what}, got {raw[:64]!r}")
        return raw

    return check


def _integer(negative: bool) -> "Callable[[str, str], str]":
    def check(option: str, raw: str) -> str:
        digits = raw[1:] if negative and raw.startswith("-") else raw
        if not 1 <= len(digits) <= 10 or not all(char in DIGITS for char in digits):
            raise Refusal(f"rsync option {option} needs a decimal number, got {raw[:64]!r}")
        return raw

    return check


def _size(option: str, raw: str) -> str:
    """A size or rate as rsync reads it (`1024`, `1.5K`, `2MiB`, `100M+1`); rsync checks more."""
    if (
        not 1 <= len(raw) <= 24
        or raw[0] not in DIGITS
        or not all(char in DIGITS or char in ".KMGTPEkmgtpeIiBb+-" for char in raw)
    ):
        raise Refusal(f"rsync option {option} needs a size, got {raw[:64]!r}")
    return raw


def _stderr_mode(option: str, raw: str) -> str:
    if not raw or not any(mode.startswith(raw) for mode in ("errors", "all", "client")):
        raise Refusal(f"rsync option {option} must be errors, all or client")
    return raw


def _suffix(option: str, raw: str) -> str:
    # rsync refuses a "/" itself; an empty suffix is legal with --backup-dir.
    if len(raw) > 64 or not all(char in SUFFIX_CHARACTERS for char in raw):
        raise Refusal(f"rsync option {option} needs a plain suffix, got {raw[:64]!r}")
    return raw


# A path value: marker object, checked against HOME by `_area_path`.
PATH = "path"

# Long options accepted: None = no value; a checker = value checked by kind;
# PATH = a path confined to the user's area. Derived from rrsync's table.
LONG_OPTIONS: "dict[str, Callable[[str, str], str] | str | None]" = {
    "append": None,
    "backup-dir": PATH,
    "block-size": _size,
    "bwlimit": _size,
    "checksum-choice": _charset(",", "checksum names"),
    "checksum-seed": _integer(negative=False),
    "compare-dest": PATH,
    "compress-choice": _charset(",", "a compression name"),
    "compress-level": _integer(negative=True),
    "compress-threads": _integer(negative=False),
    "copy-dest": PATH,
    "copy-unsafe-links": None,
    "delay-updates": None,
    "delete": None,
    "delete-after": None,
    "delete-before": None,
    "delete-delay": None,
    "delete-during": None,
    "delete-excluded": None,
    "delete-missing-args": None,
    "dirs": None,
    "existing": None,
    "fake-super": None,
    "files-from": PATH,
    "force": None,
    "from0": None,
    "fsync": None,
    "fuzzy": None,
    "group": None,
    "groupmap": _charset("*?[]:,._-", "a group map", 1024),
    "hard-links": None,
    "iconv": _charset("._:+-,", "a character set name", 64),
    "ignore-errors": None,
    "ignore-existing": None,
    "ignore-missing-args": None,
    "ignore-times": None,
    "info": _charset(",", "info flags"),
    "inplace": None,
    "link-dest": PATH,
    "links": None,
    "list-only": None,
    "log-format": _charset("%", "a log format of letters and %", 64),
    "max-alloc": _size,
    "max-delete": _integer(negative=True),
    "max-size": _size,
    "min-size": _size,
    "mkpath": None,
    "modify-window": _integer(negative=True),
    "msgs2stderr": None,
    "munge-links": None,
    "new-compress": None,
    "no-W": None,
    "no-implied-dirs": None,
    "no-msgs2stderr": None,
    "no-r": None,
    "no-relative": None,
    "no-specials": None,
    "numeric-ids": None,
    "old-compress": None,
    "one-file-system": None,
    "open-noatime": None,
    "owner": None,
    "partial": None,
    "partial-dir": PATH,
    "perms": None,
    "preallocate": None,
    "recursive": None,
    "remove-sent-files": None,
    "remove-source-files": None,
    "safe-links": None,
    "size-only": None,
    "skip-compress": _charset("/[]._-", "a list of suffixes", 1024),
    "specials": None,
    "stats": None,
    "stderr": _stderr_mode,
    "suffix": _suffix,
    "super": None,
    "temp-dir": PATH,
    "timeout": _integer(negative=False),
    "times": None,
    "use-qsort": None,
    "usermap": _charset("*?[]:,._-", "a user map", 1024),
    "whole-file": None,
}
LONG_REFUSED = {
    "rsh": "it names a program for rsync to run",
    "rsync-path": "it names a program for rsync to run",
    "daemon": "it starts an rsync daemon",
    "config": "it starts an rsync daemon with a configuration file",
    "dparam": "it starts an rsync daemon",
    "detach": "it starts an rsync daemon",
    "no-detach": "it starts an rsync daemon",
    "protect-args": "it makes rsync take its real arguments from the connection, unchecked",
    "secluded-args": "it makes rsync take its real arguments from the connection, unchecked",
    "write-batch": "it writes a batch file",
    "only-write-batch": "it writes a batch file",
    "read-batch": "it reads a batch file",
    "log-file": "it appends to a file of the client's choosing",
    "log-file-format": "it belongs to --log-file",
    "devices": "a client sends -D; device nodes are not created",
    "copy-devices": "it reads device contents",
    "write-devices": "it writes into device files",
    "no-munge-links": "it would cancel the policy's --munge-links",
    "insecure-links": "it turns off rsync's symlink defences",
    "trust-sender": "it turns off rsync's file-list checks",
    "old-args": "it changes how arguments are read",
    "copy-as": "it is for root only",
    "debug": "debug output is not allowed (as rrsync)",
    "server": "--server must be the first argument, once",
    "sender": "--sender is only accepted right after --server",
    "filter": "a client sends filter rules over the protocol, not as options",
    "exclude": "a client sends filter rules over the protocol, not as options",
    "include": "a client sends filter rules over the protocol, not as options",
    "exclude-from": "it reads a file; a client sends filter rules over the protocol",
    "include-from": "it reads a file; a client sends filter rules over the protocol",
    "password-file": "it is a client option that reads a file",
    "early-input": "it is a daemon option that reads a file",
    "remote-option": "it passes options to the remote side",
    "confine-root": "the policy decides the confinement",
}
# write-only: options whose output or exit status depends on the files already there.
WRITE_ONLY_REFUSED_LETTERS = {
    "c": "checksum comparison says whether your file equals the server's",
    "y": "the fuzzy basis search reads the destination directory",
    "n": "a dry run writes nothing and reports what is already there",
    "u": "--update skips files by the server's times",
}
WRITE_ONLY_REFUSED_LONG = {
    "fuzzy": WRITE_ONLY_REFUSED_LETTERS["y"],
    "existing": "it skips files by whether they exist on the server",
    "ignore-existing": "it skips files by whether they exist on the server",
    "size-only": "it skips files by the server's sizes",
    "append": "it sends only what is beyond the server's file size",
    "compare-dest": "it compares with files on the server",
    "copy-dest": "it compares with files on the server",
    "link-dest": "it compares with files on the server",
    "list-only": "it lists files",
    "info": "the server's info output reports files already there",
}
# ... and letters removed from the receiving server's clusters (protocol-neutral).
WRITE_ONLY_STRIPPED_LETTERS = {
    "v": "the receiving server's verbosity reports (and debugs) files already there",
}
# A --log-format with %i makes the server itemize what is already there.
WRITE_ONLY_ITEMIZE = "%i"
# Options that delete on the server (refused for read-only and write-only).
DELETE_OPTIONS = frozenset(
    {
        "delete", "delete-after", "delete-before", "delete-delay", "delete-during",
        "delete-excluded", "delete-missing-args", "force",
    }
)  # fmt: skip
REMOVE_OPTIONS = frozenset({"remove-source-files", "remove-sent-files"})
HARD_LINK_OPTIONS = frozenset({"hard-links", "link-dest"})


def _area_path(option: str, raw: str, home: str) -> str:
    """A path inside the user's area (see the module docstring) or `Refusal`."""
    if not raw:
        raise Refusal(f"rsync option {option} needs a path")
    if ".." in raw.split("/"):
        raise Refusal(f"rsync option {option} must not use '..'")
    if raw.startswith("/"):
        root = home.rstrip("/")
        if not home.startswith("/") or not (raw == root or raw.startswith(root + "/")):
            raise Refusal(f"rsync option {option} must name a path inside your home directory")
    return raw


def _check_blob(cluster: str, blob: str) -> None:
    """The `-e` value on a server: `.` then capability letters, nothing else."""
    if (
        not blob
        or blob[0] != "."
        or len(blob) > MAX_BLOB_LENGTH
        or not all(char in ASCII_LETTERS for char in blob[1:])
    ):
        raise Refusal(
            f"rsync option -e is only allowed as the protocol blob -e.LETTERS, not {cluster[:60]!r}"
        )


def _short_cluster(word: str, seen_blob: bool) -> tuple[str, str, bool]:
    """Validate one short cluster; return (word to exec, its flag letters, has blob)."""
    letters = []
    position = 1
    while position < len(word):
        letter = word[position]
        position += 1
        if letter in SHORT_FLAGS:
            letters.append(letter)
            continue
        if letter not in SHORT_WITH_VALUE:
            why = SHORT_REFUSED.get(letter)
            detail = f" ({why})" if why else ""
            raise Refusal(f"rsync option -{letter} is not allowed{detail}")
        value = word[position:]
        if letter == "e":
            if seen_blob:
                raise Refusal("rsync option -e given twice")
            _check_blob(word, value)
            return word, "".join(letters), True
        if letters:
            raise Refusal(f"rsync option -{letter} must be a word of its own (-{letter}NUMBER)")
        if letter == "B":
            _size("-B", value)
        else:
            _integer(negative=True)("-@", value)
        return word, "", False
    return word, "".join(letters), False


class _Parsed:
    """What the client asked for, after validation (mutable only while parsing)."""

    __slots__ = ("blob", "letters", "longs", "words")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.letters: set[str] = set()
        self.longs: set[str] = set()
        self.blob = False


def _parse_options(args: list[str], home: str) -> tuple[_Parsed, list[str]]:
    """Parse the option words up to `.`; return them and the operands after `.`."""
    parsed = _Parsed()
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == ".":
            return parsed, args[index:]
        if word.startswith("--"):
            name, has_value, value = word[2:].partition("=")
            kind = LONG_OPTIONS.get(name)
            if kind is None and name not in LONG_OPTIONS:
                why = LONG_REFUSED.get(name)
                detail = f" ({why})" if why else ""
                shown = word[:64] if not has_value else f"--{name[:64]}"
                raise Refusal(f"rsync option {shown} is not allowed{detail}")
            option = f"--{name}"
            if kind is None:
                if has_value:
                    raise Refusal(f"rsync option {option} takes no value")
                parsed.words.append(option)
            else:
                if not has_value:
                    if index >= len(args):
                        raise Refusal(f"rsync option {option} needs a value")
                    value = args[index]
                    index += 1
                _refuse_long(f"option {option} value", value)
                if kind == PATH:
                    if not (name == "files-from" and value == "-"):
                        value = _area_path(option, value, home)
                else:
                    value = kind(option, value)  # type: ignore[operator]
                parsed.words.append(f"{option}={value}")
            parsed.longs.add(name)
            continue
        if word.startswith("-") and len(word) > 1:
            cluster, letters, blob = _short_cluster(word, parsed.blob)
            parsed.words.append(cluster)
            parsed.letters.update(letters)
            parsed.blob = parsed.blob or blob
            continue
        raise Refusal(f"rsync options must end with '.' before the paths, got {word[:64]!r}")
    raise Refusal("rsync server arguments must contain the '.' placeholder")


def _check_write_only(parsed: _Parsed) -> None:
    """Refuse what would tell a write-only account about the files already there."""
    for letter, why in WRITE_ONLY_REFUSED_LETTERS.items():
        if letter in parsed.letters:
            raise Refusal(f"rsync option -{letter} is not allowed for a write-only account ({why})")
    for name in sorted(parsed.longs & WRITE_ONLY_REFUSED_LONG.keys()):
        why = WRITE_ONLY_REFUSED_LONG[name]
        raise Refusal(f"rsync option --{name} is not allowed for a write-only account ({why})")
    for word in parsed.words:
        if word.startswith("--log-format=") and WRITE_ONLY_ITEMIZE in word:
            raise Refusal(
                "rsync itemizing (-i) is not allowed for a write-only account "
                "(it reports the files already there)"
            )
        if word.startswith("--files-from=") and word != "--files-from=-":
            raise Refusal("rsync --files-from must be '-' for a write-only account")


def _quiet(word: str) -> str:
    """A short cluster without the stripped letters (before any value letter); "" if empty."""
    if word.startswith("--") or not word.startswith("-"):
        return word
    end = 1
    while end < len(word) and word[end] in SHORT_FLAGS:
        end += 1
    flags = "".join(char for char in word[1:end] if char not in WRITE_ONLY_STRIPPED_LETTERS)
    rest = word[end:]
    return f"-{flags}{rest}" if flags or rest else ""


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate an rsync server command; return the argv (after argv[0]) to exec."""
    if len(words) < 2 or words[1] != "--server":
        raise Refusal("rsync is only allowed as a server (rsync --server ...)")
    sender = len(words) > 2 and words[2] == "--sender"
    parsed, operands = _parse_options(words[3 if sender else 2 :], request.home)

    if policy.access == "read-only" and not sender:
        raise Refusal("uploads are not allowed for this account (read-only)")
    if policy.access == "write-only" and sender:
        raise Refusal("downloads are not allowed for this account (write-only)")
    if policy.access != "read-write":
        deleting = sorted(parsed.longs & DELETE_OPTIONS)
        if deleting:
            raise Refusal(f"rsync option --{deleting[0]} is not allowed ({policy.access})")
    if policy.access == "read-only":
        removing = sorted(parsed.longs & REMOVE_OPTIONS)
        if removing:
            raise Refusal(f"rsync option --{removing[0]} is not allowed (read-only)")
    if policy.access == "write-only":
        _check_write_only(parsed)
    hard_links = "H" in parsed.letters or parsed.longs & HARD_LINK_OPTIONS
    if not policy.links and not sender and hard_links:
        raise Refusal("creating hard links is not allowed for this account")

    if not operands:
        raise Refusal("rsync needs a path after '.'")
    for operand in operands:
        if operand == "":
            raise Refusal("rsync paths must not be empty")
        if operand.startswith("-"):
            raise Refusal(f"rsync option {operand[:64]!r} after the paths is not allowed")
        _refuse_long("path", operand)
    if not sender and len(operands) != 1:
        raise Refusal("an rsync upload takes exactly one destination")

    forced = []
    if not policy.links:
        forced.append("--munge-links")
    if policy.access == "write-only":
        forced.append("--whole-file")
    option_words = parsed.words
    if policy.access == "write-only":
        option_words = [quieted for word in option_words if (quieted := _quiet(word))]
    argv = ["--server", *(["--sender"] if sender else []), *option_words, *forced]
    return [*argv, "--", ".", *operands]
