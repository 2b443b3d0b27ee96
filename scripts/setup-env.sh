#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian/Ubuntu, then a venv with the project.
# Sourced by scripts/demo.sh and scripts/test.sh; sets VENV. Needs root (apt-get, namespaces).
set -euo pipefail

VENV="${SCPONLY_PY_VENV:-/opt/scponly-py}"
APT_PACKAGES=(
    openssh-server openssh-client putty-tools curl rsync lftp sshfs unison subversion rclone filezilla
    python3 python3-venv python3-dev gcc libcap-dev libcap2-bin iproute2 util-linux
    hyperfine binutils libc6-dev
    rsyslog  # the fleet test: each host's syslog daemon and the central receiver (none is started)
    # packaging (tests/packaging): the .deb's own dependencies, its build and lint tools, and
    # makepkg/rpmbuild to build the PKGBUILD and the RPM spec for real
    python3-click python3-pyelftools python3-pip dpkg-dev fakeroot lintian groff-base man-db
    makepkg pacman-package-manager libarchive-tools rpm
)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-env: run as root (sudo): it installs packages and the tests use namespaces" >&2
    exit 1
fi

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-env: installing ${missing[*]}"
    apt-get update -qq
    # No daemon starts: policy-rc.d forbids it while we install openssh-server.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi

# The login shell runs Debian's /usr/bin/python3 (readable by every user); so does the venv.
# Root runs the venv's python: it must pass the trusted-path rule (scponly_py/trusted.py).
/usr/bin/python3 -I scponly_py/trusted.py --make "$VENV"
if [ ! -x "$VENV/bin/python" ]; then
    /usr/bin/python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,frozen,fuzz]"
