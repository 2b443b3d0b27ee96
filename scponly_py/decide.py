"""The security decision: a pure function of (request, policy).

`decide()` reads no files, environment or clock; it tokenises the command,
finds the program, lets the program's grammar validate it and build the argv,
and returns `Allow` or `Refuse`. Tests, fuzzers and `scponly-py explain` call
it directly; the login shell calls exactly the same function.
"""

from scponly_py import programs, words
from scponly_py.outcome import Allow, Refusal, Refuse
from scponly_py.request import child_environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request


# Whole command strings that clients send to *find* sftp-server when the sftp
# subsystem is unavailable; each one runs the configured sftp-server, exactly as
# the plain `sftp-server` command does. They are compared as complete strings
# before tokenising (they contain `&&` and newlines, which the tokenizer
# refuses), so no shell syntax is ever interpreted: a probe that differs by one
# byte is tokenised like any command and refused.
LEGACY_SFTP_PROBES = frozenset(
    {
        # PuTTY psftp's fallback (psftp.c, psftp_connect); WinSCP sends the same
        # for SFTP-only sessions (core/SecureShell.cpp), phpseclib's SFTP too.
        "test -x /usr/lib/sftp-server && exec /usr/lib/sftp-server\n"
        "test -x /usr/local/lib/sftp-server && exec /usr/local/lib/sftp-server\n"
        "exec sftp-server",
    }
)


def _is_rc_file_run(command_words: list[str]) -> bool:
    """sshd runs ~/.ssh/rc as `shell -c '/bin/sh ~/.ssh/rc'` (absolute path since OpenSSH 8.x)."""
    return (
        len(command_words) == 2
        and command_words[0] == "/bin/sh"
        and (command_words[1] == ".ssh/rc" or command_words[1].endswith("/.ssh/rc"))
    )


def start_directory(request: "Request", policy: "Policy") -> str:
    """Where the program starts: HOME, or HOME/start_dir."""
    if not policy.start_dir:
        return request.home
    return f"{request.home.rstrip('/')}/{policy.start_dir}"


def decide(request: "Request", policy: "Policy") -> Allow | Refuse:
    """Allow exactly one exec, or refuse with a reason the client may read."""
    try:
        return _decide(request, policy)
    except Refusal as refusal:
        return Refuse(program="-", reason=refusal.reason)


def _decide(request: "Request", policy: "Policy") -> Allow | Refuse:
    if request.uid == 0:
        raise Refusal("root may not use this shell")
    if request.command is None:
        raise Refusal("interactive login")
    command = request.command
    if command in LEGACY_SFTP_PROBES:
        command = "sftp-server"
    command_words = words.split(command)
    if _is_rc_file_run(command_words):
        raise Refusal("~/.ssh/rc is not run for this account")
    name = programs.identify(command_words[0], policy.paths)
    if name is None:
        raise Refusal(f"command {command_words[0][:64]!r} is not allowed")
    if name not in policy.programs:
        return Refuse(program=name, reason=f"{name} is not enabled for this account")
    try:
        arguments = programs.grammar(name).check(command_words, policy, request)
        path = policy.path(programs.executable(name, command_words))
    except Refusal as refusal:
        return Refuse(program=name, reason=refusal.reason)
    return Allow(
        argv=(path, *arguments),
        cwd=start_directory(request, policy),
        env=child_environment(request, programs.child_home(name, request.home)),
        path=path,
        program=name,
        umask=policy.umask,
    )
