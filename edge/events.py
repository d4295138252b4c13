"""What the vision stages hand to delivery: a decided violation with its frame and boxes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class EvidenceBox:
    """A box to draw on the evidence image, in pixels of ``ViolationEvent.frame``."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ViolationEvent:
    """A violation the rules decided on one camera; delivery turns it into evidence + outbox row."""

    rule: str
    camera_id: str
    zone_id: str | None
    started_at: datetime
    ended_at: datetime | None
    confidence: float
    track_id: int | None
    model_version: str
    frame: npt.NDArray[np.uint8]  # BGR frame at decision time (full camera resolution)
    boxes: list[EvidenceBox] = field(default_factory=list)
    zone_polygon: list[tuple[float, float]] | None = None
    details: dict[str, Any] = field(default_factory=dict)
