"""Degraded-camera copies are deterministic and keep boxes on the faces; bootstrap intervals
are sane (contain the point value, repeatable, narrower with more images)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from models.bootstrap import ImageRecords, bootstrap_ci, metrics
from models.degrade import KINDS, MIN_FACE_PX, degrade, write_degraded
from models.evaluate import ap_per_class
from models.sources import Box, load_image, read_folder
from tests.models.helpers import CLASSES, write_voc


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_degraded_sets_are_byte_identical_on_rerun_and_readable(tmp_path: Path) -> None:
    samples = read_folder(write_voc(tmp_path / "voc", 3, seed=7, size=160), "voc", {}, CLASSES)
    assert write_degraded(samples.samples, tmp_path / "a") == 3
    write_degraded(list(reversed(samples.samples)), tmp_path / "b")  # order does not matter
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(KINDS)
    for kind in KINDS:
        res = read_folder(tmp_path / "a" / kind, "auto", {}, CLASSES)
        assert res.issues == []
        assert len(res.samples) == 3


def _one() -> tuple[np.ndarray, list[Box]]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    return img, [Box("without_mask", 100, 60, 160, 140), Box("with_mask", 300, 200, 310, 212)]


@pytest.mark.parametrize("kind", KINDS)
def test_each_degradation_changes_pixels_and_keeps_boxes_inside(kind: str) -> None:
    img, boxes = _one()
    out, moved = degrade(img, boxes, kind, "photo.jpg")
    again, moved_again = degrade(img, boxes, kind, "photo.jpg")
    assert np.array_equal(out, again)
    assert moved == moved_again
    assert out.shape != img.shape or not np.array_equal(out, img)
    h, w = out.shape[:2]
    assert len(moved) == 2
    for b in moved:
        assert 0 <= b.x1 < b.x2 <= w
        assert 0 <= b.y1 < b.y2 <= h
        assert b.difficult == ((b.y2 - b.y1) < MIN_FACE_PX)


def test_small_shrinks_the_median_face_to_cctv_size() -> None:
    img, _ = _one()
    boxes = [
        Box("without_mask", 100, 60, 160, 140),  # 80 px
        Box("with_mask", 200, 60, 245, 120),  # 60 px: the median
        Box("with_mask", 300, 200, 310, 212),  # 12 px
    ]
    out, moved = degrade(img, boxes, "small", "photo.jpg")
    assert 14 <= moved[1].y2 - moved[1].y1 <= 24
    assert moved[2].difficult  # the 12 px face is now a few pixels: not required
    assert not moved[0].difficult
    assert out.shape[0] < img.shape[0]


def test_unknown_kind_is_refused() -> None:
    img, boxes = _one()
    with pytest.raises(ValueError, match="unknown degradation 'fog'"):
        degrade(img, boxes, "fog", "x.jpg")


def _records(n_images: int, seed: int = 0) -> ImageRecords:
    """A detector that finds most faces with some false alarms, on ``n_images`` images."""
    rng = np.random.default_rng(seed)
    det_image, conf, cls, tp = [], [], [], []
    gt = np.zeros((n_images, 3), np.int64)
    shipped = np.zeros((n_images, 3, 3), np.int64)
    for i in range(n_images):
        for c in range(3):
            n = int(rng.integers(0, 4))
            gt[i, c] = n
            found = int(rng.binomial(n, 0.8))
            alarms = int(rng.integers(0, 2))
            for k in range(found + alarms):
                det_image.append(i)
                cls.append(c)
                tp.append(k < found)
                conf.append(float(rng.uniform(0.5, 1.0) if k < found else rng.uniform(0, 0.7)))
            shipped[i, c] = (found, alarms, n - found)
    return ImageRecords(
        names=tuple(CLASSES),
        det_image=np.array(det_image, np.int64),
        det_conf=np.array(conf, np.float32),
        det_cls=np.array(cls, np.int64),
        tp50=np.array(tp, bool),
        ignored50=np.zeros(len(tp), bool),
        gt=gt,
        shipped=shipped,
    )


def test_point_values_are_evaluates_own_arithmetic() -> None:
    rec = _records(40)
    point = metrics(rec)
    ap = ap_per_class(rec.tp50[:, None], rec.det_conf, rec.det_cls, rec.gt.sum(axis=0).tolist())
    for c, name in enumerate(CLASSES):
        assert point[f"ap50_{name}"] == pytest.approx(ap[c, 0], abs=1e-9)
    tp, fp, fn = rec.shipped[:, 1].sum(axis=0)
    assert point["recall_without_mask"] == pytest.approx(tp / (tp + fn))
    assert point["precision_without_mask"] == pytest.approx(tp / (tp + fp))
    # drawing image 0 twice is the same as listing its detections twice
    w = np.ones(40)
    w[0] = 2
    doubled = ImageRecords(
        names=rec.names,
        det_image=np.concatenate([rec.det_image, np.full((rec.det_image == 0).sum(), 40)]),
        det_conf=np.concatenate([rec.det_conf, rec.det_conf[rec.det_image == 0]]),
        det_cls=np.concatenate([rec.det_cls, rec.det_cls[rec.det_image == 0]]),
        tp50=np.concatenate([rec.tp50, rec.tp50[rec.det_image == 0]]),
        ignored50=np.concatenate([rec.ignored50, rec.ignored50[rec.det_image == 0]]),
        gt=np.vstack([rec.gt, rec.gt[:1]]),
        shipped=np.concatenate([rec.shipped, rec.shipped[:1]]),
    )
    assert metrics(rec, w) == pytest.approx(metrics(doubled))


def test_bootstrap_interval_is_sane() -> None:
    small, large = _records(30, seed=1), _records(480, seed=1)
    ci = bootstrap_ci(small, resamples=300, seed=3)
    assert ci == bootstrap_ci(small, resamples=300, seed=3)
    point = metrics(small)
    for key, (lo, hi) in ci.items():
        assert 0.0 <= lo <= hi <= 1.0
        assert lo - 1e-4 <= point[key] <= hi + 1e-4, key
    wide = ci["map50"][1] - ci["map50"][0]
    narrow = bootstrap_ci(large, resamples=300, seed=3)["map50"]
    assert 0 < narrow[1] - narrow[0] < wide / 2  # 16x the images: about a quarter as wide
    one = _records(1)
    assert all(lo == hi for lo, hi in bootstrap_ci(one, resamples=50).values())


def test_loaded_pixels_of_a_degraded_set_match_what_was_made(tmp_path: Path) -> None:
    samples = read_folder(write_voc(tmp_path / "voc", 1, seed=8, size=160), "voc", {}, CLASSES)
    write_degraded(samples.samples, tmp_path / "d", ["jpeg"])
    img = load_image(samples.samples[0])
    assert img is not None
    made, _ = degrade(img, samples.samples[0].boxes, "jpeg", samples.samples[0].image.name)
    back = read_folder(tmp_path / "d" / "jpeg", "voc", {}, CLASSES).samples[0]
    loaded = load_image(back)
    assert loaded is not None
    assert np.array_equal(loaded, made)  # PNG on disk: the JPEG damage is exactly what was made
