"""The record of each jail we built, kept outside the jail.

It holds the administrator's request (profiles, binaries, users) so `update`
can rebuild the jail after package upgrades, and every path we wrote with the
digest of its source, so `update` removes what is no longer needed and `check`
spots stale copies. It lives outside the jail (default
/var/lib/scponly-py/jails/<escaped jail path>.json) because a jailed user must
not be able to edit what root will later copy or delete; for the same reason
the state directory is opened (and made) by the trusted-path rule
(scponly_py/trusted.py). Each manifest also records the device and inode of the
jail directory `create` opened, and `update` refuses a jail whose path now
leads elsewhere.
Writes are atomic (temp file + rename); a lock file serialises concurrent
runs on the same jail (e.g. many `add-user` in parallel).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from scponly_py import trusted
from setup_chroot.devlog import escape  # a jail's manifest is named like its mount units
from setup_chroot.plan import Spec

STATE_DIR = "/var/lib/scponly-py/jails"
VERSION = 1


class ManifestError(Exception):
    """The state directory or a manifest is unsafe or unreadable."""


def owners() -> tuple[int, ...]:
    """Who may own the state directory: root (and the caller, for non-root test runs)."""
    return trusted.ROOT if os.geteuid() == 0 else (0, os.geteuid())


class Store:
    """The manifests in one state directory."""

    def __init__(self, directory: str = STATE_DIR) -> None:
        self.directory = directory

    def _checked(self) -> str:
        """The state directory, made if missing, trusted (else ManifestError)."""
        try:
            os.close(trusted.make_dirs(self.directory, 0o755, owners=owners()))
        except trusted.Untrusted as error:
            raise ManifestError(f"state directory: {error}") from None
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

    def _open(self) -> int | None:
        """The trusted state directory's fd, or None if it does not exist (nothing built yet)."""
        try:
            return trusted.open_path(self.directory, directory=True, owners=owners())
        except trusted.Untrusted as error:
            if error.missing:
                return None
            raise ManifestError(f"state directory: {error}") from None

    def _read(self, dir_fd: int, name: str) -> dict[str, object] | None:
        """A manifest's JSON, opened by the trusted-path rule; None if there is none."""
        path = os.path.join(self.directory, name)
        try:
            fd = trusted.open_existing_at(dir_fd, name, os.O_RDONLY, owners=owners(), what=path)
        except trusted.Untrusted as error:
            raise ManifestError(str(error)) from None
        if fd is None:
            return None
        with os.fdopen(fd, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except ValueError as error:
                raise ManifestError(f"{path}: unreadable manifest ({error})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: unreadable manifest")
        return data

    def _manifest(self, jail: str) -> dict[str, object] | None:
        """The jail's manifest document as read, or None if there is none."""
        dir_fd = self._open()
        if dir_fd is None:
            return None
        try:
            return self._read(dir_fd, escape(jail) + ".json")
        finally:
            os.close(dir_fd)

    def load(self, jail: str) -> tuple[Spec, dict[str, dict[str, object]]] | None:
        """(spec, recorded entries) of a jail, or None if we never built it."""
        data = self._manifest(jail)
        if data is None:
            return None
        try:
            return Spec.from_json(data["spec"]), dict(data["entries"])
        except (ValueError, KeyError, TypeError) as error:
            raise ManifestError(f"{self.path(jail)}: unreadable manifest ({error})") from None

    def opened(self, jail: str) -> list[int] | None:
        """[device, inode] of the jail directory recorded by the last write, if any."""
        data = self._manifest(jail)
        value = data.get("opened") if data else None
        return value if isinstance(value, list) else None

    def save(
        self, spec: Spec, entries: dict[str, dict[str, object]], opened: tuple[int, int]
    ) -> None:
        """Replace the manifest atomically (`trusted.write_new_at` in the checked state
        directory, then rename); `opened` is the jail's (device, inode)."""
        name = escape(spec.jail) + ".json"
        temporary = f".{name}.{os.getpid()}.tmp"
        document = {"version": VERSION, "spec": spec.to_json(), "entries": entries}
        data = json.dumps({**document, "opened": list(opened)}, indent=1).encode("utf-8")

        def fill(fd: int) -> None:
            os.fchmod(fd, 0o644)
            trusted.write_all(fd, data)

        try:
            dir_fd = trusted.make_dirs(self.directory, 0o755, owners=owners())
        except trusted.Untrusted as error:
            raise ManifestError(f"state directory: {error}") from None
        try:
            trusted.write_new_at(dir_fd, temporary, fill)
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def jails(self) -> list[str]:
        """Every jail that has a manifest here."""
        dir_fd = self._open()
        if dir_fd is None:
            return []
        found = []
        try:
            listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                names = sorted(os.listdir(listing))
            finally:
                os.close(listing)
            for name in names:
                if name.endswith(".json"):
                    data = self._read(dir_fd, name)
                    try:
                        found.append(str(data["spec"]["jail"]))  # type: ignore[index]
                    except (KeyError, TypeError):
                        raise ManifestError(f"{name}: unreadable manifest") from None
        finally:
            os.close(dir_fd)
        return found
