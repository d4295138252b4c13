"""Tracking across frames with ByteTrack from roboflow's ``trackers`` (no hand-written tracker)."""

from __future__ import annotations

import warnings

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field
from trackers import ByteTrackTracker

from edge.detect.base import Detections


class TrackSettings(BaseModel):
    """ByteTrack tuning; times are in seconds so they hold at any analysed rate."""

    model_config = ConfigDict(extra="forbid")

    lost_after_s: float = Field(default=2.0, gt=0, description="Keep a lost track this long.")
    activation_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Score to start a track."
    )
    high_threshold: float = Field(default=0.5, ge=0, le=1, description="First-stage match score.")
    min_iou: float = Field(default=0.1, ge=0, le=1, description="Smallest IoU that matches.")
    confirm_frames: int = Field(
        default=1,
        ge=1,
        description="Consecutive hits a new track needs before it outlives a missed look "
        "(1: a track gets its id on its 2nd hit, even with a miss between; 2 needs two "
        "looks in a row, so a face the model finds every other look never gets an id).",
    )


class Tracker:
    """Assign stable ``tracker_id``s to detections of one camera (class-agnostic ByteTrack)."""

    def __init__(self, fps: float, settings: TrackSettings | None = None) -> None:
        """Create a tracker for a camera analysed at ``fps``."""
        s = settings or TrackSettings()
        self._tracker = ByteTrackTracker(
            # the library counts this buffer in 30 fps frames (seconds × 30), whatever ``fps`` is
            lost_track_buffer=max(1, round(s.lost_after_s * 30)),
            frame_rate=fps,
            track_activation_threshold=s.activation_threshold,
            minimum_consecutive_frames=s.confirm_frames,
            minimum_iou_threshold=s.min_iou,
            high_conf_det_threshold=s.high_threshold,
        )

    def update(self, dets: Detections, ts_s: float) -> Detections:
        """Track one frame's detections at time ``ts_s`` (seconds); unconfirmed boxes get id -1."""
        sv_dets = sv.Detections(
            xyxy=dets.xyxy.astype(np.float32),
            confidence=dets.confidence,
            class_id=dets.class_id.astype(int),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self._tracker.update(sv_dets, timestamp=ts_s)
        if len(out) == 0:
            return Detections.empty().with_tracker_ids(np.zeros((0,), np.int64))
        conf = out.confidence if out.confidence is not None else np.ones(len(out), np.float32)
        cls = out.class_id if out.class_id is not None else np.zeros(len(out), np.int64)
        tid = out.tracker_id if out.tracker_id is not None else np.full(len(out), -1, np.int64)
        return Detections(
            np.asarray(out.xyxy, np.float32),
            np.asarray(conf, np.float32),
            np.asarray(cls, np.int64),
            np.asarray(tid, np.int64),
        )

    def reset(self) -> None:
        """Forget all tracks."""
        self._tracker.reset()
