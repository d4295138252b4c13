"""Load the site file into the registry tables (regions, sites, people, sensors, boxes, cameras).

Upserts are idempotent; sensors no longer in the file are marked inactive, never deleted
(their readings and tickets stay attached).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from bkcommon.profiles import Profile
from bkcommon.sitefile import Site, SiteFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Counts of what a registry sync wrote."""

    regions: int
    sites: int
    people: int
    sensors: int
    cameras: int


def sync_disinfection(
    cur: psycopg.Cursor[tuple[object, ...]], site_file: SiteFile, site: Site
) -> None:
    """Write the site's cabinets (effective valid cycle) and meal schedule (餐具消毒).

    A cabinet's ``created_at`` is kept across syncs: meals before it are never judged.
    """
    for sn in site.sensors:
        if sn.profile is not Profile.DISINFECTION:
            continue
        ctype, spec = site_file.cabinet_spec(site, sn)
        plug = sn.cabinet.plug if sn.cabinet is not None else None
        plug_name = plug.zigbee_name if plug is not None else None
        if plug_name is not None:  # a plug moved from another cabinet in this same sync
            cur.execute(
                "UPDATE disinfection_cabinets SET plug_zigbee_name = NULL "
                "WHERE plug_zigbee_name = %s AND sensor_id <> %s",
                (plug_name, sn.id),
            )
        cur.execute(
            """INSERT INTO disinfection_cabinets (sensor_id, site_id, cabinet_type, min_temp_c,
                                                  min_hold_s, start_temp_c, has_plug,
                                                  plug_zigbee_name, on_w, on_a)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (sensor_id) DO UPDATE SET site_id = EXCLUDED.site_id,
                   cabinet_type = EXCLUDED.cabinet_type, min_temp_c = EXCLUDED.min_temp_c,
                   min_hold_s = EXCLUDED.min_hold_s, start_temp_c = EXCLUDED.start_temp_c,
                   has_plug = EXCLUDED.has_plug, plug_zigbee_name = EXCLUDED.plug_zigbee_name,
                   on_w = EXCLUDED.on_w, on_a = EXCLUDED.on_a, updated_at = now()""",
            (
                sn.id,
                site.id,
                ctype.value,
                spec.min_temp_c,
                spec.min_hold_s,
                spec.start_temp_c,
                plug is not None,
                plug_name,
                spec.on_w,
                spec.on_current_a,
            ),
        )
    if site.meals is None:
        cur.execute("DELETE FROM meal_schedules WHERE site_id = %s", (site.id,))
        return
    m = site.meals
    cur.execute(
        """INSERT INTO meal_schedules (site_id, timezone, window_s, services, days_off)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (site_id) DO UPDATE SET timezone = EXCLUDED.timezone,
               window_s = EXCLUDED.window_s, services = EXCLUDED.services,
               days_off = EXCLUDED.days_off, updated_at = now()""",
        (
            site.id,
            m.timezone,
            m.window_min * 60,
            Jsonb([sv.model_dump(mode="json") for sv in m.services]),
            Jsonb([d.model_dump(mode="json", by_alias=True) for d in m.days_off]),
        ),
    )


_CLEAR_REMOVED = """
WITH a AS (
    UPDATE alarms SET status = 'cleared', cleared_at = now()
    WHERE sensor_id = ANY(%(sensors)s) AND status <> 'cleared'
    RETURNING id, site_id, sensor_id, rule, tier, peak_temp_c
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || a.id || ':cleared', 'alarm_cleared', a.site_id, a.sensor_id, a.rule, a.tier,
       now(), jsonb_build_object('alarm_id', a.id, 'sensor_id', a.sensor_id, 'rule', a.rule,
                                 'peak_temp_c', a.peak_temp_c,
                                 'reason', 'sensor removed from the site file')
FROM a
ON CONFLICT (finding_key) DO NOTHING
"""
"""A sensor taken out of the site file ends its alarms: nothing would ever clear its
``sensor_offline`` (only a reading does), and it counted as downtime of the canteen's
sensors and as an active alarm on the wall screen for good."""


def sync_registry(conn: psycopg.Connection[tuple[object, ...]], site_file: SiteFile) -> SyncResult:
    """Upsert the whole registry of ``site_file`` in one transaction."""
    n_cam = 0
    with conn.transaction(), conn.cursor() as cur:
        # Parents first so the self-reference holds.
        pending = list(site_file.regions)
        written: set[str] = set()
        while pending:
            progressed = False
            for r in list(pending):
                if r.parent is None or r.parent in written:
                    cur.execute(
                        """INSERT INTO regions (id, name, parent_id) VALUES (%s, %s, %s)
                           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                                                          parent_id = EXCLUDED.parent_id""",
                        (r.id, r.name, r.parent),
                    )
                    written.add(r.id)
                    pending.remove(r)
                    progressed = True
            if not progressed:
                raise ValueError("regions: parent cycle among " + ", ".join(r.id for r in pending))
        for p in site_file.people:
            cur.execute(
                "INSERT INTO people (id, name) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                (p.id, p.name),
            )
            cur.execute("DELETE FROM person_channels WHERE person_id = %s", (p.id,))
            for ch in p.channels:
                cur.execute(
                    "INSERT INTO person_channels (person_id, kind, address, secret) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (p.id, ch.kind.value, ch.address, ch.secret),
                )
        for s in site_file.sites:
            cur.execute(
                """INSERT INTO sites (id, region_id, name, address) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET region_id = EXCLUDED.region_id,
                       name = EXCLUDED.name, address = EXCLUDED.address""",
                (s.id, s.region, s.name, s.address),
            )
            cur.execute("DELETE FROM site_people WHERE site_id = %s", (s.id,))
            for role, ids in s.people.items():
                for pid in ids:
                    cur.execute(
                        "INSERT INTO site_people (site_id, person_id, role) VALUES (%s, %s, %s)",
                        (s.id, pid, role.value),
                    )
            ids_in_file = [sn.id for sn in s.sensors]
            for sn in s.sensors:
                cur.execute(
                    """INSERT INTO sensors (id, site_id, name, profile, zigbee_name, params, active)
                       VALUES (%s, %s, %s, %s, %s, %s, true)
                       ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id,
                           name = EXCLUDED.name, profile = EXCLUDED.profile,
                           zigbee_name = EXCLUDED.zigbee_name, params = EXCLUDED.params,
                           active = true, updated_at = now()""",
                    (
                        sn.id,
                        s.id,
                        sn.name,
                        sn.profile.value,
                        sn.zigbee_name,
                        Jsonb(sn.params().model_dump()),
                    ),
                )
            cur.execute(
                "UPDATE sensors SET active = false WHERE site_id = %s AND NOT (id = ANY(%s))"
                " AND active RETURNING id",
                (s.id, ids_in_file),
            )
            removed = [str(r[0]) for r in cur.fetchall()]
            if removed:
                cur.execute(_CLEAR_REMOVED, {"sensors": removed})
            sync_disinfection(cur, site_file, s)
            for box in s.edge_boxes:
                cur.execute(
                    "INSERT INTO edge_boxes (id, site_id) VALUES (%s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id",
                    (box.id, s.id),
                )
                for cam in box.cameras:
                    cur.execute(
                        """INSERT INTO cameras (id, site_id, box_id, name, zones)
                           VALUES (%s, %s, %s, %s, %s)
                           ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id,
                               box_id = EXCLUDED.box_id, name = EXCLUDED.name,
                               zones = EXCLUDED.zones""",
                        (
                            cam.id,
                            s.id,
                            box.id,
                            cam.name,
                            Jsonb([z.model_dump(mode="json") for z in cam.zones]),
                        ),
                    )
                    n_cam += 1
    result = SyncResult(
        regions=len(site_file.regions),
        sites=len(site_file.sites),
        people=len(site_file.people),
        sensors=sum(len(s.sensors) for s in site_file.sites),
        cameras=n_cam,
    )
    logger.info("registry synced: %s", result)
    return result
