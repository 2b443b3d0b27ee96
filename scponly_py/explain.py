"""`scponly-py explain`: what the login shell would do, without doing it.

It calls the same `decide()` with the same policy merge as a login, then
prints the effective policy (with the [paths] of its programs) and either the
exact argv, environment, working directory and umask that would be exec'd, or
the refusal.
"""

from __future__ import annotations

import os
import pwd

from scponly_py import request as requests
from scponly_py import words
from scponly_py.decide import decide
from scponly_py.policy import LoadedConfig, effective_policy, load_config, parse_toml
from scponly_py.programs import PROGRAMS


def run(user: str | None, config_file: str | None, command: str) -> int:
    """Print the decision for `user` running `command`; exit status 0 if allowed, 1 if refused."""
    name = user if user is not None else pwd.getpwuid(os.getuid()).pw_name
    request = requests.for_user(name, command)
    if config_file is not None:
        with open(config_file, "rb") as handle:
            loaded = LoadedConfig(parse_toml(handle.read(), config_file), config_file)
    else:
        loaded = load_config()
    policy = effective_policy(loaded.config, request.user, request.groups)
    decision = decide(request, policy)

    print(
        f"user:      {request.user} (uid {request.uid}, groups {', '.join(request.groups) or '-'})"
    )
    print(f"config:    {loaded.source}")
    print(
        f"policy:    programs={','.join(sorted(policy.programs))} access={policy.access} "
        f"links={'yes' if policy.links else 'no'} umask={policy.umask:04o} "
        f"start_dir={policy.start_dir or '(home)'}"
    )
    paths = [
        f"{key}={policy.path(key)}"
        for name in sorted(policy.programs)
        for key in PROGRAMS[name]["paths"]
    ]
    print(f"paths:     {' '.join(paths)}")
    if "svnserve" in policy.programs:
        print(
            f"svnserve:  svn_root={policy.svn_root or '(none: refused)'} "
            f"svn_tunnel_user={'yes' if policy.svn_tunnel_user else 'no'}"
        )
    print(f"command:   {command}")
    print(f"words:     {words.join(words.split(command)) if decision.allowed else '-'}")
    if not decision.allowed:
        print(f"decision:  REFUSE ({decision.program}): {decision.reason}")  # type: ignore[union-attr]
        return 1
    print(f"decision:  ALLOW {decision.program}")
    print(f"exec:      {decision.path}")  # type: ignore[union-attr]
    print(f"argv:      {words.join(decision.argv)}")  # type: ignore[union-attr]
    print(f"cwd:       {decision.cwd}")  # type: ignore[union-attr]
    print(f"umask:     {decision.umask:04o}")  # type: ignore[union-attr]
    for variable, value in decision.env:  # type: ignore[union-attr]
        print(f"env:       {variable}={value}")
    return 0
