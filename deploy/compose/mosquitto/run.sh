#!/bin/sh
# The broker of a district: write the auth files, start Mosquitto, and reload it (SIGHUP,
# connections stay up) whenever the registry's device files change.
#   run.sh SRC_DIR AUTH_DIR DATA_DIR CONF DEVICES_DIR
# DEVICES_DIR is where `brightkitchen registry mqtt-auth write` (the mqtt-auth service)
# puts devices.passwd and devices.acl; gen-auth.sh merges them with the ingest account.
set -eu
src=${1:?source directory}
auth=${2:?auth directory}
data=${3:?data directory}
conf=${4:?mosquitto.conf}
devices=${5:?devices directory}
interval=${AUTH_WATCH_INTERVAL_S:-15}

stamp() { cat "$devices/devices.passwd" "$devices/devices.acl" 2>/dev/null | cksum; }

sh "$src/gen-auth.sh" "$devices" "$auth" "$data"
mosquitto -c "$conf" &
broker=$!
trap 'kill -TERM "$broker" 2>/dev/null; wait "$broker"; exit 0' TERM INT
last=$(stamp)
while kill -0 "$broker" 2>/dev/null; do
  sleep "$interval" &
  wait $! || true
  now=$(stamp)
  if [ "$now" != "$last" ]; then
    if sh "$src/gen-auth.sh" "$devices" "$auth" "$data"; then
      kill -HUP "$broker" && echo "mosquitto: device accounts changed, reloaded"
      last=$now
    fi
  fi
done
wait "$broker"
