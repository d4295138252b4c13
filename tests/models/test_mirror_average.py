"""Mirror averaging built into an ONNX file, checked on the shipped edge model (320 px)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from bkcommon.errors import ModelError
from edge.detect.onnx import OnnxDetector
from models.export import read_metadata
from models.mirror_average import (
    TTA_VALUE,
    add_mirror_average,
    mirror_average,
    mirror_average_reference,
    mirror_permutation,
)

EDGE_MODEL = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mirror") / "mirrored.onnx"
    res = mirror_average(EDGE_MODEL, out, version="test-mirror")
    assert res.max_abs_diff_boxes_px < 1e-3
    assert res.max_abs_diff_scores < 1e-6
    return out


def test_permutation_mirrors_each_level_row_by_row() -> None:
    assert mirror_permutation(24, 16, (8,)).tolist() == [2, 1, 0, 5, 4, 3]
    perm = mirror_permutation(64, 32, (8, 16, 32))
    levels = [(4, 8), (2, 4), (1, 2)]
    start = 0
    for gh, gw in levels:
        ids = np.arange(start, start + gh * gw).reshape(gh, gw)
        assert perm[start : start + gh * gw].tolist() == ids[:, ::-1].reshape(-1).tolist()
        start += gh * gw
    assert sorted(perm.tolist()) == list(range(start))


def test_output_on_a_mirror_image_is_the_mirror_of_the_output(mirrored: Path) -> None:
    """Only a correct anchor permutation makes the averaged model mirror-equivariant."""
    sess = ort.InferenceSession(str(mirrored), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).random((2, 3, 320, 320), dtype=np.float32)
    name = sess.get_inputs()[0].name
    out = sess.run(None, {name: x})[0]
    out_of_mirror = sess.run(None, {name: np.ascontiguousarray(x[..., ::-1])})[0]
    expected = out_of_mirror[:, :, mirror_permutation(320, 320, (8, 16, 32))].copy()
    expected[:, 0] = 320 - expected[:, 0]
    np.testing.assert_allclose(out, expected, atol=2e-3, rtol=0)


def test_reference_average_equals_one_pass_of_the_mirrored_file(mirrored: Path) -> None:
    plain = ort.InferenceSession(str(EDGE_MODEL), providers=["CPUExecutionProvider"])
    both = ort.InferenceSession(str(mirrored), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).random((1, 3, 320, 320), dtype=np.float32)
    a = plain.run(None, {"images": x})[0]
    b = plain.run(None, {"images": np.ascontiguousarray(x[..., ::-1])})[0]
    np.testing.assert_allclose(
        both.run(None, {"images": x})[0], mirror_average_reference(a, b, 320, 320), atol=1e-4
    )


def test_edge_runtime_loads_it_with_its_metadata_and_batches(mirrored: Path) -> None:
    meta = read_metadata(mirrored)
    assert meta["bk_tta"] == TTA_VALUE
    assert meta["bk_model_version"] == "test-mirror"
    assert meta["names"] == read_metadata(EDGE_MODEL)["names"]
    det = OnnxDetector(mirrored, threads=1)
    assert det.info.augmentation == TTA_VALUE
    assert det.info.dynamic_batch
    assert det.input_size == (320, 320)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 200, 3), dtype=np.uint8) for _ in range(3)]
    frames.append(cv2.flip(frames[0], 1))
    batched = det.detect(frames)
    one_by_one = [det.detect([f])[0] for f in frames]
    for a, b in zip(batched, one_by_one, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
    assert OnnxDetector(EDGE_MODEL, threads=1).info.augmentation == "none"


def test_refuses_a_file_already_mirrored_and_wrong_strides(mirrored: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="already"):
        add_mirror_average(mirrored, tmp_path / "twice.onnx")
    with pytest.raises(ModelError, match="do not match strides"):
        add_mirror_average(EDGE_MODEL, tmp_path / "bad.onnx", strides=(8, 16))
    assert not (tmp_path / "bad.onnx").exists()


def test_a_file_that_disagrees_with_two_passes_is_not_left_behind(tmp_path: Path) -> None:
    out = tmp_path / "strict.onnx"
    with pytest.raises(ModelError, match="differs from two passes"):
        mirror_average(EDGE_MODEL, out, box_tolerance_px=-1.0)
    assert not out.exists()
