-- Inspections (checklists, per-item results, photos, the signed rectification notice),
-- food-safety liability insurance (policies, incidents / claims), the risk-score history,
-- and the indexes the ticket list needs at 100k tickets (docs/benchmarks.md, API section).

CREATE TABLE checklist_templates (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('routine','special','joint','random','public_spot')),
    items       jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array'),  -- [{code, text_zh, text_en, tier, rule}]
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inspections (
    id                bigserial PRIMARY KEY,
    site_id           text NOT NULL REFERENCES sites(id),
    kind              text NOT NULL CHECK (kind IN ('routine','special','joint','random','public_spot')),
    template_id       bigint REFERENCES checklist_templates(id),
    inspectors        text[] NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    follow_up_of      bigint REFERENCES inspections(id),
    notice_no         text UNIQUE,                 -- 整改通知书 number, set when signed
    notice_signed_by  text,
    notice_signed_at  timestamptz,
    notes             text NOT NULL DEFAULT '',
    created_by        text NOT NULL DEFAULT '',
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX inspections_site_idx ON inspections (site_id, started_at DESC);
CREATE INDEX inspections_follow_up_idx ON inspections (follow_up_of) WHERE follow_up_of IS NOT NULL;

-- One result per checklist item. The ticket a failed item opened is found through the
-- finding key ``inspection:<inspection id>:<code>`` (findings.ticket_id), like alarms.
CREATE TABLE inspection_items (
    inspection_id  bigint NOT NULL REFERENCES inspections(id),
    code           text NOT NULL,
    result         text NOT NULL CHECK (result IN ('pass','fail','na')),
    note           text NOT NULL DEFAULT '',
    tier           smallint NOT NULL DEFAULT 2 CHECK (tier BETWEEN 1 AND 3),
    rule           text NOT NULL,
    text_zh        text NOT NULL DEFAULT '',
    text_en        text NOT NULL DEFAULT '',
    PRIMARY KEY (inspection_id, code)
);

-- Photos by content hash; the bytes live in the evidence store (evidence_blobs).
CREATE TABLE inspection_photos (
    inspection_id  bigint NOT NULL REFERENCES inspections(id),
    item_code      text NOT NULL DEFAULT '',
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type     text NOT NULL DEFAULT 'image/jpeg',
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (inspection_id, item_code, sha256)
);

-- 食品安全责任险: one row per policy; the period is in whole days, China Standard Time,
-- both ends included.
CREATE TABLE policies (
    id           bigserial PRIMARY KEY,
    site_id      text NOT NULL REFERENCES sites(id),
    insurer      text NOT NULL,
    policy_no    text NOT NULL UNIQUE,
    cover_cny    numeric(14, 2) NOT NULL CHECK (cover_cny > 0),
    premium_cny  numeric(12, 2) NOT NULL CHECK (premium_cny >= 0),
    starts_on    date NOT NULL,
    ends_on      date NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX policies_site_idx ON policies (site_id, starts_on DESC);
CREATE INDEX policies_insurer_idx ON policies (insurer);

-- The policy of a site in force at a time (the latest-starting one when periods overlap).
CREATE FUNCTION bk_policy_in_force(p_site text, p_at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT p.id FROM policies p
    WHERE p.site_id = p_site
      AND (p_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN p.starts_on AND p.ends_on
    ORDER BY p.starts_on DESC, p.id DESC
    LIMIT 1
$$;

-- Each ticket's policy: the one in force when the ticket was opened.
CREATE VIEW ticket_policies AS
    SELECT t.id AS ticket_id, bk_policy_in_force(t.site_id, t.opened_at) AS policy_id
    FROM tickets t;

CREATE TABLE incidents (
    id            bigserial PRIMARY KEY,
    site_id       text NOT NULL REFERENCES sites(id),
    occurred_at   timestamptz NOT NULL,
    kind          text NOT NULL,                 -- e.g. illness, complaint, foreign_object
    description   text NOT NULL DEFAULT '',
    policy_id     bigint REFERENCES policies(id), -- in force at occurred_at, set on insert
    claim_status  text NOT NULL DEFAULT 'none'
                  CHECK (claim_status IN ('none','filed','accepted','rejected','paid')),
    amount_cny    numeric(14, 2) CHECK (amount_cny IS NULL OR amount_cny >= 0),
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_site_idx ON incidents (site_id, occurred_at DESC);

-- Risk score history (api/services/risk.py, docs/risk-score.md).
CREATE TABLE risk_scores (
    site_id      text NOT NULL REFERENCES sites(id),
    computed_at  timestamptz NOT NULL,
    score        real NOT NULL CHECK (score BETWEEN 0 AND 100),
    components   jsonb NOT NULL,
    PRIMARY KEY (site_id, computed_at)
);

-- Ticket list at scale: filters by status / rule / tier with newest-first pages.
CREATE INDEX tickets_status_opened_idx ON tickets (status, opened_at DESC, id DESC);
CREATE INDEX tickets_rule_opened_idx ON tickets (rule, opened_at DESC, id DESC);
CREATE INDEX tickets_site_opened_idx ON tickets (site_id, opened_at DESC, id DESC);
-- Risk components read alarms of a site by time.
CREATE INDEX alarms_site_started_idx ON alarms (site_id, started_at);
