"""capabilities.secure_start, the frozen scponly-py's own front, against the kernel's rules.

Each case runs a fresh interpreter (secure_start empties the caller's capability sets): as
an unprivileged uid started plainly, with the capability in its ambient set (effective too,
no AT_SECURE: must not pass), from a copy of python3 carrying cap_wake_alarm+p (AT_SECURE:
passes), and as root (exempt). Every case must end with no capability left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import _prctl
import pytest

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PROGRAM = (  # -I: the repository and python-prctl's directory are named explicitly
    f"import sys; sys.path[:0] = [{str(REPO)!r}, {os.path.dirname(_prctl.__file__)!r}]\n"
    "from scponly_py import capabilities\n"
    "print(capabilities.secure_start().decode(), capabilities.any_held(capabilities.held()))\n"
)


@pytest.fixture(scope="module")
def capable_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the interpreter with cap_wake_alarm+p, in a directory everyone can reach."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv")
    directory = tmp_path_factory.mktemp("secure-start")
    directory.chmod(0o755)
    python = directory / "python3"
    shutil.copyfile(os.path.realpath(sys.executable), python)
    python.chmod(0o755)
    from setup_chroot import frozen, jailfs  # noqa: PLC0415 - the installer's own code

    assert jailfs.give_capability(str(python), frozen.secure_start_capability()) is None
    return str(python)


@pytest.mark.parametrize(
    ("prefix", "capable", "expected"),
    [
        (NOBODY, False, "not-secure-execution"),
        (
            [*NOBODY, "--inh-caps=+wake_alarm", "--ambient-caps=+wake_alarm"],
            False,
            "not-secure-execution",
        ),
        (NOBODY, True, "1"),
        ([], False, "1"),  # root
    ],
    ids=["plain", "ambient", "file-capability", "root"],
)
def test_secure_start(capable_python: str, prefix: list[str], capable: bool, expected: str) -> None:
    python = capable_python if capable else sys.executable
    result = subprocess.run(
        [*prefix, python, "-I", "-c", PROGRAM], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, "False"], result.stdout
