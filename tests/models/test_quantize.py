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


def test_edge_runtime_loads_it_with_metadata_and_batches(quantized: tuple[Path, Path]) -> None:
    import cv2

    path, images = quantized
    meta = read_metadata(path)
    assert meta["bk_model_version"] == "test-int8"
    assert meta["bk_quantized"].startswith("int8 qdq static, per-channel weights, percentile")
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


def test_recover_refuses_an_int8_file(quantized: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    from models.recover import recover

    path, images = quantized
    with pytest.raises(ModelError, match=r"quantized .*float export"):
        recover(path, tmp_path / "r.pt", images=images)
