"""``brightkitchen edge run``: every camera of one box from capture to the broker and the page.

One reader thread and one analysis loop per camera; a loop that fails logs with
its camera id, backs off and continues, so one bad camera never stops the
others. Camera health (offline / frozen / covered / blurred) becomes a status
field and, with a cooldown, a ``camera_offline`` / ``camera_blurred`` violation
through the same outbox, so the backend opens a ticket for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from bkcommon.errors import ConfigError
from bkcommon.messages import CameraStatus, EdgeStatus
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import Camera, EdgeBox, Site, SiteFile, load_site_file
from bkcommon.timeutil import utcnow
from edge.capture import CameraHealth, CameraReader, HealthProblem
from edge.delivery import Delivery
from edge.detect.base import Detections, Detector
from edge.display import KitchenDisplay
from edge.events import ViolationEvent
from edge.metrics import EdgeMetrics
from edge.outbox import Outbox
from edge.publish import EdgePublisher
from edge.settings import EdgeSettings
from edge.substream import main_stream_evidence

logger = logging.getLogger(__name__)

_PROBLEM_RULE = {
    HealthProblem.OFFLINE: "camera_offline",
    HealthProblem.FROZEN: "camera_offline",
    HealthProblem.COVERED: "camera_blurred",
    HealthProblem.BLURRED: "camera_blurred",
}


class Pipeline(Protocol):
    """What the vision half offers per camera: frames in, decided violations out."""

    def process(self, frame_bgr: npt.NDArray[np.uint8], ts: datetime) -> list[ViolationEvent]:
        """Analyse one frame."""
        ...


PipelineFactory = Callable[[Camera], Pipeline]


def find_box(site_file: SiteFile, box_id: str) -> tuple[Site, EdgeBox]:
    """Return the site and box entry of ``box_id``; raise ConfigError when it is not in the file."""
    for site in site_file.sites:
        for box in site.edge_boxes:
            if box.id == box_id:
                return site, box
    known = [b.id for s in site_file.sites for b in s.edge_boxes]
    raise ConfigError(f"edge box {box_id!r} is not in the site file (boxes: {known or 'none'})")


def check_camera_rules(cameras: list[Camera]) -> None:
    """Build every camera's rules once, so that a bad per-camera rule setting (an unknown
    rule, a share of 5) stops start-up and ``--validate-config`` with its name; found first
    in the camera's own loop, it left that camera unanalysed behind a log line while the box
    reported it online."""
    from edge.rules.registry import build_rules

    for cam in cameras:
        build_rules(cam, [])


def vision_pipeline_factory(
    settings: EdgeSettings, wrap: Callable[[Detector], Detector] | None = None
) -> tuple[PipelineFactory, str]:
    """Load the detector once and return a per-camera pipeline factory and the model version.

    Every camera's pipeline shares one :class:`BatchingDetector` (a scheduler thread that runs
    the crops of all cameras queued at that moment as one batch); ``wrap`` may wrap the raw
    detector (the benchmark times it).
    """
    from bkcommon.errors import ModelError

    if not Path(settings.model_path).is_file():
        raise ConfigError(
            f"model file not found: {settings.model_path} (set BK_EDGE_MODEL_PATH or export one "
            "with `brightkitchen models export`)"
        )
    try:
        from edge.detect.batching import BatchingDetector
        from edge.detect.onnx import OnnxDetector
        from edge.pipeline import CameraPipeline, VisionSettings
    except ImportError as exc:
        raise ConfigError(f"the vision pipeline is not available in this build: {exc}") from exc
    try:
        detector = OnnxDetector(
            settings.model_path,
            threads=settings.detector_threads,
            max_batch=settings.detector_max_batch,
        )
    except ModelError as exc:
        raise ConfigError(str(exc)) from exc
    inner: Detector = wrap(detector) if wrap is not None else detector
    shared = BatchingDetector(
        inner, max_batch=settings.detector_max_batch, workers=settings.detector_workers
    ).start()
    vision = VisionSettings(detect_every_n_frames=settings.detect_every_n_frames)

    def factory(camera: Camera) -> Pipeline:
        p: Pipeline = CameraPipeline(camera, shared, vision)
        return p

    return factory, detector.model_version


class SharedDetector:
    """One detector shared by camera threads behind a lock (tests and simple tools; the box
    itself uses :class:`edge.detect.batching.BatchingDetector`)."""

    def __init__(self, inner: Detector) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def class_names(self) -> list[str]:
        """Class names of the wrapped model."""
        return self._inner.class_names

    @property
    def input_size(self) -> tuple[int, int]:
        """Input size of the wrapped model."""
        return self._inner.input_size

    @property
    def model_version(self) -> str:
        """Version of the wrapped model."""
        return self._inner.model_version

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Run the wrapped detector, one camera at a time."""
        with self._lock:
            return self._inner.detect(images)


@dataclass
class _CamState:
    camera: Camera
    reader: CameraReader
    inference_ms: float = 0.0
    last_frame: npt.NDArray[np.uint8] | None = None
    last_alarm_mono: float = -1e18
    last_problem: HealthProblem | None = None
    thread: threading.Thread | None = None
    frames: int = 0
    errors: int = 0
    events: list[str] = field(default_factory=list)


def _no_signal_frame(text: str) -> npt.NDArray[np.uint8]:
    img = np.zeros((360, 640, 3), np.uint8)
    cv2.putText(
        img, text, (40, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2, cv2.LINE_AA
    )
    return img


class EdgeWorker:
    """All cameras of one box wired to the delivery half; :meth:`run` blocks until stopped."""

    def __init__(
        self,
        *,
        site: Site,
        box: EdgeBox,
        settings: EdgeSettings,
        common: CommonSettings,
        pipeline_factory: PipelineFactory,
        model_version: str = "",
        stop_event: threading.Event | None = None,
        reader_factory: Callable[[Camera], CameraReader] | None = None,
    ) -> None:
        """Open the outbox, the page, the metrics and the MQTT client (nothing starts yet)."""
        self.site = site
        self.box = box
        self.settings = settings
        self.stop_event = stop_event or threading.Event()
        self.model_version = model_version
        self.metrics = EdgeMetrics()
        self.outbox = Outbox(
            Path(settings.data_dir) / f"outbox-{box.id}.sqlite",
            max_bytes=int(settings.outbox_max_mb * 1024 * 1024),
            max_rows=settings.outbox_max_rows,
            on_drop=self.metrics.outbox_dropped.inc,
            disk_reserve_bytes=int(settings.outbox_reserve_mb * 1024 * 1024),
        )
        self.display = KitchenDisplay(
            settings.display_host,
            settings.display_port,
            keep=settings.display_keep,
            popup_seconds=settings.popup_seconds,
            # the pop-up names the camera as the kitchen knows it, never its id
            camera_names={c.id: c.name for c in box.cameras if c.name},
        )
        self.publisher = EdgePublisher(
            mqtt_url=common.mqtt_url,
            client_id=settings.client_id,
            site_id=site.id,
            box_id=box.id,
            outbox=self.outbox,
            prefix=common.mqtt_prefix,
            status_fn=self.status,
            inflight_max=settings.inflight_max,
            mqtt_v5=settings.mqtt_protocol == "5",
            resend_after_s=settings.resend_after_s,
            status_interval_s=settings.status_interval_s,
            keepalive_s=settings.keepalive_s,
            on_ack=self.metrics.published.inc,
        )
        self.delivery = Delivery(
            site_id=site.id,
            box_id=box.id,
            outbox=self.outbox,
            prefix=common.mqtt_prefix,
            display=self.display,
            publisher=self.publisher,
            metrics=self.metrics,
            jpeg_quality=settings.jpeg_quality,
            max_width_px=settings.evidence_max_width_px,
            inline_evidence=settings.inline_evidence,
        )
        self._pipeline_factory = pipeline_factory
        make_reader = reader_factory or CameraReader.from_camera
        self.cams = {c.id: _CamState(camera=c, reader=make_reader(c)) for c in box.cameras}
        self.metrics_port: int | None = None

    # -- status ------------------------------------------------------------------------

    def status(self) -> EdgeStatus:
        """The box status published retained on the status topic."""
        cams = []
        for st in self.cams.values():
            h = st.reader.health()
            cams.append(
                CameraStatus(
                    camera_id=st.camera.id,
                    online=h.online,
                    fps=round(h.fps, 2),
                    skipped_fps=round(h.skipped_fps, 2),
                    inference_ms=round(st.inference_ms, 1),
                    problem=None if h.problem is None else h.problem.value,
                )
            )
        ob = self.outbox.stats()
        return EdgeStatus(
            box_id=self.box.id,
            ts=utcnow(),
            online=True,
            cameras=cams,
            outbox_depth=ob.depth,
            outbox_dropped_total=ob.dropped_total,
            model_version=self.model_version,
        )

    # -- loops ---------------------------------------------------------------------------

    def _camera_loop(self, st: _CamState) -> None:
        cam_id = st.camera.id
        backoff = 1.0
        pipeline: Pipeline | None = None
        while not self.stop_event.is_set():
            try:
                if pipeline is None:
                    pipeline = self._pipeline_factory(st.camera)
                frame = st.reader.take(timeout_s=0.5)
                if frame is None:
                    continue
                st.last_frame = frame.image
                t0 = time.perf_counter()
                events = pipeline.process(frame.image, frame.ts)
                ms = (time.perf_counter() - t0) * 1000
                st.inference_ms = ms if st.frames == 0 else 0.9 * st.inference_ms + 0.1 * ms
                st.frames += 1
                for decided in events:
                    ev = decided
                    if st.camera.substream is not None:  # the photo from the main stream
                        ev = main_stream_evidence(
                            st.camera, decided, st.reader.settings, frame.video_pos_s
                        )
                    prepared = self.delivery.deliver(ev)
                    st.events.append(prepared.violation.event_id)
                backoff = 1.0
            except Exception:
                st.errors += 1
                self.metrics.camera_errors.labels(cam_id).inc()
                logger.exception(
                    "camera %s: analysis failed; retrying in %.0fs",
                    cam_id,
                    backoff,
                    extra={"camera_id": cam_id},
                )
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _health_tick(self) -> None:
        now = time.monotonic()
        for st in self.cams.values():
            cam_id = st.camera.id
            h: CameraHealth = st.reader.health()
            self.metrics.camera_fps.labels(cam_id).set(h.fps)
            self.metrics.camera_skipped_fps.labels(cam_id).set(h.skipped_fps)
            self.metrics.inference_ms.labels(cam_id).set(st.inference_ms)
            self.metrics.camera_online.labels(cam_id).set(1 if h.online else 0)
            if h.problem is None:
                if st.last_problem is not None:
                    logger.info("camera %s healthy again", cam_id, extra={"camera_id": cam_id})
                st.last_problem = None
                continue
            st.last_problem = h.problem
            if now - st.last_alarm_mono < self.settings.camera_alarm_cooldown_s:
                continue  # one finding per camera per cooldown; the backend adds occurrences
            st.last_alarm_mono = now
            rule = _PROBLEM_RULE[h.problem]
            frame = st.last_frame if st.last_frame is not None and h.online else None
            ev = ViolationEvent(
                rule=rule,
                camera_id=cam_id,
                zone_id=None,
                started_at=h.problem_since or utcnow(),
                ended_at=None,
                confidence=1.0,
                track_id=None,
                model_version=self.model_version,
                frame=frame
                if frame is not None
                else _no_signal_frame(f"{cam_id}: {h.problem.value.upper()}"),
                details={"problem": h.problem.value, "error": h.error, "reconnects": h.reconnects},
            )
            logger.warning(
                "camera %s: %s -> %s", cam_id, h.problem.value, rule, extra={"camera_id": cam_id}
            )
            try:
                self.delivery.deliver(ev)
            except Exception:
                logger.exception("camera %s: health finding not delivered", cam_id)

    def run(self) -> None:
        """Start everything, supervise until ``stop_event``, then stop gracefully."""
        self.display.start()
        for cam_id in self.cams:  # a camera without errors reports 0, not nothing
            self.metrics.camera_errors.labels(cam_id)
        self.metrics_port = self.metrics.serve(
            self.settings.metrics_host, self.settings.metrics_port
        )
        self.publisher.start()
        for st in self.cams.values():
            st.reader.start()
            st.thread = threading.Thread(
                target=self._camera_loop, args=(st,), name=f"analyse-{st.camera.id}", daemon=True
            )
            st.thread.start()
        logger.info(
            "edge box %s of site %s running %d camera(s); page %s",
            self.box.id,
            self.site.id,
            len(self.cams),
            self.display.url,
        )
        try:
            while not self.stop_event.wait(1.0):
                try:
                    self._health_tick()
                    ob = self.outbox.stats()
                    self.metrics.outbox_depth.set(ob.depth)
                    self.metrics.outbox_bytes.set(ob.bytes_total)
                    self.metrics.outbox_set_aside.set(ob.set_aside_total)
                    self.metrics.broker_refused.set(self.publisher.refused_total)
                    self.metrics.mqtt_connected.set(1 if self.publisher.connected else 0)
                except Exception:
                    logger.exception("supervisor tick failed; continuing")
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop cameras, publish offline status, close the page, metrics and outbox."""
        self.stop_event.set()
        for st in self.cams.values():
            st.reader.stop()
            if st.thread is not None:
                st.thread.join(5)
        self.publisher.stop()
        self.display.stop()
        self.metrics.close()
        self.outbox.close()
        logger.info("edge box %s stopped", self.box.id)


def build_worker(
    site_file: str | Path,
    box_id: str,
    *,
    settings: EdgeSettings,
    common: CommonSettings,
    stop_event: threading.Event | None = None,
    pipeline_factory: PipelineFactory | None = None,
    model_version: str = "",
) -> EdgeWorker:
    """Load the site file, find the box, load the model and build the worker."""
    sf = load_site_file(site_file)
    site, box = find_box(sf, box_id)
    if settings.site_id and settings.site_id != site.id:
        raise ConfigError(f"BK_EDGE_SITE_ID={settings.site_id} but box {box_id} is in {site.id}")
    if not box.cameras:
        raise ConfigError(f"edge box {box_id!r} has no cameras in {site_file}")
    check_camera_rules(box.cameras)
    if pipeline_factory is None:
        pipeline_factory, model_version = vision_pipeline_factory(settings)
    return EdgeWorker(
        site=site,
        box=box,
        settings=settings,
        common=common,
        pipeline_factory=pipeline_factory,
        model_version=model_version,
        stop_event=stop_event,
    )


def run_edge(
    site_file: str | Path,
    box_id: str,
    settings: EdgeSettings,
    stop_event: threading.Event | None = None,
    common: CommonSettings | None = None,
) -> None:
    """Run one edge box until ``stop_event`` is set (or SIGINT / SIGTERM in the CLI)."""
    from bkcommon.settings import load_common_settings
    from edge.proctune import tune_process

    tune_process()
    worker = build_worker(
        site_file,
        box_id,
        settings=settings,
        common=common or load_common_settings(),
        stop_event=stop_event,
    )
    worker.run()
