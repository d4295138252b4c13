"""One reader thread per camera: open with timeouts, sample at the analysed rate, watch health.

A reader keeps only the latest analysed frame in a one-slot buffer: when the
consumer is slower than ``analyse_fps`` the older frame is overwritten and
counted as skipped, so memory never grows with a slow box. Frames that are not
analysed are only ``grab()``-ed (no decode into BGR). Streams are opened through
the FFmpeg backend with open and read timeouts, so a hung camera blocks only its
own thread; a failed source is retried with exponential backoff.

A camera with a sub-stream (``Camera.substream``) is read from that smaller
stream; its main stream is opened only by :func:`grab_still`, one frame per event
(the evidence photo). Decoded frames may go into a small ring of reused buffers
(``CaptureSettings.frame_buffers``, off by default: it did not lower the peak
memory): a buffer is decoded into again only once nothing else (the slot, the
analysis, a rule) still holds it.

Health (视频离线 / 遮挡): ``offline`` (no frame for ``offline_after_s`` or the
source cannot be opened), ``frozen`` (identical frames for ``frozen_after_s``),
``covered`` (almost uniform or dark image) and ``blurred`` (variance of the
Laplacian under a threshold), each held for ``problem_after_s`` before reported.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from bkcommon.sitefile import Camera
from bkcommon.urls import mask_url

logger = logging.getLogger(__name__)

BGRImage = npt.NDArray[np.uint8]


class CaptureSettings(BaseModel):
    """How a camera is opened, sampled and judged healthy."""

    model_config = ConfigDict(extra="forbid")

    open_timeout_s: float = Field(default=5.0, gt=0, description="FFmpeg open timeout of streams.")
    read_timeout_s: float = Field(default=5.0, gt=0, description="FFmpeg read timeout of streams.")
    backoff_initial_s: float = Field(default=1.0, gt=0, description="First reconnect delay.")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest reconnect delay.")
    offline_after_s: float = Field(default=10.0, gt=0, description="No frame this long = offline.")
    frozen_after_s: float = Field(default=30.0, gt=0, description="Identical frames this long.")
    problem_after_s: float = Field(default=10.0, ge=0, description="Covered/blurred this long.")
    health_every_s: float = Field(default=1.0, gt=0, description="Image health check period.")
    frozen_max_diff: float = Field(
        default=2.0,
        ge=0,
        description="Largest low-res pixel change (0-255) that still counts as frozen.",
    )
    covered_std: float = Field(default=6.0, ge=0, description="Grey std below this = covered.")
    covered_mean: float = Field(default=12.0, ge=0, description="Grey mean below this = covered.")
    blur_laplacian_var: float = Field(default=15.0, ge=0, description="Laplacian var = blurred.")
    file_pacing: Literal["realtime", "lossless"] = Field(
        default="realtime",
        description="realtime: files play at their own fps and stamp wall time; lossless: "
        "every sampled frame is handed over (the reader waits) and stamped with video time.",
    )
    loop_files: bool = Field(default=True, description="Restart a video file at its end.")
    decoder_threads: int = Field(
        default=1,
        ge=0,
        le=16,
        description="FFmpeg decoder threads per camera (0 = FFmpeg's choice, one per core): "
        "one thread per camera costs less CPU and memory once cameras outnumber cores.",
    )
    frame_buffers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Decoded-frame buffers each reader reuses (0 = a new array per frame); a "
        "buffer still held elsewhere is never written, a new one is made instead. Off: 4 "
        "buffers raised the 16-camera peak RSS (docs/benchmarks.md, Round 4).",
    )


class HealthProblem(StrEnum):
    """Camera-health findings (视频离线 / 遮挡)."""

    OFFLINE = "offline"
    FROZEN = "frozen"
    COVERED = "covered"
    BLURRED = "blurred"


@dataclass(frozen=True, slots=True)
class Frame:
    """A sampled frame: BGR image, capture time (aware UTC), sequence number and, for a video
    file, its position in the file (so a file standing in for a main stream is grabbed there)."""

    image: BGRImage
    ts: datetime
    seq: int
    video_pos_s: float | None = None


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """A snapshot of one reader's state that the worker turns into status and findings."""

    camera_id: str
    online: bool
    problem: HealthProblem | None
    problem_since: datetime | None
    last_frame_at: datetime | None
    frames_read: int
    frames_sampled: int
    frames_skipped: int
    reconnects: int
    fps: float
    skipped_fps: float
    error: str | None


SourceKind = Literal["device", "file", "stream"]


def source_kind(url: str) -> SourceKind:
    """Classify a camera URL: a device index, a local video file, or a network stream.

    Example:
        >>> source_kind("0"), source_kind("rtsp://cam/1"), source_kind("/data/a.mp4")
        ('device', 'stream', 'file')
    """
    if url.isdigit():
        return "device"
    if "://" in url and not url.startswith("file://"):
        return "stream"
    return "file"


def open_capture(url: str, settings: CaptureSettings) -> cv2.VideoCapture:
    """Open a source with OpenCV; streams get FFmpeg open/read timeouts (a hung URL can't block)."""
    kind = source_kind(url)
    if kind == "device":
        return cv2.VideoCapture(int(url))
    threads = [cv2.CAP_PROP_N_THREADS, settings.decoder_threads] if settings.decoder_threads else []
    if kind == "file":
        path = url.removeprefix("file://")
        return cv2.VideoCapture(path, cv2.CAP_FFMPEG, threads)
    params = [
        *threads,
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(settings.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(settings.read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


class FrameRing:
    """A few decoded-frame buffers one reader reuses instead of a new array per frame.

    :meth:`free` hands out a buffer only when nothing but the ring refers to it (no
    ``Frame``, crop view, rule or event holds it), so a frame is never overwritten
    while in use; when all are held, ``None`` tells the caller to let OpenCV allocate.
    """

    def __init__(self, size: int) -> None:
        """Keep up to ``size`` buffers (0: never reuse)."""
        self.size = size
        self._bufs: list[BGRImage] = []
        self.reused = 0
        self.allocated = 0

    def free(self) -> BGRImage | None:
        """A buffer nobody else holds, or None."""
        for buf in self._bufs:
            # references: the ring's list, this loop's name, getrefcount's argument
            if sys.getrefcount(buf) <= 3:
                return buf
        return None

    def keep(self, image: BGRImage, given: BGRImage | None) -> None:
        """Record what ``retrieve`` returned for ``given`` (a new array joins the ring if room)."""
        if given is not None and image is given:
            self.reused += 1
            return
        self.allocated += 1
        if given is not None:  # the stream changed size: replace the stale buffer
            self._bufs = [b for b in self._bufs if b is not given]
        if len(self._bufs) < self.size and image.flags.c_contiguous:
            self._bufs.append(image)

    def __len__(self) -> int:
        """Buffers in the ring."""
        return len(self._bufs)


def retrieve_into(cap: cv2.VideoCapture, ring: FrameRing) -> BGRImage | None:
    """Decode the grabbed frame into a free buffer of ``ring`` (or a new one)."""
    buf = ring.free()
    ok, image = cap.retrieve(buf) if buf is not None else cap.retrieve()
    if not ok or image is None:
        return None
    frame = np.ascontiguousarray(image, dtype=np.uint8)  # the same array when already so
    ring.keep(frame, buf)
    return frame


class StillGrabError(RuntimeError):
    """The main stream gave no frame (cannot open, no frame, or too slow)."""


def _grab_once(
    url: str, settings: CaptureSettings, timeout_s: float, at_s: float | None
) -> BGRImage:
    quick = settings.model_copy(update={"open_timeout_s": timeout_s, "read_timeout_s": timeout_s})
    cap = open_capture(url, quick)
    try:
        if not cap.isOpened():
            raise StillGrabError("cannot open the main stream")
        if at_s is not None and source_kind(url) == "file":
            cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, at_s) * 1000.0)
        if not cap.grab():
            raise StillGrabError("the main stream gave no frame")
        ok, image = cap.retrieve()
        if not ok or image is None:
            raise StillGrabError("the main stream's frame could not be decoded")
        return np.ascontiguousarray(image)
    finally:
        cap.release()


def grab_still(
    url: str, settings: CaptureSettings, timeout_s: float, at_s: float | None = None
) -> BGRImage:
    """Open ``url``, take one frame, close it, all within ``timeout_s``; else StillGrabError.

    Used for a camera's main stream at an event. A video file is read at ``at_s`` seconds
    (where its sub-stream file is), a stream at its live position. FFmpeg gets the timeout as
    its open/read timeouts, and the call is waited for on a helper thread, so a backend that
    ignores them still cannot hold the caller longer than ``timeout_s``.
    """
    box: dict[str, BGRImage | BaseException] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["image"] = _grab_once(url, settings, timeout_s, at_s)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="still-grab", daemon=True).start()
    if not done.wait(timeout_s):
        raise StillGrabError(f"no frame from the main stream within {timeout_s:g} s")
    err = box.get("error")
    if isinstance(err, StillGrabError):
        raise err
    if isinstance(err, BaseException):
        raise StillGrabError(f"{type(err).__name__}: {err}") from err
    image = box["image"]
    assert not isinstance(image, BaseException)
    return image


@dataclass(slots=True)
class _ImageHealth:
    """Rolling image-health state: last low-res frame and when each problem started."""

    last_mid: npt.NDArray[np.uint8] | None = None
    last_check: float = -1e18
    candidate: HealthProblem | None = None
    candidate_since: float = 0.0


def judge_image(
    gray_small: npt.NDArray[np.float32], gray_mid: npt.NDArray[np.uint8], settings: CaptureSettings
) -> HealthProblem | None:
    """Return COVERED or BLURRED for one image, or None when the lens looks fine."""
    if (
        float(gray_small.std()) < settings.covered_std
        or float(gray_small.mean()) < settings.covered_mean
    ):
        return HealthProblem.COVERED
    if float(cv2.Laplacian(gray_mid, cv2.CV_64F).var()) < settings.blur_laplacian_var:
        return HealthProblem.BLURRED
    return None


class CameraReader:
    """A thread that reads one camera, keeps the latest sampled frame and tracks health."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        analyse_fps: float = 5.0,
        settings: CaptureSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare a reader; call :meth:`start` to begin reading."""
        if analyse_fps <= 0:
            raise ValueError(f"analyse_fps must be > 0, got {analyse_fps}")
        self.camera_id = camera_id
        self.url = url
        self.kind: SourceKind = source_kind(url)
        self.analyse_fps = analyse_fps
        self.settings = settings or CaptureSettings()
        self._clock = clock
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._stop = threading.Event()
        self._ended = False
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._frames_read = 0
        self._frames_sampled = 0
        self._frames_skipped = 0
        self._reconnects = 0
        self._error: str | None = None
        self._opened = False
        self._started_at = clock()
        self._last_frame_mono: float | None = None
        self._last_frame_at: datetime | None = None
        self._image = _ImageHealth()
        self._problem: HealthProblem | None = None
        self._problem_since_mono: float | None = None
        self._rate_window: list[tuple[float, int, int]] = []
        self.ring = FrameRing(self.settings.frame_buffers)

    @classmethod
    def from_camera(cls, camera: Camera, settings: CaptureSettings | None = None) -> CameraReader:
        """Build a reader for a site-file camera: its sub-stream when it has one."""
        url = camera.substream.url if camera.substream is not None else camera.url
        return cls(camera.id, url, camera.analyse_fps, settings)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> CameraReader:
        """Start the reader thread (daemon: a hung FFmpeg call never blocks shutdown)."""
        if self._thread is None:
            self._started_at = self._clock()
            self._thread = threading.Thread(
                target=self._run, name=f"capture-{self.camera_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` for it."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def ended(self) -> bool:
        """Whether a non-looping file has played to its end (no more frames will come)."""
        return self._ended

    @property
    def alive(self) -> bool:
        """Whether the reader thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # -- consumer side ---------------------------------------------------------------
    def take(self, timeout_s: float | None = 0.0) -> Frame | None:
        """Remove and return the latest sampled frame; wait up to ``timeout_s`` (None: forever)."""
        with self._cond:
            if self._slot is None and timeout_s != 0.0:
                self._cond.wait_for(
                    lambda: self._slot is not None or self._stop.is_set() or self._ended, timeout_s
                )
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def health(self) -> CameraHealth:
        """Current health: online flag, the reported problem, counters and rates."""
        now = self._clock()
        with self._cond:
            problem = self._problem
            since_mono = self._problem_since_mono
            last = self._last_frame_mono
            ref = last if last is not None else self._started_at
            if (self._thread is not None) and now - ref >= self.settings.offline_after_s:
                if problem is not HealthProblem.OFFLINE:
                    since_mono = ref
                problem = HealthProblem.OFFLINE
            elif not self._opened and self._error is not None and last is None:
                # never had a frame (a wrong URL, a camera not there): offline at once; a
                # stream that had frames is judged by offline_after_s above, so a reconnect
                # after a one-second network blip is not a camera_offline
                problem = HealthProblem.OFFLINE
                since_mono = since_mono if self._problem is HealthProblem.OFFLINE else ref
            fps, skipped = self._rates(now)
            wall = datetime.now(tz=UTC)
            since = None if since_mono is None else wall - timedelta(seconds=now - since_mono)
            return CameraHealth(
                camera_id=self.camera_id,
                online=problem is not HealthProblem.OFFLINE,
                problem=problem,
                problem_since=since,
                last_frame_at=self._last_frame_at,
                frames_read=self._frames_read,
                frames_sampled=self._frames_sampled,
                frames_skipped=self._frames_skipped,
                reconnects=self._reconnects,
                fps=fps,
                skipped_fps=skipped,
                error=self._error,
            )

    def _rates(self, now: float) -> tuple[float, float]:
        """Sampled and skipped frames per second over the last ~10 s (lock held)."""
        win = [w for w in self._rate_window if now - w[0] <= 10.0]
        if len(win) < 2:
            return 0.0, 0.0
        dt = win[-1][0] - win[0][0]
        if dt <= 0:
            return 0.0, 0.0
        return (win[-1][1] - win[0][1]) / dt, (win[-1][2] - win[0][2]) / dt

    # -- reader thread -----------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.settings.backoff_initial_s
        while not self._stop.is_set():
            try:
                delivered = self._read_source()
            except Exception as exc:  # a reader must survive any backend error
                logger.exception("camera %s: reader error", self.camera_id)
                delivered = False
                with self._cond:
                    self._error = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set() or self._ended:
                break
            backoff = self.settings.backoff_initial_s if delivered else backoff
            logger.info("camera %s: reconnecting in %.1fs", self.camera_id, backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.settings.backoff_max_s)
            with self._cond:
                self._reconnects += 1

    def _read_source(self) -> bool:
        """Open the source and read until it fails; return whether any frame came."""
        cap = open_capture(self.url, self.settings)
        try:
            if not cap.isOpened():
                with self._cond:
                    self._opened = False
                    self._error = f"cannot open {self._safe_url()}"
                logger.warning("camera %s: cannot open %s", self.camera_id, self._safe_url())
                return False
            with self._cond:
                self._opened = True
                self._error = None
            if self.kind == "file":
                return self._read_file(cap)
            return self._read_live(cap)
        finally:
            cap.release()
            with self._cond:
                self._opened = False

    def _safe_url(self) -> str:
        """The URL without credentials, for logs and status."""
        return mask_url(self.url)

    def _read_live(self, cap: cv2.VideoCapture) -> bool:
        """Grab every frame (cheap), decode only those due for analysis."""
        interval = 1.0 / self.analyse_fps
        next_due = self._clock()
        got_any = False
        while not self._stop.is_set():
            if not cap.grab():
                with self._cond:
                    self._error = "read failed or timed out"
                logger.warning("camera %s: read failed", self.camera_id)
                return got_any
            got_any = True
            now = self._clock()
            self._count_read(now)
            if now < next_due:
                continue
            next_due = max(next_due + interval, now)
            image = retrieve_into(cap, self.ring)
            if image is not None:
                self._publish(image, datetime.now(tz=UTC), now, wait=False)
        return got_any

    def _read_file(self, cap: cv2.VideoCapture) -> bool:
        """Play a file at its own rate (or losslessly), looping at the end."""
        file_fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
        if not 0.1 <= file_fps <= 240:
            file_fps = 25.0
        lossless = self.settings.file_pacing == "lossless"
        step = max(1, round(file_fps / self.analyse_fps)) if self.analyse_fps < file_fps else 1
        video_origin = datetime.now(tz=UTC)
        loop_offset_s = 0.0
        start = self._clock()
        index = 0
        got_any = False
        while not self._stop.is_set():
            if not lossless:
                due = start + index / file_fps
                delay = due - self._clock()
                if delay > 0 and self._stop.wait(delay):
                    break
            if not cap.grab():
                if index == 0:
                    with self._cond:
                        self._error = "file has no frames"
                    return got_any
                if not self.settings.loop_files:
                    with self._cond:
                        self._ended = True
                        self._cond.notify_all()
                    return got_any
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                loop_offset_s += index / file_fps
                start += index / file_fps
                index = 0
                continue
            got_any = True
            now = self._clock()
            self._count_read(now)
            if index % step == 0:
                image = retrieve_into(cap, self.ring)
                if image is not None:
                    if lossless:
                        ts = video_origin + timedelta(seconds=loop_offset_s + index / file_fps)
                    else:
                        ts = datetime.now(tz=UTC)
                    self._publish(image, ts, now, wait=lossless, pos_s=index / file_fps)
            index += 1
        return got_any

    def _count_read(self, now: float) -> None:
        with self._cond:
            self._frames_read += 1
            self._last_frame_mono = now

    def _publish(
        self, image: BGRImage, ts: datetime, now: float, wait: bool, pos_s: float | None = None
    ) -> None:
        """Put a sampled frame in the slot (overwrite = skipped) and update image health."""
        self._check_image(image, now)
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
                self._last_frame_mono = self._clock()
            if self._slot is not None:
                self._frames_skipped += 1
            self._seq += 1
            self._frames_sampled += 1
            self._slot = Frame(image=image, ts=ts, seq=self._seq, video_pos_s=pos_s)
            self._last_frame_at = ts
            self._rate_window.append((now, self._frames_sampled, self._frames_skipped))
            if len(self._rate_window) > 256:
                del self._rate_window[:128]
            self._cond.notify_all()

    def _check_image(self, image: BGRImage, now: float) -> None:
        """At most every ``health_every_s``: judge frozen / covered / blurred."""
        st = self._image
        if now - st.last_check < self.settings.health_every_s:
            return
        st.last_check = now
        gray = np.asarray(
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image, np.uint8
        )
        h, w = gray.shape[:2]
        mid_w = min(w, 320)
        mid_size = (mid_w, max(1, round(h * mid_w / w)))
        mid = np.asarray(cv2.resize(gray, mid_size, interpolation=cv2.INTER_AREA), np.uint8)
        small = cv2.resize(mid, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
        problem = judge_image(small, mid, self.settings)
        # Frozen is judged at 320 px: a still but live scene (an empty prep room at night)
        # differs by its sensor noise there, 3-9 grey levels, which the 64x36 average smooths
        # to within frozen_max_diff; a frozen stream repeats its frame exactly at any size.
        frozen = (
            st.last_mid is not None
            and st.last_mid.shape == mid.shape
            and float(cv2.absdiff(mid, st.last_mid).max()) <= self.settings.frozen_max_diff
        )
        st.last_mid = mid
        if problem is None and frozen:
            problem = HealthProblem.FROZEN
        # covered and blurred are one rule (camera_blurred): a lens flickering between the two
        # (a light leak under a cloth) keeps its hold running instead of restarting it
        lens = (HealthProblem.COVERED, HealthProblem.BLURRED)
        if problem is not st.candidate and not (problem in lens and st.candidate in lens):
            st.candidate_since = now
        st.candidate = problem
        hold = (
            self.settings.frozen_after_s
            if problem is HealthProblem.FROZEN
            else self.settings.problem_after_s
        )
        with self._cond:
            if problem is None:
                self._problem, self._problem_since_mono = None, None
            elif now - st.candidate_since >= hold and self._problem is not problem:
                self._problem, self._problem_since_mono = problem, st.candidate_since
                logger.warning("camera %s: %s", self.camera_id, problem.value)


def video_path_ok(url: str) -> bool:
    """Whether a file camera's path exists (for config validation)."""
    return source_kind(url) != "file" or Path(url.removeprefix("file://")).is_file()
