"""Frozen entry of scponly-py (the unprivileged login shell); see scponly-py.spec.

The first statement holds the signals a session can receive (as the launcher
does; docs/design.md "What a session can observe"): from here to the exec a
signal cannot raise. PyInstaller's onedir bootloader re-execs itself once
(same process; the mask survives) and runs its bootstrap modules before this
line: a SIGINT there can still print a bootstrap traceback.

The next statement does what the front (scponly_py/front.c) does before its exec
(docs/design.md "The login environment"): the tree is installed with
cap_wake_alarm+p so both the bootloader and its re-exec start in secure-execution
mode; `secure_start` reads that from the capability sets, empties them, and its
report decides, in `shell.login`, whether a login may go on. A package that
cannot be loaded (e.g. a library missing from a jail) is one line, never a
traceback.
"""

import _signal

_signal.pthread_sigmask(
    _signal.SIG_BLOCK,
    (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGPIPE, _signal.SIGTERM),
)
import sys  # noqa: E402

try:
    from scponly_py.capabilities import secure_start

    started = secure_start()
    from scponly_py.shell import main
except BaseException as error:  # noqa: BLE001 - fail closed, never a traceback
    sys.exit(f"scponly-py: refused: cannot load the login shell ({type(error).__name__})")
sys.exit(main(frozen_start=started))
