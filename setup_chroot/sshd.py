"""sshd_config for jailed users: the Match block to add, and what `sshd -T` says they may do.

A restricted login shell only restricts what goes through it. sshd itself
serves port and socket forwarding, tunnels, agent and X11 forwarding, and
`Subsystem sftp internal-sftp`, without ever running the shell; it reads
~/.ssh/environment when PermitUserEnvironment is on (LD_PRELOAD for the shell)
and runs ~/.ssh/rc through it. So the effective configuration for each user
is read back from `sshd -T -C user=…,host=…,addr=…` (what sshd would really
apply after every Match block) and each of those settings is reported.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from setup_chroot import finding

SSHD = "/usr/sbin/sshd"
MODES = ("scponly", "internal-sftp")
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
# sshd -T key -> why anything but "no" lets the user around the login shell.
MUST_BE_NO = {
    "allowtcpforwarding": "TCP port forwarding is served by sshd without running the shell",
    "allowstreamlocalforwarding": "Unix socket forwarding is served by sshd without the shell",
    "x11forwarding": "X11 forwarding is served by sshd without the shell",
    "allowagentforwarding": "agent forwarding is served by sshd without the shell",
    "permittunnel": "tun/tap tunnels are served by sshd without the shell",
    "permituserenvironment": "~/.ssh/environment (LD_PRELOAD, ...) would reach the shell",
    "permituserrc": "sshd runs ~/.ssh/rc through the shell before every session",
}
FORWARDING = ("allowtcpforwarding", "allowstreamlocalforwarding", "x11forwarding")
MATCH_SETTINGS = (
    ("AllowTcpForwarding", "no"),
    ("AllowStreamLocalForwarding", "no"),
    ("AllowAgentForwarding", "no"),
    ("X11Forwarding", "no"),
    ("PermitTunnel", "no"),
    ("PermitUserRC", "no"),
    ("PermitTTY", "no"),
)


class SshdError(Exception):
    """sshd -T could not be run or rejected the configuration."""


@dataclass(frozen=True)
class Finding(finding.Finding):
    LINE = "sshd      {user}: {setting} {value}: {message}"
    user: str
    setting: str
    value: str
    message: str


@dataclass(frozen=True)
class Match:
    """Whom a Match block is for (`group`, else `users`), how sshd serves them (a MODES
    name) and the jail it chroots them into (ChrootDirectory), if any."""

    group: str | None
    users: tuple[str, ...]
    mode: str
    jail: str | None = None


def match_block(match: Match, already: dict[str, str] | None = None) -> str:
    """The sshd_config text for jailed users (global lines first, then the Match block).

    `already`: global keywords the configuration sets (key -> file:line), left out, since
    sshd keeps the first value (and `Subsystem sftp` twice is an error).
    """
    group, users, mode, jail = match.group, match.users, match.mode, match.jail
    criteria = f"Group {group}" if group else f"User {','.join(users)}"
    lines = ["# Written by scponly-py-setup sshd-config (mode: " + mode + ")."]
    wanted = [("permituserenvironment", "PermitUserEnvironment no")]
    if mode == "scponly":
        lines += [
            "# Global (not allowed inside Match): keep the external sftp-server, so that",
            "# every sftp session runs through the login shell; never internal-sftp.",
        ]
        wanted.insert(0, ("subsystem sftp", f"Subsystem sftp {SFTP_SERVER}"))
    for key, line in wanted:
        where = (already or {}).get(key)
        lines.append(f"# {line.split()[0]}: set at {where}, sshd keeps it" if where else line)
    lines += ["", f"Match {criteria}"]
    lines += [f"    {key} {value}" for key, value in MATCH_SETTINGS]
    if mode == "internal-sftp":
        lines.append(f"    ChrootDirectory {jail or '%h'}")
        lines.append("    ForceCommand internal-sftp" + (" -d /home/%u" if jail else ""))
    elif jail:
        lines.append(f"    ChrootDirectory {jail}")
    return "\n".join(lines) + "\n"


def effective(
    user: str, *, host: str, addr: str, config: str | None = None, sshd: str = SSHD
) -> dict[str, list[str]]:
    """sshd -T's settings for this connection: key -> every value line (Subsystem repeats)."""
    argv = [sshd, "-T", "-C", f"user={user},host={host},addr={addr}"]
    if config:
        argv += ["-f", config]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError as error:
        raise SshdError(f"cannot run {sshd}: {error.strerror}") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise SshdError(f"sshd -T failed: {lines[-1]}")
    settings: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key.lower(), []).append(value)
    return settings


def findings(
    user: str, settings: dict[str, list[str]], mode: str, jail: str | None = None
) -> list[Finding]:
    """Every effective setting that lets `user` around the login shell (or the jail).

    `jail`: the ChrootDirectory sshd must enter for this user (add-user --mode
    chroot-directory or internal-sftp).
    """
    found = []

    def first(key: str) -> str:
        return settings.get(key, [""])[0]

    disabled = first("disableforwarding") == "yes"
    for key, why in MUST_BE_NO.items():
        value = first(key)
        if disabled and (key in FORWARDING or key == "allowagentforwarding"):
            continue
        if value and value != "no":
            found.append(Finding(user, key, value, why))
    force = first("forcecommand")
    sftp = [line for line in settings.get("subsystem", []) if line.split()[:1] == ["sftp"]]
    if mode == "scponly":
        for line in sftp:
            if "internal-sftp" in line.split()[1:2]:
                found.append(
                    Finding(user, "subsystem", line, "internal-sftp never runs the login shell")
                )
        if force.split()[:1] == ["internal-sftp"]:
            found.append(
                Finding(user, "forcecommand", force, "internal-sftp never runs the login shell")
            )
    else:
        if force.split()[:1] != ["internal-sftp"]:
            found.append(
                Finding(user, "forcecommand", force or "none", "not ForceCommand internal-sftp")
            )
        if first("chrootdirectory") in ("", "none") and jail is None:
            found.append(Finding(user, "chrootdirectory", "none", "internal-sftp is not chrooted"))
    chroot = first("chrootdirectory") or "none"
    if jail is not None and chroot != jail:
        found.append(
            Finding(user, "chrootdirectory", chroot, f"sshd does not chroot this user into {jail}")
        )
    return found


def check_user(
    user: str,
    *,
    mode: str = "scponly",
    host: str = "client.invalid",
    addr: str = "192.0.2.1",
    config: str | None = None,
    jail: str | None = None,
) -> list[Finding]:
    """sshd -T for `user` connecting from host/addr, reduced to findings (`jail`: see findings)."""
    return findings(user, effective(user, host=host, addr=addr, config=config), mode, jail)
