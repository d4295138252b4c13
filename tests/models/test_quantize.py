"""quantize: the edge model in INT8 computes what the float one does, and the box loads it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bkcommon.errors import ModelError
from edge.detect.onnx import OnnxDetector
from models.export import read_metadata
from tests.models.helpers import write_voc

pytest.importorskip("onnxruntime.quantization")

FLOAT_320 = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from models.quantize import quantize

    root = tmp_path_factory.mktemp("quantize")
    images = write_voc(root / "faces", 6, seed=5, size=160) / "images"
    res = quantize(
        FLOAT_320,
        root / "q.onnx",
        images=images,
        calibration_images=6,
        version="test-int8",
        method="percentile",
    )
    assert res.calibration_images == 6
    assert res.quantized_convs > 50  # the backbone, neck and head convs
    assert res.float_nodes > 0
    assert res.mean_abs_diff_scores < 0.01
    return res.path, images


def test_convolutions_become_qdq_and_the_decoding_stays_float(quantized: tuple[Path, Path]) -> None:
    import onnx

    from models.quantize import head_prefix

    model = onnx.load(str(quantized[0]))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 50
    assert ops.count("DequantizeLinear") > 50
    head = head_prefix(model.graph)
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    # The box decoding's conv (DFL) keeps its float weights, and the output is not the
    # result of a dequantize step: boxes stay float pixels.
    dfl = [
        n
        for n in model.graph.node
        if n.name.startswith(head) and "/dfl/" in n.name and n.op_type == "Conv"
    ]
    assert len(dfl) == 1
    weight = inits[dfl[0].input[1]]
    assert weight.data_type == onnx.TensorProto.FLOAT
    assert producers[model.graph.output[0].name].op_type != "DequantizeLinear"
    # A backbone conv's weights are int8 per output channel.
    first = next(n for n in model.graph.node if n.op_type == "Conv")
    w_dq = producers[first.input[1]]
    assert w_dq.op_type == "DequantizeLinear"
    assert inits[w_dq.input[0]].data_type == onnx.TensorProto.INT8
    # 7 of the 8 bits (reduce_range): uint8 x int8 pairs cannot saturate an int16 on CPUs
    # without VNNI, so the file computes the same on every box
    from onnx import numpy_helper

    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None:
            q = numpy_helper.to_array(inits[n.input[0]])
            if q.dtype == np.int8:
                assert int(np.abs(q.astype(np.int32)).max()) <= 64, n.input[0]


def test_edge_runtime_loads_it_with_metadata_and_batches(quantized: tuple[Path, Path]) -> None:
    import cv2

    path, images = quantized
    meta = read_metadata(path)
    assert meta["bk_model_version"] == "test-int8"
    assert meta["bk_quantized"].startswith("int8 qdq static, per-channel 7-bit weights, percentile")
    assert meta["bk_conf_threshold"] == read_metadata(FLOAT_320)["bk_conf_threshold"]
    fp, q = OnnxDetector(FLOAT_320, threads=1), OnnxDetector(path, threads=1)
    assert q.class_names == fp.class_names
    assert q.input_size == fp.input_size
    frames = [cv2.imread(str(p)) for p in sorted(images.iterdir())[:4]]
    got = q.detect(frames)  # a batch, as the batching detector calls it
    assert len(got) == 4


def test_strongest_anchors_keep_their_boxes_and_scores(quantized: tuple[Path, Path]) -> None:
    """Where the float model is most confident, the INT8 file's boxes move about a pixel and
    its scores by < 0.01 (measured: 1.0-1.5 px, 0.001-0.007); a quantized decoding head or
    wrong activation ranges move them by tens of pixels."""
    import onnxruntime as ort

    from models.recover import calibration_batch, list_images

    path, images = quantized
    batch = calibration_batch(list_images(images), 320, 6)
    outs = []
    for p in (FLOAT_320, path):
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        outs.append(np.concatenate([sess.run(None, {name: batch[i : i + 1]})[0] for i in range(6)]))
    fp, q = outs
    assert fp.shape == q.shape
    for i in range(batch.shape[0]):
        top = np.argsort(fp[i, 4:].max(axis=0))[-20:]
        assert float(np.abs(fp[i, :4, top] - q[i, :4, top]).mean()) < 4.0
        assert float(np.abs(fp[i, 4:, top] - q[i, 4:, top]).max()) < 0.05


def test_full_range_file_says_so_and_the_box_warns_on_a_cpu_without_vnni(
    quantized: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """8-bit weights are exact only with VNNI / ARM dot-product; a box without it says so at
    load instead of quietly detecting differently from the card."""
    import logging

    import edge.detect.onnx as onnx_mod
    from models.quantize import quantize

    path, images = quantized
    full = quantize(
        FLOAT_320, tmp_path / "full.onnx", images=images, calibration_images=4, full_range=True
    )
    assert "8-bit" in read_metadata(full.path)["bk_quantized"]
    monkeypatch.setattr(onnx_mod, "int8_dot_product", lambda: False)
    with caplog.at_level(logging.WARNING, logger="edge.detect.onnx"):
        OnnxDetector(path, threads=1)
    assert "no VNNI" not in caplog.text  # 7-bit weights: right on every CPU
    with caplog.at_level(logging.WARNING, logger="edge.detect.onnx"):
        OnnxDetector(full.path, threads=1)
    assert "no VNNI" in caplog.text
    caplog.clear()
    monkeypatch.setattr(onnx_mod, "int8_dot_product", lambda: True)
    with caplog.at_level(logging.WARNING, logger="edge.detect.onnx"):
        OnnxDetector(full.path, threads=1)
    assert "no VNNI" not in caplog.text


def test_evaluate_says_which_cpu_computed_an_int8_files_numbers(
    quantized: tuple[Path, Path],
) -> None:
    from edge.detect.cpu_int8 import int8_dot_product
    from models.evaluate import evaluate, format_report

    path, images = quantized
    report, _ = evaluate(images.parent, path, threads=1)
    assert report.quantized.startswith("int8 qdq static, per-channel 7-bit")
    assert report.cpu_int8_dot_product == int8_dot_product()
    assert "INT8 file (int8 qdq static" in format_report(report)
    plain, _ = evaluate(images.parent, FLOAT_320, threads=1)
    assert plain.quantized == ""
    assert plain.cpu_int8_dot_product is None
    assert "INT8 file" not in format_report(plain)


def test_refusals_are_clear(quantized: tuple[Path, Path], tmp_path: Path) -> None:
    from models.quantize import quantize

    path, images = quantized
    with pytest.raises(ModelError, match="already quantized"):
        quantize(path, tmp_path / "again.onnx", images=images)
    copy = tmp_path / "m.onnx"
    shutil.copy(FLOAT_320, copy)
    with pytest.raises(ModelError, match="must differ"):
        quantize(copy, copy, images=images)
    for method in ("median", "entropy"):
        with pytest.raises(ModelError, match="calibration method"):
            quantize(copy, tmp_path / "x.onnx", images=images, method=method)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no images"):
        quantize(copy, tmp_path / "x.onnx", images=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        quantize(copy, tmp_path / "x.onnx", images=tmp_path / "nowhere")


def test_recover_rebuilds_the_network_from_an_int8_file(
    quantized: tuple[Path, Path], tmp_path: Path
) -> None:
    """An INT8 file is enough to fine-tune from: its dequantized weights are the float file's
    to within 8-bit rounding, and the checkpoint keeps the float file's strongest anchors."""
    pytest.importorskip("ultralytics")
    import torch

    from models.recover import compare_strongest_anchors, onnx_weights, recover

    path, images = quantized
    exact, rounded = onnx_weights(FLOAT_320), onnx_weights(path)
    for name in ("model.0.conv.weight", "model.8.cv1.conv.weight", "model.24.cv3.0.2.weight"):
        w, q = exact[name], rounded[name]
        assert q.shape == w.shape
        # per output channel, 7-bit rounding moves a weight by at most half a step
        step = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 63
        err = np.abs(q - w).reshape(w.shape[0], -1).max(axis=1)
        assert (err <= step * 0.5 + 1e-6).all(), name
    res = recover(path, tmp_path / "r.pt", images=images, calibration_images=4)
    assert res.from_int8
    assert res.tensors > 150
    assert res.max_abs_diff_boxes_px < 4.0
    assert res.max_abs_diff_scores < 0.05
    model = torch.load(res.path, map_location="cpu", weights_only=False)["model"]
    from models.recover import calibration_batch, list_images

    batch = calibration_batch(list_images(images), 320, 4)
    d_box, d_score = compare_strongest_anchors(model, FLOAT_320, batch)
    assert d_box < 4.0
    assert d_score < 0.05
