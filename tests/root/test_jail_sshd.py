"""`sshd-config --check` against a real `sshd -T` with the printed block and with bad configs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.root.jail_namespace import Namespace

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    with Namespace(tmp_path_factory.mktemp("jail-sshd")) as namespace:
        namespace.run(["useradd", "-M", "-U", "bob"], check=True)
        namespace.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/mnt/hostkey"], check=True
        )
        yield namespace


def write_config(ns: Namespace, name: str, text: str) -> str:
    path = f"/mnt/{name}"
    ns.path(path).write_text(f"HostKey /mnt/hostkey\nUsePAM no\n{text}")
    return path


def check(ns: Namespace, config: str, *extra: str) -> tuple[int, set[str]]:
    result = ns.setup("sshd-config", "--check", "bob", "-f", config, "--json", *extra)
    assert b"Traceback" not in result.stderr
    document = json.loads(result.stdout)
    return result.returncode, {item["setting"] for item in document["findings"]}


def test_printed_block_passes(ns: Namespace) -> None:
    block = ns.setup("sshd-config", "--user", "bob", check=True).stdout.decode()
    assert "Match User bob" in block and "Subsystem sftp /usr/lib/openssh/sftp-server" in block
    assert check(ns, write_config(ns, "good", block)) == (0, set())


def test_defaults_and_bypasses_are_reported(ns: Namespace) -> None:
    config = write_config(
        ns,
        "bad",
        "Subsystem sftp internal-sftp\nPermitUserEnvironment yes\nPermitTunnel yes\n"
        "X11Forwarding yes\n",
    )
    code, found = check(ns, config)
    assert code == 3
    assert found == {
        "subsystem",
        "allowtcpforwarding",
        "allowstreamlocalforwarding",
        "x11forwarding",
        "allowagentforwarding",
        "permittunnel",
        "permituserenvironment",
        "permituserrc",
    }


def test_match_block_for_another_user_does_not_help(ns: Namespace) -> None:
    block = ns.setup("sshd-config", "--user", "carol", check=True).stdout.decode()
    code, found = check(ns, write_config(ns, "other", block))
    assert code == 3 and "allowtcpforwarding" in found


def test_internal_sftp_mode(ns: Namespace) -> None:
    block = ns.setup(
        "sshd-config", "--user", "bob", "--mode", "internal-sftp", check=True
    ).stdout.decode()
    config = write_config(ns, "isftp", "Subsystem sftp internal-sftp\n" + block)
    assert check(ns, config, "--mode", "internal-sftp") == (0, set())
    code, found = check(ns, config)  # the same config is a bypass for scponly-py users
    assert code == 3 and found == {"subsystem", "forcecommand"}


def test_sshd_errors_are_one_line(ns: Namespace) -> None:
    result = ns.setup("sshd-config", "--check", "bob", "-f", "/mnt/missing")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("Error: sshd -T failed")
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not Path("/mnt/missing").exists()
