-- The canteen officer's daily duties (日管控): which sites keep them and when the daily check
-- is due, region overrides of the default checklists, completed daily checks with one row
-- per answer, the photos that back a "no", the morning health check of staff (晨检) and the
-- food sample retention record (留样). Plain tables: the same on PostgreSQL and TimescaleDB.
-- Records are never deleted.

-- A site keeps the daily duties from ``since``; its daily check is due each day by
-- ``deadline_local`` (China time). Sites without a row are not checked for deadlines.
CREATE TABLE duty_sites (
    site_id        text PRIMARY KEY REFERENCES sites(id),
    business_type  text NOT NULL,
    deadline_local time NOT NULL DEFAULT '10:00',
    since          date NOT NULL,
    updated_by     text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A region's own checklist for a business type; the nearest region up the tree wins over
-- the default in code (api.services.duty_templates).
CREATE TABLE duty_checklists (
    region_id      text NOT NULL REFERENCES regions(id),
    business_type  text NOT NULL,
    items          jsonb NOT NULL,
    source         text NOT NULL CHECK (length(source) BETWEEN 1 AND 500),
    updated_by     text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region_id, business_type)
);

-- Photos uploaded for a site's duty records (through the evidence checks), by hash.
CREATE TABLE duty_photos (
    site_id        text NOT NULL REFERENCES sites(id),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type     text NOT NULL,
    uploaded_by    text NOT NULL,
    uploaded_at    timestamptz NOT NULL,
    PRIMARY KEY (site_id, sha256)
);

-- One completed daily check per site and day (China time).
CREATE TABLE daily_checks (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    check_date     date NOT NULL,
    business_type  text NOT NULL,
    template_source text NOT NULL,
    completed_by   text NOT NULL,
    completed_at   timestamptz NOT NULL,
    UNIQUE (site_id, check_date)
);

CREATE TABLE daily_check_answers (
    check_id       bigint NOT NULL REFERENCES daily_checks(id),
    item_key       text NOT NULL,
    label          text NOT NULL,
    ok             boolean NOT NULL,
    note           text NOT NULL DEFAULT '',
    photo_sha256   text CHECK (photo_sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (check_id, item_key),
    CHECK (ok OR photo_sha256 IS NOT NULL)                  -- every "no" carries its photo
);

-- 晨检: one row per staff member and day; a symptom takes them off duty that day.
CREATE TABLE health_checks (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    check_date     date NOT NULL,
    staff_name     text NOT NULL CHECK (length(staff_name) BETWEEN 1 AND 100),
    temperature_c  numeric(3, 1),
    symptoms       text[] NOT NULL DEFAULT '{}',
    on_duty        boolean NOT NULL,
    note           text NOT NULL DEFAULT '',
    checked_by     text NOT NULL,
    checked_at     timestamptz NOT NULL,
    UNIQUE (site_id, check_date, staff_name),
    CHECK (on_duty = (cardinality(symptoms) = 0))
);

-- 留样: each dish of each meal, at least 125 g, kept at least 48 hours.
CREATE TABLE food_samples (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    meal_date      date NOT NULL,
    meal           text NOT NULL CHECK (meal IN ('breakfast', 'lunch', 'dinner', 'other')),
    dish           text NOT NULL CHECK (length(dish) BETWEEN 1 AND 100),
    weight_g       numeric(7, 1) NOT NULL CHECK (weight_g >= 125),
    stored_at      timestamptz NOT NULL,
    keep_until     timestamptz NOT NULL CHECK (keep_until >= stored_at + interval '48 hours'),
    sensor_id      text REFERENCES sensors(id),             -- the monitored sample fridge
    recorded_by    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, meal_date, meal, dish)
);
CREATE INDEX food_samples_site_idx ON food_samples (site_id, meal_date DESC);

CREATE TRIGGER daily_checks_no_delete BEFORE DELETE ON daily_checks
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER daily_check_answers_no_delete BEFORE DELETE ON daily_check_answers
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER health_checks_no_delete BEFORE DELETE ON health_checks
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER food_samples_no_delete BEFORE DELETE ON food_samples
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
