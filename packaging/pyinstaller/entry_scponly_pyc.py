"""Frozen entry of scponly-pyc (the chroot login shell); see scponly-py.spec."""

import sys

from scponly_py.chroot_shell import main

sys.exit(main())
