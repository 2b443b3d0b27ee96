"""The programs a user may run, one module each, looked up by the command's first word.

Each module is a data table plus `check(words, policy, request) -> argv`
(everything after argv[0]); `NAME` is the key in the policy's `programs`
and `[paths]`, and `COMMAND_NAMES` the words a client may send to name it.
The program actually exec'd is always the policy's absolute path, never the
client's word.
"""

from __future__ import annotations

from scponly_py.programs import rsync, scp, sftp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

REGISTRY: tuple[ModuleType, ...] = (sftp, scp, rsync)


def identify(first_word: str, configured_paths: tuple[tuple[str, str], ...]) -> ModuleType | None:
    """The program module a command's first word names, or None."""
    for module in REGISTRY:
        if first_word in module.COMMAND_NAMES:
            return module
        for name, path in configured_paths:
            if name == module.NAME and first_word == path:
                return module
    return None
