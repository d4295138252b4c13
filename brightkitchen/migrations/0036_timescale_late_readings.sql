-- @path: timescale
-- Late and replayed readings on TimescaleDB. Applied statement by statement; every statement
-- is re-runnable.

-- (1) A reading older than the compression horizon (7 days) lands in a compressed chunk, and
-- its primary key is checked by decompressing the batches that may hold it (up to 1,000 rows
-- per sensor each). TimescaleDB caps the rows one statement may decompress
-- (timescaledb.max_tuples_decompressed_per_dml_transaction, 100,000 by default, SQLSTATE
-- 53400 past it): a gateway replaying a stored backlog of a hundred sensors, or a day of a
-- dozen smart plugs, crossed it and the writer retried the batch for ever. 0 = no cap, for
-- this database's sessions (the writers open new ones).
-- Setting it needs the database's owner; without that right it is left (and said): the
-- writer then splits a batch that crosses the cap until the parts pass.
DO $$
BEGIN
    EXECUTE format(
        'ALTER DATABASE %I SET timescaledb.max_tuples_decompressed_per_dml_transaction = 0',
        current_database());
EXCEPTION WHEN insufficient_privilege OR undefined_object OR invalid_parameter_value THEN
    RAISE WARNING 'decompression cap left as it is: %', SQLERRM;
END
$$;

-- (2) Refresh in batches of a day (5-minute aggregate) and of a day (1-hour aggregate) where
-- the policy refreshes in batches: the refresh window is cut into batches over the whole
-- range between the oldest and newest invalidated bucket, so one reading 300 days late with
-- a few minutes-late ones made tens of thousands of one-bucket batches in a run, each its own
-- transaction, and the 5-minute rollup fell behind meanwhile. Versions without
-- buckets_per_batch keep the policies of 0012.
DO $$
DECLARE
    batched boolean := EXISTS (
        SELECT 1 FROM pg_proc
        WHERE proname = 'add_continuous_aggregate_policy'
          AND 'buckets_per_batch' = ANY (proargnames)
          AND 'max_batches_per_execution' = ANY (proargnames));
    p record;
BEGIN
    IF NOT batched THEN
        RETURN;
    END IF;
    FOR p IN SELECT * FROM (VALUES
            ('readings_5m'::regclass, INTERVAL '5 minutes', INTERVAL '5 minutes', 288),
            ('readings_1h'::regclass, INTERVAL '1 hour', INTERVAL '15 minutes', 24))
            AS t (agg, end_offset, every, per_batch) LOOP
        PERFORM remove_continuous_aggregate_policy(p.agg, true);
        PERFORM add_continuous_aggregate_policy(p.agg,
            start_offset => INTERVAL '390 days', end_offset => p.end_offset,
            schedule_interval => p.every, if_not_exists => true,
            buckets_per_batch => p.per_batch, max_batches_per_execution => 0);
    END LOOP;
END
$$;

-- (3) Chunks ahead of time for the smart plugs' samples too: cabinet_power's weekly chunk was
-- created by whichever ingest batch wrote to it first, holding the chunk lock for its whole
-- transaction while the other workers with plug samples waited (0012 does this for readings).
CREATE OR REPLACE PROCEDURE bk_precreate_reading_chunks(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    ahead interval := COALESCE((config ->> 'ahead')::interval, INTERVAL '2 days');
    t timestamptz;
BEGIN
    FOR t IN SELECT generate_series(now(), now() + ahead, INTERVAL '12 hours') LOOP
        BEGIN
            INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES ('', t, 0)
                ON CONFLICT DO NOTHING;
            DELETE FROM sensor_readings WHERE sensor_id = '' AND ts = t;
        EXCEPTION WHEN others THEN
            RAISE WARNING 'bk_precreate_reading_chunks: no reading chunk for %: %', t, SQLERRM;
        END;
        BEGIN
            INSERT INTO cabinet_power (sensor_id, ts, power_w) VALUES ('', t, 0)
                ON CONFLICT DO NOTHING;
            DELETE FROM cabinet_power WHERE sensor_id = '' AND ts = t;
        EXCEPTION WHEN others THEN
            RAISE WARNING 'bk_precreate_reading_chunks: no plug chunk for %: %', t, SQLERRM;
        END;
    END LOOP;
END
$$;

CALL bk_precreate_reading_chunks(0, '{"ahead": "2 days"}');
