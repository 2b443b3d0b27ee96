"""The record of each jail we built, kept outside the jail.

It holds the administrator's request (profiles, binaries, users) so `update`
can rebuild the jail after package upgrades, and every path we wrote with the
digest of its source, so `update` removes what is no longer needed and `check`
spots stale copies. It lives outside the jail (default
/var/lib/scponly-py/jails/<escaped jail path>.json) because a jailed user must
not be able to edit what root will later copy or delete; for the same reason
the state directory must be root-owned and not writable by group or others.
Writes are atomic (temp file + rename); a lock file serialises concurrent
runs on the same jail (e.g. many `add-user` in parallel).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from setup_chroot.plan import Spec

STATE_DIR = "/var/lib/scponly-py/jails"
SAFE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:")
VERSION = 1


class ManifestError(Exception):
    """The state directory or a manifest is unsafe or unreadable."""


def escape(jail: str) -> str:
    """A file name for a jail path, as `systemd-escape --path` makes it (reversible, no '/')."""
    out = []
    for index, byte in enumerate(jail.strip("/").encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in SAFE_CHARACTERS and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out) or "-"


class Store:
    """The manifests in one state directory."""

    def __init__(self, directory: str = STATE_DIR) -> None:
        self.directory = directory

    def _checked(self) -> str:
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise ManifestError(f"{self.directory} is not a directory")
        if os.geteuid() == 0 and (info.st_uid != 0 or info.st_mode & 0o022):
            raise ManifestError(
                f"{self.directory} must be root-owned and not writable by group or others"
            )
        return self.directory

    def path(self, jail: str) -> str:
        return os.path.join(self.directory, escape(jail) + ".json")

    @contextmanager
    def lock(self, jail: str) -> Iterator[None]:
        """Hold an exclusive lock on this jail's manifest for a read-modify-write."""
        name = os.path.join(self._checked(), escape(jail) + ".lock")
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self, jail: str) -> tuple[Spec, dict[str, dict[str, object]]] | None:
        """(spec, recorded entries) of a jail, or None if we never built it."""
        try:
            fd = os.open(self.path(jail), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ManifestError(f"{self.path(jail)}: {error.strerror}") from None
        with os.fdopen(fd, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if os.geteuid() == 0 and (info.st_uid != 0 or info.st_mode & 0o022):
                raise ManifestError(f"{self.path(jail)} is not root-owned or is writable by others")
            try:
                data = json.load(handle)
                return Spec.from_json(data["spec"]), dict(data["entries"])
            except (ValueError, KeyError, TypeError) as error:
                raise ManifestError(f"{self.path(jail)}: unreadable manifest ({error})") from None

    def save(self, spec: Spec, entries: dict[str, dict[str, object]]) -> None:
        """Replace the manifest atomically."""
        target = self.path(spec.jail)
        temporary = f"{target}.{os.getpid()}.tmp"
        text = json.dumps(
            {"version": VERSION, "spec": spec.to_json(), "entries": entries}, indent=1
        )
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, target)

    def jails(self) -> list[str]:
        """Every jail that has a manifest here."""
        found = []
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(self.directory, name), encoding="utf-8") as handle:
                    try:
                        found.append(str(json.load(handle)["spec"]["jail"]))
                    except (ValueError, KeyError, TypeError):
                        raise ManifestError(f"{name}: unreadable manifest") from None
        return found
