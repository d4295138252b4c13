-- One-time enrolment codes: an installer types the code on a new edge box, the box trades
-- it once for its device credentials (API token and broker account). Only the sha256 of a
-- code is stored; a code is bound to one box, expires, and is spent by the first use.
CREATE TABLE enrolment_codes (
    id          bigserial PRIMARY KEY,
    code_hash   text NOT NULL UNIQUE,
    box_id      text NOT NULL REFERENCES edge_boxes(id) ON DELETE CASCADE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_from   text,                     -- client address that spent it (audit)
    CHECK (expires_at > created_at)
);
CREATE INDEX enrolment_codes_box ON enrolment_codes (box_id);
