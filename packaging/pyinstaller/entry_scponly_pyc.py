"""Frozen entry of scponly-pyc (the chroot login shell); see scponly-py.spec.

The first statement holds the signals a session can receive (as the launcher
does; docs/design.md "What a session can observe"): from here to the exec a
signal cannot raise. PyInstaller's onedir bootloader re-execs itself once
(same process; the mask survives) and runs its bootstrap modules before this
line: a SIGINT there can still print a bootstrap traceback. A package that
cannot be loaded is one line, never a traceback.
"""

import _signal

_signal.pthread_sigmask(
    _signal.SIG_BLOCK,
    (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGPIPE, _signal.SIGTERM),
)
import sys  # noqa: E402

try:
    from scponly_py.chroot_shell import main
except BaseException as error:  # noqa: BLE001 - fail closed, never a traceback
    sys.exit(f"scponly-py: refused: cannot load the login shell ({type(error).__name__})")
sys.exit(main())
