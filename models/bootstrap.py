"""Bootstrap confidence intervals for detection metrics, resampling whole images.

A test set of a few hundred photos gives numbers that move by several points when a handful
of photos change; the interval says by how much. Images are drawn with replacement (the unit
that was sampled when the set was collected; faces of one photo are not independent), the
metrics are recomputed on each resample, and the 2.5th and 97.5th percentiles are reported
(percentile bootstrap, 95 %).

A resample is a weight per image (how many times it was drawn), so the pooled detections
are sorted once: a detection's true/false positive counts ``weight`` times on the curve.
With every weight 1 the numbers are exactly ``evaluate``'s AP50 and its precision and recall
at the shipped threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.evaluate import average_precision, tie_points

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class ImageRecords:
    """What a run over a test set found, kept per image so that images can be resampled.

    ``det_*``: every detection above the curve threshold, pooled (``det_image`` says whose);
    ``tp50``/``ignored50``: matched a labelled face at IoU 0.5 / found a ``difficult`` one;
    ``gt``: labelled faces per image and class; ``shipped``: per image and class, the
    true positives, false positives and misses at the shipped threshold.
    """

    names: tuple[str, ...]
    det_image: npt.NDArray[np.int64]
    det_conf: npt.NDArray[np.float32]
    det_cls: npt.NDArray[np.int64]
    tp50: npt.NDArray[np.bool_]
    ignored50: npt.NDArray[np.bool_]
    gt: npt.NDArray[np.int64]  # (n_images, n_classes)
    shipped: npt.NDArray[np.int64]  # (n_images, n_classes, 3): tp, fp, fn

    @property
    def n_images(self) -> int:
        """Number of images."""
        return int(self.gt.shape[0])


def weighted_ap50(rec: ImageRecords, weights: npt.NDArray[np.float64], c: int) -> float:
    """AP50 of class ``c`` when image ``i`` counts ``weights[i]`` times."""
    n_gt = float((rec.gt[:, c] * weights).sum())
    if n_gt <= 0:
        return 0.0
    sel = (rec.det_cls == c) & ~rec.ignored50
    w = weights[rec.det_image[sel]]
    keep = w > 0
    if not keep.any():
        return 0.0
    conf, tp, w = rec.det_conf[sel][keep], rec.tp50[sel][keep], w[keep]
    order = np.argsort(-conf, kind="stable")
    conf, tp, w = conf[order], tp[order], w[order]
    tpc, fpc = tie_points(conf, np.cumsum(w * tp), np.cumsum(w * ~tp))
    return average_precision(tpc / n_gt, tpc / (tpc + fpc))


def metrics(rec: ImageRecords, weights: npt.NDArray[np.float64] | None = None) -> dict[str, float]:
    """mAP50, per-class AP50, and per-class precision / recall at the shipped threshold."""
    w = np.ones(rec.n_images) if weights is None else weights
    out: dict[str, float] = {}
    aps = []
    counts = (rec.shipped * w[:, None, None]).sum(axis=0)  # (n_classes, 3)
    for c, name in enumerate(rec.names):
        ap = weighted_ap50(rec, w, c)
        out[f"ap50_{name}"] = ap
        if (rec.gt[:, c] * w).sum() > 0:
            aps.append(ap)
        tp, fp, fn = counts[c]
        out[f"precision_{name}"] = float(tp / (tp + fp)) if tp + fp else 0.0
        out[f"recall_{name}"] = float(tp / (tp + fn)) if tp + fn else 0.0
    out["map50"] = float(np.mean(aps)) if aps else 0.0
    return out


def bootstrap_ci(
    rec: ImageRecords, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> dict[str, list[float]]:
    """Percentile interval ``[low, high]`` of every metric of ``metrics`` over resamples.

    Deterministic for a seed. With fewer than two images there is nothing to resample and
    every interval is the point value.
    """
    point = metrics(rec)
    n = rec.n_images
    if n < 2 or resamples < 1:
        return {k: [round(v, 4), round(v, 4)] for k, v in point.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        for k, v in metrics(rec, weights).items():
            draws[k].append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        k: [round(float(np.percentile(v, lo)), 4), round(float(np.percentile(v, hi)), 4)]
        for k, v in draws.items()
    }
