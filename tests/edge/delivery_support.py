"""Helpers of the delivery tests: a synthetic violation event on a real frame."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from edge.events import EvidenceBox, ViolationEvent


def make_frame(width: int = 640, height: int = 360, seed: int = 0) -> np.ndarray:
    """A noisy BGR frame (noise keeps JPEGs realistically large)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def make_event(
    rule: str = "no_mask",
    camera_id: str = "cam-1",
    width: int = 640,
    height: int = 360,
    seed: int = 0,
) -> ViolationEvent:
    """A violation event as the vision half would hand it over."""
    return ViolationEvent(
        rule=rule,
        camera_id=camera_id,
        zone_id="prep",
        started_at=datetime(2026, 3, 1, 4, 5, 6, tzinfo=UTC),
        ended_at=None,
        confidence=0.87,
        track_id=7,
        model_version="mask_yolo-test",
        frame=make_frame(width, height, seed),
        boxes=[
            EvidenceBox(
                x1=width * 0.2,
                y1=height * 0.2,
                x2=width * 0.4,
                y2=height * 0.7,
                label="no_mask",
                confidence=0.87,
            )
        ],
        zone_polygon=[(0, 0), (width * 0.8, 0), (width * 0.8, height - 1), (0, height - 1)],
        details={"frames": 12, "score": np.float32(0.5)},
    )
