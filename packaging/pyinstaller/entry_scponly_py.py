"""Frozen entry of scponly-py (the unprivileged login shell); see scponly-py.spec."""

import sys

from scponly_py.shell import main

sys.exit(main())
