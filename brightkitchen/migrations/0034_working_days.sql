-- Deadlines in working days (工作日): licence and inspection practice allows "10 working days"
-- to fix a problem. Weekends and public holidays do not count; the adjusted working weekends
-- (调休) of the State Council's yearly notice do. A deadline override gives hours or working
-- days, never both. calendar_days holds the exceptions to "Monday to Friday": a holiday on a
-- weekday (working = false) and a working Saturday or Sunday (working = true), for the region's
-- calendar (BK_TIME_ZONE). Plain PostgreSQL; the same on TimescaleDB.
ALTER TABLE deadline_rules ALTER COLUMN hours DROP NOT NULL;
ALTER TABLE deadline_rules ADD COLUMN working_days smallint
    CHECK (working_days BETWEEN 1 AND 60);
ALTER TABLE deadline_rules ADD CONSTRAINT deadline_rules_one_unit
    CHECK ((hours IS NULL) <> (working_days IS NULL));

CREATE TABLE calendar_days (
    day      date PRIMARY KEY,
    working  boolean NOT NULL,
    note     text NOT NULL DEFAULT '' CHECK (length(note) <= 200)
);
