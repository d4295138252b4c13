-- @path: timescale
-- Disinfection cabinets with a smart plug: the plug's power / current samples, the
-- on thresholds of each cabinet, and what each cycle of the ledger was judged by.
-- The same schema as 0026_plain_cabinet_power.sql, and cabinet_power is a hypertable
-- (7-day chunks: a plug reports about every 10 s). The runner applies this file statement
-- by statement outside a transaction: the schema changes are one DO block that does
-- nothing once cabinet_power exists, and create_hypertable is re-runnable.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema()
                   AND tablename = 'cabinet_power') THEN

        -- A plug's samples, keyed like sensor_readings (a redelivered sample is a no-op). The
        -- plug is a channel of its cabinet: sensor_id is the cabinet's sensor.
        CREATE TABLE IF NOT EXISTS cabinet_power (
            sensor_id    text NOT NULL,
            ts           timestamptz NOT NULL,
            power_w      double precision CHECK (power_w >= 0),
            current_a    double precision CHECK (current_a >= 0),
            voltage_v    real CHECK (voltage_v >= 0),
            energy_kwh   double precision CHECK (energy_kwh >= 0),
            switch_on    boolean,
            seq          bigint,
            received_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (sensor_id, ts),
            CHECK (power_w IS NOT NULL OR current_a IS NOT NULL)
        );

        -- Each cabinet's plug (none: temperature alone times its cycles) and on thresholds;
        -- existing cabinets get their type's defaults (bkcommon/disinfection.py).
        ALTER TABLE disinfection_cabinets
            ADD COLUMN IF NOT EXISTS has_plug boolean NOT NULL DEFAULT false,
            ADD COLUMN IF NOT EXISTS plug_zigbee_name text,
            ADD COLUMN IF NOT EXISTS on_w double precision NOT NULL DEFAULT 300,
            ADD COLUMN IF NOT EXISTS on_a double precision NOT NULL DEFAULT 1.364;
        UPDATE disinfection_cabinets SET on_w = 200, on_a = 0.909 WHERE cabinet_type = 'infrared';
        UPDATE disinfection_cabinets SET on_w = 500, on_a = 2.273 WHERE cabinet_type = 'dishwasher';
        CREATE UNIQUE INDEX IF NOT EXISTS disinfection_cabinets_plug_idx
            ON disinfection_cabinets (plug_zigbee_name) WHERE plug_zigbee_name IS NOT NULL;

        -- A cycle timed by a plug may have no temperature (the probe is missing): peak_c is
        -- then NULL. judged_by says what the verdict rests on; on_s and peak_w are the plug's.
        ALTER TABLE disinfection_cycles ALTER COLUMN peak_c DROP NOT NULL;
        ALTER TABLE disinfection_cycles
            ADD COLUMN IF NOT EXISTS judged_by text NOT NULL DEFAULT 'temperature'
                CHECK (judged_by IN ('temperature', 'power', 'power_temperature')),
            ADD COLUMN IF NOT EXISTS on_s double precision CHECK (on_s >= 0),
            ADD COLUMN IF NOT EXISTS peak_w double precision;
    END IF;
END
$$;

SELECT create_hypertable('cabinet_power', 'ts', chunk_time_interval => INTERVAL '7 days',
    if_not_exists => true, migrate_data => true);

-- Like sensor_readings (0002): compress week-old chunks by plug, keep 400 days. Compression
-- settings cannot be changed once chunks are compressed: set them only once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'cabinet_power'
                     AND hypertable_schema = current_schema()
                     AND compression_enabled) THEN
        ALTER TABLE cabinet_power SET (timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_id', timescaledb.compress_orderby = 'ts');
    END IF;
END
$$;
SELECT add_compression_policy('cabinet_power', INTERVAL '7 days', if_not_exists => true);
SELECT add_retention_policy('cabinet_power', INTERVAL '400 days', if_not_exists => true);
