-- Credentials scoped to their job.
--
-- 1. Broker accounts: one MQTT username per edge box ("edge.<box>"), per site's sensor
--    gateway ("gw.<site>") and per backend service ("svc.<name>", e.g. svc.ingest). Only
--    the Mosquitto PBKDF2-SHA512 hash ("$7$...") is stored; the password is shown once
--    when issued. `brightkitchen registry mqtt-auth write` renders Mosquitto's
--    password_file and acl_file from these rows and the registry (sites, edge_boxes,
--    sensors), so a device can publish only its own site's topics.
CREATE TABLE mqtt_accounts (
    username      text PRIMARY KEY CHECK (username ~ '^(edge|gw|svc)\.[A-Za-z0-9_.\-]{1,64}$'),
    kind          text NOT NULL CHECK (kind IN ('edge', 'gateway', 'service')),
    subject       text NOT NULL,          -- box id, site id or service name
    password_hash text NOT NULL CHECK (password_hash LIKE '$7$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- 2. Sign-in rate limit per client address: failed attempts are counted from the audit
--    log over a short window on every sign-in, so that count must be an index lookup.
CREATE INDEX audit_log_login_failed_client_idx
    ON audit_log ((data->>'client'), at)
    WHERE action = 'auth.login_failed';
