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
