"""What a region publishes on its canteens' public pages (阳光公示), and who may change it.

A site takes the ``public_settings`` row of its own region or, when that has none, of the
nearest region above it. With no row anywhere nothing is published: a public page and a
complaint form exist only where a regulator chose to open them. Each section (inspection
result, rectification summary, cold chain, tableware disinfection, rapid tests) and the
complaint form can be switched off separately.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

Conn = psycopg.Connection[Any]


class PublicationIn(BaseModel):
    """The publish setting of one region (and, unless they have their own, its sub-regions)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    show_inspection: bool = True
    show_rectification: bool = True
    show_cold_chain: bool = True
    show_disinfection: bool = True
    show_rapid_tests: bool = True
    accept_complaints: bool = True


class PublicationPublic(PublicationIn):
    """A stored setting, with the region it was set on (maybe an ancestor) and by whom."""

    region_id: str
    updated_by: str
    updated_at: datetime


_COLUMNS = """region_id, enabled, show_inspection, show_rectification, show_cold_chain,
show_disinfection, show_rapid_tests, accept_complaints, updated_by, updated_at"""


def effective_for_region(conn: Conn, region_id: str) -> PublicationPublic | None:
    """The setting that applies in ``region_id``: its own row or the nearest ancestor's."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""WITH RECURSIVE up(id, parent_id, depth) AS (
                    SELECT id, parent_id, 0 FROM regions WHERE id = %s
                    UNION ALL
                    SELECT r.id, r.parent_id, up.depth + 1
                    FROM regions r JOIN up ON r.id = up.parent_id)
                SELECT {_COLUMNS} FROM public_settings p JOIN up ON up.id = p.region_id
                ORDER BY up.depth LIMIT 1""",
            (region_id,),
        ).fetchone()
    return None if row is None else PublicationPublic.model_validate(row)


def effective_for_site(conn: Conn, site_id: str) -> tuple[str, PublicationPublic | None] | None:
    """(site name, its setting) of a site; None when the site does not exist."""
    row = conn.execute("SELECT name, region_id FROM sites WHERE id = %s", (site_id,)).fetchone()
    if row is None:
        return None
    return str(row[0]), effective_for_region(conn, str(row[1]))


def set_publication(
    conn: Conn, *, region_id: str, data: PublicationIn, actor: str, now: datetime
) -> PublicationPublic:
    """Create or replace the setting of ``region_id``."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""INSERT INTO public_settings (region_id, enabled, show_inspection,
                    show_rectification, show_cold_chain, show_disinfection, show_rapid_tests,
                    accept_complaints, updated_by, updated_at)
                VALUES (%(region)s, %(enabled)s, %(show_inspection)s, %(show_rectification)s,
                        %(show_cold_chain)s, %(show_disinfection)s, %(show_rapid_tests)s,
                        %(accept_complaints)s, %(actor)s, %(now)s)
                ON CONFLICT (region_id) DO UPDATE SET enabled = excluded.enabled,
                    show_inspection = excluded.show_inspection,
                    show_rectification = excluded.show_rectification,
                    show_cold_chain = excluded.show_cold_chain,
                    show_disinfection = excluded.show_disinfection,
                    show_rapid_tests = excluded.show_rapid_tests,
                    accept_complaints = excluded.accept_complaints,
                    updated_by = excluded.updated_by, updated_at = excluded.updated_at
                RETURNING {_COLUMNS}""",
            {"region": region_id, "actor": actor, "now": now, **data.model_dump()},
        ).fetchone()
    assert row is not None
    return PublicationPublic.model_validate(row)
