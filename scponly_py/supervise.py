"""The session supervisor: the login, forked right before the exec, watches its program.

With `log_transfers` (the default) the login forks after its decision line:
the child runs `shell.launch(decision)` (or, in WinSCP mode, the whole
`winscp.serve` session) with the client's stdin and stdout, so the transfer's
stream never passes through here; this process (the shell
itself: chrooted and unprivileged in scponly-pyc, holding the syslog socket
connected before the chroot) closes its copies of them and:

- for sftp-server (run with `-e -l LEVEL` by the sftp grammar) receives its
  stderr through a SOCK_SEQPACKET pair, one record per log message, so a file
  name with a newline cannot forge a second message; `operation()` turns each
  per-file message into the project's own line; any other message is passed to
  the client's stderr unchanged;
- forwards SIGHUP, SIGINT, SIGQUIT and SIGTERM to the child;
- when the child has ended and been reaped, counts its I/O from this
  process's own /proc/self/io (the kernel adds a reaped child's counters to
  its parent's): the difference since the fork, less what this process read
  and wrote itself. The fd is opened before any chroot and privilege drop: a
  process may always read its own counters through it, while the child's own
  file is root's (sftp-server makes itself non-dumpable; so is scponly-pyc's
  child before its exec); logs the end line and exits as the child did.

Syslog sends never block: lines wait in a bounded buffer while the daemon is
not reading and are dropped beyond it, counted in the end line's `dropped`.
Why, and what is lost if this process dies: docs/design.md, "Who transferred what".
"""

import _signal
import _socket
import posix
import select
import time

from scponly_py import audit, shell

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from scponly_py.request import Request

# comm (PR_SET_NAME, at most 15 bytes): how `scponly-py-setup sessions` finds supervisors;
# a session whose id is random (no /proc at login) is named UNLISTED_NAME.
NAME = b"scponly-py-sup"
UNLISTED_NAME = b"scponly-py-supr"
PR_SET_NAME = 15
PR_SET_DUMPABLE = 4
FORWARDED = (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGTERM)
SIGNAL_NAMES = {
    _signal.SIGHUP: "HUP", _signal.SIGINT: "INT", _signal.SIGQUIT: "QUIT",
    _signal.SIGABRT: "ABRT", _signal.SIGKILL: "KILL", _signal.SIGSEGV: "SEGV",
    _signal.SIGPIPE: "PIPE", _signal.SIGALRM: "ALRM", _signal.SIGTERM: "TERM",
    _signal.SIGUSR1: "USR1", _signal.SIGUSR2: "USR2", _signal.SIGXFSZ: "XFSZ",
}  # fmt: skip
BACKLOG_BYTES = 256 * 1024  # syslog lines waiting while the daemon does not read
FINAL_FLUSH = 0.5  # seconds the last lines, then the end line, may wait for a slow daemon
RECORD = 4096  # one sftp-server message is at most 1024 bytes (log.c MSGBUFSIZ)

# sftp-server's per-operation messages (OpenSSH 9.2 sftp-server.c, logit/verbose):
# first word -> (our event, layout). "path": `"P"` then a tail without a quote;
# "name": `name "P"` then such a tail; "pair": `old "A" new "B"` (path B, target A,
# except rename's path A, target B).
OPERATIONS: dict[bytes, tuple[str, str]] = {
    b"open": ("open", "path"),
    b"close": ("close", "path"),
    b"set": ("setstat", "path"),
    b"remove": ("remove", "name"),
    b"mkdir": ("mkdir", "name"),
    b"rmdir": ("rmdir", "name"),
    b"rename": ("rename", "pair"),
    b"posix-rename": ("rename", "pair"),
    b"symlink": ("symlink", "pair"),
    b"hardlink": ("hardlink", "pair"),
    b"opendir": ("opendir", "path"),
    b"stat": ("stat", "name"),
    b"lstat": ("lstat", "name"),
    b"realpath": ("realpath", "path"),
}
# Messages that carry nothing for the log (our own decision and end lines say it).
CHATTER = (
    b"session opened for local user ",
    b"session closed for local user ",
    b"received client version ",
    b"sent status ",
    b"closedir ",
    b"users-groups-by-id",
)
OPEN_FLAGS = {
    b"READ": "read", b"WRITE": "write", b"APPEND": "append", b"CREATE": "create",
    b"TRUNCATE": "truncate", b"EXCL": "exclusive",
}  # fmt: skip


def unvis(raw: bytes) -> str:
    """Undo OpenSSH's stderr vis encoding (VIS_SAFE | VIS_OCTAL: `\\\\` and `\\ooo`)."""
    out = bytearray()
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte == 0x5C and raw[index + 1 : index + 2] == b"\\":
            out.append(0x5C)
            index += 2
        elif (
            byte == 0x5C
            and len(raw[index + 1 : index + 4]) == 3
            and all(0x30 <= digit <= 0x37 for digit in raw[index + 1 : index + 4])
        ):
            out.append(int(raw[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            out.append(byte)
            index += 1
    return out.decode("utf-8", "surrogateescape")


def operation(record: bytes) -> "list[tuple[str, object]] | None":
    """The fields of one sftp-server message: [] for chatter, None if it is not a log message.

    An operation whose text cannot be split unambiguously (a name holding the
    separator, a message cut at 1024 bytes) keeps its raw text as `detail`.
    """
    text = record.removesuffix(b"\n").removesuffix(b"\r")
    if text.startswith(CHATTER):
        return []
    verb, _, rest = text.partition(b" ")
    if verb not in OPERATIONS:
        return None
    event, layout = OPERATIONS[verb]
    fields: list[tuple[str, object]] = [("event", event)]
    parsed = _split(layout, rest)
    if parsed is None:
        return [*fields, ("detail", unvis(text))]
    paths, tail = parsed
    if layout == "pair":
        target, path = paths
        if event == "rename":
            path, target = target, path
        return [*fields, ("path", path), ("target", target)]
    fields.append(("path", paths[0]))
    words = tail.split()
    if event == "open" and len(words) == 4 and words[0] == b"flags":
        flags = words[1].split(b",")
        fields.append(("mode", ",".join(OPEN_FLAGS.get(flag, "?") for flag in flags)))
    elif event == "close" and len(words) == 5 and words[:2] == [b"bytes", b"read"]:
        fields += [("bytes_read", int(words[2])), ("bytes_written", int(words[4]))]
    elif event == "setstat" and tail:
        fields.append(("change", unvis(tail)))
    return fields


def _split(layout: str, rest: bytes) -> "tuple[tuple[str, ...], bytes] | None":
    """The unvis'ed path(s) and the tail of a message's remainder, or None if ambiguous."""
    if layout == "name":
        if not rest.startswith(b"name "):
            return None
        rest = rest[5:]
    if layout == "pair":
        if not (rest.startswith(b'old "') and rest.endswith(b'"')) or rest.count(b'" new "') != 1:
            return None
        old, new = rest[5:-1].split(b'" new "')
        return (unvis(old), unvis(new)), b""
    end = rest.rfind(b'"')
    if not rest.startswith(b'"') or end < 1 or b'"' in rest[end + 1 :]:
        return None
    tail = rest[end + 1 :]
    if tail and not tail.startswith(b" "):
        return None
    if tail and not all(0x20 <= byte < 0x7F for byte in tail):
        return None
    return (unvis(rest[1:end]),), tail.strip()


class Outbox:
    """Syslog lines sent without ever blocking: a bounded backlog, then counted drops."""

    def __init__(self, channel: _socket.socket) -> None:
        channel.setblocking(False)
        self.channel = channel
        self.backlog: list[bytes] = []
        self.size = 0
        self.dropped = 0

    def put(self, text: str, priority: int = audit.INFO) -> None:
        """Queue one line (or count it dropped if the backlog is full) and try to send."""
        data = audit.message(text, priority)
        if self.size + len(data) > BACKLOG_BYTES:
            self.dropped += 1
            return
        self.backlog.append(data)
        self.size += len(data)
        self.flush()

    def flush(self) -> None:
        """Send what the daemon accepts now; a line it refuses outright is a drop."""
        while self.backlog:
            data = self.backlog[0]
            try:
                self.channel.send(data)
            except BlockingIOError:
                return
            except OSError:
                self.dropped += 1  # socket gone (daemon restarted; no /dev/log in a jail)
            self.backlog.pop(0)
            self.size -= len(data)

    def drain(self, seconds: float) -> None:
        """Flush, waiting at most `seconds` for the daemon; what is left is dropped."""
        deadline = time.monotonic() + seconds
        poller = select.poll()
        poller.register(self.channel.fileno(), select.POLLOUT)
        self.flush()
        while self.backlog and (left := deadline - time.monotonic()) > 0:
            poller.poll(int(left * 1000) + 1)
            self.flush()
        self.dropped += len(self.backlog)
        self.backlog.clear()
        self.size = 0


def prctl(*arguments: object) -> None:
    """prctl(2) through `_ctypes`, as setid does; best effort (the result is not needed).

    Rarely needed (no /proc, a signal's end), so `_ctypes` (~1 M instructions) is imported
    here; scponly-pyc has it already (chroot_shell preloads setid).
    """
    import _ctypes  # noqa: PLC0415 - off the common path

    function = _ctypes.dlsym(_ctypes.dlopen(None, posix.RTLD_NOW), "prctl")
    _ctypes.call_function(function, arguments)


def name_process(name: bytes) -> None:
    """Set this process's comm, by which `sessions` finds it: through /proc/self/comm (opened
    by `open_self_io`), else (no /proc: ChrootDirectory jails) prctl(PR_SET_NAME)."""
    open_self_io()
    try:
        posix.write(_self_io[1], name)
    except OSError:
        prctl(PR_SET_NAME, name + b"\0", 0, 0, 0)


# This process's /proc/self/io and /proc/self/comm, opened before any chroot
# (`open_self_io`); -1 for one that cannot be opened.
_self_io: list[int] = []


def open_self_io() -> None:
    """Keep fds on /proc/self/io (the end line's byte counts) and /proc/self/comm (the name)."""
    if not _self_io:
        for name, flags in (("io", posix.O_RDONLY), ("comm", posix.O_WRONLY)):
            try:
                _self_io.append(posix.open(f"/proc/self/{name}", flags | posix.O_CLOEXEC))
            except OSError:
                _self_io.append(-1)


def self_io() -> "tuple[int, int, int] | None":
    """(rchar, wchar, bytes this read itself added to rchar) of this process, or None."""
    open_self_io()
    try:
        data = posix.pread(_self_io[0], 4096, 0)
        counters = dict(line.split(b": ") for line in data.splitlines() if b": " in line)
        return int(counters[b"rchar"]), int(counters[b"wchar"]), len(data)
    except (OSError, KeyError, ValueError):
        return None


def run(request: "Request", program: str, start: "Callable[[tuple[int, ...]], int]") -> int:
    """Fork: the child runs `start(ignored)`, which becomes the program; this process supervises.

    `start` is `shell.execute` for a login's decision (it returns only if the
    exec fails) or WinSCP mode's whole session (`winscp.serve`, whose commands
    are its own children); `ignored` are signals to leave ignored across the
    exec. Ends this process with the child's exit status, or by the child's
    signal, without the interpreter's finalization (nothing is buffered; it
    would hold sshd's end of the session for ~2 ms). Returns 1 (refusing, with
    one line) only if the fork itself fails.
    """
    audit.session_id()  # the login's, before the child (another PID) could read its own
    transfers = program == "sftp"
    ours = theirs = None
    if transfers:
        ours, theirs = _socket.socketpair(
            _socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC
        )
    started = time.monotonic()
    before = self_io()
    try:
        pid = posix.fork()
    except OSError as error:
        reason = f"cannot start {program}: {error.strerror}"
        return shell.refuse(request, shell.Refuse(program=program, reason=reason))
    if pid == 0:
        _child(start, theirs)
    if theirs is not None:
        theirs.close()
    for fd in (0, 1):
        posix.close(fd)
    posix._exit(_supervise(request, program, pid, stream=ours, started=started, before=before))


def _child(start: "Callable[[tuple[int, ...]], int]", stderr: "_socket.socket | None") -> None:
    """The forked child: run `start`, then exit with its status; never returns.

    sftp-server keeps SIGPIPE ignored: should the supervisor die, its log writes
    then fail with EPIPE instead of ending the transfer.
    """
    status = 126
    try:
        ignored: tuple[int, ...] = ()
        if stderr is not None:
            posix.dup2(stderr.fileno(), 2)
            ignored = (_signal.SIGPIPE,)
        status = start(ignored)
    except BaseException as error:  # noqa: BLE001 - one line, never a traceback
        status = shell.internal_error(error)
    finally:
        posix._exit(status)


def _supervise(
    request: "Request",
    program: str,
    pid: int,
    *,
    stream: "_socket.socket | None",
    started: float,
    before: "tuple[int, int, int] | None",
) -> int:
    session = audit.session_id()
    name_process(UNLISTED_NAME if session.startswith("r") else NAME)
    common: list[tuple[str, object]] = [
        ("session", session),
        ("user", request.user),
        ("client", request.client),
    ]
    outbox = Outbox(audit.channel())
    wake_read, wake_write = posix.pipe2(posix.O_NONBLOCK | posix.O_CLOEXEC)
    received: list[int] = []
    for number in (*FORWARDED, _signal.SIGCHLD):
        _signal.signal(number, lambda number, _frame: received.append(number))
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    _signal.set_wakeup_fd(wake_write)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())

    poller = select.poll()
    poller.register(wake_read, select.POLLIN)
    own = Own()
    if stream is not None:
        stream.setblocking(False)
        poller.register(stream.fileno(), select.POLLIN)
    writing = False
    ended = _exited(pid)
    while ended is None:
        if bool(outbox.backlog) != writing:
            writing = not writing
            poller.register(outbox.channel.fileno(), select.POLLOUT if writing else 0)
        for fd, _ in poller.poll():
            if fd == wake_read:
                own.read += _drain_pipe(wake_read)
            elif stream is not None and fd == stream.fileno():
                if not _read_stream(stream, outbox, common, own):
                    poller.unregister(fd)
            else:
                outbox.flush()
        while received:
            number = received.pop(0)
            if number != _signal.SIGCHLD:
                _kill(pid, number)
        ended = _exited(pid)
    if stream is not None:  # what the child wrote before it ended
        _read_stream(stream, outbox, common, own)
    _, status = posix.waitpid(pid, 0)
    _signal.set_wakeup_fd(-1)
    own.read += _drain_pipe(wake_read)
    rchar, wchar = own.child_io(before, self_io())
    end = [("event", "end"), *common, ("program", program)]
    code = posix.waitstatus_to_exitcode(status)
    end.append(("status", code) if code >= 0 else ("signal", SIGNAL_NAMES.get(-code, -code)))
    end += [
        ("duration", f"{time.monotonic() - started:.3f}"),
        ("bytes_read", rchar),
        ("bytes_written", wchar),
    ]
    # The session's own lines first (a busy daemon gets FINAL_FLUSH to take them), then the
    # end line; it may be dropped too: `dropped` counts the lines before it.
    outbox.drain(FINAL_FLUSH)
    outbox.put(audit.format_line([*end, ("dropped", outbox.dropped)]))
    outbox.drain(FINAL_FLUSH)
    return _leave(code)


class Own:
    """Bytes this process moved through read/write itself, which /proc/self/io also counts.

    Each byte read from the signal wake-up pipe was written there by the signal
    handler (the C part, a write(2)): it counts on both sides.
    """

    def __init__(self) -> None:
        self.read = 0
        self.written = 0

    def child_io(
        self, before: "tuple[int, int, int] | None", after: "tuple[int, int, int] | None"
    ) -> tuple[object, object]:
        """(bytes read, bytes written) of the reaped child, or "unknown" for both."""
        if before is None or after is None:
            return "unknown", "unknown"
        rchar = after[0] - before[0] - before[2] - self.read
        wchar = after[1] - before[1] - self.written - self.read
        return rchar, wchar


def _drain_pipe(fd: int) -> int:
    """Read all that waits in a non-blocking pipe; how many bytes."""
    total = 0
    try:
        while chunk := posix.read(fd, 512):
            total += len(chunk)
    except BlockingIOError:
        pass
    return total


def _kill(pid: int, number: int) -> None:
    try:
        posix.kill(pid, number)
    except ProcessLookupError:
        pass


def _exited(pid: int) -> object:
    """Non-None once the child has ended (left a zombie to read its counters: WNOWAIT)."""
    return posix.waitid(posix.P_PID, pid, posix.WEXITED | posix.WNOHANG | posix.WNOWAIT)


def _read_stream(
    stream: _socket.socket, outbox: Outbox, common: "list[tuple[str, object]]", own: Own
) -> bool:
    """Handle every record waiting on sftp-server's stderr; False once it is closed."""
    while True:
        try:
            record = stream.recv(RECORD)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not record:
            return False
        fields = operation(record)
        if fields is None:
            try:
                own.written += posix.write(2, record)
            except OSError:
                pass
        elif fields:
            outbox.put(audit.format_line([fields[0], *common, *fields[1:]]))


def _leave(code: int) -> int:
    """The exit status for `code` (waitstatus_to_exitcode), or end by the child's signal.

    The signal is re-raised with its default action, so sshd reports the session
    as ended by it; not dumpable first, so a core-dumping signal writes no core
    of the supervisor. 128 + N only if the process survives its own signal.
    """
    if code >= 0:
        return code
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _signal.signal(-code, _signal.SIG_DFL)
    posix.kill(posix.getpid(), -code)
    return 128 - code
