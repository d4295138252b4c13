-- Tableware disinfection (餐具消毒): cabinets and their valid cycle, site meal schedules,
-- the cycles detected from the readings (the 消毒记录 ledger) and the judged meal windows.
-- Plain tables on both paths: a cycle is a few rows a day per cabinet.

-- One row per disinfection-profile sensor: its type and effective valid cycle
-- (type defaults, region overrides, cabinet overrides; resolved by registry sync).
CREATE TABLE disinfection_cabinets (
    sensor_id     text PRIMARY KEY REFERENCES sensors(id) ON DELETE CASCADE,
    site_id       text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    cabinet_type  text NOT NULL CHECK (cabinet_type IN ('steam','boiling','infrared','dishwasher')),
    min_temp_c    double precision NOT NULL,
    min_hold_s    integer NOT NULL CHECK (min_hold_s > 0),
    start_temp_c  double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disinfection_cabinets_site_idx ON disinfection_cabinets (site_id);

-- Cabinets registered before this migration get the steam defaults of the operating code.
INSERT INTO disinfection_cabinets (sensor_id, site_id, cabinet_type, min_temp_c, min_hold_s,
                                   start_temp_c)
SELECT id, site_id, 'steam', 100, 600, 60 FROM sensors WHERE profile = 'disinfection'
ON CONFLICT DO NOTHING;

-- A site's meal services ([{meal, start "HH:MM", end, weekdays [1..7]}], local times in
-- ``timezone``), its days off ([{from, to, reason}]) and the window after each meal.
CREATE TABLE meal_schedules (
    site_id     text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    timezone    text NOT NULL,
    window_s    integer NOT NULL CHECK (window_s > 0),
    services    jsonb NOT NULL,
    days_off    jsonb NOT NULL DEFAULT '[]',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every cycle the rules detected; (sensor, start) makes a replayed or re-judged cycle a no-op.
CREATE TABLE disinfection_cycles (
    id          bigserial PRIMARY KEY,
    sensor_id   text NOT NULL,
    site_id     text NOT NULL REFERENCES sites(id),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL CHECK (ended_at >= started_at),
    peak_c      double precision NOT NULL,
    held_s      double precision NOT NULL CHECK (held_s >= 0),
    verdict     text NOT NULL CHECK (verdict IN ('valid','too_cool','too_short')),
    min_temp_c  double precision NOT NULL,
    min_hold_s  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sensor_id, started_at)
);
CREATE INDEX disinfection_cycles_site_idx ON disinfection_cycles (site_id, started_at);

-- One judgement per cabinet, service date and meal once its window closed.
CREATE TABLE disinfection_checks (
    sensor_id     text NOT NULL,
    site_id       text NOT NULL REFERENCES sites(id),
    service_date  date NOT NULL,
    meal          text NOT NULL CHECK (meal IN ('breakfast','lunch','dinner')),
    meal_start    timestamptz NOT NULL,
    meal_end      timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('done','missed','failed')),
    cycle_id      bigint REFERENCES disinfection_cycles(id),
    checked_at    timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, service_date, meal)
);
CREATE INDEX disinfection_checks_site_idx ON disinfection_checks (site_id, service_date);
