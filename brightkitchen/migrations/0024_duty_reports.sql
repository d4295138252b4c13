-- The director's weekly review (周排查) and the monthly dispatch report (月调度). The report's
-- figures are generated from the month's records; its text is edited until the director
-- signs, after which the row can no longer change. Plain tables; nothing is deleted.

CREATE TABLE weekly_reviews (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    week_start     date NOT NULL CHECK (extract(isodow FROM week_start) = 1),  -- a Monday
    figures        jsonb NOT NULL,
    findings       text NOT NULL DEFAULT '',
    measures       text NOT NULL DEFAULT '',
    reviewed_by    text NOT NULL,
    reviewed_at    timestamptz NOT NULL,
    UNIQUE (site_id, week_start)
);

CREATE TABLE monthly_reports (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites(id),
    month          date NOT NULL CHECK (extract(day FROM month) = 1),
    figures        jsonb NOT NULL,
    body           text NOT NULL,
    generated_at   timestamptz NOT NULL,
    edited_by      text,
    edited_at      timestamptz,
    signed_by      text,
    signed_at      timestamptz,
    UNIQUE (site_id, month),
    CHECK ((signed_by IS NULL) = (signed_at IS NULL))
);

-- A signed report is final: no update, and no report is ever deleted.
CREATE FUNCTION bk_monthly_report_signed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'monthly report % is signed and cannot change', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER monthly_reports_signed_final BEFORE UPDATE ON monthly_reports
    FOR EACH ROW EXECUTE FUNCTION bk_monthly_report_signed();
CREATE TRIGGER monthly_reports_no_delete BEFORE DELETE ON monthly_reports
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
CREATE TRIGGER weekly_reviews_no_delete BEFORE DELETE ON weekly_reviews
    FOR EACH ROW EXECUTE FUNCTION bk_forbid_change();
