"""Emptying and reading back the capability sets (python-prctl), and the frozen shell's start.

`empty` and `held` are the one copy both privileged starts use: scponly-pyc's
drop (jail.py) and the frozen scponly-py's first step (`secure_start`, called
by packaging/pyinstaller/entry_scponly_py.py before anything else of ours).
The why: docs/design.md "The login environment".
"""

from __future__ import annotations

import posix

import _prctl

ALL_CAPS = tuple(range(_prctl.CAP_LAST_CAP + 1))
EFFECTIVE, PERMITTED = 0, 1  # keys of _prctl.get_caps' answer (2: inheritable)


def empty() -> None:
    """Empty the effective, permitted and inheritable sets (the ambient set, their subset, too).

    Raises OSError or ValueError when the kernel refuses.
    """
    _prctl.set_caps([], [], [], list(ALL_CAPS), list(ALL_CAPS), list(ALL_CAPS))


def held() -> dict[int, dict[int, bool]]:
    """capget: {set: {capability: present}} for the effective, permitted and inheritable sets."""
    return _prctl.get_caps(list(ALL_CAPS), list(ALL_CAPS), list(ALL_CAPS))


def any_held(sets: dict[int, dict[int, bool]]) -> bool:
    """Whether `held()`'s answer shows any capability at all."""
    return any(any(flags.values()) for flags in sets.values())


def secure_start() -> bytes:
    """The frozen scponly-py's own front report (what front.c puts in SCPONLY_PY_FRONT).

    b"1" when this process was started in secure-execution mode (or the real uid
    is root) and every capability set is now empty and read back empty; else why
    not. Secure-execution is read from the sets before emptying them: a permitted
    capability that is not effective comes only from a file capability granted
    without its effective bit (ambient ones are effective too), and the kernel sets
    AT_SECURE whenever exec grants a permitted capability beyond the ambient set.
    """
    status = b"1"
    try:
        sets = held()
        granted = any(on and not sets[EFFECTIVE][cap] for cap, on in sets[PERMITTED].items())
        if not granted and posix.getuid() != 0:
            status = b"not-secure-execution"
        empty()
        if any_held(held()):
            status = b"capabilities-remain"
    except (OSError, ValueError):
        status = b"capabilities-remain"
    return status
