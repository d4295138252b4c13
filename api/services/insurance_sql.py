"""SQL shared by the insurance service and the ticket query: an insurer's own policy."""

from __future__ import annotations


def own_policy_sql(site: str, at: str) -> str:
    """SQL of the id of ``%(insurer)s``'s policy of ``site`` in force at ``at`` (the latest
    starting one), on the region's calendar (``%(tz)s``) like ``bk_policy_in_force``.

    ``bk_policy_in_force`` answers one policy per site and time: where two insurers cover
    the same canteen (a top-up cover) it is the newer one, so an insurer's own policy must be
    looked up by insurer, not by filtering that one answer."""
    return f"""(SELECT p.id FROM policies p
               WHERE p.site_id = {site} AND p.insurer = %(insurer)s
                 AND ({at} AT TIME ZONE %(tz)s)::date BETWEEN p.starts_on AND p.ends_on
               ORDER BY p.starts_on DESC, p.id DESC LIMIT 1)"""
