"""One camera's vision pipeline: motion → crops → detector → tracker → zones → rules → events.

The delivery side drives it::

    pipe = CameraPipeline(camera, OnnxDetector(path), VisionSettings())
    for frame in reader:                       # edge.capture.CameraReader.take()
        for event in pipe.process(frame.image, frame.ts):
            ...                                # evidence JPEG + outbox
    pipe.stats                                 # analysed / motion-skipped / inference ms
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bkcommon.sitefile import Camera
from edge.boards import BoardColourConfig, BoardColourModel
from edge.capture import CaptureSettings
from edge.crops import plan_regions
from edge.detect.base import Detections, Detector, nms_per_class
from edge.events import ViolationEvent
from edge.motion import MotionDetector, MotionSettings
from edge.rules.base import FrameContext, Rule
from edge.rules.registry import build_rules
from edge.track import Tracker, TrackSettings
from edge.zones import ZoneSet

logger = logging.getLogger(__name__)


class VisionSettings(BaseModel):
    """Tuning of the vision half of the edge box (capture, motion, crops, tracking, boards)."""

    model_config = ConfigDict(extra="forbid")

    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    motion: MotionSettings = Field(default_factory=MotionSettings)
    track: TrackSettings = Field(default_factory=TrackSettings)
    boards: BoardColourConfig = Field(default_factory=BoardColourConfig)
    crop_pad_frac: float = Field(default=0.25, ge=0, le=2, description="Padding around motion.")
    max_regions: int = Field(default=4, ge=1, le=32, description="Crops per frame at most.")
    full_frame_share: float = Field(
        default=0.6, gt=0, le=1, description="Crops covering more of the frame: use the frame."
    )
    refresh_every_s: float | None = Field(
        default=30.0, gt=0, description="Full-frame detection this often even without motion."
    )
    merge_iou: float = Field(default=0.5, gt=0, le=1, description="NMS across overlapping crops.")
    crop_zoom: float = Field(
        default=2.0,
        ge=1,
        le=4,
        description="Crops may be as small as the model input / this, i.e. enlarged up to this "
        "many times (small faces need it: see the model card's scale study).",
    )
    detect_every_n_frames: int = Field(
        default=3,
        ge=1,
        le=25,
        description="Run the detector on every n-th analysed frame that has motion or tracks "
        "(the first frame of new motion always); rules count only frames the detector saw.",
    )


@dataclass(slots=True)
class PipelineStats:
    """Counters of one camera's pipeline (read by metrics and status)."""

    frames_analysed: int = 0
    frames_motion_skipped: int = 0
    frames_stride_skipped: int = 0
    detector_calls: int = 0
    regions: int = 0
    detections: int = 0
    events: int = 0
    inference_ms_last: float = 0.0
    inference_ms_avg: float = 0.0
    process_ms_avg: float = 0.0


class CameraPipeline:
    """Turn one camera's analysed frames into violation events."""

    def __init__(
        self,
        camera: Camera,
        detector: Detector,
        settings: VisionSettings | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        """Build motion gate, tracker, zones and the camera's rules (ConfigError on bad rules)."""
        self.camera = camera
        self.detector = detector
        self.settings = settings or VisionSettings()
        self.zones = ZoneSet(camera.zones)
        self._main_size = camera.substream.main_size if camera.substream is not None else None
        self._zones_for: tuple[int, int] | None = None
        self._zoom = self.settings.crop_zoom
        self.motion = MotionDetector(self.settings.motion)
        self.tracker = Tracker(
            camera.analyse_fps / self.settings.detect_every_n_frames, self.settings.track
        )
        self.class_names = list(detector.class_names)
        self.rules = (
            rules
            if rules is not None
            else build_rules(camera, self.class_names, BoardColourModel(self.settings.boards))
        )
        self._stats = PipelineStats()
        self._last_full: datetime | None = None
        self._track_boxes: npt.NDArray[np.float32] = np.zeros((0, 4), np.float32)
        self._track_seen: datetime | None = None
        self._stride_wait = 0
        self._last_ts: datetime | None = None
        self._clock_shift = timedelta(0)  # added to frame times after the wall clock stepped back

    @property
    def stats(self) -> PipelineStats:
        """Counters so far (a live object; copy it if you keep it)."""
        return self._stats

    def process(self, frame_bgr: npt.NDArray[np.uint8], ts: datetime) -> list[ViolationEvent]:
        """Analyse one frame taken at ``ts`` (aware UTC) and return the violations decided on it."""
        t0 = time.perf_counter()
        st = self._stats
        st.frames_analysed += 1
        wall_ts = ts
        ts = self._ordered(ts)
        h, w = frame_bgr.shape[:2]
        if self._main_size is None:
            self._adopt_native_size(w, h)
        if self._main_size is not None and self._zones_for != (w, h):
            if self.camera.substream is None:
                logger.warning(
                    "camera %s: resolution changed from %dx%d to %dx%d; zones scaled to it",
                    self.camera.id, *(self._zones_for or self._main_size), w, h,
                    extra={"camera_id": self.camera.id},
                )  # fmt: skip
            self._fit_to_stream(w, h)
        boxes = self.motion.detect(frame_bgr)
        if (
            self._track_seen is not None
            and len(self._track_boxes)
            and (ts - self._track_seen).total_seconds() <= self.settings.track.lost_after_s
        ):
            boxes = np.concatenate([boxes, self._track_boxes]) if len(boxes) else self._track_boxes
        refresh = self._refresh_due(ts)
        detected = bool(len(boxes)) or refresh
        stride_skip = False
        if not detected:
            self._stride_wait = 0  # the next motion is looked at at once
        elif not refresh and self._stride_wait > 0:
            self._stride_wait -= 1
            detected, stride_skip = False, True
        else:
            self._stride_wait = self.settings.detect_every_n_frames - 1
        dets = Detections.empty()
        if detected:
            if refresh or len(boxes) == 0:
                regions = np.array([[0, 0, w, h]], np.int32)
            else:
                regions = plan_regions(
                    boxes,
                    (w, h),
                    self.detector.input_size,
                    self.settings.crop_pad_frac,
                    self.settings.max_regions,
                    zoom=self._zoom,
                )
                area = float(
                    ((regions[:, 2] - regions[:, 0]) * (regions[:, 3] - regions[:, 1])).sum()
                )
                if area >= self.settings.full_frame_share * w * h:
                    regions = np.array([[0, 0, w, h]], np.int32)
            if regions[0].tolist() == [0, 0, w, h]:
                self._last_full = ts
            dets = self._detect(frame_bgr, regions)
            dets = self.tracker.update(dets, ts.timestamp())
            if len(dets):  # look there again (a track needs hits to be confirmed)
                self._track_boxes = dets.xyxy.copy()
                self._track_seen = ts
            st.detections += len(dets)
        elif stride_skip:
            st.frames_stride_skipped += 1
        else:
            st.frames_motion_skipped += 1
        ctx = FrameContext(
            camera_id=self.camera.id,
            ts=ts,
            frame=frame_bgr,
            detections=dets,
            detected=detected,
            class_names=self.class_names,
            zones=self.zones,
            model_version=self.detector.model_version,
            wall_ts=wall_ts if self._clock_shift else None,
        )
        events: list[ViolationEvent] = []
        for rule in self.rules:
            try:
                events.extend(rule.update(ctx))
            except Exception:  # one broken rule must not stop the camera
                logger.exception("camera %s: rule %s failed", self.camera.id, rule.name)
        if self._clock_shift:  # report times on the camera's (corrected) wall clock
            events = [replace(e, started_at=e.started_at - self._clock_shift) for e in events]
        st.events += len(events)
        ms = (time.perf_counter() - t0) * 1000
        st.process_ms_avg = ms if st.frames_analysed == 1 else 0.9 * st.process_ms_avg + 0.1 * ms
        return events

    def _ordered(self, ts: datetime) -> datetime:
        """Frame time on a clock that never runs backwards.

        Frames are stamped with the wall clock; when it steps back (NTP correcting a box
        that booted with a wrong clock), the tracker would skip every frame until the
        clock caught up and windows / cooldowns would wait out the step: the camera goes
        blind. The step is absorbed into a shift, and frames continue from the last one.
        """
        shifted = ts + self._clock_shift
        if self._last_ts is not None and shifted < self._last_ts:
            step = timedelta(seconds=1.0 / self.camera.analyse_fps)
            self._clock_shift += self._last_ts - shifted + step
            logger.warning(
                "camera %s: clock stepped back %.1fs; frame times shifted to stay in order",
                self.camera.id,
                (self._last_ts - shifted).total_seconds(),
            )
            shifted = ts + self._clock_shift
        self._last_ts = shifted
        return shifted

    def _adopt_native_size(self, w: int, h: int) -> None:
        """A camera without a sub-stream: its zones are drawn in its native frame, taken to be
        the first frame's size. A zone outside it is reported (it can never match), and when
        the camera later changes resolution its zones are scaled from that size."""
        self._main_size = (w, h)
        self._zones_for = (w, h)
        for z in self.zones.zones:
            x1, y1, x2, y2 = z.bbox
            if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
                logger.error(
                    "camera %s: zone %s (%d,%d)-(%d,%d) lies outside the camera's %dx%d frame; "
                    "redraw it on a snapshot of this camera",
                    self.camera.id, z.id, x1, y1, x2, y2, w, h,
                    extra={"camera_id": self.camera.id},
                )  # fmt: skip

    def _fit_to_stream(self, w: int, h: int) -> None:
        """Map the main-stream zones and crop sizes onto the sub-stream's ``w`` x ``h`` frames.

        Zones are scaled to the frame; the crop zoom grows by main / sub width (up to 4),
        so a crop covers the same part of the scene as on the main stream.
        """
        assert self._main_size is not None
        self.zones = ZoneSet.for_frame(self.camera.zones, self._main_size, w, h)
        ratio = self._main_size[0] / w if w else 1.0
        self._zoom = min(4.0, max(1.0, self.settings.crop_zoom * ratio))
        self._zones_for = (w, h)
        logger.info(
            "camera %s: analysing %dx%d frames of a %dx%d main stream (crop zoom %.2f)",
            self.camera.id,
            w,
            h,
            *self._main_size,
            self._zoom,
        )

    def _refresh_due(self, ts: datetime) -> bool:
        every = self.settings.refresh_every_s
        if every is None:
            return False
        if self._last_full is None:
            self._last_full = ts  # the first frame only initialises the motion background
            return False
        return (ts - self._last_full).total_seconds() >= every

    def _detect(self, frame: npt.NDArray[np.uint8], regions: npt.NDArray[np.int32]) -> Detections:
        """Run the detector on the crops in one batch and map boxes back to frame pixels."""
        st = self._stats
        crops = [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in regions.tolist()]
        t0 = time.perf_counter()
        results = self.detector.detect(crops)
        ms = (time.perf_counter() - t0) * 1000
        st.detector_calls += 1
        st.regions += len(crops)
        st.inference_ms_last = ms
        st.inference_ms_avg = ms if st.detector_calls == 1 else 0.9 * st.inference_ms_avg + 0.1 * ms
        parts = [
            r.shifted(float(x1), float(y1))
            for r, (x1, y1, _, _) in zip(results, regions.tolist(), strict=True)
        ]
        merged = Detections.merge(parts)
        if len(parts) > 1:
            merged = nms_per_class(merged, self.settings.merge_iou)
        return merged
