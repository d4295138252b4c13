-- @path: timescale
-- TimescaleDB: hypertable, continuous aggregates (5 min, 1 h), compression and retention.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('sensor_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true);

CREATE MATERIALIZED VIEW readings_5m WITH (timescaledb.continuous) AS
    SELECT sensor_id, time_bucket(INTERVAL '5 minutes', ts) AS bucket,
           min(temp_c) AS temp_min, avg(temp_c) AS temp_avg, max(temp_c) AS temp_max, count(*) AS n
    FROM sensor_readings GROUP BY sensor_id, bucket WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_5m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');

CREATE MATERIALIZED VIEW readings_1h WITH (timescaledb.continuous) AS
    SELECT sensor_id, time_bucket(INTERVAL '1 hour', ts) AS bucket,
           min(temp_c) AS temp_min, avg(temp_c) AS temp_avg, max(temp_c) AS temp_max, count(*) AS n
    FROM sensor_readings GROUP BY sensor_id, bucket WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour');

ALTER TABLE sensor_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'sensor_id',
    timescaledb.compress_orderby = 'ts');
SELECT add_compression_policy('sensor_readings', INTERVAL '7 days');
SELECT add_retention_policy('sensor_readings', INTERVAL '400 days');
