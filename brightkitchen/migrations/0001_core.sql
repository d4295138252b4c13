-- brightkitchen core schema: registry, readings, rules, alarms, findings, tickets, notifications.
-- Plain PostgreSQL 15. TimescaleDB-only statements live in timescale_*.sql, run only where
-- the extension exists; plain_*.sql runs otherwise. Both give the same names to queries.

CREATE TABLE regions (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    parent_id   text REFERENCES regions(id)
);

CREATE TABLE sites (
    id          text PRIMARY KEY,
    region_id   text NOT NULL REFERENCES regions(id),
    name        text NOT NULL,
    address     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE people (
    id          text PRIMARY KEY,
    name        text NOT NULL
);

CREATE TABLE person_channels (
    id          bigserial PRIMARY KEY,
    person_id   text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('webhook','email','wecom','dingtalk','sms')),
    address     text NOT NULL,
    secret      text,
    UNIQUE (person_id, kind, address)
);

-- Who is responsible for which site (包保): officer, director, regulator, insurer.
CREATE TABLE site_people (
    site_id     text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    person_id   text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('officer','director','regulator','insurer')),
    PRIMARY KEY (site_id, person_id, role)
);

CREATE TABLE sensors (
    id              text PRIMARY KEY,
    site_id         text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name            text NOT NULL DEFAULT '',
    profile         text NOT NULL,
    zigbee_name     text UNIQUE,
    params          jsonb NOT NULL,          -- effective RuleParams (profile defaults + overrides)
    active          boolean NOT NULL DEFAULT true,
    last_reading_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE edge_boxes (
    id          text PRIMARY KEY,
    site_id     text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    online      boolean,
    status      jsonb,
    status_at   timestamptz
);

CREATE TABLE cameras (
    id          text PRIMARY KEY,
    site_id     text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    box_id      text NOT NULL REFERENCES edge_boxes(id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    zones       jsonb NOT NULL DEFAULT '[]'
);

-- Time series. Primary key (sensor_id, ts): a redelivered reading is a no-op.
CREATE TABLE sensor_readings (
    sensor_id     text NOT NULL,
    ts            timestamptz NOT NULL,
    temp_c        double precision NOT NULL,
    humidity_pct  real,
    door_open     boolean,
    battery_pct   real,
    seq           bigint,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);

-- Bad input, kept with its reason and raw bytes (never silently dropped).
CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    reason       text NOT NULL,
    raw          bytea NOT NULL,
    worker       text NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);

-- Persisted rule state per sensor and rule, written in the same transaction as the
-- readings that changed it, so a restart resumes mid-excursion without loss or repeat.
CREATE TABLE rule_state (
    sensor_id   text NOT NULL,
    rule        text NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, rule)
);

CREATE TABLE alarms (
    id               bigserial PRIMARY KEY,
    alarm_key        text NOT NULL UNIQUE,        -- sensor:rule:start time; idempotent raise
    site_id          text NOT NULL REFERENCES sites(id),
    sensor_id        text,
    camera_id        text,
    rule             text NOT NULL,               -- temp_high, temp_low, sensor_offline, low_battery, camera_offline
    tier             smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active','acknowledged','cleared')),
    started_at       timestamptz NOT NULL,        -- when the condition began (reading time)
    raised_at        timestamptz NOT NULL,        -- when the delay elapsed
    cleared_at       timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    peak_temp_c      double precision,
    details          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarms_site_status_idx ON alarms (site_id, status);

-- Vision violations from edge boxes; event_id makes redelivery a no-op.
CREATE TABLE violations (
    event_id       text PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    box_id         text NOT NULL,
    camera_id      text NOT NULL,
    zone           text,
    rule           text NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    confidence     real NOT NULL,
    track_id       integer,
    model_version  text NOT NULL DEFAULT '',
    evidence_sha256 text,
    details        jsonb NOT NULL DEFAULT '{}',
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX violations_site_time_idx ON violations (site_id, started_at DESC);

-- Evidence blobs by content hash (the edge snapshot); a file store may replace this later.
CREATE TABLE evidence_blobs (
    sha256      text PRIMARY KEY,
    media_type  text NOT NULL,
    bytes       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Findings outbox: ingest writes, the ticket engine claims with FOR UPDATE SKIP LOCKED.
CREATE TABLE findings (
    id            bigserial PRIMARY KEY,
    finding_key   text NOT NULL UNIQUE,          -- idempotency key, e.g. alarm:<id>:raised
    kind          text NOT NULL CHECK (kind IN ('alarm_raised','alarm_cleared','violation','inspection','manual')),
    site_id       text NOT NULL REFERENCES sites(id),
    subject       text NOT NULL,                 -- sensor id / camera id the finding is about
    rule          text NOT NULL,
    tier          smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    ticket_id     bigint,
    error         text
);
CREATE INDEX findings_unprocessed_idx ON findings (id) WHERE processed_at IS NULL;

-- Rectification tickets (整改单). Grows in the ticket-lifecycle work; one open ticket
-- per site, rule and subject, repeats become occurrences.
CREATE TABLE tickets (
    id                 bigserial PRIMARY KEY,
    ticket_no          text NOT NULL UNIQUE,
    site_id            text NOT NULL REFERENCES sites(id),
    source             text NOT NULL CHECK (source IN ('alarm','violation','inspection','manual')),
    rule               text NOT NULL,
    subject            text NOT NULL,
    tier               smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
    status             text NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open','acknowledged','rectified','closed','rejected')),
    title              text NOT NULL,
    opened_at          timestamptz NOT NULL,
    due_at             timestamptz NOT NULL,
    acknowledged_at    timestamptz,
    closed_at          timestamptz,
    escalation_level   smallint NOT NULL DEFAULT 0,
    occurrences        integer NOT NULL DEFAULT 1,
    last_occurrence_at timestamptz NOT NULL,
    close_proposed_at  timestamptz,
    details            jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX tickets_one_open_idx ON tickets (site_id, rule, subject) WHERE status <> 'closed';
CREATE INDEX tickets_site_status_idx ON tickets (site_id, status, opened_at DESC);
CREATE INDEX tickets_due_idx ON tickets (due_at) WHERE status <> 'closed';

ALTER TABLE findings ADD CONSTRAINT findings_ticket_fk FOREIGN KEY (ticket_id) REFERENCES tickets(id);

-- Append-only timeline of every ticket change.
CREATE TABLE ticket_events (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets(id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    kind        text NOT NULL,
    note        text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, id);

CREATE FUNCTION bk_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ticket_events_append_only BEFORE UPDATE OR DELETE ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();

-- Notifications outbox: one row per person, channel and message; retried with backoff.
CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    dedupe_key       text NOT NULL UNIQUE,
    ticket_id        bigint REFERENCES tickets(id),
    person_id        text REFERENCES people(id),
    channel          text NOT NULL,
    address          text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','dead')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 8,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';

-- Delivery log: every attempt, successful or not.
CREATE TABLE notification_attempts (
    id               bigserial PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications(id),
    at               timestamptz NOT NULL DEFAULT now(),
    ok               boolean NOT NULL,
    detail           text NOT NULL DEFAULT '',
    duration_ms      real NOT NULL DEFAULT 0
);

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL DEFAULT '',
    data     jsonb NOT NULL DEFAULT '{}'
);
