-- Cameras offline as alarms (视频离线): when an edge box stops reporting (power cut, network
-- cut, crash) or reports a camera without frames, the ingest sweep raises a camera_offline
-- alarm per camera and clears it when the box reports the camera again. The alarm's span is
-- the camera downtime the risk score and the insurer's risk record count.
-- status_received_at is when ingest last stored a status of the box (arrival, not the box's
-- clock): silence is judged on it, as sensors' is on sensors.last_received_at. Boxes that
-- reported before this migration start from their last status time.
-- Plain PostgreSQL; the same on TimescaleDB.
ALTER TABLE edge_boxes ADD COLUMN IF NOT EXISTS status_received_at timestamptz;
UPDATE edge_boxes SET status_received_at = status_at
    WHERE status_received_at IS NULL AND status_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS alarms_camera_open_idx ON alarms (camera_id)
    WHERE camera_id IS NOT NULL AND status <> 'cleared';
