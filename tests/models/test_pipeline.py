"""Tiny end-to-end run: prepare -> train -> export -> evaluate on images the test renders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.export import read_metadata
from tests.models.helpers import CLASSES, write_voc

pytest.importorskip("ultralytics")
pytest.importorskip("onnxslim")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[2]
    env = {
        "PYTHONPATH": str(repo),
        "BK_ULTRALYTICS_DIR": str(cwd / "ultra"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", "models", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _train_tiny(cwd: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """One CPU epoch at 64 px on the prepared tiny dataset, into run/NAME."""
    return _cli(
        "train", "--data", "ds/data.yaml", "--imgsz", "64", "--epochs", "1", "--batch", "8",
        "--device", "cpu", "--workers", "0", "--project", "run", "--name", name, *extra,
        cwd=cwd,
    )  # fmt: skip


@pytest.mark.slow
def test_prepare_train_export_evaluate(tmp_path: Path) -> None:
    write_voc(tmp_path / "src" / "faces", 16, seed=1)
    (tmp_path / "recipe.yaml").write_text(
        "name: tiny\n"
        f"classes: {CLASSES}\n"
        "sources: [{path: faces, format: voc, split: auto,"
        " repeat_with: {mask_weared_incorrect: 2}}]\n"
        "val_fraction: 0.3\n"
    )
    out = _cli(
        "prepare", "--config", "recipe.yaml", "--data-root", "src", "--out", "ds", cwd=tmp_path
    ).stdout
    assert "train" in out
    assert (tmp_path / "ds" / "data.yaml").is_file()
    assert list((tmp_path / "ds" / "val_voc" / "annotations").glob("*.xml"))
    listed = len((tmp_path / "ds" / "train.txt").read_text().splitlines())
    assert f"train.txt lists {listed} an epoch" in out

    trained = _train_tiny(tmp_path, "tiny")
    assert f"Using {listed} train" in trained.stdout + trained.stderr  # repeats reach the loader
    best = tmp_path / "run" / "tiny" / "weights" / "best.pt"
    assert best.is_file()

    out = _cli(
        "export",
        "--weights",
        str(best),
        "--out",
        "tiny.onnx",
        "--imgsz",
        "64",
        "--version",
        "tiny-test",
        "--conf",
        "0.2",
        cwd=tmp_path,
    ).stdout
    assert "ONNX Runtime vs framework" in out

    # The ONNX alone is enough to fine-tune again: rebuild a checkpoint, train it one epoch.
    out = _cli(
        "recover",
        "--onnx",
        "tiny.onnx",
        "--images",
        "ds/images/train",
        "--out",
        "rec.pt",
        "--calibration-images",
        "8",
        cwd=tmp_path,
    ).stdout
    assert "checkpoint vs ONNX" in out
    # Fine-tuned as the edge model is: the camera's faults and the rare class's faces pasted
    # into the training images.
    tuned = _train_tiny(
        tmp_path, "tuned", "--start", "rec.pt", "--camera-augment", "0.5", "--face-paste", "0.5"
    )
    assert "fine-tuning the start model as it is" in tuned.stdout + tuned.stderr
    assert "face paste:" in tuned.stdout + tuned.stderr  # the bank was built and logged
    assert (tmp_path / "run" / "tuned" / "weights" / "last.pt").is_file()

    from edge.detect.onnx import OnnxDetector

    det = OnnxDetector(tmp_path / "tiny.onnx")
    assert det.class_names == CLASSES
    assert det.input_size == (64, 64)
    assert det.model_version == "tiny-test"
    assert det.info.conf_threshold == pytest.approx(0.2)

    out = _cli(
        "evaluate",
        "--data",
        "ds/val_voc",
        "--weights",
        "tiny.onnx",
        "--json",
        "m.json",
        cwd=tmp_path,
    ).stdout
    assert "mAP50" in out
    report = json.loads((tmp_path / "m.json").read_text())
    for key in ("map50", "map50_95", "classes", "confusion_matrix", "images_per_s"):
        assert key in report
    assert [c["name"] for c in report["classes"]] == CLASSES
    assert {"precision", "recall", "ap50"} <= set(report["classes"][0])
    assert len(report["confusion_matrix"]) == len(CLASSES) + 1
    assert report["images"] >= 1
    assert report["images_per_s"] > 0

    # INT8 copy, calibrated on the training side, judged by the same evaluate.
    out = _cli(
        "quantize", "--onnx", "tiny.onnx", "--out", "tiny_q.onnx", "--images", "ds/images/train",
        "--calibration-images", "8", "--method", "percentile", cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "convolutions in INT8" in out
    out = _cli("evaluate", "--data", "ds/val_voc", "--weights", "tiny_q.onnx",
               cwd=tmp_path).stdout  # fmt: skip
    assert "mAP50" in out
    assert "INT8 file (int8 qdq static, per-channel 7-bit weights" in out
    assert OnnxDetector(tmp_path / "tiny_q.onnx").model_version == "tiny-test"
    _cli(
        "quantize", "--onnx", "tiny.onnx", "--out", "tiny_q8.onnx", "--images", "ds/images/train",
        "--calibration-images", "4", "--full-range", cwd=tmp_path,
    )  # fmt: skip
    assert "8-bit (VNNI" in read_metadata(tmp_path / "tiny_q8.onnx")["bk_quantized"]
    out = _cli("recover", "--onnx", "tiny_q.onnx", "--images", "ds/images/train",
               "--out", "tiny_from_q.pt", cwd=tmp_path).stdout  # fmt: skip
    assert "INT8 file, means over each image's 20 strongest anchors" in out
    assert (tmp_path / "tiny_from_q.pt").is_file()

    # Mirror averaging built into a copy: evaluate reports it, recover gives the plain network.
    out = _cli(
        "mirror-average",
        "--onnx",
        "tiny.onnx",
        "--out",
        "tiny_m.onnx",
        "--conf",
        "0.1",
        cwd=tmp_path,
    ).stdout
    assert "vs two passes" in out
    _cli(
        "evaluate",
        "--data",
        "ds/val_voc",
        "--weights",
        "tiny_m.onnx",
        "--json",
        "mm.json",
        cwd=tmp_path,
    )
    mirrored = json.loads((tmp_path / "mm.json").read_text())
    assert mirrored["augmentation"] == "hflip-mean"
    assert mirrored["conf_threshold"] == pytest.approx(0.1)
    assert report["augmentation"] == "none"
    out = _cli(
        "recover",
        "--onnx",
        "tiny_m.onnx",
        "--images",
        "ds/images/train",
        "--out",
        "rec_m.pt",
        "--calibration-images",
        "8",
        cwd=tmp_path,
    ).stdout
    assert "checkpoint vs ONNX" in out
    out = _cli(
        "export",
        "--weights",
        str(best),
        "--out",
        "tiny_em.onnx",
        "--imgsz",
        "64",
        "--version",
        "tiny-m",
        "--dynamic-batch",
        "--mirror-average",
        cwd=tmp_path,
    ).stdout
    assert "ONNX Runtime vs framework" in out
    assert read_metadata(tmp_path / "tiny_em.onnx")["bk_tta"] == "hflip-mean"
    assert not list(tmp_path.glob("*.plain.onnx"))
    out = _cli(
        "average",
        "--onnx",
        "tiny.onnx",
        "--onnx",
        "tiny.onnx",
        "--out",
        "avg.onnx",
        "--version",
        "tiny-avg",
        cwd=tmp_path,
    ).stdout
    assert "uniform mean of tiny-test, tiny-test" in out
    assert OnnxDetector(tmp_path / "avg.onnx").model_version == "tiny-avg"
