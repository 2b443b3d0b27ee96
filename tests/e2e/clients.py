"""Argument builders for the real third-party clients the e2e tests drive.

Each returns the argv of a real program (curl/libssh2, PuTTY's pscp/psftp,
paramiko) configured to trust exactly the sandbox's host key and use its
client key, so a test reads like what an administrator's user would type.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

from tests.e2e.sandbox import Sandbox

PARAMIKO_SCRIPT = Path(__file__).with_name("paramiko_client.py")


def host_key_sha256(sandbox: Sandbox, *, padded: bool = False) -> str:
    """Base64 SHA-256 of the host key blob, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode((sandbox.root / "host_key.pub").read_text().split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return digest if padded else digest.rstrip("=")


def curl(sandbox: Sandbox, user: str, *args: str) -> list[str]:
    """curl (libssh2) with the sandbox's keys; URLs are sftp://127.0.0.1/... or scp://..."""
    return [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--user",
        f"{user}:",
        "--key",
        str(sandbox.client_key),
        "--pubkey",
        f"{sandbox.client_key}.pub",
        "--hostpubsha256",
        host_key_sha256(sandbox, padded=True),
        *args,
    ]


def putty_key(sandbox: Sandbox) -> Path:
    """The client key converted to PuTTY's .ppk format (once per sandbox)."""
    ppk = sandbox.root / "client_key.ppk"
    if not ppk.exists():
        subprocess.run(
            ["puttygen", str(sandbox.client_key), "-O", "private", "-o", str(ppk)],
            check=True,
            capture_output=True,
        )
    return ppk


def putty_options(sandbox: Sandbox) -> list[str]:
    return [
        "-batch",
        "-noagent",
        "-i",
        str(putty_key(sandbox)),
        "-hostkey",
        f"SHA256:{host_key_sha256(sandbox)}",
        "-P",
        "22",
    ]


def pscp(sandbox: Sandbox, *args: str) -> list[str]:
    """PuTTY's pscp forced into the legacy SCP protocol (-scp), WinSCP's engine."""
    return ["pscp", "-scp", "-q", *putty_options(sandbox), *args]


def psftp(sandbox: Sandbox, user: str, script: Path) -> list[str]:
    return ["psftp", *putty_options(sandbox), "-b", str(script), f"{user}@127.0.0.1"]


def paramiko(sandbox: Sandbox, user: str, *args: str) -> list[str]:
    """Run tests/e2e/paramiko_client.py (paramiko SFTP, and the scp package) inside the sandbox."""
    return [
        sys.executable,
        str(PARAMIKO_SCRIPT),
        "--user",
        user,
        "--key",
        str(sandbox.client_key),
        "--known-hosts",
        str(sandbox.root / "known_hosts"),
        *args,
    ]
