#!/bin/sh
# pg_dump of the brightkitchen database in custom format, keeping the newest BACKUP_KEEP.
#   backup.sh           one dump now
#   backup.sh --loop    one dump every BACKUP_INTERVAL_S seconds (the compose service)
# Connection from the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
# A dump is written to a temporary name and renamed when complete, so a half-written file
# is never taken for a backup. Restore: restore.sh (docs/operations.md).
set -eu
dir=${BACKUP_DIR:-/backups}
keep=${BACKUP_KEEP:-14}
interval=${BACKUP_INTERVAL_S:-86400}

dump_once() {
  mkdir -p "$dir"
  name="$dir/${PGDATABASE:-brightkitchen}-$(date -u +%Y%m%dT%H%M%SZ).dump"
  pg_dump --format=custom --no-owner --file="$name.partial"
  mv "$name.partial" "$name"
  echo "backup: wrote $name ($(wc -c < "$name") bytes)"
  # newest first; delete everything after the first $keep
  ls -1t "$dir"/*.dump 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do
    rm -f "$old" && echo "backup: pruned $old"
  done
}

if [ "${1:-}" = "--loop" ]; then
  while true; do
    dump_once || echo "backup: pg_dump failed; retrying at the next interval" >&2
    sleep "$interval"
  done
else
  dump_once
fi
