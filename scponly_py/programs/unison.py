"""Unison's server side, exactly as the real client starts it over ssh.

Reference: unison 2.52.1 (Debian 12 package `unison`, 2.52+1). Recorded with
`unison -batch -sshcmd RECORDER a ssh://user@host//dir`, where RECORDER logs
the arguments it gets: the client runs
`RECORDER -l user host -e none unison -server __new-rpc-mode`, so the command
the login shell receives is `unison -server __new-rpc-mode`. Older clients
(before 2.52) send `unison -server`; `-servercmd PATH` replaces the first word
and `-addversionno` makes it `unison-2.52`. Client-side options such as
`-sshargs` and `-sshcmd` never reach the server.

So the grammar is two exact argument lists, nothing else:

    unison -server
    unison -server __new-rpc-mode

Everything else is refused. That matters because `unison` without `-server`
is a *client*: scponly 4.8 let `unison -sshcmd X ...` (two words) and
`unison -sshargs=-oProxyCommand=X ...` through, and the client then runs X
(`-rshcmd`, `-servercmd`, `-sshargs`, `-copyprog`, `-diff`, `-merge`,
`-addprefsto`, `-source`, `-include` and profiles can all run programs or
read user-written preference files). scponly CVE-2004-1162 (`-rsh`/`-sshcmd`
through unison) and CVE-2007-6350 (unison and rsync run subcommands) are the
history.

Policy: unison synchronises in both directions and can create symbolic links
(`-links`); neither can be restricted from the command line. It is therefore
refused for read-only and write-only accounts and when `links = false`,
rather than pretending to enforce those. The server keeps its archives in
`~/.unison` (HOME is the user's home, from the passwd entry; the `UNISON`
variable is never passed). With `-repeat watch` a 2.52 server starts
`unison-fsmonitor` found through PATH, which the child environment fixes to
`/usr/bin:/bin`.
"""

from scponly_py.outcome import Refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "unison"
# The only argument lists a real client sends after the program name.
SERVER_FORMS = (("-server",), ("-server", "__new-rpc-mode"))
# Options that make unison run a program or read a user-chosen file; named in
# the refusal so the log says why (everything not in SERVER_FORMS is refused anyway).
DANGEROUS = (
    "-sshcmd", "-rshcmd", "-sshargs", "-rshargs", "-servercmd", "-copyprog", "-copyprogrest",
    "-diff", "-merge", "-addprefsto", "-source", "-include", "-socket", "-rsh", "-ui",
    "-fsmonitor", "-backupdir", "-logfile", "-root",
)  # fmt: skip


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate a unison server command; return the argv (after argv[0]) to exec."""
    arguments = tuple(words[1:])
    if arguments not in SERVER_FORMS:
        for argument in arguments:
            option = argument.split("=", 1)[0]
            if option in DANGEROUS:
                raise Refusal(f"unison option {option} is not allowed (it runs programs)")
        raise Refusal("only the unison server ('unison -server') is allowed")
    if policy.access != "read-write":
        raise Refusal(f"unison cannot be limited to {policy.access}; refused for this account")
    if not policy.links:
        raise Refusal("unison can create symbolic links; it is refused when links are disabled")
    return list(arguments)
