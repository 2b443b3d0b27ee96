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
report decides, in `shell.login`, whether a login may go on.
"""

import _signal

_signal.pthread_sigmask(
    _signal.SIG_BLOCK,
    (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGPIPE, _signal.SIGTERM),
)
from scponly_py.capabilities import secure_start  # noqa: E402

started = secure_start()
import sys  # noqa: E402

from scponly_py.shell import main  # noqa: E402

sys.exit(main(frozen_start=started))
