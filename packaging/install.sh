#!/usr/bin/env bash
# One-command install from this checkout on Debian/Ubuntu:
#
#     sudo packaging/install.sh              # build the .deb and install it with apt-get
#     sudo packaging/install.sh --build-only # only build it (prints the .deb's path)
#
# It installs the build dependencies (apt), makes a build venv with PyInstaller and
# python-prctl (SCPONLY_PY_VENV, default /var/cache/scponly-py/build-venv, which must pass the
# trusted-path rule: packaging/build-venv.sh), builds the frozen onedir
# login shells (packaging/build-frozen.sh) and the package (packaging/debian/build-deb.sh).
# On Arch use packaging/arch/PKGBUILD, on Fedora/RHEL packaging/rpm/scponly-py.spec (README).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
INSTALL=yes
[ "${1:-}" = "--build-only" ] && INSTALL=no

if [ "$(id -u)" -ne 0 ]; then
    echo "install: run as root (sudo): it installs packages" >&2
    exit 1
fi
# shellcheck source=/dev/null
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
    *" debian "*|*" ubuntu "*) ;;
    *)
        echo "install: not Debian/Ubuntu; use packaging/arch/PKGBUILD or packaging/rpm/scponly-py.spec (see README)" >&2
        exit 2
        ;;
esac

BUILD_PACKAGES=(python3 python3-venv python3-dev python3-click python3-pyelftools gcc libcap-dev
    dpkg-dev libcap2-bin)
missing=()
for package in "${BUILD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# shellcheck source=packaging/build-venv.sh
. "$HERE/packaging/build-venv.sh"
build_venv
"$VENV/bin/python" -c 'import _prctl' 2>/dev/null \
    || "$VENV/bin/python" -m pip install -q --disable-pip-version-check python-prctl
SCPONLY_PY_VENV="$VENV" "$HERE/packaging/build-frozen.sh" "$HERE/build/frozen" >&2
DEB=$(SCPONLY_PY_PYTHON=/usr/bin/python3 "$HERE/packaging/debian/build-deb.sh" \
    --frozen "$HERE/build/frozen/scponly-py" "$HERE/build/deb" | tail -n 1)

if [ "$INSTALL" = no ]; then
    echo "$DEB"
    exit 0
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB"
cat <<DONE
installed $(basename "$DEB"). Next:
  man scponly-py
  sudo usermod -s /usr/bin/scponly-py alice                        # a plain restricted account
  sudo scponly-py-setup create /srv/jail                            # or a jailed one:
  sudo scponly-py-setup add-user bob --jail /srv/jail --create      # shell /usr/lib/scponly-py/scponly-pyc
  sudo groupadd -f scponly && sudo usermod -aG scponly alice        # add-user does this for bob
  sudo scponly-py-setup sshd-config --install                       # Match Group scponly, checked
DONE
