#!/usr/bin/env bash
# Install what the platform and its tests need on Debian 12+ or Ubuntu 24.04+:
# Mosquitto, InfluxDB 1.x and Python >= 3.11 from apt, and the project in .venv.
# Safe to run again; it only installs what is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
    sudo_cmd=(sudo)
fi

# Debian/Ubuntu packages. The apt packages may also start system services on ports 1883,
# 8086 and 5432; the platform's own processes use other ports (see README), so both can run.
# PostgreSQL's server binaries let the tests run the registry on a real PostgreSQL (the
# platform itself uses SQLite unless SMARTOFFICE_DATABASE_URL names a PostgreSQL server).
apt_packages=(mosquitto mosquitto-clients influxdb influxdb-client postgresql python3 python3-venv python3-pip)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing apt packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The dashboard's browser tests drive Debian's Chromium (/usr/bin/chromium) through
# Playwright, which needs no chromium-driver and downloads no browser of its own. The font
# renders the screenshots. A failure here is only a warning, because a distribution may have
# no package named chromium: everything but tests/test_dashboard_browser.py still works.
browser_packages=(chromium fonts-dejavu-core)
browser_missing=()
for package in "${browser_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || browser_missing+=("$package")
done
if [ ${#browser_missing[@]} -gt 0 ]; then
    echo "installing apt packages for the browser tests: ${browser_missing[*]}"
    "${sudo_cmd[@]}" apt-get update -q
    if ! DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${browser_missing[@]}"; then
        echo "warning: could not install ${browser_missing[*]}, so tests/test_dashboard_browser.py fails until /usr/bin/chromium exists" >&2
    fi
fi

# A Python >= 3.11: the first python3 on PATH if it is new enough, else the system one.
python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=/usr/bin/python3
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python >= 3.11 is required, found $("$python" --version 2>&1); use Debian 12 or Ubuntu 24.04 or newer" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --config-settings editable_mode=compat -e ".[test]"
echo "setup complete: $(.venv/bin/python --version), $(mosquitto -h 2>/dev/null | head -1), influxd $(influxd version 2>/dev/null | awk '{print $2}')"
