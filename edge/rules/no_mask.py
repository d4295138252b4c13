"""``no_mask`` (未戴口罩): a tracked face without a correctly worn mask in a mask-required zone.

Worn under the nose (``mask_weared_incorrect``) counts as a violation. A track
fires when bad frames make up ``min_share`` of the analysed frames over
``window_s`` (flicker does not alarm), then stays quiet for ``cooldown_s``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from pydantic import Field

from edge.detect.base import Detections
from edge.events import EvidenceBox, ViolationEvent
from edge.rules.base import FrameContext, HoldWindow, RuleConfig
from edge.zones import CameraZone


class NoMaskConfig(RuleConfig):
    """Settings of the no_mask rule."""

    bad_classes: list[str] = Field(
        default_factory=lambda: ["without_mask", "no_mask", "mask_weared_incorrect"],
        description="Classes that mean no mask or a mask worn wrongly.",
    )
    good_classes: list[str] = Field(
        default_factory=lambda: ["with_mask", "mask"], description="Classes that mean a worn mask."
    )


class NoMaskRule:
    """Per-track hold window over mask classes inside mask-required zones."""

    name = "no_mask"

    def __init__(self, config: NoMaskConfig) -> None:
        """Create the rule with its configuration."""
        self.config = config
        self._windows: dict[int, HoldWindow] = {}
        self._zone_of: dict[int, CameraZone] = {}
        self._last_event: dict[int, datetime] = {}

    def update(self, ctx: FrameContext) -> list[ViolationEvent]:
        """Add this frame's observations to each track's window and decide."""
        cfg = self.config
        if not ctx.detected or not cfg.enabled:
            return []
        if not cfg.active_at(ctx.ts):
            self._windows.clear()
            return []
        bad_ids = ctx.class_ids(set(cfg.bad_classes))
        mask_ids = ctx.class_ids(set(cfg.bad_classes) | set(cfg.good_classes))
        d = ctx.detections
        keep = np.isin(d.class_id, mask_ids) & (d.confidence >= cfg.min_confidence)
        if d.tracker_id is not None:
            keep &= d.tracker_id >= 0
        else:
            keep[:] = False
        d = d.select(keep)
        zones = ctx.zones.first_containing(d.anchors("center"), ctx.zones.mask_zones())
        seen: dict[int, int] = {}
        for i, zone in enumerate(zones):
            if zone is not None and d.tracker_id is not None:
                tid = int(d.tracker_id[i])
                seen[tid] = i
                self._zone_of[tid] = zone
        events: list[ViolationEvent] = []
        for tid in set(self._windows) | set(seen):
            window = self._windows.setdefault(tid, HoldWindow(last_event=self._last_event.get(tid)))
            i_det = seen.get(tid)
            bad = i_det is not None and bool(np.isin(d.class_id[i_det], bad_ids))
            conf = float(d.confidence[i_det]) if i_det is not None else 0.0
            window.add(ctx.ts, bad, conf, cfg.window_s)
            if not any(b for _, b, _ in window.frames) and i_det is None:
                del self._windows[tid]  # gone and nothing pending
                continue
            fires, share, mean_conf = window.decide(ctx.ts, cfg)
            if fires and i_det is not None:
                window.last_event = ctx.ts
                self._last_event[tid] = ctx.ts
                events.append(
                    self._event(
                        ctx, tid=tid, i=i_det, d=d, window=window, share=share, mean_conf=mean_conf
                    )
                )
        return events

    def _event(
        self,
        ctx: FrameContext,
        *,
        tid: int,
        i: int,
        d: Detections,
        window: HoldWindow,
        share: float,
        mean_conf: float,
    ) -> ViolationEvent:
        zone = self._zone_of[tid]
        x1, y1, x2, y2 = (float(v) for v in d.xyxy[i])
        label = ctx.class_names[int(d.class_id[i])]
        return ViolationEvent(
            rule=self.name,
            camera_id=ctx.camera_id,
            zone_id=zone.id,
            started_at=window.started_at(),
            ended_at=None,
            confidence=round(min(max(mean_conf, 0.0), 1.0), 4),
            track_id=tid,
            model_version=ctx.model_version,
            frame=ctx.frame,
            boxes=[EvidenceBox(x1, y1, x2, y2, label, float(d.confidence[i]))],
            zone_polygon=zone.points(),
            details={
                "class": label,
                "share": round(share, 3),
                "frames": len(window.frames),
                "window_s": self.config.window_s,
                "zone_kind": zone.kind,
            },
        )
