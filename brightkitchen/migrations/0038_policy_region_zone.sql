-- The policy in force on the region's calendar day (BK_TIME_ZONE), not China's: migration
-- 0010 fixed 'Asia/Shanghai' here, so in a region on another zone an incident on the last
-- evening of a policy (Berlin, New York) was filed under the next policy or under none.
-- The zone is an argument (the API passes bkcommon.localtime.region_zone_name()); the
-- two-argument form and the ticket_policies view built on it are dropped, so nothing can
-- read a policy by China's day again.
CREATE OR REPLACE FUNCTION bk_policy_in_force(p_site text, p_at timestamptz, p_tz text)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT p.id FROM policies p
    WHERE p.site_id = p_site
      AND (p_at AT TIME ZONE p_tz)::date BETWEEN p.starts_on AND p.ends_on
    ORDER BY p.starts_on DESC, p.id DESC
    LIMIT 1
$$;

DROP VIEW IF EXISTS ticket_policies;
DROP FUNCTION IF EXISTS bk_policy_in_force(text, timestamptz);
