"""Turn one MQTT message (topic, raw bytes, arrival time) into accepted data or a rejection.

Pure: no I/O. The fast path lets pydantic-core parse JSON straight into the model; only a
failing payload goes through :func:`bkcommon.messages.decode` again to get its reason.
Every rejection carries a short ``code`` (for counters) and a human ``reason`` (for the
dead-letter table).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import BaseModel

from bkcommon.errors import PayloadError, TopicError
from bkcommon.messages import (
    MAX_FUTURE_SKEW,
    EdgeStatus,
    PowerReading,
    ReadingBatch,
    SensorReading,
    Violation,
    ZigbeePlugState,
    ZigbeeState,
    check_not_before,
    check_not_future,
    decode,
    times_of,
)
from bkcommon.topics import DEFAULT_PREFIX, TopicKind, parse_topic
from ingest.directory import SensorDirectory
from ingest.lean import Reading, lean_batch

MAX_REASON_CHARS = 1000

BACKFILL_GRACE = timedelta(days=30)
"""How long before its site's registration a reading may be stamped (sensors installed and
buffering before the site was entered in the registry); earlier is a wrong clock."""


@dataclass(frozen=True, slots=True)
class AcceptedReadings:
    """Valid readings of one registered sensor (one message or a gateway batch)."""

    sensor_id: str
    readings: Sequence[Reading]


@dataclass(frozen=True, slots=True)
class AcceptedPower:
    """Valid smart-plug samples of one disinfection cabinet (its own topic or Zigbee2MQTT)."""

    sensor_id: str
    samples: tuple[PowerReading, ...]


@dataclass(frozen=True, slots=True)
class AcceptedViolation:
    """A valid violation from an edge box, with its decoded evidence image if any."""

    site_id: str
    box_id: str
    violation: Violation
    evidence_jpeg: bytes | None
    evidence_sha256: str | None


@dataclass(frozen=True, slots=True)
class AcceptedStatus:
    """A valid edge-box status (the box's registration is checked by the writer)."""

    site_id: str
    box_id: str
    status: EdgeStatus
    retained: bool = False
    """Sent on (re)subscription: the box's state, but no proof it is alive now."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bad input: dead-lettered with ``reason``; ``code`` names the class of fault."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not ours to judge (e.g. a Zigbee device that maps to no sensor): counted, not stored."""

    reason: str


Outcome = AcceptedReadings | AcceptedPower | AcceptedViolation | AcceptedStatus | Rejected | Ignored


def clean_text(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Make untrusted text storable in a PostgreSQL text column (no NUL, bounded length)."""
    text = text.replace("\x00", "\\x00")
    if not text.isascii():  # lone surrogates cannot be encoded for the database
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _payload_code(exc: PayloadError) -> str:
    msg = str(exc)
    if msg.startswith("oversized"):
        return "oversized"
    if msg.startswith(("not JSON", "not a JSON")):
        return "not_json"
    if "in the future" in msg:
        return "future"
    if "before the site" in msg:
        return "too_old"
    return "invalid"


def _reject(exc: PayloadError) -> Rejected:
    return Rejected(_payload_code(exc), clean_text(str(exc)))


class Validator:
    """Validates messages against the contract and the sensor directory."""

    def __init__(
        self,
        directory: SensorDirectory,
        prefix: str = DEFAULT_PREFIX,
        zigbee_base: str | None = None,
        max_future_skew: timedelta = MAX_FUTURE_SKEW,
        backfill_grace: timedelta = BACKFILL_GRACE,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.zigbee_base = zigbee_base
        self._zigbee_prefix = f"{zigbee_base}/" if zigbee_base else "\x00"  # never a topic
        self.max_future_skew = max_future_skew
        self.backfill_grace = backfill_grace

    def _check_times(self, model: BaseModel, site_id: str, received_at: datetime) -> None:
        """Every time of ``model``: not further ahead of arrival than the allowed clock skew,
        not before the site's registration (less the backfill grace) where it is known."""
        registered = self.directory.site_registered_at(site_id)
        floor = None if registered is None else registered - self.backfill_grace
        for field, ts in times_of(model):
            check_not_future(ts, received_at, self.max_future_skew, field)
            if floor is not None:
                check_not_before(
                    ts, floor, f"the site {site_id!r} was registered ({registered:%Y-%m-%d})", field
                )

    def __call__(
        self, topic: str, raw: bytes, received_at: datetime, retained: bool = False
    ) -> Outcome:
        """Validate one message; never raises for bad input. ``retained``: the broker sent
        it because a subscription was made, not because it was just published."""
        try:
            outcome = self._validate(topic, raw, received_at)
        except PayloadError as exc:
            return _reject(exc)
        except TopicError as exc:
            return Rejected("topic", clean_text(str(exc)))
        except Exception as exc:
            # A fault no check names (a library raising something other than a validation
            # error) is still this message's fault: dead-letter it with its type rather than
            # leave it unacknowledged, redelivered and holding an in-flight slot for ever.
            return Rejected("invalid", clean_text(f"unexpected {type(exc).__name__}: {exc}"))
        return self._retained(topic, outcome) if retained else outcome

    def _retained(self, topic: str, outcome: Outcome) -> Outcome:
        """What a retained message (sent on subscribing, not just published) is worth."""
        if isinstance(outcome, AcceptedReadings | AcceptedPower) and topic.startswith(
            self._zigbee_prefix
        ):
            # A Zigbee2MQTT state carries no time: stamped on arrival, a retained one seen
            # again on every (re)subscription became a new reading "now" of a sensor that
            # may have been silent for hours, and cleared its sensor_offline alarm.
            return Ignored("retained Zigbee2MQTT state: it has no time of its own")
        if isinstance(outcome, AcceptedStatus):
            return replace(outcome, retained=True)
        return outcome

    def _validate(  # noqa: PLR0911 - one return per topic kind and fault
        self, topic: str, raw: bytes, received_at: datetime
    ) -> Outcome:
        parsed = parse_topic(topic, self.prefix, self.zigbee_base)
        kind, site_id, device_id = parsed.kind, parsed.site_id, parsed.device_id
        if kind is TopicKind.READING or kind is TopicKind.READINGS:
            assert site_id is not None
            assert device_id is not None
            bad = self._check_sensor(site_id, device_id)
            if bad is not None:
                return bad
            registered = self.directory.site_registered_at(site_id)
            floor = None if registered is None else registered - self.backfill_grace
            single = kind is TopicKind.READING
            lean = lean_batch(raw, single, received_at, self.max_future_skew, floor)
            if lean is not None:
                return AcceptedReadings(device_id, lean)
            if single:
                reading = decode(SensorReading, raw)
                self._check_times(reading, site_id, received_at)
                return AcceptedReadings(device_id, (reading,))
            batch = decode(ReadingBatch, raw)
            self._check_times(batch, site_id, received_at)
            return AcceptedReadings(device_id, tuple(batch.readings))
        if kind is TopicKind.POWER:
            assert site_id is not None
            assert device_id is not None
            bad = self._check_sensor(site_id, device_id) or self._check_plug(device_id)
            if bad is not None:
                return bad
            sample = decode(PowerReading, raw)
            self._check_times(sample, site_id, received_at)
            return AcceptedPower(device_id, (sample,))
        if kind is TopicKind.ZIGBEE:
            assert device_id is not None
            cabinet = self.directory.by_plug(device_id)
            if cabinet is not None:
                plug = decode(ZigbeePlugState, raw)
                if not plug.measured:
                    return Ignored(f"zigbee plug {device_id!r}: state without power or current")
                return AcceptedPower(cabinet.sensor_id, (plug.to_reading(received_at),))
            info = self.directory.by_zigbee(device_id)
            if info is None:
                return Ignored(f"zigbee device {device_id!r} maps to no sensor")
            state = decode(ZigbeeState, raw)
            return AcceptedReadings(info.sensor_id, (state.to_reading(received_at),))
        if kind is TopicKind.VIOLATION:
            assert site_id is not None
            assert device_id is not None
            return self._violation(site_id, device_id, raw, received_at)
        if kind is TopicKind.STATUS:
            assert site_id is not None
            assert device_id is not None
            status = decode(EdgeStatus, raw)
            if status.box_id != device_id:
                return Rejected(
                    "box_mismatch",
                    clean_text(
                        f"box mismatch: payload box_id {status.box_id!r}, topic {device_id!r}"
                    ),
                )
            self._check_times(status, site_id, received_at)
            return AcceptedStatus(site_id, device_id, status)
        return Rejected("topic", clean_text(f"not an ingest topic: {topic!r}"))

    def _check_sensor(self, site_id: str, sensor_id: str) -> Rejected | None:
        info = self.directory.get(sensor_id)
        if info is None:
            return Rejected("unknown_sensor", f"unknown sensor: {sensor_id!r} is not registered")
        if info.site_id != site_id:
            return Rejected(
                "site_mismatch",
                f"site mismatch: sensor {sensor_id!r} belongs to {info.site_id!r}, topic says "
                f"{site_id!r}",
            )
        return None

    def _check_plug(self, sensor_id: str) -> Rejected | None:
        info = self.directory.get(sensor_id)
        if info is not None and not info.has_plug:
            return Rejected(
                "no_plug",
                f"power_w: sensor {sensor_id!r} is not a disinfection cabinet with a plug "
                "(cabinet.plug in the site file)",
            )
        return None

    def _violation(self, site_id: str, box_id: str, raw: bytes, received_at: datetime) -> Outcome:
        v = decode(Violation, raw)
        self._check_times(v, site_id, received_at)
        jpeg: bytes | None = None
        sha: str | None = None
        ev = v.evidence
        if ev is not None:
            sha = ev.sha256
            if ev.jpeg_b64 is not None:
                try:
                    jpeg = base64.b64decode(ev.jpeg_b64, validate=True)
                except (binascii.Error, ValueError) as exc:
                    return Rejected("evidence", clean_text(f"evidence.jpeg_b64: not base64: {exc}"))
                digest = hashlib.sha256(jpeg).hexdigest()
                if sha is not None and sha != digest:
                    return Rejected(
                        "evidence", f"evidence.sha256 mismatch: payload {sha}, image {digest}"
                    )
                sha = digest
        return AcceptedViolation(site_id, box_id, v, jpeg, sha)
