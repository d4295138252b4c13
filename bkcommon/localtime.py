"""The region's local time zone: one setting, read here, used wherever a person reads a time
or a calendar day is counted (duty days, monthly statistics, coverage periods, notices,
notifications, the console, the public pages, SQL ``AT TIME ZONE``).

``BK_TIME_ZONE`` is an IANA zone name (default ``Asia/Shanghai``). ``BK_CONSOLE_TIME_ZONE``,
the console's older setting, is still read when ``BK_TIME_ZONE`` is unset (deprecated).

An unknown name is an error for ``brightkitchen api run|worker --validate-config`` and
stops those services at start (see :func:`time_zone_error`). Code that runs without that
check (tests, the console helpers, the simulators) logs one warning and uses the default.

Stored instants stay in UTC; only what is shown or counted by calendar day is local.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_TIME_ZONE = "Asia/Shanghai"
TIME_ZONE_ENV = "BK_TIME_ZONE"
LEGACY_TIME_ZONE_ENV = "BK_CONSOLE_TIME_ZONE"
"""Deprecated alias of :data:`TIME_ZONE_ENV`, read only when that is unset or blank."""

CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})
"""Zones whose local time people call 北京时间 (UTC+8 all year); printed with that name."""


def _raw(environ: Mapping[str, str] | None) -> tuple[str, str]:
    """(variable, value) of the configured zone, blank value when none is set."""
    env = os.environ if environ is None else environ
    value = env.get(TIME_ZONE_ENV, "").strip()
    if value:
        return TIME_ZONE_ENV, value
    return LEGACY_TIME_ZONE_ENV, env.get(LEGACY_TIME_ZONE_ENV, "").strip()


def _load(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def time_zone_error(environ: Mapping[str, str] | None = None) -> str | None:
    """The configuration error of the zone setting, or None when it names a known zone.

    >>> time_zone_error({"BK_TIME_ZONE": "Mars/Olympus"})
    "BK_TIME_ZONE: 'Mars/Olympus' is not a known IANA time zone (e.g. Asia/Shanghai)"
    >>> time_zone_error({"BK_CONSOLE_TIME_ZONE": "Asia/Tokyo"}) is None
    True
    """
    var, value = _raw(environ)
    if value and _load(value) is None:
        return f"{var}: {value!r} is not a known IANA time zone (e.g. {DEFAULT_TIME_ZONE})"
    return None


@lru_cache(maxsize=16)
def _resolve(var: str, value: str) -> str:
    """The zone to use for a raw setting; warns once per bad or deprecated value."""
    if not value:
        return DEFAULT_TIME_ZONE
    if _load(value) is None:
        logger.warning("%s=%r is not a known time zone; using %s", var, value, DEFAULT_TIME_ZONE)
        return DEFAULT_TIME_ZONE
    if var == LEGACY_TIME_ZONE_ENV:
        logger.warning("%s is deprecated; set %s instead", LEGACY_TIME_ZONE_ENV, TIME_ZONE_ENV)
    return value


def region_zone_name(environ: Mapping[str, str] | None = None) -> str:
    """IANA name of the region's zone, e.g. for SQL: ``AT TIME ZONE %(tz)s``.

    >>> region_zone_name({})
    'Asia/Shanghai'
    >>> region_zone_name({"BK_CONSOLE_TIME_ZONE": "Asia/Tokyo"})
    'Asia/Tokyo'
    >>> region_zone_name({"BK_TIME_ZONE": "UTC", "BK_CONSOLE_TIME_ZONE": "Asia/Tokyo"})
    'UTC'
    """
    return _resolve(*_raw(environ))


def region_zone(environ: Mapping[str, str] | None = None) -> ZoneInfo:
    """The region's zone (read from the environment on each call, so tests can change it)."""
    return ZoneInfo(region_zone_name(environ))


def to_local(at: datetime, zone: ZoneInfo | None = None) -> datetime:
    """``at`` (aware) as the region's wall-clock time."""
    if at.tzinfo is None:
        raise ValueError("to_local needs an aware datetime")
    return at.astimezone(zone or region_zone())


def local_date(at: datetime, zone: ZoneInfo | None = None) -> date:
    """The region's calendar day at the instant ``at``.

    >>> from datetime import UTC
    >>> local_date(datetime(2026, 12, 4, 16, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    datetime.date(2026, 12, 5)
    """
    return to_local(at, zone).date()


def local_today(zone: ZoneInfo | None = None) -> date:
    """Today in the region."""
    return datetime.now(zone or region_zone()).date()


def zone_label(at: datetime, zone: ZoneInfo | None = None) -> str:
    """Bilingual name of the zone with its UTC offset at ``at``.

    >>> from datetime import UTC
    >>> zone_label(datetime(2026, 12, 5, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    '北京时间 China time, UTC+08:00'
    >>> zone_label(datetime(2026, 7, 1, tzinfo=UTC), ZoneInfo("Europe/Berlin"))
    'Europe/Berlin, UTC+02:00'
    """
    z = zone or region_zone()
    local = to_local(at, z)
    off = local.strftime("%z")
    offset = f"UTC{off[:3]}:{off[3:]}" if off else "UTC"
    name = "北京时间 China time" if z.key in CHINA_ZONES else z.key
    return f"{name}, {offset}"


def fmt_local(
    at: datetime | None,
    zone: ZoneInfo | None = None,
    *,
    seconds: bool = False,
    show_zone: bool = False,
    missing: str = "—",
) -> str:
    """``at`` as the region's wall-clock time, ``YYYY-MM-DD HH:MM``; ``missing`` for None.

    With ``show_zone`` the zone follows in brackets, for text read away from the console
    (notifications), where the reader cannot know which zone a bare time is in.

    >>> from datetime import UTC
    >>> fmt_local(datetime(2026, 12, 5, 2, tzinfo=UTC), ZoneInfo("Asia/Shanghai"), show_zone=True)
    '2026-12-05 10:00 (北京时间 China time, UTC+08:00)'
    """
    if at is None:
        return missing
    z = zone or region_zone()
    text = to_local(at, z).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} ({zone_label(at, z)})" if show_zone else text
