"""What every rule shares: its configuration, working-hours schedule, frame context and state."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkcommon.localtime import DEFAULT_TIME_ZONE
from edge.detect.base import Detections
from edge.events import ViolationEvent
from edge.zones import ZoneSet

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE_RE = re.compile(
    r"^(?:(?P<d1>mon|tue|wed|thu|fri|sat|sun)(?:-(?P<d2>mon|tue|wed|thu|fri|sat|sun))?\s+)?"
    r"(?P<h1>\d{2}):(?P<m1>\d{2})-(?P<h2>\d{2}):(?P<m2>\d{2})$"
)


def parse_schedule_entry(entry: str) -> tuple[frozenset[int], time, time]:
    """Parse ``"mon-fri 06:00-20:00"`` / ``"sat 08:00-12:00"`` / ``"06:00-20:00"`` (every day).

    Example:
        >>> days, start, end = parse_schedule_entry("mon-fri 06:00-20:00")
        >>> sorted(days), start.hour, end.hour
        ([0, 1, 2, 3, 4], 6, 20)
    """
    m = _SCHEDULE_RE.match(entry.strip().lower())
    if not m:
        raise ValueError(f"schedule entry {entry!r} is not like 'mon-fri 06:00-20:00'")
    d1, d2 = m["d1"], m["d2"]
    if d1 is None:
        days = frozenset(range(7))
    else:
        a, b = DAYS.index(d1), DAYS.index(d2 or d1)
        days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(b + 1)])
    try:
        start = time(int(m["h1"]), int(m["m1"]))
        end = time(23, 59, 59) if m["h2"] == "24" else time(int(m["h2"]), int(m["m2"]))
    except ValueError as exc:
        raise ValueError(f"schedule entry {entry!r}: {exc}") from exc
    return days, start, end


class RuleConfig(BaseModel):
    """Settings every rule understands; a rule may subclass it with its own fields."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    schedule: list[str] = Field(
        default_factory=list,
        description="Working hours when the rule applies, e.g. ['mon-fri 06:00-20:00']; "
        "empty = always.",
    )
    timezone: str = Field(default=DEFAULT_TIME_ZONE, description="Zone of the schedule's clock.")
    window_s: float = Field(default=3.0, gt=0, description="How long a violation must hold.")
    min_share: float = Field(default=0.6, gt=0, le=1, description="Share of frames in the window.")
    min_frames: int = Field(default=3, ge=1, description="Fewest analysed frames in the window.")
    cooldown_s: float = Field(
        default=60.0, ge=0, description="Quiet time per subject after an event."
    )
    min_confidence: float = Field(default=0.4, ge=0, le=1, description="Ignore weaker detections.")

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, v: list[str]) -> list[str]:
        for entry in v:
            parse_schedule_entry(entry)
        return v

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def active_at(self, ts: datetime) -> bool:
        """Whether ``ts`` falls in the working hours (always when no schedule is set)."""
        if not self.schedule:
            return True
        local = ts.astimezone(ZoneInfo(self.timezone))
        t = local.time()
        day = local.weekday()
        for entry in self.schedule:
            days, start, end = parse_schedule_entry(entry)
            if start <= end:
                if day in days and start <= t <= end:
                    return True
            # overnight, e.g. "22:00-06:00": the evening of a listed day and the morning after
            elif (day in days and t >= start) or ((day - 1) % 7 in days and t <= end):
                return True
        return False


@dataclass(frozen=True, slots=True)
class FrameContext:
    """One analysed frame as the rules see it."""

    camera_id: str
    ts: datetime
    frame: npt.NDArray[np.uint8]
    detections: Detections  # tracked, in frame pixels
    detected: bool  # False when the detector did not run (no motion): no news about objects
    class_names: list[str]
    zones: ZoneSet
    model_version: str
    wall_ts: datetime | None = None  # the camera's wall-clock time when ``ts`` was shifted

    @property
    def clock_ts(self) -> datetime:
        """Wall-clock time of the frame (for working hours); ``ts`` orders frames."""
        return self.wall_ts if self.wall_ts is not None else self.ts

    def class_ids(self, names: frozenset[str] | set[str]) -> npt.NDArray[np.int64]:
        """Ids of the given class names that the model has."""
        return np.array([i for i, n in enumerate(self.class_names) if n in names], np.int64)


class Rule(Protocol):
    """A rule turns frames into violation events; it keeps its own state between frames."""

    name: str

    def update(self, ctx: FrameContext) -> list[ViolationEvent]:
        """Consume one analysed frame; return the violations decided on it."""
        ...


@dataclass(slots=True)
class HoldWindow:
    """Frames of one subject within the window: (time, bad?, confidence) and a cooldown."""

    frames: deque[tuple[datetime, bool, float]] = field(default_factory=deque)
    first_seen: datetime | None = None
    last_event: datetime | None = None

    def add(self, ts: datetime, bad: bool, confidence: float, window_s: float) -> None:
        """Record a frame and drop those older than the window.

        A subject unseen for longer than the window starts afresh: it must hold for a
        whole window again (a glimpse long ago does not shorten today's wait).
        """
        if self.frames and (ts - self.frames[-1][0]).total_seconds() > window_s:
            self.frames.clear()
        if self.first_seen is None or not self.frames:
            self.first_seen = ts
        self.frames.append((ts, bad, confidence))
        self.expire(ts, window_s)

    def expire(self, ts: datetime, window_s: float) -> None:
        """Drop the frames older than the window (a frame without news of the subject)."""
        while self.frames and (ts - self.frames[0][0]).total_seconds() > window_s:
            self.frames.popleft()

    def decide(self, ts: datetime, cfg: RuleConfig) -> tuple[bool, float, float]:
        """Return (fires, share of bad frames, mean bad confidence), honouring the cooldown."""
        n = len(self.frames)
        bad = [c for _, b, c in self.frames if b]
        share = len(bad) / n if n else 0.0
        if self.first_seen is None or (ts - self.first_seen).total_seconds() < cfg.window_s * 0.99:
            return False, share, 0.0
        if n < cfg.min_frames or share < cfg.min_share:
            return False, share, 0.0
        if self.last_event is not None and (ts - self.last_event).total_seconds() < cfg.cooldown_s:
            return False, share, 0.0
        return True, share, float(np.mean(bad))

    def started_at(self) -> datetime:
        """Time of the first bad frame in the window."""
        return next(t for t, b, _ in self.frames if b)
