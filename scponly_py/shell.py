"""The login shell's entry point: argv/env -> Request -> decide -> audit -> exec.

The login path uses the built-in `posix` module instead of `os`: importing
os costs about 2 ms, a fifth of the interpreter's whole start-up.

This is the only place that sequences the impure steps. It never writes to
stdout (that would corrupt the SFTP stream), answers every failure with one
line on stderr, one syslog line and exit status 1, and catches everything so
that no traceback reaches the client (fail closed). The one exception to
"nothing on stdout": a refused scp server request (`scp -t`/`scp -f`) is also
answered in scp's protocol, because some clients (libssh2: curl) read only
that (docs/design.md, "What a session can observe").
"""

import _signal
import posix
import sys

from scponly_py import audit, programs, trusted, words
from scponly_py import request as requests
from scponly_py.decide import decide, start_directory
from scponly_py.outcome import Refusal, Refuse
from scponly_py.policy import ConfigError, effective_policy, load_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from scponly_py.outcome import Allow
    from scponly_py.policy import Policy
    from scponly_py.request import Request

    Jail = Callable[[Request, Policy], Request]

# Signals that end a session or that a client can have sshd deliver (the
# `signal` channel request): blocked from the launcher's first statement (the
# front blocks them before that) until `release_signals()` right before the exec.
HELD_SIGNALS = (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGPIPE, _signal.SIGTERM)
ADMIN_COMMANDS = frozenset({b"explain", b"check-config", b"--help", b"-h", b"--version"})
REFUSED = 1
# Whether this process already runs under the set-id filter (the front's report said so):
# set once by login() before any launch, inherited by the supervisor's and WinSCP's children.
front_filtered = False
NOT_ISOLATED = (
    "scponly-py is not running isolated (python -I); use the launcher written by "
    "'scponly-py-setup install-shell' as the login shell"
)
NO_FRONT = (
    "scponly-py was not started through its front; the login shell must be the program "
    "'scponly-py-setup install-shell' or the package installs (/usr/bin/scponly-py), "
    "not the launcher script"
)
USER_MANAGER = (
    "{problem}: on this systemd host pam_systemd starts systemd --user at login, which would "
    "run what the account put there; as root run 'scponly-py-setup check --user {user} --fix'"
)
INSECURE_START = (
    "so the environment PAM or sshd set could have run code first (is its file capability "
    "missing, or does sshd run with no_new_privs?); see 'scponly-py-setup check --user'"
)


def printable(text: str) -> str:
    """`text` with anything non-printable (newlines included) replaced by `?`."""
    return "".join(char if char.isprintable() else "?" for char in text)


def say(text: str) -> None:
    """One line on stderr, with anything non-printable replaced; never raises."""
    try:
        posix.write(2, (printable(text) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def hold_signals() -> None:
    """Block `HELD_SIGNALS`: until the exec a signal waits and can raise nothing (no traceback)."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, HELD_SIGNALS)


def release_signals(ignored: tuple[int, ...] = ()) -> None:
    """Default dispositions (`ignored`: ignore), then an empty mask, for the program to exec.

    Python ignores SIGPIPE and SIGXFSZ and handles SIGINT (ignored signals and
    the mask survive exec). A held signal is delivered as soon as it is
    unblocked and, its disposition now the default, ends the process by that
    signal, silently, before the exec.
    """
    for number in (*HELD_SIGNALS, _signal.SIGXFSZ):
        _signal.signal(number, _signal.SIG_IGN if number in ignored else _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


def ensure_standard_fds() -> None:
    """Open /dev/null on any of fds 0-2 that is closed, so no file we open lands there."""
    for fd in (0, 1, 2):
        try:
            posix.fstat(fd)
        except OSError:
            posix.open("/dev/null", posix.O_RDWR)


def is_scp_server_request(command: str, policy: "Policy | None") -> bool:
    """Whether `command` names scp with a `-t` or `-f` option cluster (before any `--`)."""
    try:
        command_words = words.split(command)
    except Refusal:
        return False
    paths = policy.paths if policy else ()
    if not command_words or programs.identify(command_words[0], paths) != "scp":
        return False
    options = (
        command_words[1 : command_words.index("--")] if "--" in command_words else command_words
    )
    return any(
        word[:1] == "-" and word[1:2] not in ("", "-") and ("t" in word or "f" in word)
        for word in options
    )


def answer_scp(text: str) -> None:
    """scp's own error record on stdout: byte 1, the message, a newline; never raises."""
    try:
        posix.write(1, b"\x01" + (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def refuse(request: "Request | None", decision: Refuse, policy: "Policy | None" = None) -> int:
    """Tell the client (in scp's protocol too for an scp request), log, return the exit status."""
    if request is not None and request.command is None and request.uid != 0:
        enabled = ", ".join(sorted(policy.programs)) if policy else "sftp, scp"
        say(f"This account is restricted to file transfers ({enabled}).")
    else:
        text = printable(f"scponly-py: refused: {decision.reason}")
        say(text)
        if (
            request is not None
            and request.command
            and is_scp_server_request(request.command, policy)
        ):
            answer_scp(text)
    try:
        audit.log(audit.line(request, decision, posix.getuid()), audit.NOTICE)
    except audit.AuditError:
        pass  # already refusing; the client has been told why
    return REFUSED


def launch(decision: "Allow", ignored: tuple[int, ...] = ()) -> str:
    """Become the allowed program: umask, chdir, set-id filter, signals, execve.

    The one child launch, for a login (`execute`, in the supervisor's child with
    log_transfers) and for each of WinSCP's commands (in a forked child). Signals
    in `ignored` stay ignored across the exec. The set-id filter is installed
    here unless the front installed it (`front_filtered`). Returns only if a step
    fails, with why.
    """
    encode = requests.encode
    try:
        posix.umask(decision.umask)
        posix.chdir(decision.cwd)
    except OSError as error:
        return f"cannot change to directory {decision.cwd}: {error.strerror}"
    if not front_filtered:
        from scponly_py import setid  # noqa: PLC0415 - _ctypes only where the front did not

        try:
            setid.confine()
        except Refusal as refusal:
            return refusal.reason
    release_signals(ignored)
    try:
        posix.execve(
            encode(decision.path),
            [encode(argument) for argument in decision.argv],
            {encode(name): encode(value) for name, value in decision.env},
        )
    except OSError as error:
        return f"cannot run {decision.path}: {error.strerror}"


def execute(request: "Request", decision: "Allow", ignored: tuple[int, ...] = ()) -> int:
    """Replace this process with the allowed program; return only if that fails."""
    return refuse(request, Refuse(program=decision.program, reason=launch(decision, ignored)))


def login(args: list[bytes], jail: "Jail | None" = None, frozen_start: bytes | None = None) -> int:
    """Handle one login (`-c CMD`, forced command, or interactive).

    On a systemd host a home the account could have filled for `systemd --user`
    is refused first (trusted.user_manager_problem). `jail` (scponly-pyc only)
    runs after the config is loaded and before the decision: it chroots, drops
    privileges and returns the request with the in-jail home, or raises `Refusal`.
    Without `jail`, the front's report must be "1": the frozen scponly-py's own
    (`frozen_start`, from capabilities.secure_start), else SCPONLY_PY_FRONT, which
    front.c sets ("1+set-id-filter" when it installed the set-id filter too).
    """
    global front_filtered  # noqa: PLW0603 - one process-wide fact, set before any launch
    if not sys.flags.isolated:
        return refuse(None, Refuse(program="-", reason=NOT_ISOLATED))
    environment = dict(posix.environ)
    if jail is None:
        if getattr(sys, "frozen", False):  # the frozen scponly-py: never the environment's word
            report = frozen_start
        else:
            report = environment.get(requests.FRONT_VARIABLE.encode())
        problem = front_problem(report)
        if problem is not None:
            return refuse(None, Refuse(program="-", reason=problem))
        front_filtered = report == requests.FRONT_FILTERED
    try:
        request = requests.from_process(args, environment)
    except Refusal as refusal:
        return refuse(None, Refuse(program="-", reason=refusal.reason))
    try:
        loaded = load_config()
    except ConfigError as error:
        return refuse(request, Refuse(program="-", reason=f"configuration error: {error}"))
    if loaded.source == "toml":
        try:
            stale = "config.compiled is missing or stale; run 'scponly-py check-config' as root"
            audit.log(audit.format_line([("warning", stale)]), audit.WARNING)
        except audit.AuditError:
            pass  # the decision's own line below fails closed if logging is broken
    policy = effective_policy(loaded.config, request.user, request.groups)
    audit.use_format(policy.log_format)
    if trusted.systemd_booted():
        problem = trusted.user_manager_problem(request.home)
        if problem is not None:
            reason = USER_MANAGER.format(problem=problem, user=request.user)
            return refuse(request, Refuse(program="-", reason=reason), policy)
    if jail is not None:
        try:
            request = jail(request, policy)
        except Refusal as refusal:
            return refuse(request, Refuse(program="-", reason=refusal.reason))
    problem = place_problem(request, policy, None)
    if problem is not None:
        return refuse(request, Refuse(program="-", reason=problem), policy)
    if request.command is None and request.uid != 0 and "winscp" in policy.programs:
        # WinSCP's SCP mode opens an interactive session: answer its line
        # protocol with its own allowlist instead of refusing (opt-in).
        from scponly_py import winscp  # noqa: PLC0415 - only WinSCP sessions load it

        if policy.log_transfers:
            from scponly_py import supervise  # noqa: PLC0415 - scponly-pyc preloads it

            return supervise.run(request, "winscp", lambda _: winscp.serve(request, policy))
        return winscp.serve(request, policy)
    decision = decide(request, policy)
    if not decision.allowed:
        return refuse(request, decision, policy)  # type: ignore[arg-type]
    problem = place_problem(request, policy, decision.program)
    if problem is not None:
        return refuse(request, Refuse(program=decision.program, reason=problem), policy)
    try:
        audit.log(audit.line(request, decision, request.uid, debug=policy.log_level == "debug"))
    except audit.AuditError as error:
        return refuse(request, Refuse(program=decision.program, reason=f"audit log: {error}"))
    if policy.log_transfers:
        from scponly_py import supervise  # noqa: PLC0415 - scponly-pyc preloads it

        return supervise.run(
            request,
            decision.program,
            lambda ignored: execute(request, decision, ignored),  # type: ignore[arg-type]
        )
    return execute(request, decision)  # type: ignore[arg-type]


def place_problem(
    request: "Request",
    policy: "Policy",
    program: str | None,
    jail: str = "",
    *,
    missing_ok: bool = False,
) -> str | None:
    """Why a directory this login would use could be changed by another user now, or None.

    `program` None: the start directory (only with start_dir set), which must be root's or
    the account's from / down, not writable by group or others. "svnserve": svn_root's
    tree, root's (programs/svnserve.py). The trusted-path rule judges both; why:
    docs/design.md, "What a session can observe". `jail`: the host path of the account's
    jail, for checking from outside it (check-config), which passes `missing_ok`: a
    directory that does not exist is no risk yet (a login is refused: it cannot be used).
    """
    if program is None:
        if not policy.start_dir:
            return None
        path = f"{jail}{start_directory(request, policy)}"
        what = "start_dir"
    elif program == "svnserve" and policy.svn_root:
        path = f"{jail}{policy.svn_root}"
        what = "svn_root"
    else:
        return None
    if missing_ok and not _exists(path):
        return None
    if what == "start_dir":
        found = trusted.problems(path, owners=(0, request.uid))
    else:
        found = programs.grammar(program).root_problems(path)  # type: ignore[arg-type]
    if not found:
        return None
    where, why = found[0]
    return f"{what}: {where} {why}"


def _exists(path: str) -> bool:
    try:
        posix.stat(path)
    except FileNotFoundError:
        return False
    return True


def front_problem(status: bytes | None) -> str | None:
    """Why the front's report (SCPONLY_PY_FRONT) means this login must not go on, or None."""
    if status in (b"1", requests.FRONT_FILTERED):
        return None
    if status is None:
        return NO_FRONT
    return f"the login shell's front reports {requests.decode(status)!r}, {INSECURE_START}"


def fsencode(argument: str) -> bytes:
    """`os.fsencode` without importing os: the exact bytes the kernel passed."""
    return argument.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def main(argv: list[str] | None = None, frozen_start: bytes | None = None) -> int:
    """Console entry: admin subcommands, else a login; every failure is one line and exit 1."""
    try:
        hold_signals()
        ensure_standard_fds()
        arguments = (sys.argv if argv is None else argv)[1:]
        args = [fsencode(argument) for argument in arguments]
        if args and args[0] in ADMIN_COMMANDS:
            from scponly_py import cli  # noqa: PLC0415 - admin code stays off the login path

            return cli.run(arguments)
        return login(args, frozen_start=frozen_start)
    except BaseException as error:  # noqa: BLE001 - fail closed, never a traceback
        return internal_error(error)


def internal_error(error: BaseException) -> int:
    """The answer to any unexpected exception: one line, one log line, exit 1.

    The client learns nothing more; the log also gets an ImportError's message,
    which says which module could not be loaded.
    """
    say("scponly-py: refused: internal error")
    fields = [
        ("decision", "refuse"),
        ("uid", posix.getuid()),
        ("reason", "internal-error"),
        ("error", type(error).__name__),
    ]
    if isinstance(error, ImportError):
        fields.append(("detail", str(error)))
    try:
        audit.log(audit.format_line(fields), audit.WARNING)
    except BaseException:  # noqa: BLE001, S110 - nothing more can be done; still refusing
        pass
    return REFUSED
