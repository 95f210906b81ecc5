#!/usr/bin/env bash
# Start the whole platform on this machine: Mosquitto, InfluxDB, ingest, API and simulated
# offices. Ctrl-C stops everything. Options go to `python -m devstack` (see --help).
# Ports: SMARTOFFICE_API_PORT (8000), SMARTOFFICE_MQTT_PORT (18830),
#        SMARTOFFICE_INFLUX_PORT (18086), SMARTOFFICE_INFLUX_RPC_PORT (18088),
#        SMARTOFFICE_METRICS_PORT (9108).
# Data and logs: SMARTOFFICE_LOCAL_DIR (.local in the repository).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m devstack "$@"
