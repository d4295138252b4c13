-- Rapid tests (快检) and purchase records (进货查验): suppliers by licence number, one row per
-- delivery, one row per tested sample, and the flags a failed sample raises on the same
-- supplier's other recent deliveries (trace forward). Nothing here is ever deleted.

CREATE TABLE suppliers (
    licence_no  text PRIMARY KEY CHECK (length(licence_no) BETWEEN 1 AND 60),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- 进货查验记录: one row per delivery of one product batch to one site.
CREATE TABLE purchases (
    id            bigserial PRIMARY KEY,
    site_id       text NOT NULL REFERENCES sites(id),
    supplier_licence text NOT NULL REFERENCES suppliers(licence_no),
    product       text NOT NULL,
    batch_no      text NOT NULL,
    delivered_on  date NOT NULL,
    quantity      numeric(12, 3) NOT NULL CHECK (quantity > 0),
    unit          text NOT NULL DEFAULT 'kg',
    received_by   text NOT NULL,                  -- internal: never on the public page
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, supplier_licence, product, batch_no, delivered_on)
);
CREATE INDEX purchases_supplier_idx ON purchases (supplier_licence, delivered_on DESC);
CREATE INDEX purchases_site_idx ON purchases (site_id, delivered_on DESC);

CREATE TABLE rapid_tests (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),   -- the site that bought the sample
    purchase_id    bigint REFERENCES purchases(id),
    sample_no      text NOT NULL,                        -- the lab's / instrument's sample number
    product        text NOT NULL,
    supplier_licence text REFERENCES suppliers(licence_no),
    batch_no       text NOT NULL DEFAULT '',
    item           text NOT NULL,
    method         text NOT NULL,
    result         text NOT NULL CHECK (result IN ('pass', 'fail')),
    value          double precision,
    limit_value    double precision,
    unit           text NOT NULL DEFAULT '',
    tester         text NOT NULL,                        -- internal: never on the public page
    tested_at      timestamptz NOT NULL,
    photo_sha256   text CHECK (photo_sha256 ~ '^[0-9a-f]{64}$'),
    photo_media_type text,
    source         text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'csv')),
    created_by     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, sample_no, item)                    -- a re-imported export adds nothing
);
CREATE INDEX rapid_tests_site_idx ON rapid_tests (site_id, tested_at DESC);
CREATE INDEX rapid_tests_tested_idx ON rapid_tests (tested_at);

-- A failed sample flags the same supplier's other recent deliveries across the region.
CREATE TABLE supplier_flags (
    id             bigserial PRIMARY KEY,
    rapid_test_id  bigint NOT NULL REFERENCES rapid_tests(id),
    purchase_id    bigint NOT NULL REFERENCES purchases(id),
    site_id        text NOT NULL REFERENCES sites(id),   -- the site of the flagged delivery
    supplier_licence text NOT NULL REFERENCES suppliers(licence_no),
    created_at     timestamptz NOT NULL,
    UNIQUE (rapid_test_id, purchase_id)
);
CREATE INDEX supplier_flags_site_idx ON supplier_flags (site_id, created_at DESC);

CREATE TRIGGER purchases_no_delete BEFORE DELETE ON purchases
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER rapid_tests_no_delete BEFORE DELETE ON rapid_tests
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER supplier_flags_no_delete BEFORE DELETE ON supplier_flags
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
