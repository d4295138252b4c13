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
timescale=$(pg_restore --list "$dump" | grep -c 'EXTENSION - timescaledb' || true)
if [ "$timescale" -gt 0 ]; then
  # the version the dump was taken with (backup.sh writes it next to the dump): pg_dump
  # does not record it, and Timescale restores only into the same version.
  # TIMESCALEDB_VERSION names it for a dump without that file.
  version=${TIMESCALEDB_VERSION:-$(cat "$dump.timescaledb-version" 2>/dev/null || true)}
  [ -n "$version" ] || {
    echo "restore: $dump.timescaledb-version missing: the dump's TimescaleDB version is unknown;" \
         "set TIMESCALEDB_VERSION to the version the database ran when it was dumped" >&2
    exit 2
  }
fi
createdb "$target"
if [ "$timescale" -gt 0 ]; then
  # (a new session for CREATE: one that loaded another version of the library cannot)
  psql -X -v ON_ERROR_STOP=1 -d "$target" -c 'DROP EXTENSION IF EXISTS timescaledb'
  printf '%s\n' "CREATE EXTENSION timescaledb VERSION :'v';" 'SELECT timescaledb_pre_restore();' \
    | psql -X -v ON_ERROR_STOP=1 -v v="$version" -d "$target"
fi
pg_restore --no-owner --exit-on-error --dbname="$target" "$dump"
if [ "$timescale" -gt 0 ]; then
  psql -v ON_ERROR_STOP=1 -d "$target" -c "SELECT timescaledb_post_restore()"
fi
# Database-level settings (ALTER DATABASE ... SET, e.g. migration 0036's decompression cap)
# are in the archive but restored only with --create: apply them to the new name.
pg_restore --create --schema-only --file=- "$dump" \
  | sed -n -E 's/^ALTER DATABASE ("([^"]|"")+"|[^ ]+) SET /ALTER DATABASE :"target" SET /p' \
  | psql -v ON_ERROR_STOP=1 -v target="$target" -d "$target"
echo "restore: $dump restored into database $target"
