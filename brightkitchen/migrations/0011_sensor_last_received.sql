-- When the newest reading of a sensor ARRIVED (the ingest worker's receive time), next to
-- last_reading_at (the newest reading's own timestamp). The sensor-offline rule judges
-- arrival: a sensor whose clock lags still reports, and a gateway replaying an old backlog
-- has just been heard from. Moved only forward by the ingest writer.
ALTER TABLE sensors ADD COLUMN last_received_at timestamptz;

-- Backfill: the receive time of the newest stored reading (one primary-key lookup per
-- sensor), else the newest reading time itself.
UPDATE sensors AS s
SET last_received_at = COALESCE(
        (SELECT r.received_at FROM sensor_readings AS r
         WHERE r.sensor_id = s.id AND r.ts = s.last_reading_at),
        s.last_reading_at)
WHERE s.last_reading_at IS NOT NULL;
