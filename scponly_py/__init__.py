"""scponly-py: a restricted SSH login shell that allows file transfers and nothing else.

The login path (this package) imports only the standard library, and only the
cheap parts of it, because it runs on every SSH login.
"""

__version__ = "0.1.0"
