"""WinSCP's SCP mode: an opt-in line protocol in place of an interactive shell.

With the SCP protocol, WinSCP opens a *shell session* (no command, so the
login shell gets no `-c` and the request's mode is "interactive") and types
command lines into it. This module answers those lines itself, with an
allowlist, instead of refusing the interactive login. It is enabled by
`winscp` in the account's `programs`; transfers also need `scp` there,
because they go through the scp grammar and `decide()` like any scp login.

Reference: WinSCP's public source (github.com/winscp/winscp,
`source/core/ScpFileSystem.cpp`, `DefaultCommandSet`; `Common.cpp`,
`DelimitStr`; `SessionData.cpp` defaults; `SecureShell.cpp`, `SendLine`).
Every command line WinSCP sends has the form

    [echo "WinSCP: this is begin-of-file" ; ]COMMAND ; echo "WinSCP: this is end-of-file:RET"

on one line ending in "\\n" (the begin marker only for the two `scp`
transfers). RET is `0` until WinSCP has found the variable that holds the exit
status (it tries `echo "$status"`, then `echo "$?"`), then `$status` or `$?`;
both mean "the exit status of COMMAND" here. File names are double-quoted
with `$`, `\\`, backquote and `"` backslash-escaped, and a leading `-`
becomes `./-`; a directory starting with `~` is sent unquoted. The commands
of the default command set, with their exact templates, are:

    echo "$status" / echo "$?"          exit-status detection
    printenv LANG                       UTF-8 detection
    unalias "NAME"  unset "NAME"        start-up clean-up (each command, each locale variable)
    groups  pwd  cd  cd "DIR"           session state
    ls -la [--full-time] ["DIR"]        listing (ListingCommand, default `ls -la`)
    ls -la -d [--full-time] "FILE"      one file
    scp -r [-p] -d -t "DIR"             upload      scp -r [-p] -d -f "FILE"   download
    rm -f -r "FILE"   mv -f "A" "B"   mkdir "DIR"   chmod [-R] MODE "FILE"
    ln [-s] "TARGET" "NAME"   cp -p -r -f [-T] "A" "B"
    chgrp / chown / uname -a / checksums / custom commands   (refused here)

Design. `Session.handle(line)` is pure: it returns a list of actions and
touches no OS state (the directory check for `cd` is a function passed in).
The exit-status framing, `echo`, `pwd`, `cd`, `groups`, `printenv`, `unset`,
`unalias` and `exit` are answered internally, so nothing is looked up in the
current directory or PATH: scponly executed `cd` as a program and an uploaded
`./cd` ran. Every other command is parsed with the shell tokenizer (which
refuses `;`, `&&`, `|`, `$`, globs, …), checked by a small allowlist grammar
per program, checked against the account's access mode, and then run by the
absolute path from the policy's [paths] with `--` before every operand and the
same scrubbed environment as any login (`request.child_environment`), minus the variables
WinSCP `unset`. `scp` goes through `decide()` itself (the scp grammar, server
mode, access checks); the `-d` of WinSCP's download form (`scp -r -d -f`),
which OpenSSH's scp ignores when sending and the scp grammar refuses, is
dropped first. Each command produces one audit line (builtins included).
Transfers through a shell session are not confined any further than scp's
own: the account's uid (and, for scponly-pyc, the jail) is the boundary, as
for scp and sftp logins. The shell chooses WinSCP mode only for an
interactive login of a non-root account whose `programs` contain `winscp`.

Access: read-only accounts may list and download (`ls`, `scp -f`); write-only
accounts may upload and modify but not list or download (as sftp's write-only
deny list); `ln` needs `links = true`; `cp` reads and can copy symbolic links,
so it needs read-write and links. `chmod` accepts the modes WinSCP produces
(octal, or `u+rw-x,g+r`-style clauses) except set-user-ID/set-group-ID bits.

`serve()` is the thin impure runner: it reads standard input unbuffered up to
each newline (so an `scp` child gets every byte after its command line), runs
children with fork and the login's own exec step (`shell.launch`: set-id
filter, signals, umask, cwd, environment; never a shell) sharing the
session's stdio, and
fails closed: an over-long line or a log line that cannot be written ends the
session with status 1.
"""

import posix

from scponly_py import audit, words
from scponly_py import request as requests
from scponly_py.decide import decide, start_directory
from scponly_py.outcome import Allow, Refusal
from scponly_py.shell import launch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from scponly_py.policy import Policy
    from scponly_py.request import Request

FIRST_LINE = "WinSCP: this is begin-of-file"
LAST_LINE = "WinSCP: this is end-of-file"
SEPARATOR = " ; "
FIRST_COMMAND = f'echo "{FIRST_LINE}"'
LAST_COMMAND = f'echo "{LAST_LINE}:'
RETURN_VARIABLES = ("0", "$status", "$?")
STATUS_QUERIES = frozenset({'echo "$status"', 'echo "$?"'})
MAX_LINE = words.MAX_COMMAND_LENGTH
MAX_OPERANDS = 64
FLAG = words.flag()
REFUSED_STATUS = 1

# Action tags. An action is a tuple whose first item is one of these.
WRITE = "write"  # (WRITE, fd, text)
RUN = "run"  # (RUN, Allow): run it; its exit status becomes the session's
END = "end"  # (END, variable): write "WinSCP: this is end-of-file:<value>\n"
LOG = "log"  # (LOG, priority, text): one audit line; failure ends the session
EXIT = "exit"  # (EXIT, status)

NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
NAME_CHARACTERS = NAME_START | frozenset("0123456789")


class Session:
    """The state of one SCP-mode session: current directory, last status, unset variables."""

    def __init__(
        self, request: "Request", policy: "Policy", is_directory: "Callable[[str], bool]"
    ) -> None:
        self.request = request
        self.policy = policy
        self.is_directory = is_directory
        self.cwd = normalise(start_directory(request, policy))
        self.status = 0
        self.unset: set[str] = set()

    # ---- framing ----

    def handle(self, line: str) -> list[tuple]:
        """The actions that answer one line (without its newline)."""
        first, body, variable = split_frame(line)
        actions: list[tuple] = []
        if first:
            actions.append((WRITE, 1, FIRST_LINE + "\n"))
        if body.strip(" \t"):
            actions += self.command(body)
        if variable is not None:
            actions.append((END, variable))
        return actions

    def last_line(self, variable: str) -> str:
        """The end-of-file marker with the value of `variable` (now, after the command ran)."""
        value = variable if variable == "0" else str(self.status)
        return f"{LAST_LINE}:{value}\n"

    # ---- one command ----

    def command(self, body: str) -> list[tuple]:
        stripped = body.strip(" \t")
        if stripped in STATUS_QUERIES:
            actions = [(WRITE, 1, f"{self.status}\n"), *self._log_builtin("echo", stripped)]
            self.status = 0
            return actions
        try:
            command_words = words.split(self._expand_tilde(stripped))
            name = command_words[0]
            builtin = BUILTINS.get(name)
            if builtin is not None:
                return [*self._log_builtin(name, stripped), *builtin(self, command_words)]
            if name not in TOOLS and name != "scp":
                raise Refusal(f"command {name[:64]!r} is not allowed in WinSCP mode")
            decision = self._decide_program(name, command_words, stripped)
        except Refusal as refusal:
            self.status = REFUSED_STATUS
            return [
                self._log("refuse", "-", stripped, reason=refusal.reason),
                (WRITE, 2, f"scponly-py: refused: {refusal.reason}\n"),
            ]
        return [self._log("allow", decision.program, stripped, argv=decision.argv), (RUN, decision)]

    def _decide_program(self, name: str, command_words: list[str], body: str) -> Allow:
        if name == "scp":
            decision = decide(
                self.request.replace(command=_scp_command(command_words), mode="winscp"),
                self.policy,
            )
            if not decision.allowed:
                raise Refusal(decision.reason)  # type: ignore[union-attr]
            if decision.program != "scp":
                raise Refusal("only scp transfers are allowed here")
            program = "scp"
            path = decision.path  # type: ignore[union-attr]
            arguments = list(decision.argv[1:])  # type: ignore[union-attr]
        else:
            grammar, needs = TOOLS[name]
            self._check_access(name, needs)
            arguments = grammar(command_words[1:])
            program = name
            path = self.policy.path(name)
        if not path.startswith("/"):
            raise Refusal(f"{program} has no absolute path in the configuration")
        environment = tuple(
            (variable, value)
            for variable, value in requests.child_environment(self.request, self.request.home)
            if variable not in self.unset
        )
        return Allow(
            argv=(path, *arguments),
            cwd=self.cwd,
            env=environment,
            path=path,
            program=f"winscp:{program}",
            umask=self.policy.umask,
        )

    def _check_access(self, name: str, needs: str) -> None:
        access = self.policy.access
        if needs == "read" and access == "write-only":
            raise Refusal(f"{name} is not allowed for this account (write-only)")
        if needs in ("write", "link") and access == "read-only":
            raise Refusal(f"{name} is not allowed for this account (read-only)")
        if needs == "copy" and access != "read-write":
            raise Refusal(f"{name} is not allowed for this account ({access})")
        if needs in ("link", "copy") and not self.policy.links:
            raise Refusal(f"{name} is not allowed for this account (links are disabled)")

    def _expand_tilde(self, body: str) -> str:
        """WinSCP sends `cd ~/dir` unquoted; `~` alone or `~/` means HOME, `~user` is refused."""
        if not body.startswith("cd ~"):
            return body
        rest = body[4:]
        if rest and rest[0] not in "/ \t":
            raise Refusal("cd ~user is not supported")
        return "cd " + words.quote(self.request.home) + rest

    def _log_builtin(self, name: str, command: str) -> list[tuple]:
        """Built-ins run nothing: logged only with log_level = "debug" (a start-up sends ~30)."""
        if self.policy.log_level != "debug":
            return []
        return [self._log("allow", name, command)]

    def fields(self, decision: str, program: str) -> list[tuple[str, object]]:
        """The leading fields of this session's log lines."""
        request = self.request
        return [
            ("decision", decision),
            ("user", request.user),
            ("uid", request.uid),
            ("client", request.client),
            ("mode", "winscp"),
            ("session", audit.session_id()),
            ("program", program),
            ("cwd", self.cwd),
        ]

    def _log(self, decision: str, program: str, command: str, **extra: object) -> tuple:
        fields = self.fields(decision, program)
        if "argv" in extra:
            fields.append(("argv", words.join(extra["argv"])))  # type: ignore[arg-type]
        if "reason" in extra:
            fields.append(("reason", extra["reason"]))
        fields.append(("command", command))
        priority = audit.INFO if decision == "allow" else audit.NOTICE
        return (LOG, priority, audit.format_line(fields))

    def finished(self, status: int) -> None:
        """The runner reports a child's exit status."""
        self.status = status


def _scp_command(command_words: list[str]) -> str:
    """The scp command for `decide()`: WinSCP's download form minus its meaningless `-d`.

    WinSCP downloads with `scp -r [-p] -d -f "FILE"`. OpenSSH's scp uses `-d`
    only when receiving (`-t`), and the scp grammar refuses `-d` with `-f`, so
    a stand-alone `-d` word before the operands of an `-f` command is dropped;
    the result is checked and exec'd like any scp login.
    """
    index = 1
    while index < len(command_words):
        word = command_words[index]
        if word == "--" or not word.startswith("-") or word == "-":
            break
        index += 1
    options, operands = command_words[1:index], command_words[index:]
    if "-f" in options:
        options = [option for option in options if option != "-d"]
    return words.join(["scp", *options, *operands])


def split_frame(line: str) -> tuple[bool, str, str | None]:
    """(begin marker requested?, the command, end-marker variable or None)."""
    first = False
    body = line
    if body.startswith(FIRST_COMMAND + SEPARATOR):
        first = True
        body = body[len(FIRST_COMMAND + SEPARATOR) :]
    variable = _end_variable(body)
    if variable is not None:
        return first, "", variable
    position = body.rfind(SEPARATOR + LAST_COMMAND)
    if position >= 0:
        variable = _end_variable(body[position + len(SEPARATOR) :])
        if variable is not None:
            return first, body[:position], variable
    return first, body, None


def _end_variable(text: str) -> str | None:
    for variable in RETURN_VARIABLES:
        if text == f'{LAST_COMMAND}{variable}"':
            return variable
    return None


def normalise(path: str) -> str:
    """A lexically normalised absolute path (`.`, `..`, `//` resolved, as bash's logical cd)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


# ---- builtins: (session, words) -> actions; each sets session.status ----


def _pwd(session: Session, command_words: list[str]) -> list[tuple]:
    if len(command_words) != 1:
        raise Refusal("pwd takes no arguments here")
    session.status = 0
    return [(WRITE, 1, session.cwd + "\n")]


def _cd(session: Session, command_words: list[str]) -> list[tuple]:
    if len(command_words) > 2:
        raise Refusal("cd takes one directory")
    target = command_words[1] if len(command_words) == 2 else session.request.home
    if target in ("", "-"):
        raise Refusal(f"cd {target!r} is not supported")
    base = "" if target.startswith("/") else session.cwd + "/"
    path = normalise(base + target)
    if not session.is_directory(path):
        session.status = 1
        return [(WRITE, 2, f"cd: {target}: No such directory or not accessible\n")]
    session.cwd = path
    session.status = 0
    return []


def _echo(session: Session, command_words: list[str]) -> list[tuple]:
    session.status = 0
    return [(WRITE, 1, " ".join(command_words[1:]) + "\n")]


def _groups(session: Session, command_words: list[str]) -> list[tuple]:
    if len(command_words) != 1:
        raise Refusal("groups takes no arguments here")
    session.status = 0
    return [(WRITE, 1, " ".join(session.request.groups) + "\n")]


def _printenv(session: Session, command_words: list[str]) -> list[tuple]:
    if len(command_words) != 2:
        raise Refusal("printenv takes one variable name here")
    environment = dict(requests.child_environment(session.request, session.request.home))
    name = command_words[1]
    if name in session.unset or name not in environment:
        session.status = 1
        return []
    session.status = 0
    return [(WRITE, 1, environment[name] + "\n")]


def _variable_names(command_words: list[str], what: str) -> list[str]:
    names = command_words[1:]
    for name in names:
        if not name or name[0] not in NAME_START or not all(c in NAME_CHARACTERS for c in name):
            raise Refusal(f"{what}: {name[:64]!r} is not a valid name")
    return names


def _unset(session: Session, command_words: list[str]) -> list[tuple]:
    session.unset.update(_variable_names(command_words, "unset"))
    session.status = 0
    return []


def _unalias(session: Session, command_words: list[str]) -> list[tuple]:
    _variable_names(command_words, "unalias")  # there are no aliases to remove
    session.status = 0
    return []


def _exit(session: Session, command_words: list[str]) -> list[tuple]:
    if len(command_words) > 2:
        raise Refusal("exit takes at most one status")
    status = session.status
    if len(command_words) == 2:
        raw = command_words[1]
        if not raw or len(raw) > 3 or not all("0" <= char <= "9" for char in raw):
            raise Refusal("exit status must be a number")
        status = int(raw) & 0xFF
    return [(EXIT, status)]


BUILTINS: "dict[str, Callable[[Session, list[str]], list[tuple]]]" = {
    "pwd": _pwd,
    "cd": _cd,
    "echo": _echo,
    "groups": _groups,
    "printenv": _printenv,
    "unset": _unset,
    "unalias": _unalias,
    "exit": _exit,
}


# ---- program grammars: arguments -> argv after the program path ----


def _options(
    program: str, arguments: list[str], letters: str, long_options: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """Leading option words, read letter by letter (`words.parse_options`, every letter a
    flag); the rest are operands (after `--`)."""
    table = dict.fromkeys(letters, FLAG)
    options, operands = words.parse_options(program, arguments, table, {}, long_options)
    seen = [name if name.startswith("--") else f"-{name}" for name, _ in options]
    if len(operands) > MAX_OPERANDS:
        raise Refusal(f"{program} takes at most {MAX_OPERANDS} names")
    if any(operand == "" for operand in operands):
        raise Refusal(f"{program}: empty file name")
    return seen, operands


def _flags(seen: list[str], order: tuple[str, ...]) -> list[str]:
    return [flag for flag in order if flag in seen]


def _operand_count(program: str, operands: list[str], low: int, high: int) -> None:
    if not low <= len(operands) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise Refusal(f"{program} takes {expected} file names here")


def _ls(arguments: list[str]) -> list[str]:
    seen, operands = _options("ls", arguments, "ladA", ("--full-time",))
    return [*_flags(seen, ("-l", "-a", "-A", "-d", "--full-time")), "--", *operands]


def _mode(raw: str) -> str:
    """An octal mode (3 to 5 digits) or symbolic clauses such as `u+rw-x,g+r,o=`.

    Modes that set the set-user-ID or set-group-ID bit are refused: an account
    restricted to file transfer has no reason to create such files.
    """
    if raw and all("0" <= char <= "7" for char in raw):
        if not 3 <= len(raw) <= 5 or int(raw, 8) > 0o7777:
            raise Refusal(f"chmod mode {raw!r} is not a valid octal mode")
        if int(raw, 8) & 0o6000:
            raise Refusal("chmod may not set the set-user-ID or set-group-ID bit")
        return raw
    if "s" in raw:
        raise Refusal("chmod may not set the set-user-ID or set-group-ID bit")
    for clause in raw.split(","):
        index = 0
        while index < len(clause) and clause[index] in "ugoa":
            index += 1
        if index == len(clause):
            raise Refusal(f"chmod mode {raw[:64]!r} is not valid")
        while index < len(clause):
            if clause[index] not in "+-=":
                raise Refusal(f"chmod mode {raw[:64]!r} is not valid")
            index += 1
            while index < len(clause) and clause[index] in "rwxXst":
                index += 1
    return raw


def _chmod(arguments: list[str]) -> list[str]:
    # Modes like `-w` look like options: only `-R` may come before the mode.
    recursive = arguments[:1] == ["-R"]
    rest = arguments[1:] if recursive else arguments
    if rest[:1] == ["--"]:
        rest = rest[1:]
    _operand_count("chmod", rest, 2, 2)
    mode, name = rest
    if name == "":
        raise Refusal("chmod: empty file name")
    return [*(["-R"] if recursive else []), "--", _mode(mode), name]


def _mkdir(arguments: list[str]) -> list[str]:
    _, operands = _options("mkdir", arguments, "")
    _operand_count("mkdir", operands, 1, 1)
    return ["--", *operands]


def _rm(arguments: list[str]) -> list[str]:
    seen, operands = _options("rm", arguments, "frR")
    _operand_count("rm", operands, 1, MAX_OPERANDS)
    flags = ["-f"] if "-f" in seen else []
    if "-r" in seen or "-R" in seen:
        flags.append("-r")
    return [*flags, "--", *operands]


def _mv(arguments: list[str]) -> list[str]:
    seen, operands = _options("mv", arguments, "f")
    _operand_count("mv", operands, 2, 2)
    return [*_flags(seen, ("-f",)), "--", *operands]


def _ln(arguments: list[str]) -> list[str]:
    seen, operands = _options("ln", arguments, "s")
    _operand_count("ln", operands, 2, 2)
    return [*_flags(seen, ("-s",)), "--", *operands]


def _cp(arguments: list[str]) -> list[str]:
    seen, operands = _options("cp", arguments, "prfRT")
    _operand_count("cp", operands, 2, 2)
    flags = _flags(seen, ("-p", "-f", "-T"))
    if "-r" in seen or "-R" in seen:
        flags.insert(0, "-R")
    return [*flags, "--", *operands]


# name -> (grammar, what the account needs: read | write | link | copy)
TOOLS: "dict[str, tuple[Callable[[list[str]], list[str]], str]]" = {
    "ls": (_ls, "read"),
    "chmod": (_chmod, "write"),
    "mkdir": (_mkdir, "write"),
    "rm": (_rm, "write"),
    "mv": (_mv, "write"),
    "ln": (_ln, "link"),
    "cp": (_cp, "copy"),
}


# ---- the impure runner ----


class LineTooLong(Exception):
    """A line longer than MAX_LINE: the session ends (fail closed)."""


def read_line(fd: int = 0) -> bytes | None:
    """One line without its newline, read a byte at a time (never past the newline); None at EOF."""
    buffer = bytearray()
    while True:
        byte = posix.read(fd, 1)
        if not byte:
            return bytes(buffer) if buffer else None
        if byte == b"\n":
            return bytes(buffer)
        buffer += byte
        if len(buffer) > MAX_LINE:
            raise LineTooLong


def _write(fd: int, text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    while data:
        written = posix.write(fd, data)
        data = data[written:]


def _is_directory(path: str) -> bool:
    try:
        info = posix.stat(path)
    except OSError:
        return False
    return (info.st_mode & 0o170000) == 0o040000 and posix.access(path, posix.X_OK)


def _run(decision: Allow) -> int:
    """Fork, `shell.launch` the decided program with the session's stdio; its exit status.

    Plain fork/waitpid from the built-in `posix` module rather than
    `subprocess`, which the frozen login binaries leave out and which costs an
    import; the child takes exactly the login's exec steps (no shell, no PATH
    search) and exits 126 if one fails.
    """
    if not decision.path.startswith("/") or decision.argv[0] != decision.path:
        return REFUSED_STATUS  # unreachable by construction; never run a relative program
    pid = posix.fork()
    if pid == 0:  # the child: exec or exit, never return into the session loop
        try:
            reason = launch(decision)
        except BaseException as error:  # noqa: BLE001 - report and leave the child
            reason = f"cannot run {decision.path}: {type(error).__name__}"
        try:
            _write(2, f"scponly-py: {reason}\n")
        finally:
            posix._exit(126)
    _, status = posix.waitpid(pid, 0)
    code = posix.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def serve(request: "Request", policy: "Policy", fd: int = 0) -> int:
    """Run one SCP-mode session on the process's stdio; return the exit status."""
    session = Session(request, policy, _is_directory)
    start = [*session.fields("allow", "winscp"), ("argv", "session-start")]
    try:
        audit.log(audit.format_line(start))
    except audit.AuditError as error:
        _write(2, f"scponly-py: refused: audit log: {error}\n")
        return REFUSED_STATUS
    while True:
        try:
            raw = read_line(fd)
        except LineTooLong:
            _write(2, f"scponly-py: refused: line longer than {MAX_LINE} bytes\n")
            return REFUSED_STATUS
        if raw is None:
            return session.status
        for action in session.handle(raw.decode("utf-8", "surrogateescape")):
            tag = action[0]
            if tag == WRITE:
                _write(action[1], action[2])
            elif tag == END:
                _write(1, session.last_line(action[1]))
            elif tag == LOG:
                try:
                    audit.log(action[2], action[1])
                except audit.AuditError as error:
                    _write(2, f"scponly-py: refused: audit log: {error}\n")
                    return REFUSED_STATUS
            elif tag == RUN:
                session.finished(_run(action[1]))
            elif tag == EXIT:
                return action[1]
