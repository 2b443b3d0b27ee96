#!/usr/bin/env bash
# Build the frozen login shells as one PyInstaller ONEDIR tree (never onefile, see the spec):
#
#   OUTDIR/scponly-py/scponly-py     unprivileged login shell
#   OUTDIR/scponly-py/scponly-pyc    chroot login shell (the install step adds cap_sys_chroot+ep)
#   OUTDIR/scponly-py/_internal/     libpython, the stdlib subset, python-prctl
#
# Usage: packaging/build-frozen.sh [OUTDIR]        (default: build/frozen)
# The build is skipped when OUTDIR/source-hash matches the sources, the spec and the tool
# versions. Install it with: scponly-py-setup install-chroot-shell --from OUTDIR/scponly-py
# As root, OUTDIR and the venv must pass the trusted-path rule (scponly_py/trusted.py), root
# and the checkout's owner (whose code root runs anyway) being the trusted owners: a tree
# planted in /var/tmp with a matching source-hash is never reused.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$HERE/build/frozen}")
VENV="${SCPONLY_PY_VENV:-/opt/scponly-py}"
PYINSTALLER_VERSION=6.22.3
if [ "$(id -u)" -eq 0 ]; then
    owner=(--owner "$(stat -c %u "$HERE")")
    /usr/bin/python3 -I "$HERE/scponly_py/trusted.py" "${owner[@]}" --make "$OUT"
    /usr/bin/python3 -I "$HERE/scponly_py/trusted.py" "${owner[@]}" "$VENV/bin"
fi

if ! "$VENV/bin/python" -c "import PyInstaller, sys; sys.exit(PyInstaller.__version__ != '$PYINSTALLER_VERSION')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "pyinstaller==$PYINSTALLER_VERSION"
fi

source_hash=$(
    cd "$HERE"
    {
        "$VENV/bin/python" -c 'import sys, PyInstaller, _prctl; print(sys.version, PyInstaller.__version__, _prctl.__file__)'
        find packaging/pyinstaller scponly_py -name '*.py' -o -name '*.spec' | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -c1-32
)
if [ -f "$OUT/source-hash" ] && [ "$(cat "$OUT/source-hash")" = "$source_hash" ] \
    && [ -x "$OUT/scponly-py/scponly-pyc" ] && [ -x "$OUT/scponly-py/scponly-py" ]; then
    echo "build-frozen: up to date: $OUT/scponly-py"
    exit 0
fi

mkdir -p "$OUT"
rm -rf "$OUT/scponly-py" "$OUT/source-hash"
(
    cd "$HERE"
    nice "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
        --distpath "$OUT" --workpath "$OUT/work" packaging/pyinstaller/scponly-py.spec
)
echo "$source_hash" > "$OUT/source-hash"
echo "build-frozen: built $OUT/scponly-py ($(du -sh "$OUT/scponly-py" | cut -f1))"
