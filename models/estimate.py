"""``models estimate``: what a shipped model is worth on photos it has never seen.

From a split file (``models split``) it takes the ``test`` side (groups the shipped models
never trained on, with no near-duplicate in their training set), writes it as VOC folders
under ``--work`` (one per source, and one per degradation of ``models.degrade``), runs
``models evaluate`` on each with bootstrap intervals, and writes one JSON report plus a
Markdown table (what the model card's headline quotes).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from models.degrade import KINDS, write_degraded, write_voc_sample
from models.evaluate import evaluate
from models.prepare import DatasetConfig
from models.sources import load_image
from models.splits import side_samples

logger = logging.getLogger(__name__)

FOCUS = "without_mask"


def slug(path: str) -> str:
    """A folder name for a source path: ``masks/kaggle853`` -> ``masks_kaggle853``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path).strip("_") or "source"


def write_sets(
    doc: dict[str, Any],
    config: DatasetConfig,
    data_root: Path,
    work: Path,
    kinds: Sequence[str] = KINDS,
) -> dict[str, Path]:
    """Write the held-out VOC folders and their degraded copies; name -> folder.

    Names: ``heldout:<source>`` per source with a test side, ``degraded:<kind>`` over all of
    them together.
    """
    if work.exists():
        shutil.rmtree(work)
    sets: dict[str, Path] = {}
    every = []
    for path, samples in side_samples(doc, config, data_root, "test").items():
        folder = work / "heldout" / slug(path)
        for s in samples:
            img = load_image(s)
            if img is not None:
                write_voc_sample(img, s.boxes, folder, s.image.stem)
        sets[f"heldout:{path}"] = folder
        every.extend(samples)
    if every and kinds:
        write_degraded(every, work / "degraded", kinds)
        for kind in kinds:
            sets[f"degraded:{kind}"] = work / "degraded" / kind
    return sets


def estimate(
    doc: dict[str, Any],
    config: DatasetConfig,
    data_root: Path,
    weights: Sequence[Path],
    work: Path,
    *,
    kinds: Sequence[str] = KINDS,
    bootstrap: int = 1000,
    threads: int = 2,
    classifier: Path | None = None,
) -> dict[str, Any]:
    """Evaluate each model on every held-out and degraded set; the report as a dict.

    ``classifier``: each model is measured alone and again with this crop classifier as its
    second stage (reported under ``<weights> + <classifier>``)."""
    sets = write_sets(doc, config, data_root, work, kinds)
    not_measured = [
        {
            "source": s["path"],
            "reason": "every image is on the train side (the shipped models trained on it)",
        }
        for s in doc["sources"]
        if f"heldout:{s['path']}" not in sets
    ]
    models: dict[str, dict[str, Any]] = {}
    stages: list[Path | None] = [None] if classifier is None else [None, classifier]
    for w in weights:
        for second in stages:
            results: dict[str, Any] = {}
            for name, folder in sets.items():
                logger.info("%s%s on %s", w, "" if second is None else f" + {second}", name)
                report, _ = evaluate(
                    folder,
                    w,
                    class_map={},
                    threads=threads,
                    bootstrap=bootstrap,
                    classifier=second,
                )
                results[name] = asdict(report)
            models[str(w) if second is None else f"{w} + {second}"] = results
    return {
        "split_summary": doc["summary"],
        "split_method": doc["method"],
        "sets": {k: str(v) for k, v in sets.items()},
        "not_measured": not_measured,
        "bootstrap_resamples": bootstrap,
        "models": models,
    }


def _ci(report: dict[str, Any], key: str) -> str:
    lo, hi = report["ci"].get(key, [None, None])
    return "" if lo is None else f" [{lo:.2f}, {hi:.2f}]"


def _cls(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["classes"] if c["name"] == name)


def format_table(result: dict[str, Any]) -> str:
    """Markdown: one row per model and set, 95 % intervals in brackets."""
    lines = [
        "| model | set | images | mAP50 | without_mask AP50 | without_mask R | without_mask P |",
        "|---|---|---|---|---|---|---|",
    ]
    for results in result["models"].values():
        for name, r in results.items():
            wm = _cls(r, FOCUS)
            label = f"{r['model_version']} ({r['input_size'][0]} px, conf {r['conf_threshold']:g})"
            lines.append(
                f"| {label} | {name} | {r['images']} | {r['map50']:.3f}{_ci(r, 'map50')} | "
                f"{wm['ap50']:.3f}{_ci(r, f'ap50_{FOCUS}')} | "
                f"{wm['recall']:.3f}{_ci(r, f'recall_{FOCUS}')} | "
                f"{wm['precision']:.3f}{_ci(r, f'precision_{FOCUS}')} |"
            )
    for nm in result["not_measured"]:
        lines.append(f"\nNot measured: {nm['source']}: {nm['reason']}.")
    return "\n".join(lines)


def write_result(result: dict[str, Any], out: Path) -> None:
    """The JSON report, and the Markdown table beside it (``.md``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(format_table(result) + "\n", encoding="utf-8")
