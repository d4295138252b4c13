"""COCO start weights are checked before unpickling; the torchvision CPU shim keeps nms working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.pretrained import DEFAULT_COCO_WEIGHTS, load_yolov5_state
from models.torchvision_shim import install

REPO = Path(__file__).resolve().parents[2]


def test_wrong_checksum_is_refused_before_unpickling(tmp_path: Path) -> None:
    bad = tmp_path / "yolov5n.pt"
    bad.write_bytes(b"definitely not the released checkpoint")
    with pytest.raises(ValueError, match="sha256"):
        load_yolov5_state(bad)


@pytest.mark.slow
def test_coco_backbone_and_neck_match_ultralytics_yolov5n() -> None:
    weights = REPO / DEFAULT_COCO_WEIGHTS
    if not weights.is_file():
        pytest.skip("shared COCO weights not present on this machine")
    pytest.importorskip("ultralytics")
    state = load_yolov5_state(weights)
    names = state.pop("__names__")
    assert "person" in (names.values() if isinstance(names, dict) else names)
    assert len(state) == 349
    from ultralytics import YOLO  # type: ignore[attr-defined]

    target = YOLO("yolov5n.yaml").model.state_dict()
    same = [k for k, v in state.items() if k in target and target[k].shape == v.shape]
    assert len(same) == 342


@pytest.mark.slow
def test_shim_install_is_idempotent_and_nms_works() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    install(sys.executable)
    install(sys.executable)
    code = (
        "import torch, torchvision.ops; "
        "b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.0], [20, 20, 30, 30]]); "
        "print(torchvision.ops.nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[0, 2]"
