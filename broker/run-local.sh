#!/usr/bin/env bash
# Start Mosquitto with the local configuration and the dynamic security plugin, in the foreground.
# Usage: broker/run-local.sh [DATA_DIR]   (port from SMARTOFFICE_MQTT_PORT, default 18830)
# The first run writes DATA_DIR/dynamic-security.json with the admin, ingest and API
# identities, and their passwords to DATA_DIR/../credentials/services.json (mode 0600), the
# same files `python -m devstack` uses. Anonymous clients are rejected.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data_dir=$(realpath -m "${1:-$here/../.local/mosquitto}")
port=${SMARTOFFICE_MQTT_PORT:-18830}
dynsec_file=$data_dir/dynamic-security.json
credentials_file=$(dirname "$data_dir")/credentials/services.json
mkdir -p "$data_dir"
# The plugin rewrites its file on every change, with the umask's mode.
chmod 700 "$data_dir"

plugin=""
for candidate in /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so /usr/lib/*/mosquitto_dynamic_security.so \
                 /usr/lib/mosquitto_dynamic_security.so /usr/local/lib/mosquitto_dynamic_security.so; do
    if [ -e "$candidate" ]; then plugin=$candidate; break; fi
done
if [ -z "$plugin" ]; then
    echo "error: mosquitto_dynamic_security.so not found: install Mosquitto 2.0 or newer (apt package 'mosquitto')" >&2
    exit 1
fi

if [ ! -e "$dynsec_file" ]; then
    "$here/../.venv/bin/python" -m registry bootstrap-broker \
        --dynsec-file "$dynsec_file" --credentials-file "$credentials_file"
fi

sed -e "s|\${MQTT_PORT}|$port|g" -e "s|\${DATA_DIR}|$data_dir|g" \
    "$here/mosquitto.local.conf" > "$data_dir/mosquitto.conf"
printf 'allow_anonymous false\nplugin %s\nplugin_opt_config_file %s\n' "$plugin" "$dynsec_file" >> "$data_dir/mosquitto.conf"
# As root, Mosquitto would switch to the 'mosquitto' user, which cannot write to this folder.
if [ "$(id -u)" = 0 ]; then echo "user root" >> "$data_dir/mosquitto.conf"; fi

echo "mosquitto on 127.0.0.1:$port with dynamic security, data in $data_dir, log in $data_dir/mosquitto.log"
echo "service logins in $credentials_file"
exec mosquitto -c "$data_dir/mosquitto.conf"
