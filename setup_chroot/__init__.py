"""scponly-py-setup: install the login shell, build and audit chroot jails, check sshd."""
