#!/usr/bin/env bash
# Sourced by packaging/install.sh (run as root): `build_venv` sets VENV to the build venv.
# Root runs that venv's python and pip, so no one else may have been able to change it: the
# default lives in /var/cache (root's), never in world-writable /var/tmp, and the directory (or
# SCPONLY_PY_VENV) must pass the trusted-path rule (scponly_py/trusted.py) before it is used.

build_venv() {
    local trusted
    trusted="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scponly_py/trusted.py"
    VENV="${SCPONLY_PY_VENV:-/var/cache/scponly-py/build-venv}"
    /usr/bin/python3 -I "$trusted" --make "$VENV" || return 1
    if [ ! -x "$VENV/bin/python" ]; then
        /usr/bin/python3 -m venv "$VENV" || return 1
    fi
    /usr/bin/python3 -I "$trusted" "$VENV/bin" "$VENV/lib" || return 1
}
