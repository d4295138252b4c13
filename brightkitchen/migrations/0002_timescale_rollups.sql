-- @path: timescale
-- TimescaleDB: hypertable, continuous aggregates (5 min, 1 h), compression and retention.
-- The runner applies this file statement by statement outside a transaction block, so
-- every statement is re-runnable: a migration that stopped halfway (a lost connection, a
-- missing privilege) completes when run again. Refresh policies and chunk pre-creation
-- are set in 0012 (one place for their settings, also for databases that ran this file
-- in its first form).
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- The create_hypertable signature that every TimescaleDB 2.x accepts; 1-day chunks.
SELECT create_hypertable('sensor_readings', 'ts', chunk_time_interval => INTERVAL '1 day',
    if_not_exists => true, migrate_data => true);

-- Real-time aggregates (materialized_only = false): a query unions the materialized
-- buckets with the raw readings newer than the materialization watermark, so the
-- answer includes recent readings before any refresh (TimescaleDB >= 2.13 creates
-- aggregates materialized-only unless told). WITH NO DATA: nothing to materialize at
-- creation; the refresh policy (0012) fills the aggregate in the background.
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_5m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT sensor_id, time_bucket(INTERVAL '5 minutes', ts) AS bucket,
           min(temp_c) AS temp_min, avg(temp_c) AS temp_avg, max(temp_c) AS temp_max, count(*) AS n
    FROM sensor_readings GROUP BY sensor_id, bucket WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT sensor_id, time_bucket(INTERVAL '1 hour', ts) AS bucket,
           min(temp_c) AS temp_min, avg(temp_c) AS temp_avg, max(temp_c) AS temp_max, count(*) AS n
    FROM sensor_readings GROUP BY sensor_id, bucket WITH NO DATA;

-- Compression settings cannot be changed once chunks are compressed: set them only once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'sensor_readings'
                     AND hypertable_schema = current_schema()
                     AND compression_enabled) THEN
        ALTER TABLE sensor_readings SET (timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_id', timescaledb.compress_orderby = 'ts');
    END IF;
END
$$;
SELECT add_compression_policy('sensor_readings', INTERVAL '7 days', if_not_exists => true);
SELECT add_retention_policy('sensor_readings', INTERVAL '400 days', if_not_exists => true);
