"""An asyncssh client for the e2e tests: SFTP up or down, or one exec request.

Run inside the sandbox's network namespace:
    asyncssh_client.py --user U --key K --known-hosts F put LOCAL REMOTE
    asyncssh_client.py --user U --key K --known-hosts F get REMOTE LOCAL
    asyncssh_client.py --user U --key K --known-hosts F exec COMMAND
SFTP: exit status 0 on success, the error on stderr otherwise. exec: the
command's exit status, its stdout and stderr passed through.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings

warnings.simplefilter("ignore")  # asyncssh imports DSA support: cryptography's deprecation
import asyncssh  # noqa: E402


async def run(options: argparse.Namespace) -> int:
    async with asyncssh.connect(
        "127.0.0.1",
        port=22,
        username=options.user,
        client_keys=[options.key],
        known_hosts=options.known_hosts,
        agent_path=None,
        config=None,
    ) as connection:
        if options.action == "exec":
            result = await connection.run(options.first, stdin=asyncssh.DEVNULL)
            sys.stdout.write(str(result.stdout))
            sys.stderr.write(str(result.stderr))
            return result.exit_status if result.exit_status is not None else 255
        async with connection.start_sftp_client() as sftp:
            if options.action == "put":
                await sftp.put(options.first, options.second)
            else:
                await sftp.get(options.first, options.second)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("action", choices=["put", "get", "exec"])
    parser.add_argument("first")
    parser.add_argument("second", nargs="?")
    options = parser.parse_args()
    try:
        return asyncio.run(asyncio.wait_for(run(options), 30))
    except (OSError, asyncssh.Error, TimeoutError) as error:
        print(f"asyncssh_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
