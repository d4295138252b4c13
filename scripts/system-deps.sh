#!/usr/bin/env bash
# Debian/Ubuntu packages the tests use: Mosquitto (broker restarts), Chromium and its driver
# (console and kitchen-display tests); wrk for `bench api`; npm, which then installs axe-core
# (the console's accessibility audit) into tests/console/axe, for the tests only.
# Installs only what is missing; does nothing without root or apt.
set -euo pipefail
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/console/axe"
# axe-core at the version (and hash) of tests/console/axe/package-lock.json; never shipped
install_axe() {
  [ -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: the console audit cannot install axe-core" >&2
    return 0
  fi
  echo "installing axe-core into tests/console/axe (tests only)"
  npm ci --prefix "$AXE_DIR" --no-audit --no-fund --loglevel=error >/dev/null \
    || echo "npm ci in tests/console/axe failed: the console audit will say so" >&2
}
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# a CJK font, so the console's screenshots (docs/screenshots/) show Chinese, not boxes
[ -n "$(fc-list :lang=zh family 2>/dev/null || true)" ] || need+=(fonts-wqy-microhei)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # the API benchmark's load generator
command -v npm >/dev/null 2>&1 || need+=(npm)  # installs axe-core for the console audit
# deploy tests: Prometheus + promtool (district stack, alert rules), docker-compose v1
# (`docker-compose config` validates deploy/compose without a Docker engine)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -eq 0 ]; then install_axe; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
  install_axe
  exit 0
fi
echo "installing system packages: ${need[*]}"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
install_axe
