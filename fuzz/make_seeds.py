"""Write the seed corpora (fuzz/corpus/NAME/, one per harness) from client commands and attacks.

Run after adding attacks or recorded commands: `python fuzz/make_seeds.py`.
File names are the SHA-1 of the content, as libFuzzer names its own finds,
so re-running is idempotent and the fuzzers can add to the same directories.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import common

from scponly_py.programs import PROGRAMS
from tests.attacks.corpus import load

HERE = Path(__file__).parent
HOME = "/home/alice"

# What real clients send (recorded; see tests/unit/test_scp.py, test_sftp.py, test_rsync.py).
CLIENT_COMMANDS = [
    # OpenSSH scp -O, libssh2 (curl), PuTTY pscp, WinSCP, paramiko scp
    "scp -t /incoming",
    "scp -f /outgoing/file",
    "scp -v -t /incoming",
    "scp -r -p -d -t /incoming",
    "scp -v -r -p -f dir",
    "scp -t -- /in",
    "scp -pt /in",
    "scp -pf /out",
    "scp -qt /in",
    "scp -tr /in",
    "scp -vt /in",
    "scp -t 'x'",
    "scp -pf 'x'",
    "scp -t 'it'\"'\"'s'",
    "scp -l 1000 -t x",
    "scp -l1000 -t x",
    "/usr/bin/scp -f a b c",
    # sftp-server, as sshd's Subsystem line or a client sends it
    "/usr/lib/openssh/sftp-server",
    "sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/lib/openssh/sftp-server -e -l INFO -f AUTHPRIV",
    "/usr/lib/openssh/sftp-server -R",
    "/usr/lib/openssh/sftp-server -P remove,rename -p open,read,close",
    "/usr/lib/openssh/sftp-server -u 077 -d /srv",
    "test -x /usr/lib/sftp-server && exec /usr/lib/sftp-server\n"
    "test -x /usr/local/lib/sftp-server && exec /usr/local/lib/sftp-server\n"
    "exec sftp-server",
    # rsync 3.2.7/3.5.0 clients
    "rsync --server -e.LsfxCIvu . dst",
    "rsync --server --sender -e.LsfxCIvu . dst/a",
    "rsync --server -logDtpre.iLsfxCIvu . dst/",
    "rsync --server --sender -logDtpre.iLsfxCIvu . dst/",
    "rsync --server -logDtpre.iLsfxCIvu --delete . dst/",
    "rsync --server -logDtpre.iLsfxCIvu --partial --inplace . dst/",
    "rsync --server -ze.LsfxCIvu . dst",
    "rsync --server -ce.LsfxCIvu . dst",
    "rsync --server -vlHogDtpre.iLsfxCIvu --partial-dir .rsync-partial . dst/",
    "rsync --server -logDtpre.iLsfxCIvu --temp-dir /home/alice/tmp . dst/",
    "rsync --server -logDtpre.iLsfxCIvu -B1024 --bwlimit=100 --timeout=30 . dst/",
    "rsync --server --sender -logDtpre.iLsfxCIvu --files-from=- --from0 . /",
    "rsync --server -vvlogDtpre.iLsfxCIvu --info=progress2,stats --stderr=errors . dst/",
    "rsync --server -logDtpre.iLsfxCIvu --checksum-choice=xxh128 --compress-choice=zstd . d/",
    "rsync --server -logDtpre.iLsfxCIvu --iconv=utf8 --usermap=0:1000 --groupmap=\\*:g . d/",
    "rsync --server -logDtpre.iLsfxCIvu --skip-compress=gz/jpg --log-format=%i --suffix=\\~ . d/",
    "rsync --server -logDtpre.iLsfxCIvu --max-size=1.5M --compress-level=9 -@-1 . d/",
    "rsync --server -logDtpre.iLsfxCIvu --backup-dir=/home/alice/b --link-dest=old . d/",
    # unison and svn+ssh
    "unison -server __new-rpc-mode",
    "unison -server",
    "svnserve -t",
    # rclone's hash checks (hashsum)
    "md5sum",
    "sha1sum /home/alice/My\\ Files/a.txt",
    "sha256sum /home/alice/a",
]

END = ' ; echo "WinSCP: this is end-of-file:0"'
BEGIN = 'echo "WinSCP: this is begin-of-file" ; '
WINSCP_SESSIONS = [
    [
        'echo "WinSCP: this is end-of-file:0"',
        'echo "$status" ; echo "WinSCP: this is end-of-file:0"',
        "printenv LANG" + END,
        'unalias "ls"' + END,
        'unset "LANG"' + END,
        "groups" + END,
        "pwd" + END,
        "ls -la --full-time" + END,
    ],
    [f'cd "{HOME}/docs"' + END, "ls -la " + END, f'ls -la -d --full-time "{HOME}/a b"' + END],
    [BEGIN + f'scp -r -p -d -t "{HOME}/docs"' + END],
    [BEGIN + f'scp -r -p -d -f "{HOME}/f.txt"' + END],
    [f'rm -f -r "{HOME}/old"' + END, f'mv -f "{HOME}/a" "{HOME}/b"' + END],
    [f'mkdir "{HOME}/new"' + END, f'chmod -R 00755 "{HOME}/d"' + END],
    [f'chmod  u+rw-x,g+r,o-rwx "{HOME}/f"' + END, f'ln -s "{HOME}/t" "{HOME}/l"' + END],
    [f'cp -p -r -f -T "{HOME}/a" "{HOME}/b"' + END, "cd ~/x" + END, "exit 0"],
    # refusals and corners: cd into a file, cd -, `..` above /, unset variables, octal modes
    [
        'cd "a.txt"' + END,
        "cd -" + END,
        "cd ../../../.." + END,
        'unset "LANG"' + END,
        "printenv LANG" + END,
        "printenv NOPE" + END,
        "printenv HOME" + END,
        'chmod 77777 "f"' + END,
        'chmod 4755 "f"' + END,
        "rm -f " + " ".join(f"f{n}" for n in range(65)) + END,
        'echo "$?"',
        "exit 300",
    ],
]
# serve(): the first byte's quotient by the number of policies selects the audit channel's
# failing line, bit 6 the real fork/execve, bit 7 an over-long last line (fuzz_serve.py).
_COUNT = len(common.POLICY_NAMES) + len(common.EXTRA_POLICIES)
_WINSCP = common.selector("winscp")[0]
SERVE_SELECTORS = (
    0x40,  # policy "all", the real fork and execve
    *(_WINSCP + _COUNT * fail for fail in range(5)),
    0x80 | _WINSCP,
    0x80,
)

# svnserve.root_problems(): (operation, argument) pairs building a tree (fuzz_svnroot.py).
# 1 = mkdir and enter NAMES[arg], 2 = file, 3 = symlink, 4 = chmod, 5 = chown, 6 = up, 7 = repo.
_REPOSITORY = [1, 5, 7, 0, 1, 2, 2, 8]  # repo/{format,db/,hooks/pre-commit}
SVN_TREES = [
    _REPOSITORY,
    [*_REPOSITORY, 5, 1],  # hooks/pre-commit owned by uid 1000
    [*_REPOSITORY, 4, 0o66],  # hooks/pre-commit writable by group and others
    [*_REPOSITORY, 3, 8 + 10 * 1],  # hooks/pre-commit -> /tmp
    [*_REPOSITORY, 6, 0, 1, 3, 3, 6 + 10 * 0],  # conf/a -> /etc
    [3, 6 + 10 * 2, 1, 6, 4, 0x40 | 0o77],  # a -> .., a sticky writable directory
    [1, 5, 7, 0, 6, 0, 1, 2, 5, 2, 1, 7, 0, 1, 3, 2, 9],  # nested repositories
]


def write(directory: Path, data: bytes) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / hashlib.sha1(data, usedforsecurity=False).hexdigest()
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def main() -> None:
    attacks = [attack for attack in load() if len(attack.command) < 4000]
    # Every argv[0] word of the program table, alone: each program's entry into its grammar.
    named = sorted(word for record in PROGRAMS.values() for word in record["words"])
    commands = [*CLIENT_COMMANDS, *named, *(attack.command for attack in attacks)]
    encoded = [command.encode("utf-8", "surrogateescape") for command in commands]
    counts = dict.fromkeys(("words", "decide", "winscp"), 0)
    for data in encoded:
        counts["words"] += write(HERE / "corpus" / "words", data)
    # The first byte selects the policy: client commands under every restricted
    # policy, attacks under their own policy and under "all".
    for command in [*CLIENT_COMMANDS, *named]:
        for name in ("all", "read-only", "write-only", "no-links", "sftp-only", "tuned"):
            selector = common.selector(name)
            counts["decide"] += write(HERE / "corpus" / "decide", selector + command.encode())
    for command in ("svnserve -t", "svnserve --tunnel", "md5sum /a", "sha1sum"):
        for name in (*common.EXTRA_POLICIES, "tuned"):
            counts["decide"] += write(
                HERE / "corpus" / "decide", common.selector(name) + command.encode()
            )
    for attack in attacks:
        data = attack.command.encode("utf-8", "surrogateescape")
        for name in {attack.policy, "all"}:
            selector = common.selector(name)
            counts["decide"] += write(HERE / "corpus" / "decide", selector + data)
    for lines in WINSCP_SESSIONS:
        for name in ("winscp", "read-only", "write-only", "no-links", "winscp-debug"):
            selector = common.selector(name)
            counts["winscp"] += write(
                HERE / "corpus" / "winscp", selector + "\n".join(lines).encode()
            )
    counts["serve"] = 0
    for lines in WINSCP_SESSIONS:
        for first in SERVE_SELECTORS:
            data = bytes([first]) + "\n".join(lines).encode() + b"\n"
            counts["serve"] += write(HERE / "corpus" / "serve", data)
    counts["svnroot"] = sum(write(HERE / "corpus" / "svnroot", bytes(tree)) for tree in SVN_TREES)
    print(", ".join(f"{name}: {count} new" for name, count in counts.items()))


if __name__ == "__main__":
    main()
