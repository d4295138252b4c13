-- When a disinfection cycle's hold first reached the cabinet's minimum (NULL: never). A meal's
-- disinfection window is judged on it: a valid cycle counts when it was held long enough by
-- the window's end, whenever the cabinet cooled down afterwards (a closed steam cabinet may
-- stay above its start temperature long after the window; judged on its cool-down, the same
-- disinfection came out failed or done by how slowly it cooled). Cycles recorded before keep
-- the rule they were judged by: valid at their end. Plain PostgreSQL; the same on TimescaleDB.
ALTER TABLE disinfection_cycles ADD COLUMN IF NOT EXISTS valid_at timestamptz;
UPDATE disinfection_cycles SET valid_at = ended_at WHERE verdict = 'valid' AND valid_at IS NULL;
