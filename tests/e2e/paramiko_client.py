"""A paramiko client for the e2e tests: SFTP or legacy SCP (the `scp` package) up or down.

Run inside the sandbox's network namespace:
    paramiko_client.py --user U --key K --known-hosts F {sftp,scp} {put,get} LOCAL REMOTE
Exit status 0 on success; the error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import sys

import paramiko
from scp import SCPClient


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("protocol", choices=["sftp", "scp"])
    parser.add_argument("direction", choices=["put", "get"])
    parser.add_argument("local")
    parser.add_argument("remote")
    options = parser.parse_args()

    client = paramiko.SSHClient()
    client.load_host_keys(options.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            "127.0.0.1",
            port=22,
            username=options.user,
            key_filename=options.key,
            allow_agent=False,
            look_for_keys=False,
            timeout=20,
        )
        if options.protocol == "sftp":
            sftp = client.open_sftp()
            if options.direction == "put":
                sftp.put(options.local, options.remote)
            else:
                sftp.get(options.remote, options.local)
            sftp.close()
        else:
            transport = client.get_transport()
            assert transport is not None
            with SCPClient(transport) as scp:
                if options.direction == "put":
                    scp.put(options.local, options.remote)
                else:
                    scp.get(options.remote, options.local)
    except Exception as error:  # noqa: BLE001 - report any client failure as exit status 1
        print(f"paramiko_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
