-- The claim of an incident moves on (filed, accepted or rejected, paid) and each step is kept:
-- who recorded it, when, the amount then and a note (the insurer's reference, the reason of a
-- refusal), so that a claim's history travels with its evidence bundle. The incident row keeps
-- the latest step for the lists. Plain PostgreSQL; the same on TimescaleDB.
ALTER TABLE incidents ADD COLUMN claim_updated_at timestamptz;
ALTER TABLE incidents ADD COLUMN claim_updated_by text;

CREATE TABLE incident_claim_events (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    from_status  text NOT NULL,
    to_status    text NOT NULL
                 CHECK (to_status IN ('none','filed','accepted','rejected','paid')),
    amount_cny   numeric(14, 2) CHECK (amount_cny IS NULL OR amount_cny >= 0),
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX incident_claim_events_incident_idx ON incident_claim_events (incident_id, id);
