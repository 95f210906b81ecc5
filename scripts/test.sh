#!/usr/bin/env bash
# Install what the tests need, then run them. The tests start their own Mosquitto and
# InfluxDB on free loopback ports in temporary folders. Extra arguments go to pytest.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m pytest "$@"
