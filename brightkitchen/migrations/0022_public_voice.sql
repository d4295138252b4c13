-- The public's voice (百姓点检, 阳光公示): what each region publishes on its canteens' public
-- pages, and complaints from the public with their tracking code, triage, ticket and rating.

-- Per region; a site uses the nearest row up its region tree. No row anywhere: nothing
-- is published (the page says so).
CREATE TABLE public_settings (
    region_id        text PRIMARY KEY REFERENCES regions(id) ON DELETE CASCADE,
    enabled          boolean NOT NULL DEFAULT false,
    show_inspection  boolean NOT NULL DEFAULT true,
    show_rectification boolean NOT NULL DEFAULT true,
    show_cold_chain  boolean NOT NULL DEFAULT true,
    show_rapid_tests boolean NOT NULL DEFAULT true,
    accept_complaints boolean NOT NULL DEFAULT true,
    updated_by       text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE complaints (
    id              bigserial PRIMARY KEY,
    tracking_code   text NOT NULL UNIQUE,
    site_id         text NOT NULL REFERENCES sites(id),
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    contact         text NOT NULL DEFAULT '',   -- optional; shown to the regulator only
    client_hash     text NOT NULL,              -- sha256 of the client address: rate limit only
    status          text NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'confirmed', 'dismissed')),
    finding_id      bigint REFERENCES findings(id),
    ticket_id       bigint REFERENCES tickets(id),
    reply           text NOT NULL DEFAULT '',   -- the regulator's answer, shown to the public
    decided_by      text,
    decided_at      timestamptz,
    rating          text CHECK (rating IN ('satisfied', 'unsatisfied')),
    rating_comment  text NOT NULL DEFAULT '',
    rated_at        timestamptz,
    created_at      timestamptz NOT NULL,
    CHECK (status <> 'dismissed' OR length(reply) > 0)
);
CREATE INDEX complaints_site_idx ON complaints (site_id, created_at DESC);
CREATE INDEX complaints_client_idx ON complaints (client_hash, created_at DESC);
CREATE INDEX complaints_status_idx ON complaints (status, id);

CREATE TABLE complaint_photos (
    complaint_id  bigint NOT NULL REFERENCES complaints(id),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type    text NOT NULL,
    size_bytes    integer NOT NULL,
    PRIMARY KEY (complaint_id, sha256)
);

CREATE TRIGGER complaints_no_delete BEFORE DELETE ON complaints
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
