-- @path: plain
-- Plain PostgreSQL: BRIN on time and app-maintained rollup tables behind views named
-- like the TimescaleDB continuous aggregates, so queries are the same on both paths.
CREATE INDEX sensor_readings_ts_brin ON sensor_readings USING brin (ts);

CREATE TABLE readings_5m_store (
    sensor_id  text NOT NULL,
    bucket     timestamptz NOT NULL,
    temp_min   double precision NOT NULL,
    temp_max   double precision NOT NULL,
    temp_sum   double precision NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);
CREATE TABLE readings_1h_store (LIKE readings_5m_store INCLUDING ALL);

CREATE VIEW readings_5m AS
    SELECT sensor_id, bucket, temp_min, temp_sum / n AS temp_avg, temp_max, n FROM readings_5m_store;
CREATE VIEW readings_1h AS
    SELECT sensor_id, bucket, temp_min, temp_sum / n AS temp_avg, temp_max, n FROM readings_1h_store;
