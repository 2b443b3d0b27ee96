"""rsync server grammar: real client commands, refusals, access modes, paths, HOME, real transfers.

The server commands below were recorded from the real rsync 3.5.0 client
(Debian 12, `3.5.0+ds1-0+deb12u1`) by running `rsync -e RECORDER ...` where
RECORDER logs the command it is asked to run (ssh joins the words with
spaces, so that string is exactly what the login shell gets). The `live`
tests re-record them with the installed client, so a client that changes
what it sends makes the tests fail rather than the users.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scponly_py import programs, words
from scponly_py.decide import decide
from scponly_py.outcome import Allow, Refuse
from scponly_py.programs import rsync
from tests import support
from tests.support import decision_for, make_policy, make_request

RSYNC = "/usr/bin/rsync"
HOME = "/home/alice"
REPOSITORY = str(Path(__file__).resolve().parents[2])


PROGRAMS = ("rsync", "scp", "sftp")


# decide() under a policy enabling PROGRAMS (other policy fields as keywords).
policy = partial(make_policy, programs=PROGRAMS)
run = partial(decision_for, programs=PROGRAMS)
allowed_argv = partial(support.allowed_argv, program="rsync", programs=PROGRAMS)
refusal = partial(support.refusal, programs=PROGRAMS)


# (client arguments, server command the client sends, argv we exec after the path or None = refused)
RECORDED: list[tuple[list[str], str, list[str] | None]] = [
    # push / pull of one file
    (["src/a", "h:dst"], "rsync --server -e.LsfxCIvu . dst", ["-e.LsfxCIvu"]),
    (["h:dst/a", "out"], "rsync --server --sender -e.LsfxCIvu . dst/a", ["-e.LsfxCIvu"]),
    # -a
    (
        ["-a", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu . dst/",
        ["-logDtpre.iLsfxCIvu"],
    ),
    (
        ["-a", "h:dst/", "out/"],
        "rsync --server --sender -logDtpre.iLsfxCIvu . dst/",
        ["-logDtpre.iLsfxCIvu"],
    ),
    # --delete, --partial, --inplace, -z, --checksum, -H
    (
        ["-a", "--delete", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --delete . dst/",
        ["-logDtpre.iLsfxCIvu", "--delete"],
    ),
    (
        ["-a", "--partial", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --partial . dst/",
        ["-logDtpre.iLsfxCIvu", "--partial"],
    ),
    (
        ["--inplace", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu --inplace . dst",
        ["-e.LsfxCIvu", "--inplace"],
    ),
    (["-z", "src/a", "h:dst"], "rsync --server -ze.LsfxCIvu . dst", ["-ze.LsfxCIvu"]),
    (["-z", "h:dst", "out"], "rsync --server --sender -ze.LsfxCIvu . dst", ["-ze.LsfxCIvu"]),
    (["--checksum", "src/a", "h:dst"], "rsync --server -ce.LsfxCIvu . dst", ["-ce.LsfxCIvu"]),
    (
        ["-aH", "src/", "h:dst/"],
        "rsync --server -lHogDtpre.iLsfxCIvu . dst/",
        ["-lHogDtpre.iLsfxCIvu"],
    ),
    # --protect-args: the real arguments would follow over the connection
    (["--protect-args", "src/a", "h:dst"], "rsync --server -se.LsfxCIvu", None),
    (["-s", "h:dst", "out"], "rsync --server --sender -se.LsfxCIvu", None),
    # -M--munge-links (the client asks for it on the server side)
    (
        ["-M--munge-links", "-a", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --munge-links . dst/",
        ["-logDtpre.iLsfxCIvu", "--munge-links"],
    ),
    # split-form path options are rebuilt as --name=value
    (
        ["-av", "--partial-dir=.rsync-partial", "src/", "h:dst/"],
        "rsync --server -vlogDtpre.iLsfxCIvu --partial-dir .rsync-partial . dst/",
        ["-vlogDtpre.iLsfxCIvu", "--partial-dir=.rsync-partial"],
    ),
    (
        ["-a", "--backup", "--backup-dir=bak", "--suffix=.old", "src/", "h:dst/"],
        "rsync --server -blogDtpre.iLsfxCIvu --backup-dir bak --suffix=.old . dst/",
        ["-blogDtpre.iLsfxCIvu", "--backup-dir=bak", "--suffix=.old"],
    ),
    (
        ["-a", "--link-dest=prev", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --link-dest prev . dst/",
        ["-logDtpre.iLsfxCIvu", "--link-dest=prev"],
    ),
    (
        ["-T", "tmp", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu --temp-dir tmp . dst",
        ["-e.LsfxCIvu", "--temp-dir=tmp"],
    ),
    (
        ["--bwlimit=100", "--timeout=30", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu --timeout=30 --bwlimit=100 . dst",
        ["-e.LsfxCIvu", "--timeout=30", "--bwlimit=100"],
    ),
    # rsync >= 3.2.4 backslash-escapes shell characters; the tokenizer undoes it
    (
        ["src/a", "h:dir with space/it's$x"],
        "rsync --server -e.LsfxCIvu . dir\\ with\\ space/it\\'s\\$x",
        ["-e.LsfxCIvu"],
    ),
    (["src/a", "h:-dash"], "rsync --server -e.LsfxCIvu . ./-dash", ["-e.LsfxCIvu"]),
    (
        ["--remove-source-files", "h:dst/a", "out"],
        "rsync --server --sender -e.LsfxCIvu --remove-source-files . dst/a",
        ["-e.LsfxCIvu", "--remove-source-files"],
    ),
    (
        ["--files-from=-", "h:/", "out"],
        "rsync --server --sender -Re.LsfxCIvu --files-from=- --from0 . /",
        ["-Re.LsfxCIvu", "--files-from=-", "--from0"],
    ),
    (
        ["-aAX", "--numeric-ids", "src/", "h:dst/"],
        "rsync --server -logDtpAXre.iLsfxCIvu --numeric-ids . dst/",
        ["-logDtpAXre.iLsfxCIvu", "--numeric-ids"],
    ),
    (
        ["-aEz", "--compress-level=9", "--iconv=utf8,latin1", "src/", "h:dst/"],
        "rsync --server -logDtprze.iLsfxCIvu --iconv=latin1 --compress-level=9 . dst/",
        ["-logDtprze.iLsfxCIvu", "--iconv=latin1", "--compress-level=9"],
    ),
    (
        ["--list-only", "h:dst/"],
        "rsync --server --sender -de.LsfxCIvu --list-only . dst/",
        ["-de.LsfxCIvu", "--list-only"],
    ),
    (
        ["-a", "--delete-after", "--delete-excluded", "--max-delete=5", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --max-delete=5 --delete-after --delete-excluded . dst/",
        ["-logDtpre.iLsfxCIvu", "--max-delete=5", "--delete-after", "--delete-excluded"],
    ),
    (
        ["-a", "--append-verify", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --append --append . dst/",
        ["-logDtpre.iLsfxCIvu", "--append", "--append"],
    ),
    (
        ["--cc=md5", "--zc=zstd", "-z", "--skip-compress=gz/jpg", "src/", "h:dst/"],
        "rsync --server -e.LsfxCIvu --checksum-choice=md5 --compress-choice=zstd . dst/",
        ["-e.LsfxCIvu", "--checksum-choice=md5", "--compress-choice=zstd"],
    ),
    (
        ["--checksum-seed=5", "--modify-window=2", "-B", "1024", "-a", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu -B1024 --modify-window=2 --checksum-seed=5 . dst/",
        ["-logDtpre.iLsfxCIvu", "-B1024", "--modify-window=2", "--checksum-seed=5"],
    ),
    (
        ["--modify-window=-1", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu -@-1 . dst",
        ["-e.LsfxCIvu", "-@-1"],
    ),
    (
        ["--chown=a:b", "src/a", "h:dst"],
        "rsync --server -oge.LsfxCIvu --usermap=\\*:a --groupmap=\\*:b . dst",
        ["-oge.LsfxCIvu", "--usermap=*:a", "--groupmap=*:b"],
    ),
    (
        ["-i", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu --log-format=%i . dst",
        ["-e.LsfxCIvu", "--log-format=%i"],
    ),
    (
        ["-W", "-S", "-x", "-m", "-O", "-J", "-U", "src/", "h:dst/"],
        "rsync --server -mOJWUxSe.LsfxCIvu . dst/",
        ["-mOJWUxSe.LsfxCIvu"],
    ),
    (
        ["-yy", "-XX", "-UU", "-xx", "-HH", "-a", "src/", "h:dst/"],
        "rsync --server -lyHHogDtUUpXXrxxe.iLsfxCIvu . dst/",
        ["-lyHHogDtUUpXXrxxe.iLsfxCIvu"],
    ),
    (
        ["-aL", "h:dst/", "out/"],
        "rsync --server --sender -lLogDtpre.iLsfxCIvu . dst/",
        ["-lLogDtpre.iLsfxCIvu"],
    ),
    (
        ["-d", "--delete", "src/", "h:dst/"],
        "rsync --server -de.LsfxCIvu --no-r --delete . dst/",
        ["-de.LsfxCIvu", "--no-r", "--delete"],
    ),
    (
        ["--devices", "src/a", "h:dst"],
        "rsync --server -De.LsfxCIvu --no-specials . dst",
        ["-De.LsfxCIvu", "--no-specials"],
    ),
    (
        ["--super", "-a", "src/", "h:dst/"],
        "rsync --server -logDtpre.iLsfxCIvu --super . dst/",
        ["-logDtpre.iLsfxCIvu", "--super"],
    ),
    (
        ["--min-size=1k", "--max-size=2M", "src/a", "h:dst"],
        "rsync --server -e.LsfxCIvu --min-size=1024 --max-size=2097152 . dst",
        ["-e.LsfxCIvu", "--min-size=1024", "--max-size=2097152"],
    ),
    (
        ["--files-from=h:list", "h:", "out"],
        "rsync --server --sender -Re.LsfxCIvu --files-from list . .",
        ["-Re.LsfxCIvu", "--files-from=list"],
    ),
    # dangerous options a client sends: refused
    (["--only-write-batch=foo", "-a", "src/", "h:dst/"], "", None),
    (["--write-devices", "src/a", "h:dst"], "", None),
    (["--copy-devices", "h:dst/a", "out"], "", None),
    (["-M--log-file=x", "src/a", "h:dst"], "", None),
    (["-M--no-munge-links", "src/a", "h:dst"], "", None),
]
# Empty recorded strings above are filled from these (kept apart for line length).
RECORDED_REFUSED_COMMANDS = {
    "--only-write-batch=foo": "rsync --server -logDtpre.iLsfxCIvu --only-write-batch=X . dst/",
    "--write-devices": "rsync --server -e.LsfxCIvu --inplace --write-devices . dst",
    "--copy-devices": "rsync --server --sender -e.LsfxCIvu --copy-devices . dst/a",
    "-M--log-file=x": "rsync --server -e.LsfxCIvu --log-file=x . dst",
    "-M--no-munge-links": "rsync --server -e.LsfxCIvu --no-munge-links . dst",
}
RECORDED = [
    (args, command or RECORDED_REFUSED_COMMANDS[args[0]], expected)
    for args, command, expected in RECORDED
]


def _expected_argv(command: str, options: list[str]) -> list[str]:
    command_words = words.split(command)
    sender = command_words[2] == "--sender"
    dot = command_words.index(".")
    head = ["--server", "--sender"] if sender else ["--server"]
    return [*head, *options, "--", ".", *command_words[dot + 1 :]]


@pytest.mark.parametrize(
    ("args", "command", "options"), RECORDED, ids=[" ".join(case[0]) for case in RECORDED]
)
def test_recorded_client_commands(args: list[str], command: str, options: list[str] | None) -> None:
    if options is None:
        refusal(command)
    else:
        assert allowed_argv(command) == _expected_argv(command, options)


# --- recording with the installed client -------------------------------------------------------


def _installed_version() -> str:
    output = subprocess.run([RSYNC, "--version"], capture_output=True, text=True, check=True).stdout
    return output.split()[2]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory):
    """Run the real client with `-e RECORDER`; return the command it sent to the "server"."""
    if not os.path.exists(RSYNC):
        pytest.skip("rsync is not installed")
    base = tmp_path_factory.mktemp("record")
    (base / "src" / "sub").mkdir(parents=True)
    (base / "src" / "a").write_bytes(b"hello\n")
    (base / "out").mkdir()
    log = base / "log"
    script = base / "rsh"
    script.write_text(f'#!/bin/sh\nshift\nprintf "%s\\n" "$*" > {log}\nexit 1\n')
    script.chmod(0o755)

    def record(args: list[str]) -> str:
        log.unlink(missing_ok=True)
        subprocess.run(
            [RSYNC, "-e", str(script), *args],
            cwd=base,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=30,
        )
        return log.read_text().rstrip("\n")

    return record


@pytest.mark.parametrize(
    ("args", "command", "options"), RECORDED, ids=[" ".join(case[0]) for case in RECORDED]
)
def test_live_client_sends_what_was_recorded(
    recorder, args: list[str], command: str, options: list[str] | None
) -> None:
    live = recorder(args)
    if _installed_version() == "3.5.0":
        assert live == command
    decision = run(live)
    assert isinstance(decision, Allow) == (options is not None), decision


# --- refusals ------------------------------------------------------------------------------------

DANGEROUS = [
    # not a server, or --server not first
    "rsync",
    "rsync -e.LsfxCIvu . dst",
    "rsync --sender --server -e.LsfxCIvu . dst",
    "rsync -v --server -e.LsfxCIvu . dst",
    "rsync --daemon --server . dst",
    "rsync --server --daemon --config=/home/alice/rsyncd.conf",
    "rsync --server --config=x . dst",
    "rsync --server --dparam=pidfile=/x . dst",
    "rsync --server --detach . dst",
    # programs
    "rsync --server -e.LsfxCIvu --rsh=/bin/sh . dst",
    "rsync --server --rsh /bin/sh . dst",
    "rsync --server -e /bin/sh . dst",
    "rsync --server -e sh . dst",
    "rsync --server -esh . dst",
    "rsync --server --rsync-path=/tmp/x . dst",
    # arguments over the connection
    "rsync --server -s . dst",
    "rsync --server --protect-args . dst",
    "rsync --server --secluded-args . dst",
    "rsync --server -vlogDtpsre.iLsfxCIvu . dst",
    # batch files, logs, devices
    "rsync --server --write-batch=x . dst",
    "rsync --server --only-write-batch=x . dst",
    "rsync --server --read-batch=x . dst",
    "rsync --server --log-file=log . dst",
    "rsync --server --log-file log . dst",
    "rsync --server --log-file-format=%n . dst",
    "rsync --server --devices . dst",
    "rsync --server --copy-devices . dst",
    "rsync --server --write-devices . dst",
    # defences the policy relies on
    "rsync --server --no-munge-links . dst",
    "rsync --server --insecure-links . dst",
    "rsync --server --trust-sender . dst",
    "rsync --server --old-args . dst",
    "rsync --server --copy-as=root . dst",
    "rsync --server --debug=ALL . dst",
    "rsync --server --confine-root=/ . dst",
    # filters and client options
    "rsync --server --filter=merge_/etc/shadow . dst",
    "rsync --server --exclude-from=/etc/shadow . dst",
    "rsync --server --include-from /etc/shadow . dst",
    "rsync --server --password-file=/x . dst",
    "rsync --server --early-input=/x . dst",
    "rsync --server --remote-option=--x . dst",
    "rsync --server -M--log-file=x . dst",
    "rsync --server -P . dst",
    "rsync --server -a . dst",
    "rsync --server -h . dst",
    "rsync --server --help . dst",
    "rsync --server --version . dst",
    "rsync --server --unknown-option . dst",
    "rsync --server --server . dst",
    # --sender anywhere but right after --server
    "rsync --server -e.LsfxCIvu --sender . dst",
    "rsync --server --sender --sender . dst",
    # clusters hiding a forbidden letter, and blob tricks
    "rsync --server -vs . dst",
    "rsync --server -vlogDtpre.iLsfxCIvu -vsx . dst",
    "rsync --server -vM--rsh=x . dst",
    "rsync --server -vT/tmp . dst",
    "rsync --server -vf. . dst",
    "rsync --server -vP . dst",
    "rsync --server -ve . dst",  # e at the end: popt would take the next word
    "rsync --server -e . dst",
    "rsync --server -e= . dst",
    "rsync --server -e=.iLs . dst",
    "rsync --server -e.iL/bin/sh . dst",
    "rsync --server -e.iL-x . dst",
    "rsync --server -e.iL.x . dst",
    "rsync --server -e31.14iLsfx . dst",
    "rsync --server -e.iLsfxCIvu -e.iLsfxCIvu . dst",
    "rsync --server -ve.iL -re.iL . dst",
    "rsync --server -vB1024 . dst",
    "rsync --server -B . dst",
    "rsync --server -Bx . dst",
    "rsync --server -B1024x . dst",
    "rsync --server -@ . dst",
    "rsync --server -@1x . dst",
    "rsync --server -vs@1 . dst",
    # options after operands (popt permutes), missing pieces
    "rsync --server -e.LsfxCIvu . dst --rsh=/bin/sh",
    "rsync --server -e.LsfxCIvu . dst -e",
    "rsync --server --sender -e.LsfxCIvu . a --log-file=x",
    "rsync --server --sender -e.LsfxCIvu . a -s",
    "rsync --server -e.LsfxCIvu dst",
    "rsync --server -e.LsfxCIvu -- . dst",
    "rsync --server -e.LsfxCIvu /etc dst",
    "rsync --server -e.LsfxCIvu .",
    "rsync --server -e.LsfxCIvu . ''",
    "rsync --server -e.LsfxCIvu . a b",
    "rsync --server --temp-dir",
    # values
    "rsync --server --timeout=\uff11\uff10 . dst",  # full-width digits
    "rsync --server --timeout=-1 . dst",
    "rsync --server --bwlimit=1x . dst",
    "rsync --server --suffix=/../x . dst",
    "rsync --server --iconv=../../tmp/x . dst",
    "rsync --server --stderr=loud . dst",
    "rsync --server --delete=x . dst",
    "rsync --server --info= . dst",
    "rsync --server --log-format=%n%L\\ x . dst",
    # shell tricks never reach the grammar
    "rsync --server -e.LsfxCIvu . dst; sh",
    "rsync --server -e.LsfxCIvu . $(id)",
    "rsync --server -e.LsfxCIvu . *",
    "rsync --server -e.LsfxCIvu . ~/x",
]


@pytest.mark.parametrize("command", DANGEROUS)
def test_dangerous_commands_are_refused(command: str) -> None:
    assert refusal(command)


def test_refusal_names_the_option() -> None:
    assert "-s" in refusal("rsync --server -vlogDtpsre.iLsfxCIvu . dst")
    assert "--rsh" in refusal("rsync --server --rsh=/bin/sh . dst")
    assert "--log-file" in refusal("rsync --server --log-file=x . dst")
    assert "server" in refusal("rsync -e.LsfxCIvu . dst")


# --- access modes and links ----------------------------------------------------------------------


def test_read_only_requires_sender() -> None:
    assert "read-only" in refusal("rsync --server -logDtpre.iLsfxCIvu . dst/", access="read-only")
    command = "rsync --server --sender -logDtpre.iLsfxCIvu . dst/"
    assert allowed_argv(command, access="read-only") == [
        "--server", "--sender", "-logDtpre.iLsfxCIvu", "--", ".", "dst/",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "option",
    [
        "--delete", "--delete-after", "--delete-before", "--delete-delay", "--delete-during",
        "--delete-excluded", "--delete-missing-args", "--force", "--remove-source-files",
        "--remove-sent-files",
    ],
)  # fmt: skip
def test_read_only_never_deletes(option: str) -> None:
    assert refusal(f"rsync --server --sender -e.LsfxCIvu {option} . dst", access="read-only")


def test_write_only_never_sends() -> None:
    assert "write-only" in refusal("rsync --server --sender -e.LsfxCIvu . dst", access="write-only")
    assert "write-only" in refusal(
        "rsync --server --sender -e.LsfxCIvu --list-only . dst", access="write-only"
    )


def test_write_only_adds_whole_file_and_refuses_deletes_and_remote_lists() -> None:
    command = "rsync --server -logDtpre.iLsfxCIvu --no-W . dst/"
    assert allowed_argv(command, access="write-only") == [
        "--server", "-logDtpre.iLsfxCIvu", "--no-W", "--whole-file", "--", ".", "dst/",
    ]  # fmt: skip
    assert refusal("rsync --server -logDtpre.iLsfxCIvu --delete . dst/", access="write-only")
    assert refusal("rsync --server -e.LsfxCIvu --files-from=list . dst/", access="write-only")
    assert allowed_argv("rsync --server -e.LsfxCIvu --files-from=- . dst/", access="write-only")
    # the receiver never removes anything; the client's sender does
    assert allowed_argv("rsync --server -e.LsfxCIvu --remove-source-files . d", access="write-only")


WRITE_ONLY_PROBES = [
    # (command as the real client sends it, what the refusal names)
    ("rsync --server -vvvvvnlyre.iLsfxCIvu . /etc/", "-y"),  # rsync -ny -vvvvv up host:/etc/
    ("rsync --server -vnlre.iLsfxCIvu . dst/", "-n"),
    ("rsync --server -lyre.iLsfxCIvu . dst/", "-y"),
    ("rsync --server -nrce.iLsfxCIvu --log-format=%i . .", "-c"),  # rsync -rc -i -n guess/ h:.
    ("rsync --server -rce.iLsfxCIvu . .", "-c"),
    ("rsync --server -ure.iLsfxCIvu . .", "-u"),
    ("rsync --server -re.iLsfxCIvu --log-format=%i . .", "itemizing"),
    ("rsync --server -re.iLsfxCIvu --log-format=%i%I . .", "itemizing"),
    ("rsync --server -re.iLsfxCIvu --existing . .", "--existing"),
    ("rsync --server -re.iLsfxCIvu --ignore-existing . .", "--ignore-existing"),
    ("rsync --server -re.iLsfxCIvu --size-only . .", "--size-only"),
    ("rsync --server -re.iLsfxCIvu --append . .", "--append"),
    ("rsync --server -re.iLsfxCIvu --fuzzy . .", "--fuzzy"),
    ("rsync --server -re.iLsfxCIvu --compare-dest=x . .", "--compare-dest"),
    ("rsync --server -re.iLsfxCIvu --copy-dest x . .", "--copy-dest"),
    ("rsync --server -re.iLsfxCIvu --link-dest=x . .", "--link-dest"),
    ("rsync --server -re.iLsfxCIvu --list-only . .", "--list-only"),
    ("rsync --server -re.iLsfxCIvu --info=skip2 . .", "--info"),
]


@pytest.mark.parametrize(("command", "named"), WRITE_ONLY_PROBES)
def test_write_only_refuses_what_depends_on_existing_files(command: str, named: str) -> None:
    reason = refusal(command, access="write-only")
    assert named in reason and "write-only" in reason
    assert isinstance(run(command, access="read-write"), Allow)


def test_write_only_removes_the_receivers_verbosity_but_not_the_blob_letters() -> None:
    assert allowed_argv("rsync --server -vvvvvlogDtpre.iLsfxCIvu . d/", access="write-only") == [
        "--server", "-logDtpre.iLsfxCIvu", "--whole-file", "--", ".", "d/",
    ]  # fmt: skip
    command = "rsync --server -v -re.iLsfxCIvu --log-format=%o . d"
    assert allowed_argv(command, access="write-only") == [
        "--server", "-re.iLsfxCIvu", "--log-format=%o", "--whole-file", "--", ".", "d",
    ]  # fmt: skip
    assert allowed_argv("rsync --server -vvre.iLsfxCIvu . d")[1] == "-vvre.iLsfxCIvu"


def test_read_write_allows_deletes_in_both_directions() -> None:
    assert allowed_argv("rsync --server -logDtpre.iLsfxCIvu --delete . dst/")
    assert allowed_argv("rsync --server --sender -e.LsfxCIvu --remove-source-files . a")


def test_links_false_adds_munge_links_last() -> None:
    assert allowed_argv("rsync --server -logDtpre.iLsfxCIvu . dst/", links=False) == [
        "--server", "-logDtpre.iLsfxCIvu", "--munge-links", "--", ".", "dst/",
    ]  # fmt: skip
    assert allowed_argv("rsync --server --sender -logDtpre.iLsfxCIvu . d/", links=False) == [
        "--server", "--sender", "-logDtpre.iLsfxCIvu", "--munge-links", "--", ".", "d/",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        "rsync --server -lHogDtpre.iLsfxCIvu . dst/",
        "rsync --server -e.LsfxCIvu --hard-links . dst/",
        "rsync --server -e.LsfxCIvu --link-dest=prev . dst/",
        "rsync --server -e.LsfxCIvu --link-dest prev . dst/",
    ],
)
def test_links_false_refuses_hard_link_creation(command: str) -> None:
    assert "hard links" in refusal(command, links=False)
    assert allowed_argv(command, links=True)


def test_links_false_allows_hard_link_detection_when_sending() -> None:
    assert allowed_argv("rsync --server --sender -lHogDtpre.iLsfxCIvu . d/", links=False)


# --- path-valued options ------------------------------------------------------------------------

PATH_OPTIONS = [
    "--temp-dir", "--partial-dir", "--backup-dir", "--compare-dest", "--copy-dest",
    "--link-dest", "--files-from",
]  # fmt: skip


@pytest.mark.parametrize("option", PATH_OPTIONS)
@pytest.mark.parametrize(
    "value",
    [
        "..", "../x", "a/../../x", "a/..", "/tmp", "/", "/etc/passwd", "/home/alicevil",
        "/home/alice/../bob", "/home/alice/x/../../bob", "/home", "''",
    ],
)  # fmt: skip
@pytest.mark.parametrize("form", ["=", " "])
def test_path_options_escaping_the_area_are_refused(option: str, value: str, form: str) -> None:
    assert refusal(f"rsync --server -e.LsfxCIvu {option}{form}{value} . dst")


@pytest.mark.parametrize("option", PATH_OPTIONS)
@pytest.mark.parametrize(
    "value", ["tmp", ".p", "a/b", "./x", "x..y", "/home/alice", "/home/alice/", "/home/alice/t"]
)
def test_path_options_inside_the_area_are_accepted(option: str, value: str) -> None:
    argv = allowed_argv(f"rsync --server -e.LsfxCIvu {option} {value} . dst")
    assert f"{option}={value}" in argv


def test_path_value_may_look_like_an_option_or_the_dot() -> None:
    # The split form takes the next word as the value, as popt does; the rebuilt
    # `--name=value` form cannot be read any other way.
    assert allowed_argv("rsync --server -e.LsfxCIvu --temp-dir . . dst") == [
        "--server", "-e.LsfxCIvu", "--temp-dir=.", "--", ".", "dst",
    ]  # fmt: skip
    assert allowed_argv("rsync --server -e.LsfxCIvu --temp-dir --sender . dst")[2] == (
        "--temp-dir=--sender"
    )


def test_home_of_slash_confines_nothing_more_than_the_chroot() -> None:
    decision = decide(
        make_request("rsync --server -e.LsfxCIvu --temp-dir=/tmp . dst", home="/"), policy()
    )
    assert isinstance(decision, Allow)


def test_non_ascii_paths_pass_through() -> None:
    name = "März/\udcff"
    argv = allowed_argv(f"rsync --server -e.LsfxCIvu --backup-dir=März . {words.quote(name)}")
    assert argv[-1] == name
    assert "--backup-dir=März" in argv


# --- against rrsync's table -------------------------------------------------------------------

# rsync 3.5.0 support/rrsync: long options it accepts (value >= 0) and its short letters.
RRSYNC_LONG_ACCEPTED = frozenset(
    {
        "append", "backup-dir", "block-size", "bwlimit", "checksum-choice", "checksum-seed",
        "compare-dest", "compress-choice", "compress-level", "compress-threads", "copy-dest",
        "copy-unsafe-links", "delay-updates", "delete", "delete-after", "delete-before",
        "delete-delay", "delete-during", "delete-excluded", "delete-missing-args", "dirs",
        "existing", "fake-super", "files-from", "force", "from0", "fsync", "fuzzy", "group",
        "groupmap", "hard-links", "iconv", "ignore-errors", "ignore-existing",
        "ignore-missing-args", "ignore-times", "info", "inplace", "link-dest", "links", "list-only",
        "log-file", "log-format", "max-alloc", "max-delete", "max-size", "min-size", "mkpath",
        "modify-window", "msgs2stderr", "munge-links", "new-compress", "no-W", "no-implied-dirs",
        "no-msgs2stderr", "no-r", "no-relative", "no-specials", "numeric-ids", "old-compress",
        "one-file-system", "only-write-batch", "open-noatime", "owner", "partial", "partial-dir",
        "perms", "preallocate", "recursive", "remove-sent-files", "remove-source-files",
        "safe-links", "sender", "server", "size-only", "skip-compress", "specials", "stats",
        "stderr", "suffix", "super", "temp-dir", "timeout", "times", "use-qsort", "usermap",
    }
)  # fmt: skip
RRSYNC_LONG_REFUSED = frozenset(
    {"copy-devices", "daemon", "debug", "no-munge-links", "write-devices"}
)
RRSYNC_SHORT_NO_ARG = "ACDEHIJKLNORSUWXbcdgklmnopqrstuvxyz"


def test_table_is_rrsyncs_minus_documented_refusals() -> None:
    accepted = set(rsync.LONG_OPTIONS)
    # Stricter than rrsync: --log-file (appends anywhere), --only-write-batch (a batch
    # option); --server/--sender are positional here, not table entries.
    assert RRSYNC_LONG_ACCEPTED - accepted == {"log-file", "only-write-batch", "server", "sender"}
    # The one addition: --whole-file, the long form of -W, which write-only adds.
    assert accepted - RRSYNC_LONG_ACCEPTED == {"whole-file"}
    assert not accepted & RRSYNC_LONG_REFUSED
    assert set(rsync.LONG_REFUSED) >= RRSYNC_LONG_REFUSED
    assert set(rsync.SHORT_FLAGS) == set(RRSYNC_SHORT_NO_ARG) - {"s"}
    assert set(rsync.SHORT_WITH_VALUE) == {"B", "@", "e"}


# --- HOME and environment ------------------------------------------------------------------------


def test_child_home_is_root_owned_slash_for_rsync_only() -> None:
    decision = run("rsync --server -e.LsfxCIvu . dst")
    assert isinstance(decision, Allow)
    assert dict(decision.env)["HOME"] == "/"
    assert decision.cwd == HOME
    scp = run("scp -t dst")
    assert isinstance(scp, Allow)
    assert dict(scp.env)["HOME"] == HOME


def test_other_names_and_configured_path() -> None:
    for name in ("/usr/bin/rsync", "/bin/rsync", "/usr/local/bin/rsync"):
        assert allowed_argv(f"{name} --server -e.LsfxCIvu . dst")
    assert refusal("/tmp/rsync --server -e.LsfxCIvu . dst")


def test_rsync_must_be_enabled() -> None:
    decision = decide(
        make_request("rsync --server -e.LsfxCIvu . dst"),
        make_policy(programs=("sftp",)),
    )
    assert isinstance(decision, Refuse)
    assert "not enabled" in decision.reason


# --- properties ---------------------------------------------------------------------------------


def _assert_well_formed(argv: tuple[str, ...]) -> None:
    """argv[1] is --server; every option is from the tables; `--` `.` then plain operands."""
    assert argv[0] == RSYNC
    assert argv[1] == "--server"
    index = 3 if argv[2] == "--sender" else 2
    blobs = 0
    while argv[index] != "--":
        word = argv[index]
        assert word.startswith("-")
        if word.startswith("--"):
            name = word[2:].partition("=")[0]
            assert name in rsync.LONG_OPTIONS, word
            assert name not in ("server", "sender")
        else:
            letters = word[1:]
            position = 0
            while position < len(letters):
                letter = letters[position]
                if letter in rsync.SHORT_FLAGS:
                    position += 1
                    continue
                assert letter in rsync.SHORT_WITH_VALUE, word
                value = letters[position + 1 :]
                assert value, word
                if letter == "e":
                    blobs += 1
                    assert value[0] == "." and value[1:].isalpha() and value.isascii(), word
                else:
                    assert position == 0, word
                break
        index += 1
    assert blobs <= 1
    assert argv[index + 1] == "."
    operands = argv[index + 2 :]
    assert operands
    assert all(operand and not operand.startswith("-") for operand in operands)


TOKENS = [
    "--server", "--sender", ".", "..", "--", "-e.LsfxCIvu", "-logDtpre.iLsfxCIvu", "-e",
    "-s", "-vs", "-vlogDtpsre.iL", "-B1024", "-@-1", "-vvv", "-x", "-a", "-P", "-M--rsh=x",
    "--rsh=sh", "--rsh", "sh", "--delete", "--temp-dir", "--temp-dir=/tmp", "tmp", "/etc",
    "../x", "/home/alice/x", "--partial-dir=.p", "--files-from=-", "--files-from",
    "--log-file=x", "--munge-links", "--no-munge-links", "--daemon", "--config=x",
    "--protect-args", "--iconv=utf8", "--suffix=.b", "--remove-source-files", "--link-dest",
    "-H", "-e.iL", "-e=.x", "dst", "dst/", "a b", "-dash", "--timeout=5", "--timeout",
    "rsync", "/usr/bin/rsync", "--write-batch=x", "--list-only",
]  # fmt: skip

short_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é\udcff"),
    min_size=1,
    max_size=12,
)
# Unstructured: anything at all after `rsync --server`.
token_lists = st.lists(st.one_of(st.sampled_from(TOKENS), short_text), max_size=14)
VALID_OPTIONS = [
    "-e.LsfxCIvu", "-logDtpre.iLsfxCIvu", "-vvv", "-B1024", "-@-1", "-lHogDtpre.iL", "-z",
    "--delete", "--partial", "--inplace", "--temp-dir=tmp", "--partial-dir", ".p",
    "--files-from=-", "--munge-links", "--iconv=utf8", "--timeout=5", "--list-only",
    "--remove-source-files", "--link-dest=/home/alice/prev", "--no-W", "--suffix=.b",
]  # fmt: skip
# Structured like a real client's command, so that many examples are allowed.
structured = st.builds(
    lambda sender, options, dot, operands: [*sender, *options, *dot, *operands],
    st.sampled_from([[], ["--sender"]]),
    st.lists(
        st.one_of(
            st.sampled_from(VALID_OPTIONS),
            st.sampled_from(VALID_OPTIONS),
            st.sampled_from(VALID_OPTIONS),
            st.sampled_from(TOKENS),
            short_text,
        ),
        max_size=5,
    ),
    st.sampled_from([["."], ["."], ["."], ["."], [], [".."], ["--", "."]]),
    st.lists(
        st.one_of(st.sampled_from(["dst", "dst/", "a b", "-dash", "/etc", "é"]), short_text),
        min_size=1,
        max_size=3,
    ),
)


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    tokens=st.one_of(structured, token_lists),
    access=st.sampled_from(["read-write", "read-only", "write-only"]),
    links=st.booleans(),
)
@example(tokens=["-e.LsfxCIvu", ".", "dst"], access="read-write", links=True)
@example(tokens=["--sender", "-e.LsfxCIvu", ".", "dst"], access="read-only", links=False)
def test_every_allow_is_a_well_formed_server_command(
    tokens: list[str], access: str, links: bool
) -> None:
    command = words.join(["rsync", "--server", *tokens])
    decision = run(command, access=access, links=links)
    if not isinstance(decision, Allow):
        return
    _assert_well_formed(decision.argv)
    assert dict(decision.env)["HOME"] == "/"
    sender = decision.argv[2] == "--sender"
    if access == "read-only":
        assert sender
        assert not any(
            word[2:] in rsync.DELETE_OPTIONS | rsync.REMOVE_OPTIONS for word in decision.argv
        )
    if access == "write-only":
        assert not sender
        assert "--whole-file" in decision.argv
    if not links:
        assert "--munge-links" in decision.argv
    # Exactly what is exec'd passes the check again, unchanged (read-write, links: no additions).
    if access == "read-write" and links:
        index = decision.argv.index("--")
        again = words.join(["rsync", *decision.argv[1:index], *decision.argv[index + 1 :]])
        assert run(again).argv == decision.argv  # type: ignore[union-attr]


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ACDEHIJKLNORSUWXbcdgklmnopqrstuvxyzeaPMTfF0h@B.=-1/"), max_size=10))
def test_clusters_are_read_letter_by_letter(cluster: str) -> None:
    decision = run(f"rsync --server -{cluster} . dst") if cluster else None
    if not isinstance(decision, Allow):
        return
    # What follows a value-taking letter (e, B, @) is its value, not more options.
    value_at = [index for index, char in enumerate(cluster) if char in "eB@"]
    letters = cluster[: value_at[0]] if value_at else cluster
    assert not set(letters) & set("sMTfFaPh0")


# --- real transfers through decide(), without sshd ----------------------------------------------

HELPER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.environ["RSYNC_TEST_REPOSITORY"])  # -I: for tests.support
    from scponly_py.decide import decide
    from tests.support import make_policy, make_request

    # rsync runs: HELPER HOST rsync --server ...; ssh would join the words with spaces
    # and the login shell would get that string.
    command = " ".join(sys.argv[2:])
    with open(os.environ["RSYNC_TEST_LOG"], "a") as log:
        log.write(command + "\\n")
    policy = make_policy(
        access=os.environ["RSYNC_TEST_ACCESS"],
        links=os.environ["RSYNC_TEST_LINKS"] == "1",
        programs=("rsync",),
    )
    request = make_request(command, home=os.environ["RSYNC_TEST_HOME"], client="-")
    decision = decide(request, policy)
    if not decision.allowed:
        sys.stderr.write("scponly-py: refused: " + decision.reason + "\\n")
        sys.exit(1)
    os.chdir(decision.cwd)
    os.umask(decision.umask)
    os.execve(decision.path, list(decision.argv), dict(decision.env))
    """
)


@pytest.fixture
def area(tmp_path: Path):
    """A client dir, a home dir and a `-e` helper that runs decide() then execs its argv."""
    if not os.path.exists(RSYNC):
        pytest.skip("rsync is not installed")
    home = tmp_path / "home"
    client = tmp_path / "client"
    home.mkdir()
    client.mkdir()
    helper = tmp_path / "helper.py"
    helper.write_text(HELPER)
    wrapper = tmp_path / "rsh"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -I {helper} "$@"\n')
    wrapper.chmod(0o755)
    log = tmp_path / "log"

    def transfer(*args: str, access: str = "read-write", links: bool = True):
        env = {
            "PATH": "/usr/bin:/bin",
            "RSYNC_TEST_ACCESS": access,
            "RSYNC_TEST_LINKS": "1" if links else "0",
            "RSYNC_TEST_HOME": str(home),
            "RSYNC_TEST_LOG": str(log),
            "RSYNC_TEST_REPOSITORY": REPOSITORY,
        }
        return subprocess.run(
            [RSYNC, "-e", str(wrapper), *args],
            cwd=client,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    transfer.home = home  # type: ignore[attr-defined]
    transfer.client = client  # type: ignore[attr-defined]
    transfer.log = log  # type: ignore[attr-defined]
    return transfer


def _tree(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "dir"
    return found


def _fill(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.bin").write_bytes(bytes(range(256)) * 1000)
    (root / "sub" / "b.txt").write_bytes(b"b\n" * 5000)
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    (root / "name with 'quote' and $dollar").write_bytes(b"odd name\n")


def test_real_push_and_pull_are_byte_exact(area) -> None:
    source = area.client / "src"
    _fill(source)
    pushed = area("-a", "src/", "h:dst/")
    assert pushed.returncode == 0, pushed.stderr
    assert _tree(area.home / "dst") == _tree(source)

    (area.home / "dst" / "extra").write_bytes(b"pull me\n")
    pulled = area("-a", "h:dst/", "back/")
    assert pulled.returncode == 0, pulled.stderr
    assert _tree(area.client / "back") == _tree(area.home / "dst")

    # --delete, --partial, --inplace, -z, --checksum, -H against the real server
    (source / "a.bin").write_bytes(b"changed" * 999)
    for options in (["--delete"], ["--partial"], ["--inplace"], ["-z"], ["--checksum"], ["-H"]):
        result = area("-a", *options, "src/", "h:dst/")
        assert result.returncode == 0, (options, result.stderr)
    assert _tree(area.home / "dst") == _tree(source)
    commands = area.log.read_text().splitlines()
    assert all(command.startswith("rsync --server ") for command in commands)


def test_real_protect_args_is_refused(area) -> None:
    (area.client / "f").write_bytes(b"x")
    result = area("--protect-args", "f", "h:dst")
    assert result.returncode != 0
    assert "refused: rsync option -s is not allowed" in result.stderr
    assert not (area.home / "dst").exists()


def test_real_access_modes(area) -> None:
    (area.client / "f").write_bytes(b"data\n")
    refused = area("f", "h:f", access="read-only")
    assert refused.returncode != 0
    assert "read-only" in refused.stderr
    assert not (area.home / "f").exists()

    pushed = area("f", "h:f", access="write-only")
    assert pushed.returncode == 0, pushed.stderr
    assert (area.home / "f").read_bytes() == b"data\n"
    refused = area("h:f", "back", access="write-only")
    assert refused.returncode != 0
    assert "write-only" in refused.stderr

    pulled = area("h:f", "back", access="read-only")
    assert pulled.returncode == 0, pulled.stderr
    assert (area.client / "back").read_bytes() == b"data\n"


def test_real_write_only_learns_nothing_from_probes(area) -> None:
    """The issue's reproductions: a fuzzy dry run at -vvvvv, and a checksum guess."""
    (area.home / "secret-name").write_bytes(b"guess me\n")
    (area.home / "other").write_bytes(b"x" * 1234)
    upload = area.client / "up"
    upload.mkdir()
    (upload / "secret-name").write_bytes(b"guess me\n")
    for args in (["-ny", "-vvvvv", "up/", "h:."], ["-rc", "-i", "-n", "up/", "h:."]):
        result = area(*args, access="write-only")
        assert result.returncode != 0, args
        assert "write-only account" in result.stderr
        assert "other" not in result.stdout + result.stderr
    plain = area("-av", "up/", "h:.", access="write-only")
    assert plain.returncode == 0, plain.stderr
    assert "other" not in plain.stdout + plain.stderr
    assert "uptodate" not in plain.stdout + plain.stderr


def test_real_munge_links_when_links_are_off(area) -> None:
    source = area.client / "src"
    source.mkdir()
    (source / "link").symlink_to("/etc/passwd")
    result = area("-a", "src/", "h:dst/", links=False)
    assert result.returncode == 0, result.stderr
    target = os.readlink(area.home / "dst" / "link")
    assert target == "/rsyncd-munged//etc/passwd"
    # and the munged link comes back as the original when pulled by a links=false account
    pulled = area("-a", "h:dst/", "back/", links=False)
    assert pulled.returncode == 0, pulled.stderr
    assert os.readlink(area.client / "back" / "link") == "/etc/passwd"


def test_real_user_popt_file_cannot_run_a_program(area, tmp_path: Path) -> None:
    marker = tmp_path / "popt-exec-ran"
    evil = area.home / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil.chmod(0o755)
    (area.home / ".popt").write_text(f"rsync exec --server {evil}\n")
    (area.client / "f").write_bytes(b"x")

    # Control: with HOME = the user's home, rsync really does run the program.
    control = subprocess.run(
        [RSYNC, "--server", "-e.LsfxCIvu", ".", "dst"],
        cwd=area.home,
        env={"PATH": "/usr/bin:/bin", "HOME": str(area.home)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert marker.exists(), control
    marker.unlink()

    result = area("f", "h:dst")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert (area.home / "dst").read_bytes() == b"x"


@pytest.mark.skipif(os.geteuid() != 0, reason="checks that / is not writable by others")
def test_child_home_is_not_writable_by_users() -> None:
    home = programs.PROGRAMS["rsync"]["home"]
    mode = os.stat(home).st_mode
    assert os.stat(home).st_uid == 0
    assert not mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert not os.path.exists("/.popt")
