"""The sensor directory: registered sensors loaded from the database, refreshed periodically.

Ingest validates every reading against it (unknown sensor = dead letter) and the rule
engine reads each sensor's site and rule parameters from it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import psycopg

from bkcommon.profiles import Profile, RuleParams
from ingest.types import SensorInfo

logger = logging.getLogger(__name__)


class SensorDirectory:
    """Thread-safe map of active sensors by id and by Zigbee2MQTT name."""

    def __init__(self, sensors: list[SensorInfo] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, SensorInfo] = {}
        self._by_zigbee: dict[str, SensorInfo] = {}
        self._by_plug: dict[str, SensorInfo] = {}
        self._site_registered: dict[str, datetime] = {}
        if sensors:
            self._set(sensors)

    def _set(self, sensors: list[SensorInfo], sites: dict[str, datetime] | None = None) -> None:
        by_id = {s.sensor_id: s for s in sensors}
        by_zb = {s.zigbee_name: s for s in sensors if s.zigbee_name}
        by_plug = {s.plug_zigbee_name: s for s in sensors if s.plug_zigbee_name}
        with self._lock:
            self._by_id, self._by_zigbee, self._by_plug = by_id, by_zb, by_plug
            if sites is not None:
                self._site_registered = sites

    def refresh(self, conn: psycopg.Connection[Any]) -> int:
        """Reload active sensors from the ``sensors`` table; return how many there are."""
        rows = conn.execute(
            "SELECT s.id, s.site_id, s.profile, s.params, s.zigbee_name, "
            "coalesce(c.has_plug, false), c.plug_zigbee_name "
            "FROM sensors s LEFT JOIN disinfection_cabinets c ON c.sensor_id = s.id "
            "WHERE s.active"
        ).fetchall()
        sensors = []
        for sid, site_id, profile, params, zb, has_plug, plug_zb in rows:
            try:
                sensors.append(
                    SensorInfo(
                        sid,
                        site_id,
                        Profile(profile),
                        RuleParams.model_validate(params),
                        zb,
                        bool(has_plug),
                        plug_zb,
                    )
                )
            except ValueError:
                logger.exception("sensor %s has invalid params in the registry; ignored", sid)
        sites = {str(r[0]): r[1] for r in conn.execute("SELECT id, created_at FROM sites")}
        self._set(sensors, sites)
        return len(sensors)

    def site_registered_at(self, site_id: str) -> datetime | None:
        """When the site was entered in the registry (``sites.created_at``), if known:
        a device of the site cannot have measured anything long before."""
        with self._lock:
            return self._site_registered.get(site_id)

    def get(self, sensor_id: str) -> SensorInfo | None:
        """Return the sensor or None when it is not registered (or inactive)."""
        with self._lock:
            return self._by_id.get(sensor_id)

    def by_zigbee(self, name: str) -> SensorInfo | None:
        """Return the sensor mapped to a Zigbee2MQTT friendly name, if any."""
        with self._lock:
            return self._by_zigbee.get(name)

    def by_plug(self, name: str) -> SensorInfo | None:
        """Return the disinfection cabinet whose smart plug has this Zigbee2MQTT name."""
        with self._lock:
            return self._by_plug.get(name)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)
