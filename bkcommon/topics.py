"""MQTT topic builders and parsers for the `bk/v1` contract (see ARCHITECTURE.md).

Every topic lives under a configurable prefix (default ``bk/v1``). Builders and
parsers are the only place topic strings are assembled or split, so a change of
layout is one edit here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bkcommon.errors import TopicError

DEFAULT_PREFIX = "bk/v1"
INGEST_MARKER_SEGMENT = "_ingest"
"""Topic level under the prefix where ingest workers and their guard publish markers
(ingest.guard); no device topic starts with it (site ids do not begin with an underscore).
Shared here because the broker ACL (brightkitchen.mqtt_auth) must grant it too."""

BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
"""Mosquitto's count, since it started, of messages it dropped at a client's queue or in-flight
limit (``max_queued_messages``, ``max_queued_bytes``): each a message a publisher was told
was delivered and a subscriber never got. Retained, and sent when it changes (a broker that has
dropped nothing may send 0 or nothing at all). Ingest
reads it (``ingest.worker``), so the ingest account's ACL allows it (``mqtt_auth``)."""

_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class TopicKind(StrEnum):
    """What a topic carries."""

    READING = "reading"
    READINGS = "readings"
    POWER = "power"
    VIOLATION = "violation"
    STATUS = "status"
    ALERT = "alert"
    ZIGBEE = "zigbee"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic split into its parts; ``device_id`` is the sensor, box or Zigbee name."""

    kind: TopicKind
    site_id: str | None
    device_id: str | None


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid id for a topic level, else raise TopicError.

    Example:
        >>> check_id("site-01")
        'site-01'
    """
    if not _ID_RE.match(value):
        raise TopicError(f"invalid {what} {value!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return value


def _p(prefix: str) -> str:
    return prefix.rstrip("/")


def reading_topic(site_id: str, sensor_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Topic of one sensor reading.

    Example:
        >>> reading_topic("s1", "fridge-1")
        'bk/v1/s1/sensor/fridge-1/reading'
    """
    return (
        f"{_p(prefix)}/{check_id(site_id, 'site')}/sensor/{check_id(sensor_id, 'sensor')}/reading"
    )


def readings_topic(site_id: str, sensor_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Topic of a gateway batch of readings for one sensor."""
    return (
        f"{_p(prefix)}/{check_id(site_id, 'site')}/sensor/{check_id(sensor_id, 'sensor')}/readings"
    )


def power_topic(site_id: str, sensor_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Topic of one sample of a disinfection cabinet's smart plug (power / current).

    Example:
        >>> power_topic("s1", "cab-1")
        'bk/v1/s1/sensor/cab-1/power'
    """
    return f"{_p(prefix)}/{check_id(site_id, 'site')}/sensor/{check_id(sensor_id, 'sensor')}/power"


def violation_topic(site_id: str, box_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Topic of one vision violation from an edge box."""
    return f"{_p(prefix)}/{check_id(site_id, 'site')}/edge/{check_id(box_id, 'box')}/violation"


def status_topic(site_id: str, box_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Retained status topic of an edge box (its last will says offline)."""
    return f"{_p(prefix)}/{check_id(site_id, 'site')}/edge/{check_id(box_id, 'box')}/status"


def alert_topic(site_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Topic of pop-up reminders for the kitchen displays of a site."""
    return f"{_p(prefix)}/{check_id(site_id, 'site')}/alert"


def zigbee_topic(name: str, base: str = "zigbee2mqtt") -> str:
    """Topic a Zigbee2MQTT bridge publishes a device's state on."""
    return f"{base}/{name}"


def ingest_subscriptions(
    prefix: str = DEFAULT_PREFIX, group: str | None = "ingest", zigbee_base: str | None = None
) -> list[str]:
    """Topic filters an ingest worker subscribes to, as shared subscriptions when ``group`` is set.

    Example:
        >>> ingest_subscriptions(group="g")[0]
        '$share/g/bk/v1/+/sensor/+/reading'
    """
    filters = [
        f"{_p(prefix)}/+/sensor/+/reading",
        f"{_p(prefix)}/+/sensor/+/readings",
        f"{_p(prefix)}/+/sensor/+/power",
        f"{_p(prefix)}/+/edge/+/violation",
        f"{_p(prefix)}/+/edge/+/status",
    ]
    if zigbee_base:
        filters.append(f"{zigbee_base}/+")
    if group:
        return [f"$share/{group}/{f}" for f in filters]
    return filters


def parse_topic(
    topic: str, prefix: str = DEFAULT_PREFIX, zigbee_base: str | None = "zigbee2mqtt"
) -> ParsedTopic:
    """Split a topic into kind, site and device; raise TopicError when it is not ours.

    Example:
        >>> parse_topic("bk/v1/s1/sensor/f1/reading")
        ParsedTopic(kind=<TopicKind.READING: 'reading'>, site_id='s1', device_id='f1')
    """
    pre = _p(prefix) + "/"
    if zigbee_base and topic.startswith(zigbee_base + "/"):
        name = topic[len(zigbee_base) + 1 :]
        if "/" in name or not name:
            raise TopicError(f"not a Zigbee2MQTT device state topic: {topic!r}")
        return ParsedTopic(TopicKind.ZIGBEE, None, name)
    if not topic.startswith(pre):
        raise TopicError(f"topic {topic!r} is not under prefix {prefix!r}")
    parts = topic[len(pre) :].split("/")
    try:
        if len(parts) == 4 and parts[1] == "sensor" and parts[3] in ("reading", "readings"):
            kind = TopicKind.READING if parts[3] == "reading" else TopicKind.READINGS
            return ParsedTopic(kind, check_id(parts[0], "site"), check_id(parts[2], "sensor"))
        if len(parts) == 4 and parts[1] == "sensor" and parts[3] == "power":
            return ParsedTopic(
                TopicKind.POWER, check_id(parts[0], "site"), check_id(parts[2], "sensor")
            )
        if len(parts) == 4 and parts[1] == "edge" and parts[3] in ("violation", "status"):
            kind = TopicKind.VIOLATION if parts[3] == "violation" else TopicKind.STATUS
            return ParsedTopic(kind, check_id(parts[0], "site"), check_id(parts[2], "box"))
        if len(parts) == 2 and parts[1] == "alert":
            return ParsedTopic(TopicKind.ALERT, check_id(parts[0], "site"), None)
    except TopicError as exc:
        raise TopicError(f"bad topic {topic!r}: {exc}") from exc
    raise TopicError(f"unknown topic layout {topic!r}")
