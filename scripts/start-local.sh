#!/usr/bin/env bash
# Start the whole platform on this machine: Mosquitto, InfluxDB, ingest, API and simulated
# offices, with data and logs in .local/. Ctrl-C stops everything.
# Ports: SMARTOFFICE_API_PORT (8000), SMARTOFFICE_MQTT_PORT (18830),
#        SMARTOFFICE_INFLUX_PORT (18086), SMARTOFFICE_METRICS_PORT (9108).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m devstack "$@"
