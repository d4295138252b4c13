"""The shared detector's scheduler: many camera threads, one batched model call per round."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bkcommon.errors import ModelError
from edge.detect.base import Detections, Detector
from edge.detect.batching import BatchingDetector
from edge.detect.onnx import OnnxDetector
from tests.edge.support import GREEN, RED, Patch, kitchen_background, render


class RecordingDetector:
    """The real ONNX detector, recording the batch size of every call."""

    def __init__(self, inner: OnnxDetector) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    class_names = property(lambda self: self.inner.class_names)
    input_size = property(lambda self: self.inner.input_size)
    model_version = property(lambda self: self.inner.model_version)

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        self.gate.wait(10)
        self.batches.append(len(images))
        return self.inner.detect(images)


def test_requests_of_many_threads_are_batched_and_answered_correctly(
    mask_model_path: Path,
) -> None:
    raw = OnnxDetector(mask_model_path, threads=1)
    rec = RecordingDetector(raw)
    shared = BatchingDetector(rec, max_batch=8).start()
    assert isinstance(shared, Detector)
    bg = kitchen_background(320, 240)
    images = [render(bg, [Patch(60 + 20 * i, 100, 30, RED if i % 2 else GREEN)]) for i in range(8)]
    expected = raw.detect(images)
    got: dict[int, list[Detections]] = {}
    rec.gate.clear()  # hold the first round so the others queue up behind it

    def camera(i: int) -> None:
        got[i] = shared.detect([images[i]])

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    rec.gate.set()
    for t in threads:
        t.join(10)
    shared.stop()
    assert sorted(got) == list(range(8))
    for i in range(8):
        assert got[i][0].class_id.tolist() == expected[i].class_id.tolist()
        assert np.allclose(got[i][0].xyxy, expected[i].xyxy, atol=0.01)
    assert sum(rec.batches) == 8
    assert len(rec.batches) < 8  # at least one round served several cameras
    assert shared.stats.images == 8
    assert shared.stats.rounds == len(rec.batches)


def test_a_failing_round_reaches_every_caller_and_the_scheduler_lives_on(
    mask_model_path: Path,
) -> None:
    class Flaky(RecordingDetector):
        fail = True

        def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
            if self.fail:
                self.fail = False
                raise RuntimeError("boom")
            return super().detect(images)

    shared = BatchingDetector(Flaky(OnnxDetector(mask_model_path, threads=1)))
    img = render(kitchen_background(320, 240), [Patch(100, 100, 30, RED)])
    with pytest.raises(ModelError, match="boom"):
        shared.detect([img])
    assert [len(r) for r in shared.detect([img, img])] == [1, 1]
    assert shared.detect([]) == []
    shared.stop()
    with pytest.raises(ModelError, match="stopped"):
        shared.detect([img])


def test_two_workers_run_two_rounds_at_once_on_one_model(mask_model_path: Path) -> None:
    """With workers=2, a second round runs while the first is still inside the model."""

    class Overlapping(RecordingDetector):
        def __init__(self, inner: OnnxDetector) -> None:
            super().__init__(inner)
            self.lock = threading.Lock()
            self.inside = 0
            self.most_inside = 0
            self.both_in = threading.Event()
            self.threads: set[str] = set()

        def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
            with self.lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                self.threads.add(threading.current_thread().name)
                if self.inside == 2:
                    self.both_in.set()
            try:
                self.both_in.wait(5)  # the first round waits in the model for the second
                return super().detect(images)
            finally:
                with self.lock:
                    self.inside -= 1

    raw = OnnxDetector(mask_model_path, threads=1)
    rec = Overlapping(raw)
    shared = BatchingDetector(rec, max_batch=1, workers=2).start()
    bg = kitchen_background(320, 240)
    images = [render(bg, [Patch(60 + 40 * i, 100, 30, RED if i % 2 else GREEN)]) for i in range(4)]
    expected = raw.detect(images)
    got: dict[int, list[Detections]] = {}

    def camera(i: int) -> None:
        got[i] = shared.detect([images[i]])

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    shared.stop()
    assert rec.both_in.is_set()
    assert rec.most_inside == 2
    assert rec.threads == {"detector", "detector-1"}
    for i in range(4):
        assert got[i][0].class_id.tolist() == expected[i].class_id.tolist()
        assert np.allclose(got[i][0].xyxy, expected[i].xyxy, atol=0.01)
    assert shared.stats.images == 4
    assert shared.stats.rounds == 4
    with pytest.raises(ValueError, match="workers"):
        BatchingDetector(rec, workers=0)
