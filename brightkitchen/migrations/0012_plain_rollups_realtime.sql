-- @path: plain
-- Plain PostgreSQL counterpart of 0012_timescale_rollups_realtime: nothing to change.
-- The rollup tables are updated by the ingest writer in the transaction that stores the
-- readings, so they are complete at once, late readings included, and a plain table has
-- no chunks whose creation could make writers wait. Kept so that both paths report the
-- same schema version.
SELECT 1;
