"""Drive FileZilla's SFTP engine, `fzsftp` (Debian `filezilla`), as FileZilla does.

FileZilla 3.63 (src/engine/sftp/: connect.cpp, filetransfer.cpp, input_parser.cpp,
sftpcontrolsocket.cpp) starts `fzsftp -v`, writes one command per line
(`keyfile "K"`, `open "USER@HOST" PORT`, `put "LOCAL" "REMOTE"`, `mkdir`, `mv`,
`rm`, `rmdir`, ...) and reads events: one type character ('0' + sftpEvent) and,
for most types, a line of text. A command ends with `Reply` ('0', success with
a message) or `Done` ('1' and the result, 1 = success). Meanwhile the engine
answers requests on stdin: a host key to trust ('9': host and port, after the
key itself in 'I'; `n` = trust once), transfer quota ('@'/'A', no text: `-D-`
= unlimited), and file data through shared memory passed at start-up:
`io_open` ('K': `-FD SIZE OFFSET`), `io_nextbuf` ('L': `-POS LEN`, `-0` at
the end), `io_finalize` ('M': `-1`), `io_size` ('J', no text: `-SIZE`).

    fzsftp_client.py USER PPK SHA256:FINGERPRINT COMMAND...
prints one line per command, `ok` or `failed`, and exits 1 if any failed.
"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys

SHM_SIZE = 1 << 20
HALF = SHM_SIZE // 2
NO_TEXT = frozenset("@AJ")  # UsedQuotaRecv, UsedQuotaSend, io_size
TWO_LINES = frozenset("9:;")  # AskHostkey, AskHostkeyChanged, AskHostkeyBetteralg
LISTENTRY = "8"


class Engine:
    """One fzsftp process and the shared memory its transfers go through."""

    def __init__(self) -> None:
        self.memory_fd = os.memfd_create("fzsftp", 0)
        os.ftruncate(self.memory_fd, SHM_SIZE)
        self.memory = mmap.mmap(self.memory_fd, SHM_SIZE)
        self.process = subprocess.Popen(
            ["fzsftp", "-v"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(self.memory_fd,),
        )
        self.source = None  # upload: local file being read
        self.sink = None  # download: local file being written
        self.position = 0  # where the buffer last handed out starts
        self.errors: list[str] = []
        self.hostkey = ""

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def read_event(self) -> tuple[str, list[str]]:
        assert self.process.stdout is not None
        kind = self.process.stdout.read(1).decode()
        if not kind:
            raise EOFError("fzsftp exited")
        count = 0 if kind in NO_TEXT else 2 if kind in TWO_LINES else 3 if kind == LISTENTRY else 1
        lines = [self.process.stdout.readline().decode().rstrip("\r\n") for _ in range(count)]
        return kind, lines

    def command(self, line: str, fingerprint: str) -> bool:
        """Send one command, answer its requests; True if fzsftp reports success."""
        if line.startswith("put "):
            self.source = open(line.split('"')[1], "rb")  # noqa: SIM115 - closed at Done
        elif line.startswith("get "):
            self.sink = open(line.split('"')[3], "wb")  # noqa: SIM115 - closed at Done
        self.send(line)
        while True:
            kind, text = self.read_event()
            if kind == "0":  # Reply: the command succeeded with a message (mkdir, mv, rm, ...)
                return True
            if kind == "1":  # Done
                for handle in (self.source, self.sink):
                    if handle is not None:
                        handle.close()
                self.source = self.sink = None
                return text[0] == "1"
            if kind == "2":  # Error
                self.errors.append(text[0])
            elif kind == "I":  # Hostkey: "ssh-ed25519 255 SHA256:..." before the question
                self.hostkey = text[0]
            elif kind == "9":  # AskHostkey (host, port): trust once, and only our key
                self.send("n" if self.hostkey.endswith(f" {fingerprint}") else "")
            elif kind in "@A":  # quota: unlimited in that direction
                self.send(f"-{'@A'.index(kind)}-")
            elif kind == "<":  # AskPassword: none
                self.send("")
            elif kind == "K":  # io_open
                self.send(f"-{self.memory_fd} {SHM_SIZE} 0")
                self.position = 0
            elif kind == "J":  # io_size
                size = os.fstat(self.source.fileno()).st_size if self.source else -1
                self.send(f"-{size}")
            elif kind == "L":  # io_nextbuf: the next chunk to upload, or room for downloaded data
                self.position = HALF - self.position  # alternate halves
                if self.source is not None:
                    chunk = self.source.read(HALF)
                    self.memory[self.position : self.position + len(chunk)] = chunk
                    self.send(f"-{self.position} {len(chunk)}" if chunk else "-0")
                else:  # the bytes fzsftp put in the buffer handed out before
                    self.keep(HALF - self.position, int(text[0]))
                    self.send(f"-{self.position} {HALF}")
            elif kind == "M":  # io_finalize: the last bytes, in the current buffer
                self.keep(self.position, int(text[0]))
                self.send("-1")

    def keep(self, start: int, length: int) -> None:
        """Write `length` downloaded bytes found at `start` in the shared memory."""
        if self.sink is not None and length > 0:
            self.sink.write(self.memory[start : start + length])


def main(argv: list[str]) -> int:
    user, ppk, fingerprint = argv[1], argv[2], argv[3]
    engine = Engine()
    kind, text = engine.read_event()
    assert (kind, text) == ("0", ["fzSftp started, protocol_version=11"]), (kind, text)
    failed = False
    try:
        for line in [f'keyfile "{ppk}"', f'open "{user}@127.0.0.1" 22', *argv[4:]]:
            ok = engine.command(line, fingerprint)
            print(f"{'ok' if ok else 'failed'}: {line}", flush=True)
            if not ok:
                failed = True
                break
    except EOFError:
        failed = True
    for error in engine.errors:
        print(f"error: {error}", file=sys.stderr)
    engine.process.kill()
    engine.process.wait()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
