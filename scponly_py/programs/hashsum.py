"""`md5sum`, `sha1sum` and `sha256sum` of one file, exactly as rclone's sftp backend asks.

Reference: rclone 1.60.1 (Debian 12 `rclone`) and rclone master,
backend/sftp/sftp.go. rclone first runs `echo ${ShellId}%ComSpec%` to guess
the shell; that probe is refused here (it contains `$` and braces) and rclone
then assumes `shell_type = unix`. To find out which hash commands work it
runs each one bare (`md5sum`, `sha1sum`; it probes sha256 with `sha1sum`)
and compares the digest of the empty input; then, per file, it sends
`md5sum PATH` where PATH is the absolute, cleaned path (`path.Join` of the
remote root it got from SFTP's realpath) escaped with backslashes. So the
grammar is:

    NAME            (digest of the empty input; stdin is the client's)
    NAME PATH       (PATH absolute and normalised: no `.`, `..`, `//`)

with NAME one of md5sum, sha1sum, sha256sum; anything else is refused: options
(`--help`, `-c FILE` reads a list of files, `--tag`), `--`, a second operand,
relative paths. The exec'd argv is `NAME -- PATH` with NAME's absolute path
from [paths]. Reading a file's digest is reading the file, so write-only
accounts are refused every form (rclone then treats hashes as unsupported).
Which files can be read is decided, as for sftp and scp, by the file system
and the jail, not by the path's text.
"""

from scponly_py.outcome import Refusal
from scponly_py.programs import HASHSUM_TOOLS, executable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scponly_py.policy import Policy
    from scponly_py.request import Request

NAME = "hashsum"
MAX_PATH = 4096


def check(words: list[str], policy: "Policy", request: "Request") -> list[str]:
    """Validate a hash command; return the argv (after argv[0]) to exec."""
    tool = executable(NAME, words)
    if tool not in HASHSUM_TOOLS:
        raise Refusal(f"{words[0][:64]!r} is not a hash program")
    if policy.access == "write-only":
        raise Refusal(f"{tool} reads files; it is refused for this account (write-only)")
    operands = words[1:]
    if not operands:
        return []
    for operand in operands:
        if operand.startswith("-"):
            raise Refusal(f"{tool} options are not allowed ({operand[:64]!r})")
    if len(operands) > 1:
        raise Refusal(f"{tool} takes exactly one file")
    path = operands[0]
    if not path.startswith("/"):
        raise Refusal(f"{tool} needs an absolute path")
    if len(path) > MAX_PATH or any(part in (".", "..") for part in path.split("/")):
        raise Refusal(f"{tool} needs a normalised path (no '.' or '..')")
    if "//" in path or (path != "/" and path.endswith("/")):
        raise Refusal(f"{tool} needs a normalised path (no empty components)")
    return ["--", path]
