#!/usr/bin/env bash
# Build the scponly-py Debian package with dpkg-deb (no debhelper needed).
#
# Usage: packaging/debian/build-deb.sh [--frozen DIR] [OUTDIR]      (OUTDIR default: build/deb)
#
#   --frozen DIR   an existing onedir tree containing scponly-py, scponly-pyc and _internal/
#                  (default: run packaging/build-frozen.sh, which caches its output)
#
# The file layout comes from packaging/stage.py (shared with the Arch and RPM packages), the
# maintainer scripts and the dpkg trigger from this directory. Prints the .deb's path last.
# Python for staging: SCPONLY_PY_PYTHON (default /usr/bin/python3 with python3-click and
# python3-pyelftools, the package's own dependencies; the man pages read the click commands).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/../.." && pwd)
DEBIAN_DIR="$HERE/packaging/debian"
FROZEN=""
if [ "${1:-}" = "--frozen" ]; then
    FROZEN=$(realpath "$2")
    shift 2
fi
OUT=$(realpath -m "${1:-$HERE/build/deb}")
PYTHON="${SCPONLY_PY_PYTHON:-/usr/bin/python3}"

if [ -z "$FROZEN" ]; then
    "$HERE/packaging/build-frozen.sh" "$HERE/build/frozen" >&2
    FROZEN="$HERE/build/frozen/scponly-py"
fi

VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$HERE/pyproject.toml")-1"
ARCH=$(dpkg --print-architecture)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$HERE" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
umask 022
"$PYTHON" "$HERE/packaging/stage.py" --distro debian --frozen "$FROZEN" --destdir "$ROOT" >&2

# Shared-library dependencies of the bootloader and the bundled objects, from the system's
# shlibs/symbols files; the bundled libraries themselves are private (-l).
mkdir -p "$WORK/debian"
printf 'Source: scponly-py\n\nPackage: scponly-py\nArchitecture: any\n' > "$WORK/debian/control"
mapfile -t objects < <(find "$ROOT/usr/lib/scponly-py" "$ROOT/usr/bin/scponly-py" -type f \( -name 'scponly-py*' -o -name '*.so*' \) | LC_ALL=C sort)
SHLIBS=$(cd "$WORK" && dpkg-shlibdeps -O --ignore-missing-info -l"$ROOT/usr/lib/scponly-py/_internal" \
    "${objects[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
SHLIBS=${SHLIBS:-libc6}

mkdir -m 0755 "$ROOT/DEBIAN"
install -m 0755 "$DEBIAN_DIR/postinst" "$DEBIAN_DIR/prerm" "$DEBIAN_DIR/postrm" "$ROOT/DEBIAN/"
install -m 0644 "$DEBIAN_DIR/triggers" "$ROOT/DEBIAN/triggers"
(cd "$ROOT" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') > "$ROOT/DEBIAN/conffiles"
chmod 0644 "$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 md5sum | sed 's|  \./|  |') > "$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" \
    "$DEBIAN_DIR/control.in" > "$ROOT/DEBIAN/control"
chmod 0644 "$ROOT/DEBIAN/control"

# Reproducible: every file dated SOURCE_DATE_EPOCH.
find "$ROOT" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

mkdir -p "$OUT"
DEB="$OUT/scponly-py_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DEB"
