"""A tiny real crop classifier for the two-stage tests, written through the real export path
(``models.classifier.export_onnx``) from a randomly initialised small network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

MASK_NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]


def build_tiny_classifier(
    path: Path,
    *,
    classes: Sequence[str] = MASK_NAMES,
    size: int = 32,
    seed: int = 0,
    favour: int | None = None,
    threshold: float = 0.25,
    rule: str = "face_x_prob",
    version: str = "test-cls-1",
) -> Path:
    """Export a randomly initialised 4-channel classifier; ``favour``: zero the last layer's
    weights and give that class a large bias, so it always wins with probability ~1."""
    import torch

    from models.classifier import build_model, export_onnx

    torch.manual_seed(seed)
    model = build_model(len(classes), width=4)
    if favour is not None:
        last = model[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
            last.bias[favour] = 12.0
    model.eval()
    export_onnx(
        model,
        path,
        classes=classes,
        size=size,
        margin=0.25,
        version=version,
        conf_rule=rule,
        conf_threshold=threshold,
    )
    return path
