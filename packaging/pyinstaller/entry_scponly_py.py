"""Frozen entry of scponly-py (the unprivileged login shell); see scponly-py.spec.

The first statement holds the signals a session can receive (as the launcher
does; docs/design.md "What a session can observe"): from here to the exec a
signal cannot raise. PyInstaller's onedir bootloader re-execs itself once
(same process; the mask survives) and runs its bootstrap modules before this
line: a SIGINT there can still print a bootstrap traceback. The package is
then served from the tree's login bundle (scponly_py/bundle.py), else imported
from its .pyc files, which is only slower (and logged).
"""

import _signal

_signal.pthread_sigmask(
    _signal.SIG_BLOCK,
    (_signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT, _signal.SIGPIPE, _signal.SIGTERM),
)
import sys  # noqa: E402

try:  # the bundle's loader straight from its .pyc, as the launcher does: no search
    from _frozen_importlib_external import SourcelessFileLoader

    loader = SourcelessFileLoader("scponly_py.bundle", f"{sys._MEIPASS}/scponly_py/bundle.pyc")
    exec(loader.get_code("scponly_py.bundle"), scope := {"__name__": "scponly_py.bundle"})  # noqa: S102
    problem = scope["activate"](f"{sys._MEIPASS}/{scope['NAME']}", sources=False)
except Exception as error:  # noqa: BLE001 - the login goes on without the bundle, and says why
    problem = f"login bundle not used: {error}"

from scponly_py.shell import main  # noqa: E402

sys.exit(main(startup_warning=problem))
