"""Grouped splits: no near-duplicate image, same-scene/same-person look-alike or source on two
sides, written to a file by ``brightkitchen models split``.

Groups are the union (transitively) of
- the pairs a source lists (``groups_file`` in the recipe),
- images whose 64-bit difference hashes differ in at most ``DHASH_MAX_BITS`` bits (what
  ``models prepare`` already grouped), and
- images whose 64-bit DCT perceptual hashes (pHash) differ in at most ``PHASH_MAX_BITS`` bits.

On the 853 real photos, listed pairs are 0-10 bits apart in pHash, and at 12-14 bits the
look-alikes are the same scene re-cropped or the same person photographed again in front of
another background; most photos' nearest neighbour is 16-20 bits away and unrelated pairs
about 32. The photos carry no photographer, site or date, so within one folder a "source"
can only be such a group: "leave one source out" is done across folders (the real photos vs
the synthetic faces), and inside a folder the groups are dealt into ``folds`` by a hash
(group k-fold) for cross-validation when a model is retrained.

Sides, per image:
- ``test``: a group wholly in the recipe's own validation split, i.e. photos the shipped
  models never trained on and that have no near-duplicate in their training set: the
  held-out set every honest number comes from.
- ``train``: a group with at least one image the shipped models trained on (``leaked``
  lists recipe-validation images that sit in such a group: validation numbers of the recipe
  split counted them although the model had trained on their look-alikes).
- ``val``: groups wholly in the recipe's training split picked by a hash (``val_fraction``),
  for choosing checkpoints and thresholds of a retrained model; never for reported numbers.
A source the recipe gives wholly to ``train`` stays ``train`` (the synthetic faces: every
shipped model saw them); one given to ``val`` becomes ``test``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.prepare import (
    DHASH_MAX_BITS,
    DatasetConfig,
    close_pairs,
    dhash,
    group_samples,
    is_val,
    join_groups,
)
from models.sources import Sample, read_folder

PHASH_MAX_BITS = 14
FOLDS = 5
SPLIT_VERSION = 1


def phash(image: Path) -> int | None:
    """64-bit DCT perceptual hash: the 8x8 lowest frequencies of a 32x32 greyscale image,
    each bit "above the median" (DC term left out of the median). None if unreadable."""
    import cv2

    img = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    small = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def group_keys(
    samples: Sequence[Sample],
    pairs: Sequence[Sequence[str]] = (),
    *,
    phash_bits: int = PHASH_MAX_BITS,
    dhash_bits: int = DHASH_MAX_BITS,
) -> list[str]:
    """A group key per sample (the smallest file name of its group): listed pairs, dHash and
    pHash look-alikes, joined transitively."""
    close = close_pairs([dhash(s.image) for s in samples], dhash_bits)
    close += close_pairs([phash(s.image) for s in samples], phash_bits)
    return join_groups(samples, pairs, close)


def fold_of(group_key: str, folds: int, seed: int) -> int:
    """Group k-fold: the fold a group belongs to, by a hash (same on every machine)."""
    digest = hashlib.sha256(f"fold:{seed}:{group_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


def sides_for_source(
    recipe_val: Sequence[bool], keys: Sequence[str], val_fraction: float, seed: int
) -> list[str]:
    """``test`` / ``train`` / ``val`` per image from the recipe's split and the new groups."""
    members: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    side: list[str] = [""] * len(keys)
    for key, idx in members.items():
        flags = [recipe_val[i] for i in idx]
        if all(flags):
            s = "test"
        elif any(flags):
            s = "train"  # trained on a look-alike: never a test image
        else:
            s = "val" if is_val(f"v:{key}", val_fraction, seed) else "train"
        for i in idx:
            side[i] = s
    return side


def build_split(
    config: DatasetConfig,
    data_root: Path,
    *,
    phash_bits: int = PHASH_MAX_BITS,
    folds: int = FOLDS,
) -> dict[str, Any]:
    """The split document for a recipe (see the module docstring); deterministic."""
    sources: list[dict[str, Any]] = []
    for src in config.sources:
        folder = Path(src.path) if Path(src.path).is_absolute() else data_root / src.path
        res = read_folder(folder, src.format, config.class_map, config.classes)
        samples = sorted(res.samples, key=lambda s: s.image.name)
        pairs: list[list[str]] = []
        if src.groups_file and (folder / src.groups_file).is_file():
            pairs = json.loads((folder / src.groups_file).read_text(encoding="utf-8"))
        keys = group_keys(samples, pairs, phash_bits=phash_bits)
        if src.split == "auto":
            old = group_samples(samples, pairs)  # exactly what ``models prepare`` did
            recipe_val = [is_val(k, config.val_fraction, config.seed) for k in old]
            sides = sides_for_source(recipe_val, keys, config.val_fraction, config.seed)
        else:
            recipe_val = [src.split == "val"] * len(samples)
            sides = ["test" if src.split == "val" else "train"] * len(samples)
        images = [
            {
                "name": s.image.name,
                "group": keys[i],
                "side": sides[i],
                "fold": fold_of(keys[i], folds, config.seed),
                "recipe_split": "val" if recipe_val[i] else "train",
                "boxes": len(s.boxes),
            }
            for i, s in enumerate(samples)
        ]
        leaked = [
            im["name"] for im in images if im["recipe_split"] == "val" and im["side"] != "test"
        ]
        sources.append(
            {
                "path": src.path,
                "format": src.format,
                "images": images,
                "leaked_from_recipe_val": leaked,
                "skipped": sorted(str(i.path.name) for i in res.issues),
            }
        )
    paths = [s["path"] for s in sources]
    return {
        "version": SPLIT_VERSION,
        "recipe": config.name,
        "seed": config.seed,
        "method": {
            "listed_pairs": True,
            "dhash_max_bits": DHASH_MAX_BITS,
            "phash_max_bits": phash_bits,
            "folds": folds,
            "val_fraction": config.val_fraction,
        },
        "leave_one_source_out": [
            {"test_source": p, "train_sources": [q for q in paths if q != p]} for p in paths
        ],
        "summary": summarise(sources),
        "sources": sources,
    }


def summarise(sources: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Images, groups and leaked images per source and side."""
    out: dict[str, dict[str, int]] = {}
    for src in sources:
        counts: dict[str, int] = {"images": len(src["images"])}
        counts["groups"] = len({im["group"] for im in src["images"]})
        counts["multi_image_groups"] = sum(
            1
            for g in {im["group"] for im in src["images"]}
            if sum(im["group"] == g for im in src["images"]) > 1
        )
        for side in ("train", "val", "test"):
            counts[side] = sum(im["side"] == side for im in src["images"])
        counts["leaked_from_recipe_val"] = len(src["leaked_from_recipe_val"])
        out[src["path"]] = counts
    return out


def dump_split(doc: dict[str, Any]) -> str:
    """Stable JSON text of a split, one line per image (so that a change reads as a diff)."""
    parts = []
    for src in doc["sources"]:
        head = json.dumps({k: v for k, v in src.items() if k != "images"}, sort_keys=True)
        rows = ",\n".join("  " + json.dumps(im, sort_keys=True) for im in src["images"])
        parts.append(head[:-1] + ', "images": [\n' + rows + "\n ]}")
    text = json.dumps({**doc, "sources": "@SOURCES@"}, indent=1, sort_keys=True)
    return text.replace('"@SOURCES@"', "[\n " + ",\n ".join(parts) + "\n ]") + "\n"


def write_split(doc: dict[str, Any], out: Path) -> None:
    """Write the split as stable JSON (same inputs, same bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_split(doc), encoding="utf-8")


def load_split(path: Path) -> dict[str, Any]:
    """Read a split file written by ``write_split``."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("version") != SPLIT_VERSION or "sources" not in doc:
        raise ValueError(f"{path}: not a split file of version {SPLIT_VERSION}")
    return doc


def side_samples(
    doc: dict[str, Any], config: DatasetConfig, data_root: Path, side: str
) -> dict[str, list[Sample]]:
    """Samples of one side per source path (sources without any are left out)."""
    out: dict[str, list[Sample]] = {}
    by_path = {s.path: s for s in config.sources}
    for entry in doc["sources"]:
        names = {im["name"] for im in entry["images"] if im["side"] == side}
        src = by_path.get(entry["path"])
        if not names or src is None:
            continue
        folder = Path(src.path) if Path(src.path).is_absolute() else data_root / src.path
        res = read_folder(folder, src.format, config.class_map, config.classes)
        out[entry["path"]] = sorted(
            (s for s in res.samples if s.image.name in names), key=lambda s: s.image.name
        )
    return out


def distances(hashes: Sequence[int]) -> npt.NDArray[np.int64]:
    """Pairwise Hamming distances of 64-bit hashes (for tests and inspection)."""
    arr = np.array(hashes, dtype=np.uint64)
    x = np.bitwise_xor(arr[:, None], arr[None, :])
    out: npt.NDArray[np.int64] = (
        np.unpackbits(x.view(np.uint8).reshape(len(arr), len(arr), 8), axis=2)
        .sum(axis=2)
        .astype(np.int64)
    )
    return out
