"""``no_mask`` (未戴口罩): a tracked face without a correctly worn mask in a mask-required zone.

Worn under the nose (``mask_weared_incorrect``) counts as a violation. A track
fires when bad frames make up ``min_share`` of the analysed frames it was seen
on over ``window_s`` (flicker does not alarm; a look that missed the face is no
news), then stays quiet for ``cooldown_s``, and so does a new track picked up
where a raised one was lost (ByteTrack re-acquiring the same person).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
from pydantic import Field

from edge.detect.base import Detections, nms
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
        # track id → (event time, zone id, last box) of tracks raised within the cooldown: a
        # person re-acquired under a new track id where one was lost keeps that cooldown
        self._raised: dict[int, tuple[datetime, str, npt.NDArray[np.float32]]] = {}

    def update(self, ctx: FrameContext) -> list[ViolationEvent]:
        """Add this frame's observations to each track's window and decide."""
        cfg = self.config
        if not ctx.detected or not cfg.enabled:
            return []
        if not cfg.active_at(ctx.clock_ts):
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
        if len(d) > 1:  # one face, one verdict: a weaker box of another class is the same face
            d = d.select(np.sort(nms(d.xyxy, d.confidence, 0.5)))
        zones = ctx.zones.first_containing(d.anchors("center"), ctx.zones.mask_zones())
        seen: dict[int, int] = {}
        for i, zone in enumerate(zones):
            if zone is not None and d.tracker_id is not None:
                tid = int(d.tracker_id[i])
                seen[tid] = i
                self._zone_of[tid] = zone
                if tid in self._raised:
                    when, zid, _ = self._raised[tid]
                    self._raised[tid] = (when, zid, d.xyxy[i].copy())
        events: list[ViolationEvent] = []
        for tid in set(self._windows) | set(seen):
            window = self._windows.setdefault(tid, HoldWindow(last_event=self._last_event.get(tid)))
            i_det = seen.get(tid)
            if i_det is None:  # not seen: no news about the mask, neither worn nor not
                window.expire(ctx.ts, cfg.window_s)
                if not any(b for _, b, _ in window.frames):
                    del self._windows[tid]  # gone and nothing pending
                continue
            bad = bool(np.isin(d.class_id[i_det], bad_ids))
            window.add(ctx.ts, bad, float(d.confidence[i_det]), cfg.window_s)
            fires, share, mean_conf = window.decide(ctx.ts, cfg)
            if fires:
                prior = self._raised_here(ctx.ts, tid, self._zone_of[tid].id, d.xyxy[i_det], seen)
                window.last_event = prior or ctx.ts
                self._last_event[tid] = prior or ctx.ts
                self._raised[tid] = (prior or ctx.ts, self._zone_of[tid].id, d.xyxy[i_det].copy())
                if prior is not None:
                    continue  # the same person under a new track id: already raised
                events.append(
                    self._event(
                        ctx, tid=tid, i=i_det, d=d, window=window, share=share, mean_conf=mean_conf
                    )
                )
        return events

    def _raised_here(
        self,
        ts: datetime,
        tid: int,
        zone_id: str,
        box: npt.NDArray[np.float32],
        seen: dict[int, int],
    ) -> datetime | None:
        """When a track now gone, last seen here, was raised within the cooldown (else None)."""
        for old in [
            k
            for k, v in self._raised.items()
            if (ts - v[0]).total_seconds() >= self.config.cooldown_s
        ]:
            del self._raised[old]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for old_tid, (when, zid, (x1, y1, x2, y2)) in self._raised.items():
            w, h = x2 - x1, y2 - y1
            if (
                zid == zone_id
                and old_tid != tid
                and old_tid not in seen
                and x1 - w <= cx <= x2 + w
                and y1 - h <= cy <= y2 + h
            ):
                return when
        return None

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
