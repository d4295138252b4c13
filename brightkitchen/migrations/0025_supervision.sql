-- 包保 supervision: the visits a responsible cadre (site_people role 'regulator', 包保干部)
-- pays to a business, with the checklist answered on the spot, and how often a region wants
-- them. A "no" on the checklist becomes a finding and so a ticket (api.services.supervision).
-- Plain tables: the same on PostgreSQL and under TimescaleDB. Nothing here is ever deleted.

CREATE TABLE supervision_visits (
    id            bigserial PRIMARY KEY,
    site_id       text NOT NULL REFERENCES sites(id),
    person_id     text REFERENCES people(id),       -- the cadre, when the user is a person
    visited_by    text NOT NULL,                     -- username of who recorded it
    visited_at    timestamptz NOT NULL,
    checklist     jsonb NOT NULL,                    -- [{item, ok, note}]
    note          text NOT NULL DEFAULT '',
    findings      integer NOT NULL DEFAULT 0 CHECK (findings >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, visited_at)                     -- a retried upload adds nothing
);
CREATE INDEX supervision_visits_site_idx ON supervision_visits (site_id, visited_at DESC);

-- How often a region wants each business visited; the nearest region up the tree wins,
-- else the default of BK_SUPERVISION_PERIOD_DAYS (docs/supervision.md).
CREATE TABLE supervision_frequency (
    region_id     text PRIMARY KEY REFERENCES regions(id),
    period_days   integer NOT NULL CHECK (period_days BETWEEN 1 AND 366),
    visits        integer NOT NULL DEFAULT 1 CHECK (visits BETWEEN 1 AND 100),
    source        text NOT NULL DEFAULT '' CHECK (length(source) <= 300),
    updated_by    text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER supervision_visits_no_delete BEFORE DELETE ON supervision_visits
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
