-- @path: timescale
-- Rollups that include recent and late readings, and chunks created before writers need
-- them. Applied statement by statement; every statement is re-runnable.

-- Real-time aggregation, also for databases whose aggregates were created
-- materialized-only by the first form of 0002.
ALTER MATERIALIZED VIEW readings_5m SET (timescaledb.materialized_only = false);
ALTER MATERIALIZED VIEW readings_1h SET (timescaledb.materialized_only = false);

-- Refresh policies. A refresh re-materializes only the buckets that changed inside its
-- window (TimescaleDB logs every write below the materialization watermark), so a long
-- window costs nothing while no late reading arrives. The window reaches back 390 days:
-- a reading up to 390 days late is in the 5-minute rollup after the next 5-minute run
-- and in the 1-hour rollup after the next 15-minute run; readings newer than the
-- watermark are in both at once (real-time). The window stays inside the 400-day raw
-- retention: refreshing over dropped raw chunks would empty the aggregates there, and
-- they are meant to outlive the raw readings. The end offsets leave the current,
-- still-filling bucket to the real-time part. Replaced (not kept) so that databases with
-- the first policies (3 and 7 days) get these.
--
-- Where the policy refreshes in batches (newer 2.x: max_batches_per_execution, default
-- 10 batches a run, newest first), the number of batches a run may take is unlimited:
-- batches are made only where something was invalidated, and a cap would leave the
-- oldest late readings behind a stream of newer ones. Older versions refresh the window
-- in one pass. Removed and added in one block, so an aggregate is never left without one.
DO $$
DECLARE
    batched boolean := EXISTS (
        SELECT 1 FROM pg_proc
        WHERE proname = 'add_continuous_aggregate_policy'
          AND 'max_batches_per_execution' = ANY (proargnames));
    p record;
BEGIN
    FOR p IN SELECT * FROM (VALUES
            ('readings_5m'::regclass, INTERVAL '5 minutes', INTERVAL '5 minutes'),
            ('readings_1h'::regclass, INTERVAL '1 hour', INTERVAL '15 minutes'))
            AS t (agg, end_offset, every) LOOP
        PERFORM remove_continuous_aggregate_policy(p.agg, true);
        IF batched THEN
            PERFORM add_continuous_aggregate_policy(p.agg,
                start_offset => INTERVAL '390 days', end_offset => p.end_offset,
                schedule_interval => p.every, if_not_exists => true,
                max_batches_per_execution => 0);
        ELSE
            PERFORM add_continuous_aggregate_policy(p.agg,
                start_offset => INTERVAL '390 days', end_offset => p.end_offset,
                schedule_interval => p.every, if_not_exists => true);
        END IF;
    END LOOP;
END
$$;

-- Chunks ahead of time. The transaction that creates a chunk holds a lock that makes
-- every other transaction needing the same new chunk wait until it commits; an ingest
-- batch creating the day's chunk at midnight would hold it for its whole transaction
-- (COPY, rollups, rules) and stall the other workers. This job creates the chunks of the
-- coming days in its own short transaction, by inserting and deleting a row that no
-- sensor can have (an empty sensor id), the one way that works on every 2.x. Rows in
-- the future are above the aggregates' watermark, so nothing is invalidated.
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
            RAISE WARNING 'bk_precreate_reading_chunks: no chunk for %: %', t, SQLERRM;
        END;
    END LOOP;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs
                   WHERE proc_name = 'bk_precreate_reading_chunks') THEN
        PERFORM add_job('bk_precreate_reading_chunks', INTERVAL '1 hour',
                        config => '{"ahead": "2 days"}');
    END IF;
END
$$;

CALL bk_precreate_reading_chunks(0, '{"ahead": "2 days"}');
