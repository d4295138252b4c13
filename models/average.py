"""Average the weights of ONNX models fine-tuned from one another (a uniform "model soup").

A model fine-tuned from another stays in the same basin of the loss, so the midpoint of the
two weight sets is itself a good network, and usually a better and more robust one than
either end (Wortsman et al., "Model soups", 2022; "Robust fine-tuning of zero-shot models",
2022): it keeps what the start model knew while taking what fine-tuning added. v3 of the mask
model is the midpoint of v1 and v2 (``MODEL_CARD.md``). The average is uniform on purpose:
a mixing weight would be one more knob to tune on the validation split.

It works on the shipped ONNX files themselves (a site has only those): the convolution
weights and biases (BatchNorm already folded in by the export) are averaged; the graph,
its constants and metadata come from the first file, so the result has the first file's
input size even when another file was exported at a different size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkcommon.errors import ModelError
from models.export import set_metadata

logger = logging.getLogger(__name__)

AVERAGED_KEY = "bk_averaged_from"


@dataclass(frozen=True, slots=True)
class AverageResult:
    """The written file and what went into it."""

    path: Path
    tensors: int
    sources: list[str]


def conv_parameters(model: Any) -> dict[str, Any]:
    """The initializers a Conv node uses as weight or bias, by name."""
    inits = {i.name: i for i in model.graph.initializer}
    names = {
        name
        for node in model.graph.node
        if node.op_type == "Conv"
        for name in list(node.input)[1:]
        if name in inits
    }
    return {n: inits[n] for n in sorted(names)}


def _version(model: Any, path: Path) -> str:
    meta = {p.key: p.value for p in model.metadata_props}
    return meta.get("bk_model_version") or path.stem


def average_onnx(paths: list[Path], out: Path, *, version: str | None = None) -> AverageResult:
    """Write ``out``: the graph of ``paths[0]`` with every conv tensor the mean over ``paths``.

    Raises ModelError if fewer than two files are given, a file has mirror averaging built in
    (average the plain files, then add it), or the files' conv tensors differ in names or
    shapes (not the same architecture).
    """
    import onnx
    from onnx import numpy_helper

    if len(paths) < 2:
        raise ModelError("averaging needs at least two models")
    models = [onnx.load(str(p)) for p in paths]
    for p, m in zip(paths, models, strict=True):
        if any(prop.key == "bk_tta" for prop in m.metadata_props):
            raise ModelError(f"{p} has test-time augmentation built in: average plain exports")
    params = [conv_parameters(m) for m in models]
    base = params[0]
    if not base:
        raise ModelError(f"{paths[0]} has no convolution weights to average")
    for p, other in zip(paths[1:], params[1:], strict=True):
        if set(other) != set(base):
            raise ModelError(f"{p} and {paths[0]} have different convolution tensors")
        for name, init in base.items():
            if tuple(other[name].dims) != tuple(init.dims):
                raise ModelError(f"{p}: {name} is {list(other[name].dims)}, not {list(init.dims)}")
    for name, init in base.items():
        stack = [numpy_helper.to_array(ps[name]).astype(np.float64) for ps in params]
        mean = np.mean(stack, axis=0).astype(numpy_helper.to_array(init).dtype)
        init.CopyFrom(numpy_helper.from_array(mean, name))
    sources = [_version(m, p) for p, m in zip(paths, models, strict=True)]
    result = models[0]
    updates = {AVERAGED_KEY: ", ".join(sources)}
    if version:
        updates["bk_model_version"] = version
    set_metadata(result, updates)
    onnx.checker.check_model(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(result, str(out))
    logger.info("averaged %d conv tensors of %s into %s", len(base), sources, out)
    return AverageResult(out, len(base), sources)
