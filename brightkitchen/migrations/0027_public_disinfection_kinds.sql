-- The public page's disinfection compliance, and finding kinds of their own for rapid tests
-- and public complaints. Plain statements: the same on PostgreSQL and under TimescaleDB.

-- 1. Each region chooses whether its canteens' public pages show tableware disinfection
--    over 30 days (api.services.public_page). Until now the console's cold-chain switch was
--    worded "cold chain and disinfection", so a region keeps what it chose there.
ALTER TABLE public_settings ADD COLUMN show_disinfection boolean NOT NULL DEFAULT true;
UPDATE public_settings SET show_disinfection = show_cold_chain;

-- 2. A failed rapid test (and the flags it raises on the supplier's other deliveries) and a
--    confirmed public complaint were findings of kind 'manual', and their tickets read
--    "opened by hand". They get their own kind and ticket source: 'rapid_test', 'complaint'.
ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check CHECK (kind IN (
    'alarm_raised', 'alarm_cleared', 'violation', 'inspection', 'manual',
    'rapid_test', 'complaint'));
ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check CHECK (source IN (
    'alarm', 'violation', 'inspection', 'manual', 'rapid_test', 'complaint'));

-- Existing rows move by the key the workflow gave them (a ticket opened by hand keeps
-- 'manual' whatever rule it names): rapid_test:<id>, supplier_flag:<id>, complaint:<id>.
UPDATE findings SET kind = 'rapid_test'
 WHERE kind = 'manual' AND finding_key ~ '^(rapid_test|supplier_flag):[0-9]+$';
UPDATE findings SET kind = 'complaint'
 WHERE kind = 'manual' AND finding_key ~ '^complaint:[0-9]+$';
UPDATE tickets SET source = 'rapid_test'
 WHERE source = 'manual' AND details->>'finding_key' ~ '^(rapid_test|supplier_flag):[0-9]+$';
UPDATE tickets SET source = 'complaint'
 WHERE source = 'manual' AND details->>'finding_key' ~ '^complaint:[0-9]+$';
