"""Sessions interrupted by SSH `signal` requests at random moments (run inside the sandbox).

    signal_client.py --user U --key K --known-hosts F --rounds N --seed S
One SSH connection; each round opens a session, execs a command, sends a
`signal` channel request (RFC 4254 6.9; sshd kill()s the login shell) after a
random delay of 0-40 ms, closes stdin and collects everything the client
receives. Prints one JSON list of results.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message

SIGNALS = ("INT", "TERM", "HUP", "QUIT", "PIPE")
COMMANDS = ("scp -f x", "id", "sftp-server", "scp -t .")
TIMEOUT = 20.0


def send_signal(channel: paramiko.Channel, name: str) -> None:
    """paramiko has no API for it: the channel request by hand, want-reply false."""
    message = Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    channel.transport._send_user_message(message)


def one_round(transport: paramiko.Transport, command: str, signal: str, delay: float) -> dict:
    channel = transport.open_session()
    channel.settimeout(TIMEOUT)
    channel.exec_command(command)
    time.sleep(delay)
    send_signal(channel, signal)
    channel.shutdown_write()
    stdout, stderr = b"", b""
    deadline = time.monotonic() + TIMEOUT
    while not (channel.exit_status_ready() and channel.closed) and time.monotonic() < deadline:
        if channel.recv_ready():
            stdout += channel.recv(65536)
        elif channel.recv_stderr_ready():
            stderr += channel.recv_stderr(65536)
        elif channel.eof_received and channel.exit_status_ready():
            break
        else:
            time.sleep(0.002)
    while channel.recv_ready():
        stdout += channel.recv(65536)
    while channel.recv_stderr_ready():
        stderr += channel.recv_stderr(65536)
    hung = not channel.exit_status_ready()
    status = None if hung else channel.recv_exit_status()
    channel.close()
    return {
        "command": command,
        "signal": signal,
        "delay": delay,
        "status": status,
        "hung": hung,
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    for option in ("--user", "--key", "--known-hosts"):
        parser.add_argument(option, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    options = parser.parse_args()
    chooser = random.Random(options.seed)  # noqa: S311 - timing only
    client = paramiko.SSHClient()
    client.load_host_keys(options.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        username=options.user,
        key_filename=options.key,
        allow_agent=False,
        look_for_keys=False,
        timeout=20,
    )
    transport = client.get_transport()
    assert transport is not None
    results = [
        one_round(
            transport,
            COMMANDS[index % len(COMMANDS)],
            SIGNALS[index % len(SIGNALS)],
            chooser.uniform(0, 0.04),
        )
        for index in range(options.rounds)
    ]
    client.close()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
