-- An incident's sensor trace, kept for its claim (api/services/incident_traces.py). On
-- TimescaleDB raw readings are dropped after 400 days; a claim may be argued longer, and
-- the evidence chain (snapshot, sensor trace, ticket history) must outlive it. The readings
-- of the ±24 h window are copied here once the window has closed (again while late readings
-- may still arrive), never deleted. Plain PostgreSQL; the same on TimescaleDB (an ordinary
-- table: no retention applies to it).
CREATE TABLE IF NOT EXISTS incident_sensor_readings (
    incident_id   bigint NOT NULL REFERENCES incidents(id),
    sensor_id     text NOT NULL,
    ts            timestamptz NOT NULL,
    temp_c        double precision NOT NULL,
    humidity_pct  real,
    door_open     boolean,
    battery_pct   real,
    PRIMARY KEY (incident_id, sensor_id, ts)
);
DROP TRIGGER IF EXISTS incident_sensor_readings_no_delete ON incident_sensor_readings;
CREATE TRIGGER incident_sensor_readings_no_delete BEFORE DELETE ON incident_sensor_readings
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
-- when the copy was final (the window closed and the late-reading grace passed); NULL: not yet
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS trace_kept_at timestamptz;
CREATE INDEX IF NOT EXISTS incidents_trace_due_idx ON incidents (occurred_at)
    WHERE trace_kept_at IS NULL;
