"""Our own training-time transforms, hooked into ultralytics' augmentation pipeline.

ultralytics builds each dataset's transforms in ``YOLODataset.build_transforms`` (and again
when mosaic closes near the end of a run). Ours must run after mosaic and the affine step, on
the final training image, and before ``Format`` turns it into a tensor. One patch places all of
them, in the order given, so that for instance pasted faces (``models.face_paste``) also get the
camera's faults (``models.camera_augment``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def install(transforms: Sequence[Transform]) -> None:
    """Make every augmenting dataset built from now on end with ``transforms``, in order.

    Installing again replaces the earlier list rather than stacking on it. The dataloader
    workers fork after the datasets are built, so they carry the transforms. Validation
    datasets (``augment`` false) are left as they are.
    """
    from ultralytics.data.dataset import YOLODataset

    original = getattr(YOLODataset.build_transforms, "__wrapped__", YOLODataset.build_transforms)
    ours = list(transforms)

    def build_transforms(self: Any, hyp: Any = None) -> Any:
        built = original(self, hyp)
        if self.augment:
            for transform in ours:
                built.insert(len(built.transforms) - 1, transform)  # before Format
        return built

    build_transforms.__wrapped__ = original  # type: ignore[attr-defined]
    YOLODataset.build_transforms = build_transforms  # type: ignore[method-assign]
