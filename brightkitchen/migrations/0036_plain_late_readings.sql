-- @path: plain
-- Plain PostgreSQL counterpart of 0036_timescale_late_readings: nothing to change. Plain
-- tables have no compressed chunks to decompress, no refresh policy to batch and no chunks
-- whose creation could make writers wait. Kept so that both paths report the same schema
-- version.
SELECT 1;
