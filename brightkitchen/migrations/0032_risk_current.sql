-- Each site's risk score now, kept fresh by the risk-score job (every BK_RISK_REFRESH_MIN,
-- default 10 minutes), next to the history in risk_scores (one point per BK_RISK_INTERVAL_H).
-- The overview, the canteen page and the inspection draw read this one: a stored daily
-- score is up to a day old, and a canteen that had a bad morning must not show yesterday's.
CREATE TABLE IF NOT EXISTS risk_current (
    site_id      text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    computed_at  timestamptz NOT NULL,
    score        real NOT NULL CHECK (score BETWEEN 0 AND 100),
    components   jsonb NOT NULL
);
