"""`python -I -m scponly_py`: the same entry as the installed launcher."""

import sys

from scponly_py.shell import main

sys.exit(main())
