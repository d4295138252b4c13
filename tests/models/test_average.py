"""Uniform weight averaging of ONNX files, on the shipped edge model and copies of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from bkcommon.errors import ModelError
from edge.detect.onnx import OnnxDetector
from models.average import average_onnx, conv_parameters
from models.export import read_metadata
from models.mirror_average import add_mirror_average

EDGE_MODEL = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"


def _scaled_copy(tmp: Path, factor: float, version: str) -> Path:
    """The edge model with every conv tensor multiplied by ``factor`` and a new version."""
    model = onnx.load(str(EDGE_MODEL))
    for name, init in conv_parameters(model).items():
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factor, name))
    for prop in model.metadata_props:
        if prop.key == "bk_model_version":
            prop.value = version
    out = tmp / f"{version}.onnx"
    onnx.save(model, str(out))
    return out


def test_average_is_the_mean_of_each_conv_tensor(tmp_path: Path) -> None:
    a = _scaled_copy(tmp_path, 1.0, "a")
    b = _scaled_copy(tmp_path, 3.0, "b")
    res = average_onnx([a, b], tmp_path / "avg.onnx", version="ab")
    model = onnx.load(str(res.path))
    base = onnx.load(str(EDGE_MODEL))
    base_params = conv_parameters(base)
    assert res.tensors == len(base_params) > 100
    for name, init in conv_parameters(model).items():
        np.testing.assert_allclose(
            numpy_helper.to_array(init), 2 * numpy_helper.to_array(base_params[name]), rtol=1e-6
        )
    meta = read_metadata(res.path)
    assert meta["bk_model_version"] == "ab"
    assert meta["bk_averaged_from"] == "a, b"
    assert meta["names"] == read_metadata(EDGE_MODEL)["names"]
    det = OnnxDetector(res.path, threads=1)
    assert det.info.dynamic_batch
    assert det.input_size == (320, 320)


def test_averaging_a_model_with_itself_changes_nothing(tmp_path: Path) -> None:
    res = average_onnx([EDGE_MODEL, EDGE_MODEL], tmp_path / "same.onnx")
    x = np.random.default_rng(1).random((1, 3, 320, 320), dtype=np.float32)
    got = ort.InferenceSession(str(res.path)).run(None, {"images": x})[0]
    ref = ort.InferenceSession(str(EDGE_MODEL)).run(None, {"images": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert (
        read_metadata(res.path)["bk_model_version"] == read_metadata(EDGE_MODEL)["bk_model_version"]
    )


def test_refuses_one_file_mirrored_files_and_other_architectures(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="at least two"):
        average_onnx([EDGE_MODEL], tmp_path / "x.onnx")
    mirrored = tmp_path / "m.onnx"
    add_mirror_average(EDGE_MODEL, mirrored)
    with pytest.raises(ModelError, match="test-time augmentation"):
        average_onnx([EDGE_MODEL, mirrored], tmp_path / "x.onnx")
    other = onnx.load(str(EDGE_MODEL))
    first = next(iter(conv_parameters(other).values()))
    arr = numpy_helper.to_array(first)
    first.CopyFrom(numpy_helper.from_array(np.concatenate([arr, arr]), first.name))
    wide = tmp_path / "wide.onnx"
    onnx.save(other, str(wide))
    with pytest.raises(ModelError, match="not"):
        average_onnx([EDGE_MODEL, wide], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
