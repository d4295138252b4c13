"""One detector for every camera of a box, fed by a scheduler thread that batches requests.

Camera threads call :meth:`BatchingDetector.detect` and wait; the scheduler takes
everything queued at that moment (up to ``max_batch`` images, crops of several
cameras together) and runs it as one detector call, so a model with a dynamic
batch axis does one ONNX Runtime run per round instead of one per camera, and no
camera thread ever holds the model while another waits on a lock::

    shared = BatchingDetector(OnnxDetector(path), max_batch=8).start()
    shared.detect([crop_a, crop_b])      # from any thread; blocks until done
    shared.stop()

With ``workers=2`` two scheduler threads take rounds from the one queue and run them at the
same time on the same detector (an ONNX Runtime session may be run from several threads at
once), each with one intra-op thread, in the hope that two independent runs keep two cores
busier than one run with a two-thread pool. Measured on a VNNI CPU (docs/benchmarks.md,
Round 7) it did not carry more cameras: the rounds get smaller and batching gains less. It
stays a setting (default 1) for CPUs where that may differ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError
from edge.detect.base import Detections, Detector

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Request:
    images: list[npt.NDArray[np.uint8]]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Detections] | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class BatchStats:
    """Counters of the scheduler: rounds run, requests and images served, busy time."""

    rounds: int = 0
    requests: int = 0
    images: int = 0
    busy_s: float = 0.0


class BatchingDetector:
    """A thread-safe :class:`Detector` that batches the requests of many camera threads."""

    def __init__(
        self, inner: Detector, *, max_batch: int = 8, timeout_s: float = 30.0, workers: int = 1
    ) -> None:
        """Wrap ``inner``; call :meth:`start` (or let the first :meth:`detect` start it).

        ``workers`` scheduler threads call ``inner.detect`` concurrently, so ``inner`` must
        allow that when it is more than one (``OnnxDetector`` does).
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._inner = inner
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.workers = workers
        self.stats = BatchStats()
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._threads: list[threading.Thread] = []

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

    def start(self) -> BatchingDetector:
        """Start the scheduler threads (idempotent)."""
        with self._cond:
            if not any(t.is_alive() for t in self._threads):
                self._stop = False
                self._threads = [
                    threading.Thread(
                        target=self._run,
                        name="detector" if i == 0 else f"detector-{i}",
                        daemon=True,
                    )
                    for i in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the scheduler; requests still queued fail with ModelError."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        with self._cond:
            while self._queue:
                req = self._queue.popleft()
                req.error = ModelError("detector stopped")
                req.done.set()

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Queue ``images`` for the next round and wait for their detections."""
        if not images:
            return []
        if not self._threads:
            self.start()
        req = _Request(list(images))
        with self._cond:
            if self._stop:
                raise ModelError("detector stopped")
            self._queue.append(req)
            self._cond.notify()
        if not req.done.wait(self.timeout_s):
            raise ModelError(f"detector gave no answer in {self.timeout_s:.0f} s")
        if req.error is not None:
            raise ModelError(f"detection failed: {req.error}") from req.error
        assert req.result is not None
        return req.result

    def _take_round(self) -> list[_Request]:
        """Wait for work; return the queued requests that fit in one batch (at least one)."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._stop)
            if self._stop:
                return []
            taken = [self._queue.popleft()]
            n = len(taken[0].images)
            while self._queue and n + len(self._queue[0].images) <= self.max_batch:
                req = self._queue.popleft()
                n += len(req.images)
                taken.append(req)
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take_round()
            if not taken:
                return
            images = [img for req in taken for img in req.images]
            t0 = time.perf_counter()
            try:
                results = self._inner.detect(images)
            except Exception as exc:  # every waiting camera gets the error, the thread lives on
                logger.exception("detector round of %d image(s) failed", len(images))
                for req in taken:
                    req.error = exc
                    req.done.set()
                continue
            if len(results) != len(images):
                for req in taken:
                    req.error = ModelError(f"{len(results)} results for {len(images)} images")
                    req.done.set()
                continue
            busy = time.perf_counter() - t0
            with self._cond:  # several workers may finish at once
                self.stats.rounds += 1
                self.stats.requests += len(taken)
                self.stats.images += len(images)
                self.stats.busy_s += busy
            i = 0
            for req in taken:
                req.result = results[i : i + len(req.images)]
                i += len(req.images)
                req.done.set()
