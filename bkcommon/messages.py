"""Versioned MQTT payload schemas, validated on both sides of every topic.

Every payload carries ``schema_version``; times are RFC 3339 with an offset and
are normalised to UTC; units are in field names. ``decode_*`` helpers turn raw
bytes into models and raise :class:`PayloadError` with a reason suitable for the
dead-letter table.

Every numeric, time and text field is bounded by what stores or consumes it (the
columns of ``brightkitchen/migrations`` and physical sense), so a payload that passes
the contract also fits the database: one message that validates and then cannot be
written would otherwise be redelivered forever and stop ingest.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bkcommon.disinfection import CURRENT_MAX_A, ENERGY_MAX_KWH, POWER_MAX_W, VOLTAGE_MAX_V
from bkcommon.errors import PayloadError
from bkcommon.timeutil import to_utc, utcnow

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest payload ingest accepts (a violation with an inline JPEG fits under it)."""

MAX_BATCH_READINGS = 5000
"""Largest gateway batch; a gateway replaying an hour of 1/s readings needs 3600."""

TEMP_MIN_C = -80.0
TEMP_MAX_C = 300.0
"""Physical range of kitchen temperature probes (ultra-low freezers to fryers and ovens);
outside it is a broken sensor."""

MAX_FUTURE_SKEW = timedelta(minutes=5)
"""Readings stamped further in the future than this are rejected (clock fault)."""

TIME_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
"""No brightkitchen device existed before this: an earlier time (the epoch, year 1) is a
clock that was never set. Ingest also refuses times before the site's registration."""

INT32_MAX = 2**31 - 1
"""Largest PostgreSQL ``integer`` (violations.track_id)."""

BIGINT_MAX = 2**63 - 1
"""Largest PostgreSQL ``bigint`` (sensor_readings.seq; counters read back as bigint)."""

MAX_ID_CHARS = 64
"""Longest device, camera, zone or event id (what the registry and the topics allow)."""

MAX_DETAILS_DEPTH = 8
"""Deepest nesting of a violation's free-form ``details`` (stored as jsonb)."""

MAX_BOX_PX = 100_000.0
"""Largest pixel coordinate or image side anyone will draw (and far above any camera)."""

MAX_ZONE_POINTS = 256
"""Most corners of a zone outline sent with the evidence (a site file's zones have a handful)."""


def _storable_text(v: str) -> str:
    """Refuse text PostgreSQL cannot store: NUL (text and jsonb reject it) and lone UTF-16
    surrogates (not encodable as UTF-8, so the driver would raise on the whole batch)."""
    if "\x00" in v:
        raise ValueError("contains a NUL character")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text: {exc.reason}") from None
    return v


def _utc(v: datetime) -> datetime:
    """The time in UTC. 9999-12-31T23:59:59-01:00 has no UTC form (it is in the year 10000):
    Python raises OverflowError, which pydantic does not turn into a validation error, so it
    escaped the validator and left the message unacknowledged, redelivered for ever."""
    try:
        return to_utc(v)
    except OverflowError:
        raise ValueError("a time beyond the year 9999 once in UTC") from None


FLOAT4_MIN_NORMAL = 1.1754943508222875e-38


def _as_real(v: float) -> float:
    """Where a PostgreSQL ``real`` (float4) column would refuse the value, round it as
    float4 does: a nonzero value too small for float4 (say 1e-300) is an underflow error
    there. Other values pass unchanged (the column rounds them itself); checked first,
    since this runs for every reading."""
    if v == 0.0 or abs(v) >= FLOAT4_MIN_NORMAL:
        return v
    return float(struct.unpack("f", struct.pack("f", v))[0])


Text = Annotated[str, AfterValidator(_storable_text)]
"""Text that a PostgreSQL text or jsonb column accepts."""

Real = Annotated[float, AfterValidator(_as_real)]
"""A float stored in a ``real`` column, rounded to its precision. Every measured value of a
contract is declared ``strict``: a number (integers too), never ``true`` (lax mode read it as
1.0) nor a numeric string."""

UtcTime = Annotated[
    AwareDatetime,
    Field(
        ge=TIME_FLOOR,
        description="RFC 3339 time with offset, stored as UTC; not before 2000-01-01 (earlier "
        "is a clock that was never set)",
    ),
    AfterValidator(_utc),
]


def _check_json_value(v: Any, path: str, depth: int) -> None:
    """Walk free-form JSON: storable text, finite numbers within bigint, bounded depth."""
    if depth > MAX_DETAILS_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DETAILS_DEPTH}")
    if isinstance(v, str):
        try:
            _storable_text(v)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    elif isinstance(v, bool) or v is None:
        return
    elif isinstance(v, int):
        if not -BIGINT_MAX - 1 <= v <= BIGINT_MAX:
            raise ValueError(f"{path}: integer outside the 64-bit range")
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{path}: not a finite number")
    elif isinstance(v, dict):
        for k, item in v.items():
            try:
                _storable_text(str(k))
            except ValueError as exc:
                raise ValueError(f"{path}: key {exc}") from None
            _check_json_value(item, f"{path}.{k}", depth + 1)
    elif isinstance(v, list):
        for i, item in enumerate(v):
            _check_json_value(item, f"{path}.{i}", depth + 1)
    else:
        raise ValueError(f"{path}: not a JSON value ({type(v).__name__})")


class Contract(BaseModel):
    """Base of every payload: strict about unknown keys, frozen once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(
        default=1, description="Payload schema version; bump on breaking change."
    )


class SensorReading(Contract):
    """One reading of a temperature sensor.

    Example:
        >>> r = SensorReading.model_validate({"ts": "2026-01-01T00:00:00Z", "temp_c": 4.5})
        >>> r.temp_c
        4.5
    """

    ts: UtcTime
    seq: int | None = Field(
        default=None,
        ge=0,
        le=BIGINT_MAX,
        description="Sender's monotonically rising counter (sensor_readings.seq is bigint)",
    )
    # strict: a JSON true is not 1.0 °C (lax mode made it one); numbers, integers included, pass
    temp_c: float = Field(ge=TEMP_MIN_C, le=TEMP_MAX_C, allow_inf_nan=False, strict=True)
    humidity_pct: Real | None = Field(default=None, strict=True, ge=0, le=100, allow_inf_nan=False)
    door_open: bool | None = None
    battery_pct: Real | None = Field(default=None, strict=True, ge=0, le=100, allow_inf_nan=False)


class ReadingBatch(Contract):
    """A gateway batch of readings of one sensor (for example replayed after an outage)."""

    readings: list[SensorReading] = Field(min_length=1, max_length=MAX_BATCH_READINGS)


class ZigbeeState(BaseModel):
    """The subset of a Zigbee2MQTT device state we map to a reading; other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    temperature: float = Field(ge=TEMP_MIN_C, le=TEMP_MAX_C, allow_inf_nan=False, strict=True)
    humidity: Real | None = Field(default=None, strict=True, ge=0, le=100, allow_inf_nan=False)
    battery: Real | None = Field(default=None, strict=True, ge=0, le=100, allow_inf_nan=False)
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


class PowerReading(Contract):
    """One sample of a disinfection cabinet's smart plug: its power and/or current.

    Published by the cabinet's gateway on ``bk/v1/<site>/sensor/<cabinet>/power``; a
    Zigbee2MQTT plug's state maps to it (:class:`ZigbeePlugState`). Bounds: no negative or
    non-finite value, nothing above what one kitchen supply can carry.

    Example:
        >>> PowerReading.model_validate({"ts": "2026-01-01T00:00:00Z", "power_w": 1180}).power_w
        1180.0
    """

    ts: UtcTime
    seq: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    power_w: float | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=POWER_MAX_W,
        allow_inf_nan=False,
        description="Active power, W",
    )
    current_a: float | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=CURRENT_MAX_A,
        allow_inf_nan=False,
        description="Current, A",
    )
    voltage_v: Real | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=VOLTAGE_MAX_V,
        allow_inf_nan=False,
        description="Voltage, V (cabinet_power.voltage_v is a real)",
    )
    energy_kwh: float | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=ENERGY_MAX_KWH,
        allow_inf_nan=False,
        description="The plug's cumulative energy counter, kWh",
    )
    switch_on: bool | None = Field(default=None, description="The plug's relay: true = on")

    @model_validator(mode="after")
    def _measures(self) -> PowerReading:
        if self.power_w is None and self.current_a is None:
            raise ValueError("power_w: a plug sample needs power_w or current_a")
        return self


class ZigbeePlugState(BaseModel):
    """The subset of a Zigbee2MQTT smart plug's state we keep; other keys are ignored
    (a plug's own ``temperature`` is its chip's, not the cabinet's)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    power: float | None = Field(
        default=None, strict=True, ge=0, le=POWER_MAX_W, allow_inf_nan=False
    )
    current: float | None = Field(
        default=None, strict=True, ge=0, le=CURRENT_MAX_A, allow_inf_nan=False
    )
    voltage: float | None = Field(
        default=None, strict=True, ge=0, le=VOLTAGE_MAX_V, allow_inf_nan=False
    )
    energy: float | None = Field(
        default=None, strict=True, ge=0, le=ENERGY_MAX_KWH, allow_inf_nan=False
    )
    state: Literal["ON", "OFF", "on", "off"] | None = None

    @property
    def measured(self) -> bool:
        """True when the state says how much the plug draws (power or current)."""
        return self.power is not None or self.current is not None

    def to_reading(self, ts: datetime) -> PowerReading:
        """Map to a plug sample stamped ``ts`` (Zigbee2MQTT payloads carry no time)."""
        return PowerReading(
            ts=ts,
            power_w=self.power,
            current_a=self.current,
            voltage_v=self.voltage,
            energy_kwh=self.energy,
            switch_on=None if self.state is None else self.state.upper() == "ON",
        )


class BoxXYXY(BaseModel):
    """A box in pixels of the evidence image: x1, y1, x2, y2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x1: float = Field(ge=-MAX_BOX_PX, le=MAX_BOX_PX, allow_inf_nan=False)
    y1: float = Field(ge=-MAX_BOX_PX, le=MAX_BOX_PX, allow_inf_nan=False)
    x2: float = Field(ge=-MAX_BOX_PX, le=MAX_BOX_PX, allow_inf_nan=False)
    y2: float = Field(ge=-MAX_BOX_PX, le=MAX_BOX_PX, allow_inf_nan=False)
    label: Text = Field(default="", max_length=MAX_ID_CHARS)
    confidence: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)


Pixel = Annotated[float, Field(ge=-MAX_BOX_PX, le=MAX_BOX_PX, allow_inf_nan=False, strict=True)]
"""A finite pixel coordinate on an evidence image."""


class Evidence(BaseModel):
    """Evidence attached to a violation: an inline JPEG (base64) and/or its content hash.

    ``scale`` and ``zone_polygon_px`` describe the drawing for whoever takes it off again
    (the training export, ``models.captures``): the zone outline is drawn in the image's own
    pixels, which differ from the zone's (camera-native) pixels when the frame was shrunk to
    fit the evidence width. Both are optional: boxes that predate them send neither, and a
    consumer then cannot know where the outline lies. A box that records them sends ``scale``
    always and ``zone_polygon_px`` for every outline it drew, so ``scale`` without a polygon
    means no outline was drawn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    jpeg_b64: str | None = Field(default=None, max_length=MAX_PAYLOAD_BYTES)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    width_px: int | None = Field(default=None, gt=0, le=int(MAX_BOX_PX))
    height_px: int | None = Field(default=None, gt=0, le=int(MAX_BOX_PX))
    boxes: list[BoxXYXY] = Field(default_factory=list, max_length=1000)
    scale: float | None = Field(
        default=None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        strict=True,
        description="Evidence pixels per pixel of the event's frame (1 = not shrunk; the "
        "evidence is never enlarged)",
    )
    zone_polygon_px: list[tuple[Pixel, Pixel]] | None = Field(
        default=None,
        min_length=3,
        max_length=MAX_ZONE_POINTS,
        description="The zone outline as drawn, in pixels of the evidence image; absent when "
        "no outline was drawn",
    )


class Violation(Contract):
    """A hygiene violation decided by an edge box (one per event id, resent until acked)."""

    event_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    rule: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    camera_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    zone: Text | None = Field(default=None, max_length=MAX_ID_CHARS)
    started_at: UtcTime
    ended_at: UtcTime | None = None
    confidence: Real = Field(ge=0, le=1, allow_inf_nan=False, strict=True)
    track_id: int | None = Field(
        default=None, ge=0, le=INT32_MAX, description="violations.track_id is an integer"
    )
    model_version: Text = Field(default="", max_length=128)
    evidence: Evidence | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _details_fit_jsonb(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_json_value(v, "details", 1)
        return v

    @model_validator(mode="after")
    def _ends_after_start(self) -> Violation:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


class CameraStatus(BaseModel):
    """Health of one camera as seen by its edge box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    online: bool
    fps: float = Field(default=0.0, ge=0, le=1000, allow_inf_nan=False)
    skipped_fps: float = Field(default=0.0, ge=0, le=1000, allow_inf_nan=False)
    inference_ms: float = Field(default=0.0, ge=0, le=3_600_000, allow_inf_nan=False)
    problem: Text | None = Field(
        default=None, max_length=200, description="offline, frozen, covered, blurred"
    )


class EdgeStatus(Contract):
    """Retained status of an edge box; the last will publishes ``online=false``."""

    box_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    ts: UtcTime
    online: bool
    cameras: list[CameraStatus] = Field(default_factory=list, max_length=256)
    outbox_depth: int = Field(default=0, ge=0, le=BIGINT_MAX)
    outbox_dropped_total: int = Field(
        default=0,
        ge=0,
        le=BIGINT_MAX,
        description="Messages dropped oldest-first from a full outbox",
    )
    model_version: Text = Field(default="", max_length=128)


class AlertLevel(StrEnum):
    """How loudly a kitchen display should show an alert."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(Contract):
    """A pop-up reminder for kitchen displays (自动弹窗提醒)."""

    alert_id: Text = Field(min_length=1, max_length=128)
    ts: UtcTime
    level: AlertLevel
    rule: Text = Field(max_length=MAX_ID_CHARS)
    title: Text = Field(max_length=200)
    message: Text = Field(default="", max_length=2000)
    camera_id: Text | None = Field(default=None, max_length=MAX_ID_CHARS)
    sensor_id: Text | None = Field(default=None, max_length=MAX_ID_CHARS)
    snapshot_url: Text | None = Field(default=None, max_length=2000)


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
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers of more than 4300 digits;
        # RecursionError, arrays or objects nested thousands deep: all bad input, none a
        # reason to raise out of the worker's network thread.
        raise PayloadError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"not a JSON object: {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(f"invalid {model.__name__}: {_first_error(exc)}") from exc


def check_not_future(
    ts: datetime,
    now: datetime | None = None,
    skew: timedelta = MAX_FUTURE_SKEW,
    field: str = "ts",
) -> None:
    """Raise PayloadError when ``ts`` is further in the future than ``skew`` (a clock fault)."""
    now = now or utcnow()
    if ts - now > skew:
        raise PayloadError(f"{field}: timestamp {ts.isoformat()} is {ts - now} in the future")


def check_not_before(ts: datetime, floor: datetime, what: str, field: str = "ts") -> None:
    """Raise PayloadError when ``ts`` is before ``floor`` (for example the site's registration)."""
    if ts < floor:
        raise PayloadError(f"{field}: timestamp {ts.isoformat()} is before {what}")


def times_of(model: BaseModel) -> Iterator[tuple[str, datetime]]:
    """Yield (field path, time) of every time in a payload, for checks that need "now" or
    the registry (future skew, site registration), which the contract alone cannot know."""
    if isinstance(model, SensorReading | PowerReading):
        yield "ts", model.ts
    elif isinstance(model, ReadingBatch):
        for i, r in enumerate(model.readings):
            yield f"readings.{i}.ts", r.ts
    elif isinstance(model, Violation):
        yield "started_at", model.started_at
        if model.ended_at is not None:
            yield "ended_at", model.ended_at
    elif isinstance(model, EdgeStatus | Alert):
        yield "ts", model.ts


def encode(model: BaseModel) -> bytes:
    """Serialise a payload model to compact JSON bytes."""
    return model.model_dump_json(exclude_none=True).encode()
