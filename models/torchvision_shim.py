"""Make a CUDA-linked torchvision wheel importable next to a CPU-only torch.

The torchvision wheels reachable on CPU machines are often CUDA-linked; with a ``+cpu`` torch
``import torchvision`` then dies because ``torchvision::nms`` cannot be registered. Ultralytics'
validator needs only that one op, so ``install`` writes a small ``.pth`` hook into the target
interpreter's site-packages that defines ``torchvision::nms`` on the CPU before torchvision loads.
Where torchvision's own extension loads, the hook does nothing (and ``install`` skips it).

Usage: ``python -m models.torchvision_shim install [PYTHON]``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

HOOK_MODULE = "bk_torchvision_cpu_shim"

# The hook runs inside the target interpreter at start-up; it must import nothing heavy until
# torchvision itself is imported.
HOOK_SOURCE = '''"""brightkitchen: torchvision::nms on the CPU when the real extension fails."""
import importlib.abc
import importlib.machinery
import sys

_lib = None


def _nms_cpu(dets, scores, iou_threshold):
    import numpy as np
    import torch

    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=dets.device)
    b = dets.detach().double().cpu().numpy()
    s = scores.detach().double().cpu().numpy()
    order = np.argsort(-s, kind="stable")
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=dets.device)


def _real_extension_loads():
    import glob
    import importlib.util
    import os

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for so in glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_C*.so")):
        try:
            torch.ops.load_library(so)
            return True
        except (OSError, RuntimeError):
            pass
    return False


def define_ops():
    global _lib
    import torch

    if _lib is not None or hasattr(torch.ops.torchvision, "nms") or _real_extension_loads():
        return
    _lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        _lib.define(name + "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _lib.impl(name, _nms_cpu, "CPU")


def patch_after_import():
    import torchvision.extension as ext

    if _lib is not None and not ext._has_ops():
        ext._has_ops = lambda: True


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        try:
            define_ops()
        except Exception:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        orig = spec.loader.exec_module

        def exec_module(module):
            orig(module)
            patch_after_import()

        spec.loader.exec_module = exec_module
        return spec


if not any(type(f).__name__ == "_Finder" and getattr(f, "_bk", False) for f in sys.meta_path):
    _f = _Finder()
    _f._bk = True
    sys.meta_path.insert(0, _f)
'''

_CHECK = (
    "import torch, torchvision.ops; "
    "b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.0]]); "
    "print(torchvision.ops.nms(b, torch.tensor([0.9, 0.8]), 0.5).tolist())"
)


def _run(python: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run a snippet in the target interpreter (isolated from this one's state)."""
    return subprocess.run(  # noqa: S603 - the interpreter path is the operator's own argument
        [python, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )


def site_packages(python: str) -> Path:
    """Return the target interpreter's purelib folder, where the hook goes."""
    res = _run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    if res.returncode != 0:
        raise RuntimeError(f"cannot query {python}: {res.stderr.strip()}")
    return Path(res.stdout.strip())


def install(python: str) -> bool:
    """Install the hook into ``python`` unless torchvision already works; True if installed."""
    sp = site_packages(python)
    pth = sp / f"{HOOK_MODULE}.pth"
    if not pth.exists() and _run(python, _CHECK).returncode == 0:
        logger.info("torchvision works in %s: no shim needed", python)
        return False
    (sp / f"{HOOK_MODULE}.py").write_text(HOOK_SOURCE, encoding="utf-8")
    pth.write_text(f"import {HOOK_MODULE}\n", encoding="utf-8")
    res = _run(python, _CHECK)
    if res.returncode != 0:
        raise RuntimeError(f"torchvision still fails after the shim: {res.stderr.strip()[-500:]}")
    logger.info("torchvision CPU shim installed in %s (nms -> %s)", sp, res.stdout.strip())
    return True


def uninstall(python: str) -> None:
    """Remove the hook from ``python``'s site-packages if present."""
    sp = site_packages(python)
    for name in (f"{HOOK_MODULE}.pth", f"{HOOK_MODULE}.py"):
        (sp / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``install|uninstall [PYTHON]``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m models.torchvision_shim")
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("python", nargs="?", default=sys.executable)
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            install(args.python)
        else:
            uninstall(args.python)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        logger.error("torchvision shim: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
