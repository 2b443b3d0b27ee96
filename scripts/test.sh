#!/usr/bin/env bash
# Set up (apt packages, venv) and run the whole test suite. Run as root for the
# end-to-end and chroot tests; as another user those are skipped.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
    # shellcheck source=scripts/setup-env.sh
    . scripts/setup-env.sh
else
    VENV="${SCPONLY_PY_VENV:-/opt/scponly-py}"
fi
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/python" -m pytest "$@"
