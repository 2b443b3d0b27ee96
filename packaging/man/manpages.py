#!/usr/bin/env python3
"""Generate the man pages from one source: the prose below plus the live option tables.

    python3 packaging/man/manpages.py OUTDIR [--sftp-server PATH] [--date YYYY-MM-DD]

writes scponly-py.8, scponly-pyc.8, scponly-py-setup.8 and scponly-py.toml.5.

What is taken from the code, so it cannot drift:
  * scponly-py's admin subcommands and their options: the argparse parser of scponly_py/cli.py;
  * every scponly-py-setup command, argument and option with its help: the click command tree
    of setup_chroot/cli.py (walked recursively; a command without help text is an error);
  * the configuration keys: scponly_py/policy.py's SETTING_CHECKS (a key without a description
    in CONFIG_KEYS below, or a description of a key that does not exist, is an error), the
    program names, access modes and built-in defaults of the same module.

Only the packaging and the tests import this file: the login path never does.
The distribution's sftp-server path goes into the examples (--sftp-server; each
distribution's is in the program table, scponly_py/programs/__init__.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scponly_py import __version__, policy, programs  # noqa: E402 - after the path set-up above
from scponly_py import cli as shell_cli  # noqa: E402

DEBIAN_SFTP_SERVER = policy.BUILTIN_PATHS["sftp"]
PAGES = ("scponly-py.8", "scponly-pyc.8", "scponly-py-setup.8", "scponly-py.toml.5")


class Undocumented(Exception):
    """A command, option or configuration key has no documentation."""


# What render() found undocumented; all_pages(strict=True) raises if it is not empty, the
# build only warns (a missing option help must not stop a package build, the tests fail).
PROBLEMS: list[str] = []


def undocumented(what: str, fallback: str = "") -> str:
    PROBLEMS.append(what)
    return fallback


# -- the prose ----------------------------------------------------------------------------------
# Markup: `text` is bold (commands, options, paths, keys), *text* is italic (placeholders).
# A block is a paragraph string, ("list", [(term, text), ...]) or ("example", "verbatim lines").

CONFIG_KEYS: dict[str, tuple[str, str]] = {
    # key: (value syntax, description)
    "programs": (
        "list of names",
        "The programs the user may run, any of {programs}. sftp means the configured "
        "sftp-server, run as the sftp subsystem or by name; scp is OpenSSH scp in server mode "
        "only (exactly one of `-t` or `-f`); rsync is `rsync --server` with an allowlist of "
        "server options; unison and svnserve are accepted only in their exact server forms "
        "(`unison -server`, `svnserve -t`); winscp is WinSCP's SCP-mode line protocol, which "
        "runs the helper programs listed under [paths]; hashsum lets rclone check files: "
        "`md5sum`, `sha1sum` or `sha256sum`, bare or with one normalised absolute path, "
        "refused for write-only accounts.",
    ),
    "access": (
        "string",
        "One of {access}. read-only runs sftp-server with `-R` and allows only scp downloads "
        "(`-f`); write-only denies every sftp request that reads (`-P` "
        "copy-data,opendir,read,readdir,readlink) and allows only scp uploads (`-t`); rsync "
        "and the other programs are restricted in the same direction. What write-only hides: "
        "file contents and directory listings (sftp, scp, rsync); rsync also refuses every "
        "option whose output depends on the files already there (-c, -y, -n, -u, -i, "
        "--existing, --ignore-existing, --size-only, --append, --compare-dest, --copy-dest, "
        "--link-dest, --info, --list-only), drops the receiver's -v and adds --whole-file. "
        "What it cannot hide: whether an upload succeeded, and why not (an unwritable or "
        "existing directory in the way); sftp stat/lstat/realpath show whether a path exists "
        "and its size, mode and times; rsync's receiver reports, for each name uploaded, "
        "whether it existed and whether its size, time, mode or owner differ.",
    ),
    "links": (
        "boolean",
        "false forbids creating symbolic and hard links: sftp-server gets `-P` "
        "symlink,hardlink and rsync gets `--munge-links`.",
    ),
    "umask": (
        "octal string",
        'The umask for created files, from "000" to "0777", passed to sftp-server as `-u` '
        "and set before every exec.",
    ),
    "start_dir": (
        "string",
        'A plain relative path inside the home directory (no "..", no leading "/") that '
        "sftp-server starts in (`-d`) and that every program is run in. Empty means the home "
        "directory. When set, it and every directory above it must be owned by root or the "
        "account and not writable by group or others (others could plant symbolic links that "
        "the account's uploads follow); otherwise every login of the account is refused.",
    ),
    "log_level": (
        "string",
        "One of {log_levels}. debug adds the words of every command to the syslog line.",
    ),
    "log_format": (
        "string",
        "One of {log_formats}: how every syslog line of the account's logins is written, "
        "`key=value` pairs or one JSON object per line with the same fields (see LOG LINES). "
        "Lines written before the configuration is read (a broken configuration, an internal "
        "error) are always kv.",
    ),
    "log_transfers": (
        "boolean",
        "true runs each allowed program under a small supervisor (the login process itself, "
        "after a fork): it logs one line per sftp operation and an end line per session (see "
        "LOG LINES). The transfer's data never passes through it; its syslog sends never "
        "block (lines that cannot wait are counted in the end line's dropped). false: the "
        "login becomes the program, and the decision line is the only one.",
    ),
    "transfer_log_level": (
        "string",
        "One of {transfer_log_levels}: the level sftp-server logs at with log_transfers "
        "(`-e -l` *LEVEL*, replacing any logging options the client gives). VERBOSE adds "
        "opendir, stat, lstat and realpath lines.",
    ),
    "svn_root": (
        "string",
        "The directory svnserve serves (`svnserve -t --root` *DIR*): a normalised absolute "
        "path; a path relative to the home directory is an error. Empty refuses svnserve even "
        "when it is in programs. Repository hooks run as the user, so svnserve is refused "
        "unless *DIR* and every directory above it, every directory below it down to the "
        "repositories, each repository's top directory and everything in its hooks/ and conf/ "
        "are owned by root and not writable by group or others (symbolic links there are "
        "judged up to their target; elsewhere below *DIR* they are refused). Only db/ and "
        "locks/ may be writable by the account. With access read-write, svnserve must be the "
        "account's only program: with db/ writable, any program that writes files could put "
        "a repository with its own hooks inside db/, and svnserve would serve it.",
    ),
    "svn_tunnel_user": (
        "boolean",
        "true adds `--tunnel-user` with the login name, so commits are attributed to the "
        "account whatever the client claims.",
    ),
}

SHELL_PAGE = {
    "name": "scponly-py",
    "section": "8",
    "summary": "restricted login shell that allows file transfers (sftp, scp, rsync) only",
    "synopsis": [
        "`scponly-py` `-c` *COMMAND*",
        "`scponly-py` `explain` [`--user` *USER*] [`--config` *FILE*] `--` *COMMAND*",
        "`scponly-py` `check-config` [`--no-compile`] [*FILE*]",
    ],
    "sections": [
        (
            "DESCRIPTION",
            [
                "`scponly-py` is a login shell for accounts that may transfer files and do "
                "nothing else. sshd runs it as *shell* `-c` *COMMAND* for every session and "
                "subsystem request; it splits *COMMAND* like a POSIX shell would but expands "
                "nothing, checks the words with the option grammar of the requested program, "
                "writes one syslog line and replaces itself (execve) with the program, found by "
                "the absolute path of its configuration, with an argument list rebuilt by the "
                "grammar and an environment built from scratch.",
                "There is no shell behind it: an unquoted $, backquote, ;, |, &, <, >, glob "
                "character, ~, {{, # or !, any control character, and every unknown option is "
                "refused. A refusal is one line on standard error (`scponly-py: refused:` "
                "*reason*), exit status 1 and a syslog line; nothing is written to standard "
                "output before the exec, so an sftp session is never corrupted.",
                "An interactive login (no command) prints `This account is restricted to file "
                "transfers` and exits 1. As a forced command (`ForceCommand` or `command=` in "
                "authorized_keys) the request is taken from SSH_ORIGINAL_COMMAND, which is "
                "trusted only in that mode. Root (uid 0) is always refused, and so is sshd's "
                "run of ~/.ssh/rc.",
                "`/usr/bin/scponly-py` is a small compiled front with the file capability "
                "cap_wake_alarm+p, so the kernel starts it in secure-execution mode and the "
                "dynamic loader ignores LD_PRELOAD, LD_AUDIT and the like, whoever set them "
                "(~/.pam_environment through pam_env, sshd's AcceptEnv or "
                "PermitUserEnvironment). It drops the capability and runs "
                "`/usr/lib/scponly-py/launcher` with only the variables the shell reads; a "
                "login that did not start that way is refused.",
                "On a systemd host (/run/systemd/system exists) a login is refused while the "
                "home, ~/.config, ~/.local or their systemd and environment.d directories are "
                "not root-owned or are writable by group or others: pam_systemd starts "
                "systemd --user at login, which would run units the user uploaded there; "
                "`scponly-py-setup check --user` *name* `--fix` makes the home root-owned "
                "with ~/files for uploads.",
                "The launcher runs Python isolated: a "
                "`#!python -IS` script (the packages ship it; on the pip route "
                "`scponly-py-setup install-shell` writes it and the front) that imports the "
                "package from the .pyc files root compiled (the packages, and "
                "`install-shell`, byte-compile it; no login can write them). A "
                "console script written by pip is for the administrative commands only and "
                "refuses every login. The frozen `/usr/lib/scponly-py/scponly-py` (PyInstaller, "
                "no Python needed) is for ChrootDirectory jails. It is its own front: it "
                "carries cap_wake_alarm+p too (the packages and `scponly-py-setup "
                "install-chroot-shell` set it, in the jail's copy as well), empties every "
                "capability set as its first step and refuses a login, other than root's, "
                "that did not start in secure-execution mode.",
            ],
        ),
        (
            "SET-ID BITS",
            [
                "No file an account uploads ever runs with its uid for someone else. Right "
                "before the exec, scponly-py (and scponly-pyc, and the frozen scponly-py) sets "
                "no_new_privs and installs a seccomp filter that the program and everything it "
                "starts keep: chmod, fchmod, fchmodat, fchmodat2, mknod, mknodat and a creating "
                "open, openat or creat fail with EPERM when the mode has the set-user-ID or "
                "set-group-ID bit (on directories too); openat2 and io_uring fail with ENOSYS. "
                "There is no setting to turn it off. What clients see:",
                (
                    "list",
                    [
                        (
                            "sftp `chmod 4755`",
                            "`remote setstat` *file*`: Permission denied`; the mode is unchanged.",
                        ),
                        (
                            "`scp -p`, `sftp put -p`",
                            "OpenSSH clients send only the permission bits: the file lands "
                            "without set-id bits, no error.",
                        ),
                        (
                            "`scp -O -p`",
                            "a file whose source is set-id is not written: `scp:` *file*`: "
                            "Operation not permitted`, exit 1 (other files go on). Without `-p`, "
                            "scp drops the bits itself.",
                        ),
                        (
                            "`rsync -p`, `rsync -a`",
                            "the data lands with mode 0700 (rsync's temporary file) and rsync "
                            "exits 23 with `failed to set permissions on` *file*`: Operation not "
                            "permitted`.",
                        ),
                        (
                            "WinSCP (SCP mode)",
                            "its `chmod` refuses set-id modes before running anything.",
                        ),
                    ],
                ),
                "The filter knows x86_64 and aarch64 (on x86_64, i386 system calls kill the "
                "process and x32 ones fail); on any other architecture, or a 32-bit Python, "
                "every login is refused with one line and a syslog line. no_new_privs also "
                "means that nothing the program runs gains privilege from a set-id or "
                "file-capability binary.",
            ],
        ),
        ("ADMINISTRATIVE COMMANDS", "@argparse"),
        (
            "SSHD CONFIGURATION",
            [
                "Keep an external sftp subsystem (`internal-sftp` never runs the login shell) "
                "and turn off what bypasses a shell, for example:",
                (
                    "example",
                    "Subsystem sftp {sftp_server}\n"
                    "\n"
                    "Match Group sftponly\n"
                    "    AllowTcpForwarding no\n"
                    "    AllowStreamLocalForwarding no\n"
                    "    X11Forwarding no\n"
                    "    AllowAgentForwarding no\n"
                    "    PermitTunnel no\n"
                    "    PermitUserRC no\n"
                    "    PermitTTY no",
                ),
                "`PermitUserEnvironment` must stay no. The home directory and ~/.ssh must not "
                "be writable by the user. `scponly-py-setup sshd-config --check` *USER* reports "
                "every setting that lets a user around the shell.",
            ],
        ),
        (
            "EXIT STATUS",
            [
                "As a login shell, the exit status of the program it runs, or 1 for a refusal. "
                "`explain` exits 0 when the command would be allowed and 1 when refused; "
                "`check-config` exits 0 for a valid file and 1 otherwise, and 3 when the file "
                "is valid (and compiled) but, run as root, it finds an account's start_dir or "
                "svn_root unsafe (those logins are refused; scponly-py.toml(5)).",
            ],
        ),
        (
            "FILES",
            [
                (
                    "list",
                    [
                        (
                            "`/etc/scponly-py/config.toml`",
                            "The configuration, see scponly-py.toml(5). It and its directory "
                            "must be owned by root and not writable by group or others, or every "
                            "login is refused.",
                        ),
                        (
                            "`/etc/scponly-py/config.compiled`",
                            "The validated form written by `check-config`; a login uses it only "
                            "if its stamp matches config.toml.",
                        ),
                        (
                            "`/usr/share/scponly-py/`",
                            "The packaged launcher's modules, byte-compiled by root.",
                        ),
                        (
                            "`/usr/lib/scponly-py/`",
                            "The frozen shells (packages): scponly-pyc, and scponly-py for "
                            "ChrootDirectory jails.",
                        ),
                        ("`/etc/shells`", "The packages register the login shells here."),
                    ],
                ),
            ],
        ),
        (
            "EXAMPLES",
            [
                (
                    "example",
                    "usermod -s /usr/bin/scponly-py alice\n"
                    "scponly-py explain --user alice -- 'scp -t /incoming'\n"
                    "scponly-py check-config",
                ),
            ],
        ),
        ("SEE ALSO", ["scponly-pyc(8), scponly-py-setup(8), scponly-py.toml(5), sshd_config(5)"]),
    ],
}

CHROOT_PAGE = {
    "name": "scponly-pyc",
    "section": "8",
    "summary": "chrooted restricted login shell for file transfers",
    "synopsis": ["`scponly-pyc` `-c` *COMMAND*"],
    "sections": [
        (
            "DESCRIPTION",
            [
                "`scponly-pyc` is scponly-py(8) with one step added: before it decides, it "
                "enters the user's jail. The jail comes from the home directory of the passwd "
                "entry: with a home of /srv/jail//home/alice it changes root to /srv/jail and "
                "then to the directory /home/alice inside it; a home without // is the jail "
                "itself and the session starts in /. The programs are run by their paths "
                "inside the jail, so the jail must contain them and their libraries: build it "
                "with `scponly-py-setup create` and add users with `scponly-py-setup add-user`.",
                "The order, failing closed at every step: identity from the real uid only "
                "(never USER or HOME); the configuration, read on the host before the chroot; "
                "every component of the jail's real path opened one by one without following "
                "symbolic links and checked to be a directory owned by root and not writable "
                "by group or others; chroot into the opened directory; all capability sets "
                "emptied (for the setuid build also the bounding set, locked securebits and "
                "every uid and gid set to the user's); no_new_privs; a check that regaining "
                "root fails; the decision; execve. A setuid program inside a jail can "
                "therefore not give root.",
                "It refuses to start when its own installed files could have been changed by "
                "anyone but root.",
            ],
        ),
        (
            "PRIVILEGE",
            [
                "sshd already runs the login shell as the user, so the only privilege needed is "
                "CAP_SYS_CHROOT. The packages give /usr/lib/scponly-py/scponly-pyc the file "
                "capability `cap_sys_chroot+ep` (as setcap(8) would) and fall back to setuid "
                "root, with a warning, on file systems without extended attributes. It is a "
                "PyInstaller one-directory build, never a self-extracting single file: a "
                "privileged program must not unpack itself into a directory the user chooses.",
                "The alternative without chroot privilege is sshd's `ChrootDirectory` with the "
                "frozen scponly-py copied into the jail (`scponly-py-setup "
                "install-chroot-shell --jail` *JAIL*). That copy carries only "
                "`cap_wake_alarm+p` (permitted, never effective, dropped as its first step), "
                "so that the kernel starts it in secure-execution mode and the loader ignores "
                "LD_PRELOAD and the like from PAM or sshd; the install refuses a jail whose "
                "file system cannot keep it. Choose it when no file may carry chroot "
                "privilege; choose scponly-pyc when every user has a jail "
                "of their own given by the home directory, or when sshd_config must not change "
                "per user.",
            ],
        ),
        (
            "EXIT STATUS",
            ["That of the program it runs, or 1 for a refusal (logged, one line on stderr)."],
        ),
        (
            "FILES",
            [
                (
                    "list",
                    [
                        (
                            "`/usr/lib/scponly-py/scponly-pyc`",
                            "The program; /usr/sbin/scponly-pyc links to it.",
                        ),
                        ("`/etc/scponly-py/config.toml`", "See scponly-py.toml(5)."),
                    ],
                ),
            ],
        ),
        (
            "EXAMPLES",
            [
                (
                    "example",
                    "scponly-py-setup create /srv/jail --profile sftp,scp\n"
                    "scponly-py-setup add-user alice --jail /srv/jail --create "
                    "--shell scponly-pyc\n"
                    "scponly-py-setup check /srv/jail",
                ),
            ],
        ),
        ("SEE ALSO", ["scponly-py(8), scponly-py-setup(8), scponly-py.toml(5), capabilities(7)"]),
    ],
}

SETUP_PAGE = {
    "name": "scponly-py-setup",
    "section": "8",
    "summary": "install the scponly-py login shells, build and audit chroot jails, check sshd",
    "synopsis": ["`scponly-py-setup` *COMMAND* [*OPTIONS*] [*ARGUMENTS*]"],
    "sections": [
        (
            "DESCRIPTION",
            [
                "`scponly-py-setup` is the administrator's tool for scponly-py(8) and "
                "scponly-pyc(8). Everything it writes into a jail goes through directory file "
                "descriptors without following symbolic links and is renamed into place, so a "
                "symbolic link planted by a jailed user is never followed; setuid bits are "
                "never copied and nothing is hard-linked to host files.",
                "The packages run `scponly-py-setup update --all` after package upgrades "
                "(a dpkg trigger, a pacman hook, an RPM file trigger), so the libraries and "
                "programs copied into jails stay current.",
            ],
        ),
        ("GLOBAL OPTIONS", "@click-global"),
        ("COMMANDS", "@click"),
        ("EXIT STATUS", ["0 on success; non-zero on an error or, for checks, on any finding."]),
        (
            "FILES",
            [
                "For a jail that sshd enters with `ChrootDirectory` (`add-user --mode "
                "chroot-directory`, or `--devlog`), the jail's /dev/log, where the shell must "
                "log before it runs anything, is given to the daemon that owns the host's "
                "/dev/log; removing the jail's last such user removes it again.",
                (
                    "list",
                    [
                        (
                            "`/etc/systemd/system/`*ESCAPED-JAIL*`-dev-log.mount`",
                            "journald: bind-mounts /run/systemd/journal/dev-log onto "
                            "*JAIL*/dev/log, at boot and whenever that socket is re-created "
                            "(the name is `systemd-escape --path` of *JAIL*/dev/log).",
                        ),
                        (
                            "`/etc/rsyslog.d/scponly-py-`*ESCAPED-JAIL*`.conf`",
                            "rsyslog: an imuxsock socket at *JAIL*/dev/log (rsyslog is "
                            "restarted to read it).",
                        ),
                        (
                            "`/var/lib/scponly-py/jails/`*ESCAPED-JAIL*`.json`",
                            "The jail's manifest (what `update`, `check` and `remove-user` "
                            "work from).",
                        ),
                    ],
                ),
            ],
        ),
        ("SEE ALSO", ["scponly-py(8), scponly-pyc(8), scponly-py.toml(5), sshd_config(5)"]),
    ],
}

CONFIG_PAGE = {
    "name": "scponly-py.toml",
    "section": "5",
    "summary": "configuration of the scponly-py and scponly-pyc login shells",
    "synopsis": ["`/etc/scponly-py/config.toml`"],
    "sections": [
        (
            "DESCRIPTION",
            [
                "The configuration of scponly-py(8) and scponly-pyc(8), in TOML. The path is "
                "fixed: a user cannot choose another one. The file and its directory must be "
                "owned by root and not writable by group or others, otherwise every login is "
                "refused. A missing file means the built-in defaults. Unknown sections, keys "
                "and values are errors, because a typing mistake must not silently widen "
                "access.",
                "After editing, run `scponly-py check-config` as root: it validates the file "
                "and writes /etc/scponly-py/config.compiled, which a login reads in well under "
                "a millisecond instead of parsing TOML. A login trusts the compiled form only "
                "when it is owned by root and its stamp (inode, size, modification and change "
                "time) matches config.toml; otherwise it parses config.toml itself and logs a "
                "warning.",
                "Run as root, `check-config` also checks the directories of every account the "
                "file governs (login shell scponly-py or scponly-pyc, or a [user.NAME] "
                "section): a start_dir or svn_root tree that others could change is reported, "
                "one line per account with the path and the reason, and the exit status is 1. "
                "A login checks the same before it runs a program and refuses it then, so a "
                "change made after `check-config` is caught too; a directory that does not "
                "exist yet is reported by the login only.",
            ],
        ),
        (
            "SECTIONS",
            [
                (
                    "list",
                    [
                        ("`[defaults]`", "Settings for every user (the keys below)."),
                        (
                            "`[paths]`",
                            "Absolute paths of the programs that are run (inside the jail for "
                            "scponly-pyc).",
                        ),
                        (
                            "`[group.`*NAME*`]`",
                            "Settings for members of the Unix group *NAME*.",
                        ),
                        ("`[user.`*NAME*`]`", "Settings for the user *NAME*."),
                    ],
                ),
                "Merge order for one user, later wins key by key: built-in defaults, "
                "[defaults], each matching [group.*NAME*] in the order the sections appear in "
                "the file, [user.*NAME*]. `scponly-py explain --user` *NAME* shows the result.",
            ],
        ),
        ("SETTINGS", "@settings"),
        ("PATHS", "@paths"),
        (
            "LOG LINES",
            [
                "Facility authpriv, identifier scponly-py. Each line is ordered fields: "
                '`key=value` (a value that is not plain is double-quoted, with `\\\\`, `\\"` '
                "and every other byte outside printable ASCII written `\\\\x`*NN*), or with "
                "log_format json one JSON object (ASCII; a byte that is not UTF-8 is the "
                "character U+DC80 plus its value; numbers are JSON numbers). Every line of one "
                "login has the same session: *PID*-*STARTTIME* (the login process and its "
                "start in clock ticks after boot, as `scponly-py-setup sessions` shows it), or "
                "r and 16 hexadecimal digits where /proc was missing at login (sshd "
                "ChrootDirectory jails).",
                (
                    "list",
                    [
                        (
                            "decision line",
                            "decision (allow or refuse), user, uid, client (the client's "
                            "address), mode (command, login, interactive), session, program, "
                            "then argv (allowed) or reason and command (refused); with "
                            "log_level debug also cwd, umask, env.",
                        ),
                        (
                            "operation line (sftp, log_transfers)",
                            "event (open, close, setstat, remove, mkdir, rmdir, rename, "
                            "symlink, hardlink; with VERBOSE also opendir, stat, lstat, "
                            "realpath), session, user, client, path (as the client sent it, "
                            "relative to the start directory if not absolute; inside the jail "
                            "for jailed accounts), then per event: open: mode (read, write, "
                            "append, create, truncate, exclusive, comma-separated); close: "
                            "bytes_read and bytes_written (of that file: a download reads, an "
                            "upload writes); setstat: change (e.g. mode 0600, size 0); rename: "
                            "target (the new name); symlink, hardlink: target (what the new "
                            "link at path points to). A message that cannot be split "
                            "unambiguously keeps its text as detail instead.",
                        ),
                        (
                            "end line (log_transfers)",
                            "event=end, session, user, client, program, status (exit status) "
                            "or signal (the signal that ended the program, e.g. TERM), "
                            "duration (seconds), bytes_read and bytes_written (everything the "
                            "program and the processes it waited for read and wrote through "
                            "read/write system calls: files and the connection; unknown "
                            "without /proc), dropped (lines of this session the log daemon "
                            "could not take in time). If the supervisor itself is killed, the "
                            "program goes on and the end line is missing.",
                        ),
                    ],
                ),
            ],
        ),
        (
            "EXAMPLE",
            [
                (
                    "example",
                    "[defaults]\n"
                    'programs = ["sftp", "scp"]\n'
                    'access = "read-write"\n'
                    'umask = "0022"\n'
                    "\n"
                    "[paths]\n"
                    'sftp = "{sftp_server}"\n'
                    "\n"
                    "[group.dropbox]\n"
                    'access = "write-only"\n'
                    "\n"
                    "[user.alice]\n"
                    'programs = ["sftp", "rsync"]\n'
                    "links = false",
                ),
            ],
        ),
        (
            "FILES",
            [
                (
                    "list",
                    [
                        ("`/etc/scponly-py/config.toml`", "This file."),
                        (
                            "`/etc/scponly-py/config.compiled`",
                            "Its validated form, written by `scponly-py check-config`.",
                        ),
                    ],
                ),
            ],
        ),
        ("SEE ALSO", ["scponly-py(8), scponly-pyc(8), scponly-py-setup(8)"]),
    ],
}


# -- roff ---------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Plain text to roff: backslashes, hyphens as minus signs, no control line at the start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def inline(text: str) -> str:
    """`bold` and *italic* spans to roff font escapes; everything else escaped."""
    out = []
    font = None
    plain = ""
    for char in text:
        marker = {"`": "B", "*": "I"}.get(char)
        if marker is None:
            plain += char
            continue
        out.append(escape(plain))
        plain = ""
        if font == marker:
            out.append("\\fR")
            font = None
        elif font is None:
            out.append(f"\\f{marker}")
            font = marker
        else:
            plain += char  # the other marker inside a span: literal
    out.append(escape(plain))
    if font is not None:
        out.append("\\fR")
    result = "".join(out)
    # A control character at the very start of the line would be taken as a request.
    if result.startswith((".", "'")):
        result = "\\&" + result
    return result


def paragraph(text: str) -> list[str]:
    return [".PP", inline(text)]


def definition_list(items: list[tuple[str, str]]) -> list[str]:
    lines = []
    for term, text in items:
        lines += [".TP", inline(term), inline(text)]
    return lines


def example(text: str) -> list[str]:
    lines = [".PP", ".RS 4", ".nf"]
    for line in text.split("\n"):
        lines.append(escape(line) if line else "")
    return [*lines, ".fi", ".RE"]


def blocks(items: list, values: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            lines += paragraph(item.format(**values))
        elif item[0] == "list":
            lines += definition_list(
                [(term.format(**values), text.format(**values)) for term, text in item[1]]
            )
        elif item[0] == "example":
            lines += example(item[1].format(**values))
        else:
            raise ValueError(f"unknown block {item[0]!r}")
    return lines


# -- generated sections -------------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _argparse_usage(name: str, subparser: argparse.ArgumentParser) -> str:
    pieces = [f"scponly-py {name}"]
    for action in subparser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            option = action.option_strings[-1]
            if action.nargs != 0:
                option += f" {(action.metavar or action.dest).upper()}"
            pieces.append(f"[{option}]")
        else:
            metavar = (action.metavar or action.dest).upper()
            if action.nargs in ("+", "*"):
                pieces.append(f"-- {metavar}...")
            elif action.nargs == "?":
                pieces.append(f"[{metavar}]")
            else:
                pieces.append(metavar)
    return " ".join(pieces)


def argparse_section() -> list[str]:
    """A subsection for every admin subcommand of scponly-py with each of its arguments."""
    parser = shell_cli._parser()
    lines: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, subparser in action.choices.items():
            if not helps.get(name):
                helps[name] = undocumented(f"scponly-py {name} has no help text", name)
            lines += [".SS", inline(f"`{_argparse_usage(name, subparser)}`")]
            lines += paragraph(_sentence(helps[name]))
            for sub_action in subparser._actions:
                if isinstance(sub_action, argparse._HelpAction):
                    continue
                if not sub_action.help:
                    sub_action.help = undocumented(f"scponly-py {name}: {sub_action.dest}", "-")
                metavar = (sub_action.metavar or sub_action.dest).upper()
                if sub_action.option_strings:
                    term = ", ".join(f"`{option}`" for option in sub_action.option_strings)
                    if sub_action.nargs != 0:
                        term += f" *{metavar}*"
                else:
                    term = f"*{metavar}*"
                lines += [".TP", inline(term), inline(_sentence(sub_action.help))]
    if not lines:
        raise Undocumented("scponly-py has no admin subcommands")
    return lines


def _click_option(parameter) -> tuple[str, str]:
    import click  # noqa: PLC0415 - only for generating

    if isinstance(parameter, click.Argument):
        return f"*{parameter.human_readable_name}*", ""
    names = ", ".join(f"`{name}`" for name in parameter.opts + parameter.secondary_opts)
    if not parameter.is_flag and not parameter.count:
        try:  # click >= 8.2 wants a context, Debian 12's 8.1 takes none
            metavar = parameter.make_metavar(click.Context(click.Command("x")))
        except TypeError:
            metavar = parameter.make_metavar()
        names += f" *{metavar}*"
    help_text = parameter.help or ""
    if not help_text:
        choices = getattr(parameter.type, "choices", None)
        help_text = undocumented(
            f"option {parameter.opts[0]} has no help text",
            f"One of {', '.join(choices)}." if choices else "",
        )
    default = parameter.default
    if parameter.show_default and default not in (None, False, ()) and not callable(default):
        help_text += f" Default: {default}."
    return names, help_text


def click_commands(command, prefix: str) -> list[tuple[str, object]]:
    """(full name, command) for every command below `command`, depth first, sorted."""
    import click  # noqa: PLC0415 - only for generating

    found = []
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if getattr(sub, "hidden", False):
                continue
            found.append((f"{prefix} {name}", sub))
            found += click_commands(sub, f"{prefix} {name}")
    return found


def _click_usage(full_name: str, command) -> str:
    import click  # noqa: PLC0415 - only for generating

    pieces = [full_name]
    for parameter in command.params:
        if isinstance(parameter, click.Argument):
            name = parameter.human_readable_name
            if parameter.nargs == -1:
                name += "..."
            pieces.append(name if parameter.required else f"[{name}]")
    if any(isinstance(parameter, click.Option) for parameter in command.params):
        pieces.insert(1, "[OPTIONS]")
    if isinstance(command, click.Group):
        pieces.append("COMMAND ...")
    return " ".join(pieces)


def click_section() -> list[str]:
    import click  # noqa: PLC0415 - only for generating

    from setup_chroot.cli import main as setup_main  # noqa: PLC0415

    lines: list[str] = []
    commands = click_commands(setup_main, "scponly-py-setup")
    if not commands:
        raise Undocumented("scponly-py-setup has no commands")
    for full_name, command in commands:
        if not command.help:
            undocumented(f"{full_name} has no help text")
        lines += [".SS", inline(f"`{_click_usage(full_name, command)}`")]
        for block in (command.help or "").split("\n\n"):
            text = " ".join(block.replace("\b", "").split())
            if text:
                lines += paragraph(text)
        for parameter in command.params:
            if isinstance(parameter, click.Argument):
                continue
            if "--help" in parameter.opts:
                continue
            term, text = _click_option(parameter)
            lines += [".TP", inline(term), inline(text)]
    return lines


def click_global() -> list[str]:
    from setup_chroot.cli import main as setup_main  # noqa: PLC0415

    lines = [".TP", inline("`-h`, `--help`"), inline("Show the help of a command and exit.")]
    for parameter in setup_main.params:
        if parameter.name == "help":
            continue
        term, text = _click_option(parameter)
        lines += [".TP", inline(term), inline(text)]
    return lines


def format_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in sorted(value)) + "]"
    if isinstance(value, int):
        return f'"{value:04o}"'
    return f'"{value}"'


def settings_section() -> list[str]:
    keys = list(policy.SETTING_CHECKS)
    for key in keys:
        if key not in CONFIG_KEYS:
            undocumented(f"configuration key {key} has no description in CONFIG_KEYS")
    for key in CONFIG_KEYS:
        if key not in policy.SETTING_CHECKS:
            undocumented(f"CONFIG_KEYS describes {key}, which policy.SETTING_CHECKS does not know")
    values = {
        "programs": ", ".join(policy.PROGRAMS),
        "access": ", ".join(policy.ACCESS_MODES),
        "log_levels": ", ".join(policy.LOG_LEVELS),
        "log_formats": ", ".join(policy.LOG_FORMATS),
        "transfer_log_levels": ", ".join(policy.TRANSFER_LOG_LEVELS),
    }
    lines = paragraph(
        "Allowed in [defaults], [group.*NAME*] and [user.*NAME*]. The default is the value "
        "used when no section sets the key."
    )
    for key in keys:
        syntax, text = CONFIG_KEYS.get(key, ("value", "Not documented yet."))
        default = format_default(policy.BUILTIN_DEFAULTS[key])
        lines += [
            ".TP",
            inline(f"`{key}` = *{syntax}*"),
            inline(text.format(**values) + f" Default: {default}."),
        ]
    return lines


def paths_section(sftp_server: str) -> list[str]:
    lines = paragraph(
        "Each value is a normalised absolute path. For scponly-pyc it is the path inside the "
        "jail. Only the programs a user may run need to exist. The defaults:"
    )
    defaults = dict(policy.BUILTIN_PATHS)
    defaults["sftp"] = sftp_server
    for program, record in programs.PROGRAMS.items():
        for name in record["paths"]:
            role = record["role"] if name == program else f"run by {record['role']}"
            lines += [".TP", inline(f"`{name}` = *path*"), inline(f"{role}; {defaults[name]}")]
    where = [
        f"{programs.default_paths(distro)['sftp']} on {names}"
        for distro, names in programs.DISTROS.items()
    ]
    lines += paragraph(
        f"sftp-server is at {', '.join(where[:-1])} and {where[-1]}; the packages ship a "
        "config.toml with their own."
    )
    return lines


# -- pages --------------------------------------------------------------------------------------


def render(page: dict, sftp_server: str, date: str) -> str:
    values = {"sftp_server": sftp_server}
    title = page["name"].upper()
    lines = [
        f'.\\" Generated by packaging/man/manpages.py from scponly-py {__version__}; do not edit.',
        f'.TH "{escape(title)}" "{page["section"]}" "{date}" "scponly-py {__version__}" '
        '"scponly-py manual"',
        ".SH NAME",
        f"{escape(page['name'])} \\- {escape(page['summary'])}",
        ".SH SYNOPSIS",
    ]
    for index, synopsis in enumerate(page["synopsis"]):
        if index:
            lines.append(".br")
        lines.append(inline(synopsis))
    for heading, content in page["sections"]:
        lines.append(f".SH {heading}")
        if content == "@argparse":
            lines += argparse_section()
        elif content == "@click":
            lines += click_section()
        elif content == "@click-global":
            lines += click_global()
        elif content == "@settings":
            lines += settings_section()
        elif content == "@paths":
            lines += paths_section(sftp_server)
        else:
            lines += blocks(content, values)
    return "\n".join(lines) + "\n"


def all_pages(
    sftp_server: str = DEBIAN_SFTP_SERVER, date: str | None = None, *, strict: bool = False
) -> dict[str, str]:
    """File name -> roff text for every page; `strict`: Undocumented if anything lacks text."""
    PROBLEMS.clear()
    if date is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        moment = (
            datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
            if epoch
            else datetime.datetime.now(datetime.UTC)
        )
        date = moment.strftime("%Y-%m-%d")
    pages = (SHELL_PAGE, CHROOT_PAGE, SETUP_PAGE, CONFIG_PAGE)
    rendered = {
        f"{page['name']}.{page['section']}": render(page, sftp_server, date) for page in pages
    }
    if strict and PROBLEMS:
        raise Undocumented("; ".join(PROBLEMS))
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the scponly-py man pages.")
    parser.add_argument("outdir", help="directory to write the pages to")
    parser.add_argument("--sftp-server", default=DEBIAN_SFTP_SERVER, help="distribution's path")
    parser.add_argument("--date", help="date in the page footer (default: SOURCE_DATE_EPOCH)")
    parser.add_argument("--strict", action="store_true", help="fail if anything is undocumented")
    options = parser.parse_args(argv)
    try:
        pages = all_pages(options.sftp_server, options.date, strict=options.strict)
    except Undocumented as error:
        print(f"manpages: undocumented: {error}", file=sys.stderr)
        return 1
    for problem in PROBLEMS:
        print(f"manpages: warning: undocumented: {problem}", file=sys.stderr)
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (outdir / name).write_text(text, encoding="utf-8")
    print(f"manpages: wrote {', '.join(sorted(pages))} to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
