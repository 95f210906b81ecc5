#!/usr/bin/env bash
# Start Mosquitto with the local configuration, in the foreground.
# Usage: broker/run-local.sh [DATA_DIR]   (port from SMARTOFFICE_MQTT_PORT, default 18830)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data_dir=$(realpath -m "${1:-$here/../.local/mosquitto}")
port=${SMARTOFFICE_MQTT_PORT:-18830}
mkdir -p "$data_dir"

sed -e "s|\${MQTT_PORT}|$port|g" -e "s|\${DATA_DIR}|$data_dir|g" \
    "$here/mosquitto.local.conf" > "$data_dir/mosquitto.conf"
# As root, Mosquitto would switch to the 'mosquitto' user, which cannot write to this folder.
if [ "$(id -u)" = 0 ]; then echo "user root" >> "$data_dir/mosquitto.conf"; fi

echo "mosquitto on 127.0.0.1:$port, data in $data_dir, log in $data_dir/mosquitto.log"
exec mosquitto -c "$data_dir/mosquitto.conf"
