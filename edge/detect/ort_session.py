"""One way to open an ONNX Runtime session on the edge box's CPU, for every model it runs.

The detector and its optional crop classifier share the camera threads' two cores, so
both get the same settings: a small intra-op pool, no busy-waiting pool threads unless
asked (spinning is faster alone but burns the CPU the camera threads need on a loaded
box), and no CPU arena (it keeps the peak of every batch size seen: 82 vs 53 MB grown
over batches 1-8 at 320 px, same CPU; memory patterns still reuse per-shape plans).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bkcommon.errors import ModelError


def cpu_session(
    path: Path,
    *,
    threads: int,
    spinning: bool,
    what: str,
    providers: list[str] | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path``; ModelError (naming ``what``) when the
    file is missing or ONNX Runtime cannot load it."""
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{what} file not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = False
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        cpu = ["CPUExecutionProvider"]
        return ort.InferenceSession(str(path), opts, providers=providers or cpu)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load {what} {path}: {exc}") from exc
