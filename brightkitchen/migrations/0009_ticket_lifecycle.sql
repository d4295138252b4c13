-- Rectification closed loop: ticket life columns, evidence, escalation steps done exactly once,
-- deadline overrides per region and rule, capture triage (review queue), one-time ack links.

-- 'closed' is the verified state; 'rejected' sends the ticket back to the officer.
ALTER TABLE tickets
    ADD COLUMN rectified_at    timestamptz,
    ADD COLUMN rectified_by    text,
    ADD COLUMN verified_by     text,
    ADD COLUMN rejected_at     timestamptz,
    ADD COLUMN reopened_count  integer NOT NULL DEFAULT 0,
    ADD COLUMN reopened_at     timestamptz,
    ADD COLUMN card            text CHECK (card IN ('yellow', 'red')),
    ADD COLUMN created_by      text;

-- Evidence attached to a ticket (photos of the fix, the edge snapshot). Files live in the
-- evidence store by content hash; ``filename`` is sanitised display metadata, never a path.
CREATE TABLE ticket_evidence (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets(id),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    kind        text NOT NULL CHECK (kind IN ('photo', 'snapshot')),
    media_type  text NOT NULL,
    size_bytes  integer NOT NULL,
    filename    text NOT NULL DEFAULT '',
    uploaded_by text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    event_id    bigint REFERENCES ticket_events(id) DEFERRABLE INITIALLY DEFERRED,  -- its rectification
    UNIQUE (ticket_id, sha256)
);
CREATE INDEX ticket_evidence_sha_idx ON ticket_evidence (sha256);
CREATE TRIGGER ticket_evidence_no_delete BEFORE DELETE ON ticket_evidence
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE INDEX violations_evidence_idx ON violations (evidence_sha256)
    WHERE evidence_sha256 IS NOT NULL;

-- One row per escalation step and ticket cycle (a reopen starts a new cycle). The unique key
-- decides which worker performs a step: INSERT ... ON CONFLICT DO NOTHING RETURNING.
CREATE TABLE escalation_steps (
    ticket_id   bigint NOT NULL REFERENCES tickets(id),
    cycle       integer NOT NULL DEFAULT 0,
    step        text NOT NULL,
    due_at      timestamptz NOT NULL,
    done_at     timestamptz NOT NULL,
    notified    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_id, cycle, step)
);

-- Deadline overrides (hours). Most specific wins: region + rule, rule, region + tier, tier;
-- a region's ancestors count for it (nearest first). No row: the ApiSettings tier default.
CREATE TABLE deadline_rules (
    id          bigserial PRIMARY KEY,
    region_id   text REFERENCES regions(id) ON DELETE CASCADE,
    rule        text,
    tier        smallint CHECK (tier BETWEEN 1 AND 3),
    hours       real NOT NULL CHECK (hours > 0 AND hours <= 2160),
    CHECK (rule IS NOT NULL OR tier IS NOT NULL)
);
CREATE UNIQUE INDEX deadline_rules_key_idx
    ON deadline_rules (coalesce(region_id, ''), coalesce(rule, ''), coalesce(tier, 0));

-- Capture triage: how vision violations of a rule / camera are handled. Most specific wins
-- (camera + rule, camera, rule); no row: ApiSettings.triage_default.
CREATE TABLE triage_modes (
    id          bigserial PRIMARY KEY,
    camera_id   text,
    rule        text,
    mode        text NOT NULL CHECK (mode IN ('direct', 'review'))
);
CREATE UNIQUE INDEX triage_modes_key_idx
    ON triage_modes (coalesce(camera_id, ''), coalesce(rule, ''));

-- The review queue: a capture waits here until a person confirms (ticket opens) or
-- dismisses it (kept as a false positive with the reason). Never deleted.
CREATE TABLE capture_reviews (
    id             bigserial PRIMARY KEY,
    finding_id     bigint NOT NULL UNIQUE REFERENCES findings(id),
    event_id       text NOT NULL,
    site_id        text NOT NULL REFERENCES sites(id),
    camera_id      text NOT NULL,
    rule           text NOT NULL,
    model_version  text NOT NULL DEFAULT '',
    evidence_sha256 text,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'confirmed', 'dismissed')),
    reason         text,
    reviewed_by    text,
    reviewed_at    timestamptz,
    ticket_id      bigint REFERENCES tickets(id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'dismissed' OR length(coalesce(reason, '')) > 0)
);
CREATE INDEX capture_reviews_status_idx ON capture_reviews (status, id);
CREATE INDEX capture_reviews_site_idx ON capture_reviews (site_id, created_at);
CREATE TRIGGER capture_reviews_no_delete BEFORE DELETE ON capture_reviews
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();

-- Used acknowledge links (one-time): the link's signature, who used it and when.
CREATE TABLE ack_link_uses (
    signature   text PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets(id),
    person_id   text NOT NULL,
    used_at     timestamptz NOT NULL
);

-- Nothing about a ticket is ever deleted.
CREATE TRIGGER tickets_no_delete BEFORE DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
