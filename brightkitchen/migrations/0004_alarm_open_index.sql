-- Open alarms of a sensor by rule: the offline sweep's "already raised?" check and the
-- clear-on-reading check in the rule engine touch only open rows.
CREATE INDEX alarms_open_sensor_idx ON alarms (sensor_id, rule) WHERE status <> 'cleared';
