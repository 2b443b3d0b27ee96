"""scp in server mode (`scp -t` receives, `scp -f` sends), legacy SCP protocol.

Facts (OpenSSH 9.2 scp.c): getopt string `12346ABCTdfOpqRrstvD:F:J:M:P:S:c:i:l:o:X:`,
parsed by BSD getopt. Without `-t`/`-f` scp is an ssh *client*: `-S` names the
program it runs, `-o ProxyCommand=`, `-F`, `-J`, `-D`, `~/.ssh/config` all run
commands. So exactly one of `-t`/`-f` is required and only the letters the
server side uses are allowed. `-l` (bandwidth limit in Kbit/s) is allowed with
a checked decimal value because libssh2-based clients send `-l N -t`.

The exec'd argv is rebuilt in a fixed order with `--` before the operands, so
scp reads it the same way whatever getopt it was built with.
"""

from scponly_py.outcome import Refusal
from scponly_py.words import decimal, flag, parse_options, value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "scp"
ALLOWED = {
    "t": flag(),  # to: receive files (upload)
    "f": flag(),  # from: send files (download)
    "d": flag(),  # target must be a directory
    "r": flag(),  # recursive
    "p": flag(),  # preserve times and modes
    "v": flag(),  # verbose (to stderr)
    "q": flag(),  # quiet
    "l": value(decimal(1, 100 * 1024 * 1024, "scp bandwidth limit -l")),
}
REFUSED = {
    "S": "it names a program for scp to run",
    "o": "it passes options to ssh, such as ProxyCommand",
    "F": "it names an ssh configuration file",
    "J": "it makes scp connect through a jump host",
    "D": "it names an sftp-server program to run",
    "i": "it names an identity file",
    "c": "it selects a cipher for an ssh client",
    "P": "it is a client port",
    "X": "it is a client-side sftp option",
    "3": "it is a client-only option",
    "O": "it is a client-only option",
    "s": "it is a client-only option",
    "T": "it disables filename checks",
    "R": "it is a client-only option",
    "A": "it enables agent forwarding",
    "B": "it is a client-only option",
    "C": "it is a client-only option",
    "M": "it is a client-only option",
}
# Order in which the rebuilt argv lists the flags.
FLAG_ORDER = "vqrpd"
MAX_SOURCES = 512


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate an scp server command; return the argv (after argv[0]) to exec."""
    options, operands = parse_options(NAME, words[1:], ALLOWED, REFUSED)
    letters = [letter for letter, _ in options]
    directions = {letter for letter in letters if letter in "tf"}
    if len(directions) != 1:
        raise Refusal("scp must be run in server mode with exactly one of -t or -f")
    direction = directions.pop()
    if "d" in letters and direction != "t":
        raise Refusal("scp -d is only valid with -t")
    if direction == "t" and policy.access == "read-only":
        raise Refusal("uploads are not allowed for this account (read-only)")
    if direction == "f" and policy.access == "write-only":
        raise Refusal("downloads are not allowed for this account (write-only)")
    if not operands:
        raise Refusal("scp needs a file name")
    if direction == "t" and len(operands) != 1:
        raise Refusal("scp -t takes exactly one target")
    if len(operands) > MAX_SOURCES:
        raise Refusal(f"scp -f takes at most {MAX_SOURCES} files")
    if any(operand == "" for operand in operands):
        raise Refusal("scp file names must not be empty")

    argv = [f"-{letter}" for letter in FLAG_ORDER if letter in letters]
    limits = [value for letter, value in options if letter == "l"]
    if limits:
        argv += ["-l", str(limits[-1])]
    argv += [f"-{direction}", "--", *operands]
    return argv
