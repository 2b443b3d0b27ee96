#!/usr/bin/env bash
# Set up (apt packages, venv) and run the demo: a throwaway sshd on 127.0.0.1 in
# private namespaces, a user whose login shell is scponly-py doing real
# transfers, shell access refused. Nothing is left on the host afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup-env.sh
. scripts/setup-env.sh
exec "$VENV/bin/python" scripts/demo.py
