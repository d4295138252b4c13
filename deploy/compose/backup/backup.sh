#!/bin/sh
# pg_dump of the brightkitchen database in custom format, keeping the newest BACKUP_KEEP.
#   backup.sh           one dump now
#   backup.sh --loop    one dump every BACKUP_INTERVAL_S seconds (the compose service)
# Connection from the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
# A dump is written to a temporary name and renamed when complete, so a half-written file
# is never taken for a backup. Restore: restore.sh (docs/operations.md).
# Every step checks its own status: dump_once runs as `dump_once || ...` in the loop, and
# there `set -e` is ignored inside the function (POSIX), so it must not be relied on.
set -eu
umask 077  # dumps hold password hashes, notification secrets and people's contacts
dir=${BACKUP_DIR:-/backups}
keep=${BACKUP_KEEP:-14}
interval=${BACKUP_INTERVAL_S:-86400}

dump_once() {
  mkdir -p "$dir" || return 1
  name="$dir/${PGDATABASE:-brightkitchen}-$(date -u +%Y%m%dT%H%M%SZ).dump"
  if ! pg_dump --format=custom --no-owner --file="$name.partial"; then
    rm -f "$name.partial"
    return 1
  fi
  # pg_dump does not record the TimescaleDB version, and a dump restores only into the same
  # version (restore.sh reads this file); empty on plain PostgreSQL
  psql -X -At -c "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'" \
    > "$name.timescaledb-version" || return 1
  mv "$name.partial" "$name" || return 1
  echo "backup: wrote $name ($(wc -c < "$name") bytes)"
  # newest first; delete everything after the first $keep (only after a good dump)
  ls -1t "$dir"/*.dump 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do
    rm -f "$old" "$old.timescaledb-version" && echo "backup: pruned $old"
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
