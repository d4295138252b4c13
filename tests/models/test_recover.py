"""recover: a shipped ONNX becomes a trainable checkpoint that computes the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.helpers import write_voc

pytest.importorskip("ultralytics")

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo.onnx"


def test_shipped_model_round_trips_and_batchnorm_matches_its_data(tmp_path: Path) -> None:
    import torch

    from models.recover import calibration_batch, list_images, recover

    images = write_voc(tmp_path / "faces", 4, seed=3, size=160) / "images"
    res = recover(SHIPPED, tmp_path / "rec.pt", images=images, calibration_images=4)
    assert res.path.is_file()
    assert res.calibration_images == 4
    assert res.tensors > 150  # every conv of YOLOv5n: weights and folded biases
    assert res.max_abs_diff_boxes_px < 0.05
    assert res.max_abs_diff_scores < 1e-4

    ckpt = torch.load(res.path, map_location="cpu", weights_only=False)
    model = ckpt["model"]
    assert list(model.names.values()) == ["with_mask", "without_mask", "mask_weared_incorrect"]
    # In train mode BatchNorm normalises with the batch's own statistics. They were measured on
    # these very images, so fine-tuning starts from the shipped function, not a renormalised one.
    from edge.detect.onnx import OnnxDetector

    side = OnnxDetector(SHIPPED).input_size[0]
    batch = torch.from_numpy(calibration_batch(list_images(images), side, 4))
    with torch.no_grad():
        _, eval_raw = model.eval()(batch)
        train_raw = model.train()(batch)
    for key in ("boxes", "scores"):
        e, t = eval_raw[key], train_raw[key]
        assert e.shape == t.shape
        assert torch.allclose(e, t, atol=1e-2, rtol=1e-3), (key, float((e - t).abs().max()))


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    from models.recover import recover

    images = write_voc(tmp_path / "faces", 2, seed=4, size=96) / "images"
    with pytest.raises(ValueError, match="different architecture"):
        recover(SHIPPED, tmp_path / "rec.pt", images=images, cfg="yolov5s.yaml")


def test_missing_calibration_folder_is_a_clear_error(tmp_path: Path) -> None:
    from models.recover import recover

    with pytest.raises(FileNotFoundError, match="does not exist"):
        recover(SHIPPED, tmp_path / "rec.pt", images=tmp_path / "nowhere")
