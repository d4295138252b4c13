#!/bin/sh
# Restore a dump written by backup.sh into a NEW, empty database.
#   restore.sh DUMP_FILE TARGET_DB
# Connection from the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD); PGDATABASE is
# not used. On TimescaleDB the extension's restore mode is switched on around pg_restore
# (timescaledb_pre_restore / post_restore), as Timescale documents for pg_dump backups.
# Point BK_DATABASE_URL at TARGET_DB afterwards (or rename the databases) and restart.
set -eu
dump=${1:?dump file}
target=${2:?target database name}
[ -r "$dump" ] || { echo "restore: cannot read $dump" >&2; exit 2; }
createdb "$target"
timescale=$(pg_restore --list "$dump" | grep -c 'EXTENSION - timescaledb' || true)
if [ "$timescale" -gt 0 ]; then
  psql -v ON_ERROR_STOP=1 -d "$target" -c "CREATE EXTENSION IF NOT EXISTS timescaledb" \
       -c "SELECT timescaledb_pre_restore()"
fi
pg_restore --no-owner --exit-on-error --dbname="$target" "$dump"
if [ "$timescale" -gt 0 ]; then
  psql -v ON_ERROR_STOP=1 -d "$target" -c "SELECT timescaledb_post_restore()"
fi
echo "restore: $dump restored into database $target"
