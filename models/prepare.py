"""Turn labelled folders into an ultralytics dataset with a reproducible, group-aware split.

Near-duplicate images (listed pairs plus a perceptual-hash check) share a group, and a group
goes to train or val as a whole, decided by a hash of its key: the same inputs always give the
same split, whatever order the files are listed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bkcommon.errors import ModelError
from models.sources import Issue, Sample, load_image, read_folder

logger = logging.getLogger(__name__)

# Two images whose 64-bit difference hashes differ in at most this many bits are one group.
DHASH_MAX_BITS = 6


class SourceConfig(BaseModel):
    """One labelled folder that feeds the dataset."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="folder, relative to the data root unless absolute")
    format: Literal["voc", "yolo", "auto"] = "auto"
    split: Literal["auto", "train", "val"] = Field(
        "auto", description="auto: group-aware split; train/val: all of it goes there"
    )
    groups_file: str | None = Field(
        None, description="JSON list of near-duplicate file-name groups inside the folder"
    )
    max_images: int | None = Field(
        None,
        ge=1,
        description="keep at most this many images (a reproducible choice): how much a "
        "helper source weighs against the real photos",
    )
    repeat_with: dict[str, int] = Field(
        default_factory=dict,
        description="class -> N: a training image of this source holding a box of the class "
        "is listed N times an epoch (repeat-factor sampling for a rare class; never val)",
    )

    @field_validator("repeat_with")
    @classmethod
    def _repeats_are_counts(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"repeat counts must be at least 1: {bad}")
        return value


class DatasetConfig(BaseModel):
    """A dataset recipe: project classes, the name mapping, sources and the split."""

    model_config = ConfigDict(extra="forbid")

    name: str
    classes: list[str] = Field(min_length=1)
    class_map: dict[str, str | None] = Field(
        default_factory=dict, description="source class name -> project class (null: drop)"
    )
    sources: list[SourceConfig] = Field(min_length=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _repeats_name_classes(self) -> DatasetConfig:
        for src in self.sources:
            unknown = sorted(set(src.repeat_with) - set(self.classes))
            if unknown:
                raise ValueError(f"{src.path}: repeat_with names unknown classes {unknown}")
        return self


@dataclass(frozen=True, slots=True)
class PrepareReport:
    """What ``prepare`` wrote and skipped."""

    data_yaml: Path
    train_images: int
    val_images: int
    boxes_per_class: dict[str, dict[str, int]]
    issues: list[Issue]
    train_listed: int = 0  # training images an epoch, counting repeats (``repeat_with``)
    test_images: int = 0  # the split file's test side, written to ``test_voc/`` only


def load_config(path: Path) -> DatasetConfig:
    """Load and validate a dataset recipe YAML (a missing or broken file: ModelError)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"--config {path}: {exc}") from None
    try:
        return DatasetConfig.model_validate(raw)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ModelError(f"--config {path}: {exc}") from None


def dhash(image: Path) -> int | None:
    """64-bit difference hash of an image (None if unreadable) for near-duplicate grouping."""
    import cv2

    img = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    small = cv2.resize(img, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


class _UnionFind:
    """Tiny union-find over sample indices."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def close_pairs(hashes: Sequence[int | None], max_bits: int) -> list[tuple[int, int]]:
    """Index pairs whose 64-bit hashes differ in at most ``max_bits`` bits (None: unreadable)."""
    import numpy as np

    valid = [i for i, h in enumerate(hashes) if h is not None]
    out: list[tuple[int, int]] = []
    if len(valid) < 2:
        return out
    arr = np.array([hashes[i] for i in valid], dtype=np.uint64)
    for a in range(len(valid) - 1):
        x = np.bitwise_xor(arr[a + 1 :], arr[a])
        dist = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        out.extend((valid[a], valid[a + 1 + int(b)]) for b in np.nonzero(dist <= max_bits)[0])
    return out


def join_groups(
    samples: Sequence[Sample],
    pairs: Sequence[Sequence[str]],
    close: Iterable[tuple[int, int]],
) -> list[str]:
    """A group key per sample (the smallest file name of its group): the listed ``pairs`` of
    file names and the ``close`` index pairs, joined transitively."""
    uf = _UnionFind(len(samples))
    by_name = {s.image.name: i for i, s in enumerate(samples)}
    for group in pairs:
        idx = [by_name[n] for n in group if n in by_name]
        for j in idx[1:]:
            uf.union(idx[0], j)
    for a, b in close:
        uf.union(a, b)
    roots = [uf.find(i) for i in range(len(samples))]
    key_of_root: dict[int, str] = {}
    for i, r in enumerate(roots):
        name = samples[i].image.name
        key_of_root[r] = min(key_of_root.get(r, name), name)
    return [key_of_root[r] for r in roots]


def group_samples(samples: Sequence[Sample], pairs: Sequence[Sequence[str]]) -> list[str]:
    """Return a group key per sample: listed near-duplicates and dHash look-alikes share one."""
    return join_groups(
        samples, pairs, close_pairs([dhash(s.image) for s in samples], DHASH_MAX_BITS)
    )


def is_val(group_key: str, fraction: float, seed: int) -> bool:
    """Deterministic split of one group: a hash of seed+key below ``fraction`` means val."""
    digest = hashlib.sha256(f"{seed}:{group_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def subsample(samples: Sequence[Sample], n: int, seed: int) -> list[str]:
    """File names of ``n`` samples chosen by a hash of seed + name (same files on any machine)."""
    ranked = sorted(
        samples,
        key=lambda s: hashlib.sha256(f"{seed}:{s.image.name}".encode()).hexdigest(),
    )
    return [s.image.name for s in ranked[:n]]


def yolo_lines(sample: Sample, classes: Sequence[str]) -> list[str]:
    """YOLO label lines (``cls cx cy w h`` normalised) for a sample."""
    lines = []
    for b in sample.boxes:
        cx = (b.x1 + b.x2) / 2 / sample.width_px
        cy = (b.y1 + b.y2) / 2 / sample.height_px
        w = (b.x2 - b.x1) / sample.width_px
        h = (b.y2 - b.y1) / sample.height_px
        lines.append(f"{classes.index(b.cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def copy_image(sample: Sample, folder: Path, stem: str) -> str:
    """Copy a sample's image as ``stem``; return the new file name.

    A photo labelled on its stored pixel grid while its EXIF says to rotate it is written
    decoded that way (PNG, no EXIF), so that every reader sees the pixels its boxes are on.
    """
    if not sample.ignore_orientation:
        name = f"{stem}{sample.image.suffix.lower()}"
        shutil.copyfile(sample.image, folder / name)
        return name
    import cv2

    img = load_image(sample)
    if img is None:
        raise ModelError(f"{sample.image}: cannot decode the image it was read from")
    name = f"{stem}.png"
    cv2.imwrite(str(folder / name), img)
    return name


def write_voc_copy(sample: Sample, folder: Path, stem: str) -> None:
    """Copy one sample as Pascal VOC (classes already mapped): ``evaluate`` reads the val split."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    name = copy_image(sample, folder / "images", stem)
    objs = "".join(
        f"<object><name>{b.cls}</name>"
        + ("<difficult>1</difficult>" if b.difficult else "")
        + f"<bndbox><xmin>{b.x1:g}</xmin><ymin>{b.y1:g}</ymin>"
        f"<xmax>{b.x2:g}</xmax><ymax>{b.y2:g}</ymax></bndbox></object>"
        for b in sample.boxes
    )
    (folder / "annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{name}</filename><size><width>{sample.width_px}</width>"
        f"<height>{sample.height_px}</height><depth>3</depth></size>{objs}</annotation>",
        encoding="utf-8",
    )


def repeats(sample: Sample, repeat_with: dict[str, int]) -> int:
    """How many times a training image is listed an epoch: the largest factor of its classes."""
    return max((repeat_with.get(b.cls, 1) for b in sample.boxes), default=1)


def prepare(
    config: DatasetConfig,
    data_root: Path,
    out: Path,
    *,
    max_side_px: int | None = None,
    split_doc: dict[str, Any] | None = None,
) -> PrepareReport:
    """Read every source, split by group, and write ``out`` as an ultralytics dataset.

    With ``split_doc`` (a ``models split`` file) an image listed there goes to its side:
    ``train`` and ``val`` as named, ``test`` only to ``test_voc/`` (never trained or
    validated on); images the file does not list are split as without it.
    """
    import cv2

    listed: dict[str, dict[str, str]] = {
        entry["path"]: {im["name"]: im["side"] for im in entry["images"]}
        for entry in (split_doc or {}).get("sources", [])
    }
    test_samples: list[tuple[Sample, str]] = []

    issues: list[Issue] = []
    split_of: list[tuple[Sample, str, str, int]] = []  # sample, split, unique stem, repeats
    for si, src in enumerate(config.sources):
        folder = Path(src.path) if Path(src.path).is_absolute() else data_root / src.path
        res = read_folder(folder, src.format, config.class_map, config.classes)
        if src.max_images is not None and len(res.samples) > src.max_images:
            chosen = set(subsample(res.samples, src.max_images, config.seed))
            logger.info("%s: %d of %d images kept", src.path, len(chosen), len(res.samples))
            res.samples[:] = [s for s in res.samples if s.image.name in chosen]
        issues.extend(res.issues)
        for issue in res.issues:
            logger.warning("skipped %s: %s", issue.path, issue.reason)
        pairs: list[list[str]] = []
        if src.groups_file and (folder / src.groups_file).is_file():
            pairs = json.loads((folder / src.groups_file).read_text(encoding="utf-8"))
        keys = group_samples(res.samples, pairs) if src.split == "auto" else []
        sides = listed.get(src.path, {})
        for i, sample in enumerate(res.samples):
            side = sides.get(sample.image.name)
            if side == "test":
                test_samples.append((sample, f"s{si}_{sample.image.stem}"))
                continue
            if side in {"train", "val"}:
                split = str(side)
            elif src.split == "auto":
                split = "val" if is_val(keys[i], config.val_fraction, config.seed) else "train"
            else:
                split = src.split
            times = repeats(sample, src.repeat_with) if split == "train" else 1
            split_of.append((sample, split, f"s{si}_{sample.image.stem}", times))
    if not split_of and not test_samples:  # before the old dataset is removed
        first = f" (first: {issues[0].path}: {issues[0].reason})" if issues else ""
        raise ModelError(
            f"no usable image in the recipe's sources: {len(issues)} file(s) skipped{first}"
        )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    counts: dict[str, dict[str, int]] = {
        s: dict.fromkeys(config.classes, 0) for s in ("train", "val")
    }
    n = {"train": 0, "val": 0}
    train_list: list[str] = []  # ./images/train/<file>, repeated images listed repeatedly
    for sample, split, stem, times in split_of:
        img_dir, lbl_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        scale = 1.0
        if max_side_px and max(sample.width_px, sample.height_px) > max_side_px:
            scale = max_side_px / max(sample.width_px, sample.height_px)
        if scale < 1.0:
            img = load_image(sample)
            if img is None:
                continue
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            name = f"{stem}.jpg"
            cv2.imwrite(str(img_dir / name), small, [cv2.IMWRITE_JPEG_QUALITY, 92])
        else:
            name = copy_image(sample, img_dir, stem)
        if split == "train":
            train_list.extend([f"./images/train/{name}"] * times)
        lines = yolo_lines(sample, config.classes)  # normalised: independent of the scale
        (lbl_dir / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        n[split] += 1
        if split == "val":
            write_voc_copy(sample, out / "val_voc", stem)
        for b in sample.boxes:
            counts[split][b.cls] += 1
    for sample, stem in test_samples:
        write_voc_copy(sample, out / "test_voc", stem)
    train: str = "images/train"
    if len(train_list) > n["train"]:  # ultralytics reads "./" lines relative to the list
        (out / "train.txt").write_text("\n".join(train_list) + "\n", encoding="utf-8")
        train = "train.txt"
        logger.info("%d training images listed %d times an epoch", n["train"], len(train_list))
    data_yaml = out / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "path": ".",
                "train": train,
                "val": "images/val",
                "names": dict(enumerate(config.classes)),
            },
            sort_keys=False,
        )
    )
    report = PrepareReport(
        data_yaml, n["train"], n["val"], counts, issues, len(train_list), len(test_samples)
    )
    (out / "prepare_report.json").write_text(
        json.dumps(
            {
                "train_images": n["train"],
                "train_listed": len(train_list),
                "val_images": n["val"],
                "test_images": len(test_samples),
                "boxes": counts,
                "skipped": [{"path": str(i.path), "reason": i.reason} for i in issues],
            },
            indent=2,
        )
    )
    logger.info("prepared %s: %d train, %d val, %d skipped", out, n["train"], n["val"], len(issues))
    return report
