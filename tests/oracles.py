"""Oracles for decide(): what must hold for every input, whatever it is.

Used by the property tests (tests/property/) and the atheris harnesses
(fuzz/). `check(command, request, policy, decision)` raises `OracleFailure`
when a decision breaks a rule of docs/design.md (R1-R16):

- the result is an `Allow` or a `Refuse`, nothing else (exceptions other than
  `Refusal` escaping decide() are caught by the callers);
- an Allow runs a program the policy enables, at the policy's absolute path
  (argv[0] == path == policy.path(program));
- an Allow never comes from a command containing control characters (the one
  exception is decide's table of exact legacy sftp-server probes, compared as
  whole strings);
- every word of an Allow's argv can be passed to execve (surrogateescape);
- the environment holds only allowlisted names, with the fixed PATH;
- each program's argv contains only options its table lists as safe, in the
  server form: scp has exactly one of -t/-f and `--` before the operands;
  sftp-server carries the policy's restrictions; rsync has `--server` first;
  unison and svnserve have only their exact server forms; hashsum has
  nothing or `-- /ABSOLUTE/PATH` (no `..`) and nothing for write-only;
- access modes hold: read-only never uploads, write-only never downloads;
- write-only learns nothing about what is already there: sftp-server denies
  every request that reads or lists, rsync carries none of the options whose
  output depends on existing files (rsync.WRITE_ONLY_*), no receiver
  verbosity, no itemizing, and `--whole-file`.
"""

from __future__ import annotations

from scponly_py import decide as decide_module
from scponly_py import programs
from scponly_py import request as requests
from scponly_py.outcome import Allow, Refuse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from scponly_py.policy import Policy
    from scponly_py.request import Request
    from scponly_py.words import Spec

ENV_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", *requests.PASSED_VARIABLES})


class OracleFailure(AssertionError):
    """A decision that breaks a security rule."""


def has_control_character(command: str) -> bool:
    return any((ord(char) < 0x20 and char != "\t") or 0x7F <= ord(char) <= 0x9F for char in command)


def _fail(condition: bool, message: str, decision: object) -> None:
    if condition:
        raise OracleFailure(f"{message}: {decision!r}")


def check(command: str | None, request: Request, policy: Policy, decision: object) -> None:
    """Raise OracleFailure if `decision` (for `command` under `policy`) breaks a rule."""
    if isinstance(decision, Refuse):
        _fail(not isinstance(decision.reason, str) or not decision.reason, "empty reason", decision)
        return
    _fail(not isinstance(decision, Allow), "decide returned neither Allow nor Refuse", decision)
    assert isinstance(decision, Allow)
    _fail(command is None, "Allow for an interactive login", decision)
    _fail(request.uid == 0, "Allow for root", decision)
    probes = getattr(decide_module, "LEGACY_SFTP_PROBES", frozenset())
    _fail(
        has_control_character(command or "") and command not in probes,
        "Allow for a command with control characters",
        decision,
    )
    name = decision.program
    _fail(name not in programs.PROGRAMS, "Allow for an unregistered program", decision)
    _fail(name not in policy.programs, "Allow for a program the policy does not enable", decision)
    configured = dict(policy.paths)
    _fail(
        not decision.argv or decision.argv[0] != decision.path, "argv[0] is not the path", decision
    )
    # A program may run one of several programs, each with its own [paths] entry (hashsum).
    _fail(
        decision.path not in {configured.get(each) for each in programs.PROGRAMS[name]["paths"]},
        "path is not the configured path",
        decision,
    )
    _fail(not decision.path.startswith("/"), "path is not absolute", decision)
    _fail(not decision.cwd.startswith("/"), "working directory is not absolute", decision)
    _fail(decision.umask != policy.umask, "umask is not the policy's", decision)
    for word in decision.argv:
        _fail(not isinstance(word, str), "argv word is not a string", decision)
        try:
            word.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            _fail(True, "argv word cannot be passed to execve", decision)
    env = dict(decision.env)
    _fail(not set(env) <= ENV_NAMES, "environment has a name outside the allowlist", decision)
    _fail(env.get("PATH") != requests.FIXED_PATH, "PATH is not the fixed PATH", decision)
    checker = PROGRAM_CHECKS.get(name)
    if checker is not None:
        checker(list(decision.argv[1:]), request, policy, decision)


# --- per program ------------------------------------------------------------------------------


def _options(
    program: str, words: list[str], table: Mapping[str, Spec], decision: Allow
) -> list[tuple[str, str | None]]:
    """(letter, value or None) of `words`: each a lone `-X` in `table`, its value the next word."""
    found: list[tuple[str, str | None]] = []
    index = 0
    while index < len(words):
        word = words[index]
        _fail(
            len(word) != 2 or word[0] != "-" or word[1] not in table,
            f"{program} option {word!r} is not in the table",
            decision,
        )
        value = None
        if table[word[1]].takes_value:
            index += 1
            _fail(index >= len(words), f"{program} option without its value", decision)
            value = words[index]
        found.append((word[1], value))
        index += 1
    return found


def _check_scp(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    from scponly_py.programs import scp  # noqa: PLC0415 - grammar modules load on demand

    _fail("--" not in args, "scp argv has no -- before the operands", decision)
    split = args.index("--")
    options, operands = _options("scp", args[:split], scp.ALLOWED, decision), args[split + 1 :]
    for _, value in options:
        _fail(
            value is not None and (not value.isascii() or not value.isdigit()),
            "scp value is not ASCII digits",
            decision,
        )
    directions = [letter for letter, _ in options if letter in "tf"]
    _fail(len(directions) != 1, "scp argv lacks exactly one of -t/-f", decision)
    _fail(not operands, "scp without operands", decision)
    _fail(policy.access == "read-only" and directions[0] == "t", "read-only upload", decision)
    _fail(policy.access == "write-only" and directions[0] == "f", "write-only download", decision)
    _fail(directions[0] == "t" and len(operands) != 1, "scp -t with several targets", decision)


def _check_sftp(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    from scponly_py.programs import sftp  # noqa: PLC0415

    options = _options("sftp-server", args, sftp.ALLOWED, decision)
    given = dict(options)
    _fail(len(given) != len(options), "sftp-server option given twice", decision)
    for letter in "pP":
        if letter in given:
            names = (given[letter] or "").split(",")
            _fail(not set(names) <= sftp.REQUEST_NAMES, "unknown sftp request name", decision)
    denied = set((given.get("P") or "").split(","))
    _fail(
        given.get("u") != f"{policy.umask:04o}", "sftp-server umask is not the policy's", decision
    )
    _fail(policy.access == "read-only" and "R" not in given, "read-only sftp without -R", decision)
    _fail(
        policy.access == "write-only" and not set(sftp.WRITE_ONLY_DENIED) <= denied,
        "write-only sftp can read",
        decision,
    )
    _fail(
        not policy.links and not set(sftp.LINK_REQUESTS) <= denied,
        "sftp can create links although links = false",
        decision,
    )
    _fail("d" in given and not policy.start_dir, "sftp -d not from the policy", decision)


def _check_rsync(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    from scponly_py.programs import rsync  # noqa: PLC0415

    _fail(not args or args[0] != "--server", "rsync Allow without --server first", decision)
    _fail("--" not in args, "rsync argv has no -- before '.'", decision)
    split = args.index("--")
    options, rest = args[1:split], args[split + 1 :]
    _fail(not rest or rest[0] != ".", "rsync argv has no '.' after --", decision)
    _fail(len(rest) < 2, "rsync without a path", decision)
    sender = bool(options) and options[0] == "--sender"
    for position, word in enumerate(options):
        if word == "--sender":
            _fail(position != 0, "--sender not right after --server", decision)
            continue
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            _fail(name not in rsync.LONG_OPTIONS, f"rsync option {word!r} is not safe", decision)
            continue
        _fail(not word.startswith("-") or len(word) < 2, f"rsync word {word!r}", decision)
        for offset, letter in enumerate(word[1:], start=1):
            if letter in rsync.SHORT_WITH_VALUE:
                if letter == "e":
                    blob = word[offset + 1 :]
                    letters = blob[1:]  # "-e." alone is legal: no capabilities
                    _fail(
                        not blob.startswith(".")
                        or not letters.isascii()
                        or not all(char.isalpha() for char in letters),
                        "rsync -e is not the protocol blob",
                        decision,
                    )
                break
            _fail(letter not in rsync.SHORT_FLAGS, f"rsync letter -{letter} is not safe", decision)
    _fail(policy.access == "read-only" and not sender, "read-only rsync upload", decision)
    _fail(policy.access == "write-only" and sender, "write-only rsync download", decision)
    if policy.access == "write-only":
        _check_rsync_write_only(options, decision)
    _fail(
        not policy.links and "--munge-links" not in options,
        "rsync without --munge-links although links = false",
        decision,
    )
    _fail(
        dict(decision.env).get("HOME") == request.home and request.home != "/",
        "rsync child HOME is the user's (~/.popt)",
        decision,
    )


def _check_rsync_write_only(options: list[str], decision: Allow) -> None:
    from scponly_py.programs import rsync  # noqa: PLC0415

    _fail("--whole-file" not in options, "write-only rsync without --whole-file", decision)
    for word in options:
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            _fail(
                name in rsync.WRITE_ONLY_REFUSED_LONG,
                f"write-only rsync with --{name}",
                decision,
            )
            _fail(name == "log-format" and "%i" in value, "write-only rsync itemizes", decision)
            continue
        flags = word[1:].split("e", 1)[0].split("B", 1)[0].split("@", 1)[0]
        bad = set(flags) & (
            set(rsync.WRITE_ONLY_REFUSED_LETTERS) | set(rsync.WRITE_ONLY_STRIPPED_LETTERS)
        )
        _fail(bool(bad), f"write-only rsync with -{''.join(sorted(bad))}", decision)


def _check_unison(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    _fail(
        tuple(args) not in (("-server",), ("-server", "__new-rpc-mode")),
        "unison is not in its exact server form",
        decision,
    )
    _fail(policy.access != "read-write", "unison for a restricted account", decision)


def _check_svnserve(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    _fail(args[:2] != ["-t", "--root"] or len(args) < 3, "svnserve is not -t --root", decision)
    extra = set(args[3:]) - {"--read-only", f"--tunnel-user={request.user}"}
    _fail(bool(extra), "svnserve has arguments not from the policy", decision)
    _fail(policy.access == "write-only", "svnserve for a write-only account", decision)
    _fail(
        policy.access == "read-only" and "--read-only" not in args,
        "read-only svnserve without --read-only",
        decision,
    )


def _check_hashsum(args: list[str], request: Request, policy: Policy, decision: Allow) -> None:
    _fail(policy.access == "write-only", "a file's digest for a write-only account", decision)
    if not args:
        return  # the digest of the client's own (empty) input
    _fail(len(args) != 2 or args[0] != "--", "hashsum is not NAME -- PATH", decision)
    path = args[-1]
    _fail(not path.startswith("/"), "hashsum path is not absolute", decision)
    _fail(any(part in (".", "..") for part in path.split("/")), "hashsum path has '..'", decision)


PROGRAM_CHECKS = {
    "scp": _check_scp,
    "sftp": _check_sftp,
    "rsync": _check_rsync,
    "unison": _check_unison,
    "svnserve": _check_svnserve,
    "hashsum": _check_hashsum,
}
