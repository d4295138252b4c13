"""Versioned MQTT payload schemas, validated on both sides of every topic.

Every payload carries ``schema_version``; times are RFC 3339 with an offset and
are normalised to UTC; units are in field names. ``decode_*`` helpers turn raw
bytes into models and raise :class:`PayloadError` with a reason suitable for the
dead-letter table.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from bkcommon.errors import PayloadError
from bkcommon.timeutil import to_utc, utcnow

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest payload ingest accepts (a violation with an inline JPEG fits under it)."""

MAX_BATCH_READINGS = 5000
"""Largest gateway batch; a gateway replaying an hour of 1/s readings needs 3600."""

TEMP_MIN_C = -60.0
TEMP_MAX_C = 150.0
"""Physical range of food-service temperature probes; outside it is a broken sensor."""

MAX_FUTURE_SKEW = timedelta(minutes=5)
"""Readings stamped further in the future than this are rejected (clock fault)."""

UtcTime = Annotated[AwareDatetime, Field(description="RFC 3339 time with offset, stored as UTC")]


class Contract(BaseModel):
    """Base of every payload: strict about unknown keys, frozen once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(
        default=1, description="Payload schema version; bump on breaking change."
    )


def _utc(v: datetime) -> datetime:
    return to_utc(v)


class SensorReading(Contract):
    """One reading of a temperature sensor.

    Example:
        >>> r = SensorReading.model_validate({"ts": "2026-01-01T00:00:00Z", "temp_c": 4.5})
        >>> r.temp_c
        4.5
    """

    ts: UtcTime
    seq: int | None = Field(default=None, ge=0, description="Sender's monotonically rising counter")
    temp_c: float = Field(ge=TEMP_MIN_C, le=TEMP_MAX_C, allow_inf_nan=False)
    humidity_pct: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    door_open: bool | None = None
    battery_pct: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)

    _norm_ts = field_validator("ts")(_utc)


class ReadingBatch(Contract):
    """A gateway batch of readings of one sensor (for example replayed after an outage)."""

    readings: list[SensorReading] = Field(min_length=1, max_length=MAX_BATCH_READINGS)


class ZigbeeState(BaseModel):
    """The subset of a Zigbee2MQTT device state we map to a reading; other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    temperature: float = Field(ge=TEMP_MIN_C, le=TEMP_MAX_C, allow_inf_nan=False)
    humidity: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    battery: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    contact: bool | None = Field(default=None, description="Door contact: true = closed")

    def to_reading(self, ts: datetime) -> SensorReading:
        """Map to a reading stamped ``ts`` (Zigbee2MQTT payloads carry no time)."""
        door = None if self.contact is None else not self.contact
        return SensorReading(
            ts=ts,
            temp_c=self.temperature,
            humidity_pct=self.humidity,
            battery_pct=self.battery,
            door_open=door,
        )


class BoxXYXY(BaseModel):
    """A box in pixels of the evidence image: x1, y1, x2, y2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    confidence: float = Field(default=0.0, ge=0, le=1)


class Evidence(BaseModel):
    """Evidence attached to a violation: an inline JPEG (base64) and/or its content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jpeg_b64: str | None = Field(default=None, max_length=MAX_PAYLOAD_BYTES)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    width_px: int | None = Field(default=None, gt=0)
    height_px: int | None = Field(default=None, gt=0)
    boxes: list[BoxXYXY] = Field(default_factory=list)


class Violation(Contract):
    """A hygiene violation decided by an edge box (one per event id, resent until acked)."""

    event_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    rule: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    camera_id: str = Field(min_length=1, max_length=64)
    zone: str | None = Field(default=None, max_length=64)
    started_at: UtcTime
    ended_at: UtcTime | None = None
    confidence: float = Field(ge=0, le=1)
    track_id: int | None = None
    model_version: str = Field(default="", max_length=128)
    evidence: Evidence | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    _norm_started = field_validator("started_at")(_utc)

    @field_validator("ended_at")
    @classmethod
    def _norm_ended(cls, v: datetime | None) -> datetime | None:
        return None if v is None else to_utc(v)


class CameraStatus(BaseModel):
    """Health of one camera as seen by its edge box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str
    online: bool
    fps: float = 0.0
    skipped_fps: float = 0.0
    inference_ms: float = 0.0
    problem: str | None = Field(default=None, description="offline, frozen, covered, blurred")


class EdgeStatus(Contract):
    """Retained status of an edge box; the last will publishes ``online=false``."""

    box_id: str
    ts: UtcTime
    online: bool
    cameras: list[CameraStatus] = Field(default_factory=list)
    outbox_depth: int = Field(default=0, ge=0)
    outbox_dropped_total: int = Field(
        default=0, ge=0, description="Messages dropped oldest-first from a full outbox"
    )
    model_version: str = ""


class AlertLevel(StrEnum):
    """How loudly a kitchen display should show an alert."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(Contract):
    """A pop-up reminder for kitchen displays (自动弹窗提醒)."""

    alert_id: str
    ts: UtcTime
    level: AlertLevel
    rule: str
    title: str = Field(max_length=200)
    message: str = Field(default="", max_length=2000)
    camera_id: str | None = None
    sensor_id: str | None = None
    snapshot_url: str | None = None


M = TypeVar("M", bound=BaseModel)


def _first_error(exc: ValidationError) -> str:
    errs = exc.errors()
    parts = []
    for e in errs[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    return "; ".join(parts) + more


def decode(model: type[M], raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    """Parse raw MQTT bytes into ``model``; raise PayloadError with a short reason.

    Example:
        >>> decode(SensorReading, b'{"ts":"2026-01-01T00:00:00Z","temp_c":3}').temp_c
        3.0
    """
    if len(raw) > max_bytes:
        raise PayloadError(f"oversized: {len(raw)} bytes > {max_bytes}")
    try:  # fast path: pydantic-core parses and validates in one pass (ingest's hot path)
        return model.model_validate_json(raw)
    except (ValidationError, ValueError):
        pass  # redo it step by step below, for a precise reason
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"not a JSON object: {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(f"invalid {model.__name__}: {_first_error(exc)}") from exc


def check_not_future(
    ts: datetime, now: datetime | None = None, skew: timedelta = MAX_FUTURE_SKEW
) -> None:
    """Raise PayloadError when ``ts`` is further in the future than ``skew`` (a clock fault)."""
    now = now or utcnow()
    if ts - now > skew:
        raise PayloadError(f"timestamp {ts.isoformat()} is {ts - now} in the future")


def encode(model: BaseModel) -> bytes:
    """Serialise a payload model to compact JSON bytes."""
    return model.model_dump_json(exclude_none=True).encode()
