#!/usr/bin/env bash
# Debian/Ubuntu packages the tests use: Mosquitto (broker restarts), Chromium and its driver
# (console and kitchen-display tests); wrk for `bench api`.
# Installs only what is missing; does nothing without root or apt.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# a CJK font, so the console's screenshots (docs/screenshots/) show Chinese, not boxes
[ -n "$(fc-list :lang=zh family 2>/dev/null || true)" ] || need+=(fonts-wqy-microhei)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # the API benchmark's load generator
# deploy tests: Prometheus + promtool (district stack, alert rules), docker-compose v1
# (`docker-compose config` validates deploy/compose without a Docker engine)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
  exit 0
fi
echo "installing system packages: ${need[*]}"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
