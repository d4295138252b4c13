#!/usr/bin/env bash
# Install a brightkitchen edge box on Debian 12 / Ubuntu 22.04+ (x86-64 or arm64), as root:
#
#   sudo deploy/edge/install.sh --site-file site.yaml --box s001-box-1 \
#       --api https://bk.example.org --broker mqtts://mqtt.example.org:8883 --code 7KQ2-M9XD-4HTR-B0CW
#
# It creates the service user and directories, installs the package into
# /opt/brightkitchen/.venv (from this checkout, or --wheelhouse DIR offline), installs the
# default model, writes systemd units for the edge worker, the kitchen display and a
# watchdog, log rotation, the disk budget of the outbox and evidence, checks the
# configuration with `brightkitchen edge run --validate-config` and enrols the box with
# the one-time code (credentials in /etc/brightkitchen/device.env, 0600, service user).
# deploy/README.md walks through it; `--help` lists every option.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
  cat <<'EOF'
usage: install.sh --site-file FILE --box BOX_ID [options]

required:
  --site-file FILE     the site file (YAML) that describes this box's cameras and zones
  --box BOX_ID         this box's id in the site file and the registry

enrolment (all three, or none to enrol later with `brightkitchen edge enrol`):
  --api URL            backend, e.g. https://bk.example.org
  --broker URL         mqtts://host:8883 (or mqtt://host:1883 on a closed network)
  --code CODE          one-time enrolment code from `brightkitchen enrol create` ('-': stdin)

options:
  --user NAME          service user (default brightkitchen)
  --disk-budget-mb N   disk for the outbox and its evidence (default: a quarter of the
                       free space of /var/lib, at least 256, at most 8192)
  --model FILE         ONNX detector (default: the shipped models/weights/mask_yolo_edge.onnx)
  --wheelhouse DIR     install from wheels in DIR, no network (pip --no-index)
  --venv DIR           use an existing virtual environment instead of creating one
  --metrics-host ADDR  where /metrics listens (default 127.0.0.1; 0.0.0.0 for a district
                       Prometheus to scrape the box)
  --with-display       also install the kitchen-display kiosk (cage + chromium) and enable it
  --root DIR           write everything under DIR and skip apt, useradd and systemctl
                       (to inspect the result, or to build an image)
  -h, --help           this text
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }

site_file="" box="" api="" broker="" code="" user="brightkitchen" budget_mb="" model=""
wheelhouse="" venv="" metrics_host="127.0.0.1" with_display=0 root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --site-file) site_file=${2:?}; shift 2 ;;
    --box) box=${2:?}; shift 2 ;;
    --api) api=${2:?}; shift 2 ;;
    --broker) broker=${2:?}; shift 2 ;;
    --code) code=${2:?}; shift 2 ;;
    --user) user=${2:?}; shift 2 ;;
    --disk-budget-mb) budget_mb=${2:?}; shift 2 ;;
    --model) model=${2:?}; shift 2 ;;
    --wheelhouse) wheelhouse=${2:?}; shift 2 ;;
    --venv) venv=${2:?}; shift 2 ;;
    --metrics-host) metrics_host=${2:?}; shift 2 ;;
    --with-display) with_display=1; shift ;;
    --root) root=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$site_file" ] || die "--site-file is required"
[ -r "$site_file" ] || die "--site-file $site_file: cannot read it"
[ -n "$box" ] || die "--box is required"
enrol_args=0
for v in "$api" "$broker" "$code"; do [ -n "$v" ] && enrol_args=$((enrol_args + 1)); done
[ "$enrol_args" -eq 0 ] || [ "$enrol_args" -eq 3 ] || die "--api, --broker and --code go together"
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or with --root DIR to stage)"
case "$(uname -m)" in x86_64|amd64|aarch64|arm64) ;; *) die "unsupported CPU $(uname -m)" ;; esac
if [ "$code" = "-" ]; then read -r code; fi

opt=$root/opt/brightkitchen
etc=$root/etc/brightkitchen
data=$root/var/lib/brightkitchen
units=$root/etc/systemd/system
venv=${venv:-$opt/.venv}
model=${model:-$repo/models/weights/mask_yolo_edge.onnx}
[ -r "$model" ] || die "--model $model: cannot read it"

step() { echo "==> $*"; }

# 1. system packages and the service user
if [ -z "$root" ]; then
  step "system packages"
  pkgs=(python3 python3-venv ca-certificates libgl1 libglib2.0-0)
  [ "$with_display" = 1 ] && pkgs+=(cage chromium)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  if ! id "$user" >/dev/null 2>&1; then
    step "user $user"
    useradd --system --home-dir /var/lib/brightkitchen --shell /usr/sbin/nologin "$user"
  fi
  usermod -a -G video "$user" 2>/dev/null || true  # USB cameras
fi
id "$user" >/dev/null 2>&1 || die "user $user does not exist"

# 2. directories: configuration readable by the service only, state owned by it
step "directories"
group=$(id -gn "$user")
as_root() { [ "$(id -u)" = 0 ]; }  # ownership is set only where we may (not in a user's --root)
install -d -m 0755 "$opt" "$opt/models" "$units"
install -d -m 0750 "$etc" "$data"
if as_root; then chown "root:$group" "$etc"; chown "$user:$group" "$data"; fi

# 3. the package and the default model
if [ ! -x "$venv/bin/brightkitchen" ]; then
  step "package into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  if [ -n "$wheelhouse" ]; then
    "$venv/bin/pip" install -q --no-index --find-links "$wheelhouse" "brightkitchen[edge]"
  else
    "$venv/bin/pip" install -q -c "$repo/constraints.txt" "$repo[edge]"
  fi
fi
step "model"
install -m 0644 "$model" "$opt/models/$(basename "$model")"
if [ -r "${model%.onnx}.metrics.json" ]; then
  install -m 0644 "${model%.onnx}.metrics.json" "$opt/models/"
fi
install -m 0640 "$site_file" "$etc/site.yaml"
if as_root; then chown "root:$group" "$etc/site.yaml"; fi

# 4. settings: the disk budget of the outbox (evidence pruned oldest first, events kept)
if [ -z "$budget_mb" ]; then
  free_mb=$(df -Pm "$(dirname "$data")" | awk 'NR==2 {print $4}')
  budget_mb=$(( free_mb / 4 ))
  [ "$budget_mb" -ge 256 ] || budget_mb=256
  [ "$budget_mb" -le 8192 ] || budget_mb=8192
fi
case "$budget_mb" in ''|*[!0-9]*) die "--disk-budget-mb must be a whole number" ;; esac
step "settings (disk budget $budget_mb MB)"
umask 027
cat > "$etc/edge.env" <<ENV
# brightkitchen edge box $box (written by install.sh; device.env holds the credentials)
BK_SITE_FILE=/etc/brightkitchen/site.yaml
BK_EDGE_BOX_ID=$box
BK_EDGE_DATA_DIR=/var/lib/brightkitchen
BK_EDGE_MODEL_PATH=/opt/brightkitchen/models/$(basename "$model")
# Outbox and inline evidence together; over it, the oldest evidence images are pruned
# first and events are kept (days of violations without uplink fit in a few hundred MB).
BK_EDGE_OUTBOX_MAX_MB=$budget_mb
BK_EDGE_METRICS_HOST=$metrics_host
BK_EDGE_METRICS_PORT=9108
BK_EDGE_DISPLAY_HOST=127.0.0.1
BK_EDGE_DISPLAY_PORT=8088
BK_LOG_FORMAT=json
ENV
if as_root; then chown "root:$group" "$etc/edge.env"; fi

# 5. systemd units: worker, watchdog, kitchen display
step "systemd units"
bk="/opt/brightkitchen/.venv/bin/brightkitchen"
[ "$venv" = "$opt/.venv" ] || bk="$venv/bin/brightkitchen"
cat > "$units/brightkitchen-edge.service" <<UNIT
# brightkitchen edge worker of box $box (install.sh). The SQLite outbox and evidence in
# /var/lib/brightkitchen survive restarts, reboots and days without uplink; delivery
# resumes in order when the broker is back.
[Unit]
Description=brightkitchen edge vision worker
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=600
StartLimitBurst=20

[Service]
Type=simple
User=$user
Group=$group
EnvironmentFile=/etc/brightkitchen/edge.env
EnvironmentFile=-/etc/brightkitchen/device.env
# glibc: at most 2 malloc arenas (fewer freed frame buffers kept per thread)
Environment=MALLOC_ARENA_MAX=2
ExecStartPre=$bk edge run --config /etc/brightkitchen/site.yaml --validate-config
ExecStart=$bk edge run --config /etc/brightkitchen/site.yaml
Restart=always
RestartSec=5
TimeoutStopSec=30
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
ReadWritePaths=/var/lib/brightkitchen
SupplementaryGroups=video

[Install]
WantedBy=multi-user.target
UNIT
# The worker is restarted by systemd when it exits; the watchdog also restarts it when it
# hangs: /metrics must answer, checked every minute, restart after 3 misses in a row.
cat > "$opt/watchdog.sh" <<'WATCH'
#!/bin/sh
# brightkitchen edge watchdog: restart the worker when /metrics stops answering.
state=/run/brightkitchen-watchdog.misses
port=${BK_EDGE_METRICS_PORT:-9108}
host=${BK_EDGE_METRICS_HOST:-127.0.0.1}
[ "$host" = "0.0.0.0" ] && host=127.0.0.1
if ! systemctl is-active --quiet brightkitchen-edge; then exit 0; fi
if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$host:$port/metrics', timeout=10)" 2>/dev/null; then
  rm -f "$state"; exit 0
fi
misses=$(( $(cat "$state" 2>/dev/null || echo 0) + 1 ))
echo "$misses" > "$state"
echo "brightkitchen-edge: /metrics did not answer ($misses in a row)"
if [ "$misses" -ge 3 ]; then
  rm -f "$state"
  echo "brightkitchen-edge: restarting the hung worker"
  systemctl restart brightkitchen-edge
fi
WATCH
chmod 0755 "$opt/watchdog.sh"
cat > "$units/brightkitchen-edge-watchdog.service" <<UNIT
[Unit]
Description=brightkitchen edge watchdog (restarts a hung worker)

[Service]
Type=oneshot
EnvironmentFile=/etc/brightkitchen/edge.env
ExecStart=/opt/brightkitchen/watchdog.sh
UNIT
cat > "$units/brightkitchen-edge-watchdog.timer" <<UNIT
[Unit]
Description=brightkitchen edge watchdog every minute

[Timer]
OnBootSec=3min
OnUnitActiveSec=1min

[Install]
WantedBy=timers.target
UNIT
cat > "$units/brightkitchen-display.service" <<UNIT
# Kitchen display: the worker's pop-up page full screen on the box's monitor.
[Unit]
Description=brightkitchen kitchen display (kiosk)
After=brightkitchen-edge.service systemd-user-sessions.service
Wants=brightkitchen-edge.service

[Service]
User=$user
PAMName=login
TTYPath=/dev/tty7
Environment=XDG_RUNTIME_DIR=/run/brightkitchen-display
RuntimeDirectory=brightkitchen-display
ExecStart=/usr/bin/cage -- /usr/bin/chromium --kiosk --noerrdialogs --disable-translate --no-first-run http://127.0.0.1:8088/
Restart=always
RestartSec=5

[Install]
WantedBy=graphical.target
UNIT

# 6. logs: journald keeps them, bounded; logrotate for file logs an operator adds
step "log rotation"
install -d -m 0755 "$root/etc/systemd/journald.conf.d" "$root/etc/logrotate.d"
cat > "$root/etc/systemd/journald.conf.d/brightkitchen.conf" <<'CONF'
# brightkitchen edge box: keep logs for weeks without filling the disk.
[Journal]
Storage=persistent
SystemMaxUse=500M
MaxRetentionSec=30day
CONF
cat > "$root/etc/logrotate.d/brightkitchen" <<'CONF'
/var/log/brightkitchen/*.log {
    daily
    rotate 14
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
CONF

# 7. check the configuration before anything starts
step "validate configuration"
validate_env=(env BK_SITE_FILE="$etc/site.yaml" BK_EDGE_BOX_ID="$box" BK_EDGE_OUTBOX_MAX_MB="$budget_mb"
              BK_EDGE_DATA_DIR="$data" BK_EDGE_MODEL_PATH="$opt/models/$(basename "$model")")
if ! "${validate_env[@]}" "$venv/bin/brightkitchen" edge run --config "$etc/site.yaml" \
     --box "$box" --validate-config; then
  die "the configuration above has errors (key paths shown); fix the site file and rerun"
fi

# 8. enrol: trade the one-time code for this box's credentials
if [ -n "$code" ]; then
  step "enrol box $box with $api"
  printf '%s\n' "$code" | "$venv/bin/brightkitchen" edge enrol --api "$api" --box "$box" \
    --code - --broker "$broker" --out-dir "$etc" --owner "$user"
fi

# 9. start
if [ -z "$root" ]; then
  step "start"
  systemctl daemon-reload
  systemctl restart systemd-journald || true
  systemctl enable --now brightkitchen-edge.service brightkitchen-edge-watchdog.timer
  if [ "$with_display" = 1 ]; then systemctl enable --now brightkitchen-display.service; fi
  systemctl --no-pager --lines=5 status brightkitchen-edge.service || true
fi
echo "edge box $box installed${root:+ under $root}."
[ -n "$code" ] || echo "not enrolled yet: brightkitchen edge enrol --api URL --box $box --code - --broker URL --owner $user"
