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
#
# The bootloader (the ELF that starts the interpreter) is built here from PyInstaller's own
# source distribution, not taken from its wheel: the wheel's prebuilt Linux bootloader is not
# position-independent (lintian: hardening-no-pie) and not built with the distribution's
# hardening flags. The sdist (pinned by its SHA-256: root builds and runs it) is unpacked into
# OUTDIR/pyinstaller, its bootloader compiled with waf (`./waf configure install_release`,
# PyInstaller's documented build) with `dpkg-buildflags` (hardening=+all) where that exists,
# an equivalent fixed set elsewhere, and always -fPIE/-pie; PyInstaller then runs from that
# tree. Both are cached: the bootloader is rebuilt only when the flags or the compiler change.
set -euo pipefail

umask 022  # root runs what lands in OUTDIR: nothing in it may be writable by others
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$HERE/build/frozen}")
VENV="${SCPONLY_PY_VENV:-/opt/scponly-py}"
PYINSTALLER_VERSION=6.22.3
PYINSTALLER_SDIST_SHA256=05eb2f5615503e72939a7224d68b4aff572c6b0438ee4a17d0a4b481f399362d
if [ "$(id -u)" -eq 0 ]; then
    owner=(--owner "$(stat -c %u "$HERE")")
    /usr/bin/python3 -I "$HERE/scponly_py/trusted.py" "${owner[@]}" --make "$OUT"
    /usr/bin/python3 -I "$HERE/scponly_py/trusted.py" "${owner[@]}" "$VENV/bin"
fi
mkdir -p "$OUT"

# The venv's PyInstaller provides the dependencies (altgraph, the contributed hooks); the
# PyInstaller that builds is the one unpacked below, with our bootloader.
if ! "$VENV/bin/python" -c "import PyInstaller, sys; sys.exit(PyInstaller.__version__ != '$PYINSTALLER_VERSION')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "pyinstaller==$PYINSTALLER_VERSION"
fi

PYINSTALLER="$OUT/pyinstaller"
platform=$("$VENV/bin/python" -c 'from PyInstaller import PLATFORM; print(PLATFORM)')
BOOTLOADER="$PYINSTALLER/PyInstaller/bootloader/$platform/run"
if command -v dpkg-buildflags >/dev/null; then
    eval "$(cd "$OUT" && DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
else
    CFLAGS="-O2 -fstack-protector-strong -fstack-clash-protection -Wformat -Werror=format-security"
    CPPFLAGS="-D_FORTIFY_SOURCE=2"
    LDFLAGS="-Wl,-z,relro -Wl,-z,now"
fi
export CFLAGS="$CFLAGS -fPIE" CPPFLAGS LDFLAGS="$LDFLAGS -pie"
bootloader_key=$(
    printf '%s\n' "$PYINSTALLER_VERSION" "$PYINSTALLER_SDIST_SHA256" "$CFLAGS" "$CPPFLAGS" "$LDFLAGS"
    "${CC:-gcc}" --version | head -n 1
)
if [ ! -x "$BOOTLOADER" ] || [ "$(cat "$PYINSTALLER/bootloader-key" 2>/dev/null)" != "$bootloader_key" ]; then
    started=$SECONDS
    rm -rf "$PYINSTALLER"
    mkdir -m 0755 "$PYINSTALLER"
    sdist="$PYINSTALLER/pyinstaller-$PYINSTALLER_VERSION.tar.gz"
    # --require-hashes: pip checks the archive before it runs any of its code (metadata).
    echo "pyinstaller==$PYINSTALLER_VERSION --hash=sha256:$PYINSTALLER_SDIST_SHA256" \
        > "$PYINSTALLER/requirement.txt"
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: --require-hashes -r "$PYINSTALLER/requirement.txt" --dest "$PYINSTALLER"
    echo "$PYINSTALLER_SDIST_SHA256  $sdist" | sha256sum --check --quiet
    tar -xzf "$sdist" -C "$PYINSTALLER" --strip-components 1 --no-same-owner --no-same-permissions
    rm "$sdist"
    if ! (cd "$PYINSTALLER/bootloader" && nice "$VENV/bin/python" ./waf configure install_release) \
        > "$PYINSTALLER/bootloader.log" 2>&1; then
        tail -n 30 "$PYINSTALLER/bootloader.log" >&2
        echo "build-frozen: the bootloader did not build (log: $PYINSTALLER/bootloader.log)" >&2
        exit 1
    fi
    # ELF e_type 3 (ET_DYN): position-independent; anything else means the flags did not apply.
    if [ "$(od -An -tu2 -j16 -N2 "$BOOTLOADER" | tr -d ' ')" != 3 ]; then
        echo "build-frozen: $BOOTLOADER is not position-independent" >&2
        exit 1
    fi
    echo "$bootloader_key" > "$PYINSTALLER/bootloader-key"
    echo "build-frozen: built PyInstaller's bootloader (PIE) in $((SECONDS - started)) s"
fi

source_hash=$(
    cd "$HERE"
    {
        "$VENV/bin/python" -c 'import sys, _prctl; print(sys.version, _prctl.__file__)'
        cat "$PYINSTALLER/bootloader-key"
        sha256sum "$BOOTLOADER"
        find packaging/pyinstaller scponly_py -name '*.py' -o -name '*.spec' | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -c1-32
)
if [ -f "$OUT/source-hash" ] && [ "$(cat "$OUT/source-hash")" = "$source_hash" ] \
    && [ -x "$OUT/scponly-py/scponly-pyc" ] && [ -x "$OUT/scponly-py/scponly-py" ]; then
    echo "build-frozen: up to date: $OUT/scponly-py"
    exit 0
fi

rm -rf "$OUT/scponly-py" "$OUT/source-hash"
(
    cd "$HERE"
    PYTHONPATH="$PYINSTALLER" nice "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$OUT" --workpath "$OUT/work" packaging/pyinstaller/scponly-py.spec
)
echo "$source_hash" > "$OUT/source-hash"
echo "build-frozen: built $OUT/scponly-py ($(du -sh "$OUT/scponly-py" | cut -f1))"
