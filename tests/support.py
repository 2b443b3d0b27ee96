"""Builders shared by the tests: a Request and a Policy in one call, the decision on them
(asserted to allow or refuse; the argv or the reason), and a file "edit".

Both records are plain; building them here (instead of through the config
loader or the passwd database) keeps `decide()` tests pure and fast. Namespace
harnesses live in tests/namespace.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from scponly_py.decide import decide
from scponly_py.outcome import Allow, Refuse
from scponly_py.policy import BUILTIN_PATHS, Policy
from scponly_py.request import Request

HOME = "/home/alice"


def make_policy(
    *,
    programs: tuple[str, ...] | frozenset[str] = ("scp", "sftp"),
    access: str = "read-write",
    links: bool = True,
    umask: int = 0o022,
    start_dir: str = "",
    paths: dict[str, str] | None = None,
    log_level: str = "info",
    svn_root: str = "",
    svn_tunnel_user: bool = False,
    log_format: str = "kv",
    log_transfers: bool = False,
    transfer_log_level: str = "INFO",
) -> Policy:
    """A Policy with every field given; `paths` entries override the built-in ones.

    log_transfers is off here (on by default in a config) so grammar tests see the bare argv.
    """
    merged = dict(BUILTIN_PATHS)
    merged.update(paths or {})
    return Policy(
        access=access,
        links=links,
        log_level=log_level,
        log_format=log_format,
        log_transfers=log_transfers,
        transfer_log_level=transfer_log_level,
        paths=tuple(sorted(merged.items())),
        programs=frozenset(programs),
        start_dir=start_dir,
        svn_root=svn_root,
        svn_tunnel_user=svn_tunnel_user,
        umask=umask,
    )


def make_request(
    command: str | None,
    *,
    uid: int = 1000,
    user: str = "alice",
    home: str = HOME,
    groups: tuple[str, ...] = ("alice",),
    environment: tuple[tuple[str, str], ...] = (),
    mode: str = "login",
    client: str = "192.0.2.1",
) -> Request:
    return Request(
        client=client,
        command=command,
        environment=environment,
        gid=1000,
        groups=groups,
        home=home,
        mode=mode if command is not None else "interactive",
        uid=uid,
        user=user,
    )


def decision_for(
    command: str | None, request: dict[str, object] | None = None, **policy: object
) -> Allow | Refuse:
    """decide() on `make_request(command, **request)` and `make_policy(**policy)`."""
    return decide(make_request(command, **request or {}), make_policy(**policy))  # type: ignore[arg-type]


def must_allow(
    command: str,
    program: str | None = None,
    request: dict[str, object] | None = None,
    **policy: object,
) -> Allow:
    """`decision_for`'s decision, asserted to be an Allow (running `program` when given)."""
    decision = decision_for(command, request, **policy)
    assert isinstance(decision, Allow), decision
    assert program is None or decision.program == program, decision
    return decision


def must_refuse(
    command: str | None, request: dict[str, object] | None = None, **policy: object
) -> Refuse:
    """`decision_for`'s decision, asserted to be a Refuse."""
    decision = decision_for(command, request, **policy)
    assert isinstance(decision, Refuse), decision
    return decision


def allowed_argv(
    command: str, program: str, request: dict[str, object] | None = None, **policy: object
) -> list[str]:
    """The words after argv[0] of `must_allow`'s decision, which runs `program` at the path
    the policy configures for it (argv[0] is that path)."""
    decision = must_allow(command, program, request, **policy)
    configured = make_policy(**policy).path(program)  # type: ignore[arg-type]
    assert decision.argv[0] == decision.path == configured, decision
    return list(decision.argv[1:])


def refusal(command: str | None, request: dict[str, object] | None = None, **policy: object) -> str:
    """The reason of `must_refuse`'s decision."""
    return must_refuse(command, request, **policy).reason


def touch(path: Path) -> None:
    """Give `path` a newer mtime, as an edit would (the content stays the same)."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
