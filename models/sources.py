"""Readers for labelled image folders (Pascal VOC and YOLO txt) into one in-memory form.

Every problem with a file (unreadable image, malformed XML/txt, box outside the image, unknown
class) becomes an ``Issue`` and the file is skipped; reading a folder never raises for bad data.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Boxes may overhang the image by this many pixels (annotation tools round outwards); beyond
# it the file is reported and skipped.
EDGE_TOLERANCE_PX = 2.0


@dataclass(frozen=True, slots=True)
class Box:
    """One labelled box in image pixels, class already mapped to the project's name."""

    cls: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One readable image with its boxes (possibly none: a background image)."""

    image: Path
    width_px: int
    height_px: int
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """A file that was skipped and why."""

    path: Path
    reason: str


@dataclass(slots=True)
class ReadResult:
    """What reading one folder gave: good samples and the skipped files."""

    samples: list[Sample] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


class SkipFileError(ValueError):
    """Raised inside the readers to skip one file with a reason."""


def image_size(path: Path) -> tuple[int, int]:
    """Return (width, height) of an image file, raising SkipFileError if it cannot be decoded."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise SkipFileError("unreadable image")
    h, w = img.shape[:2]
    return int(w), int(h)


def normalise_class_name(name: str) -> str:
    """Case, spaces and hyphens folded: labelling tools write "Without Mask", "no-mask", …

    Example:
        >>> normalise_class_name(" Without-Mask ")
        'without_mask'
    """
    return "_".join(name.strip().lower().replace("-", " ").split())


def map_class(name: str, class_map: Mapping[str, str | None], classes: Iterable[str]) -> str | None:
    """Map a source class name to ours; None: drop the box; unknown raises SkipFileError.

    An exact match wins; otherwise names are compared after ``normalise_class_name``, so a
    folder labelled by another tool or person (the ``evaluate`` case) is not skipped for
    writing "With Mask" where the table says ``with_mask``.
    """
    key = name.strip()
    if key in class_map:
        return class_map[key]
    if key in set(classes):
        return key
    norm = normalise_class_name(key)
    for source, target in class_map.items():
        if normalise_class_name(source) == norm:
            return target
    for ours in classes:
        if normalise_class_name(ours) == norm:
            return ours
    raise SkipFileError(f"unknown class {key!r}")


def _check_box(box: Box, width: int, height: int) -> Box:
    """Clip a box that overhangs by a rounding error; reject one that is really outside."""
    tol = EDGE_TOLERANCE_PX
    if (
        box.x1 < -tol
        or box.y1 < -tol
        or box.x2 > width + tol
        or box.y2 > height + tol
        or box.x2 - box.x1 < 1
        or box.y2 - box.y1 < 1
    ):
        raise SkipFileError(
            f"box {box.cls} ({box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f}) "
            f"outside the {width}x{height} image or empty"
        )
    return Box(
        box.cls,
        max(0.0, box.x1),
        max(0.0, box.y1),
        min(float(width), box.x2),
        min(float(height), box.y2),
    )


def _find_image(folder: Path, stem: str, filename: str | None) -> Path:
    """Find the image for an annotation by its <filename> or by the same stem."""
    if filename:
        cand = folder / Path(filename).name
        if cand.is_file():
            return cand
    for suffix in IMAGE_SUFFIXES:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file():
                return cand
    raise SkipFileError("no image for this annotation")


def parse_voc_xml(
    xml_path: Path, images_dir: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> Sample:
    """Parse one Pascal VOC annotation file into a Sample (raises SkipFileError when bad)."""
    try:
        root = ET.parse(xml_path).getroot()  # noqa: S314 - local files
    except (ET.ParseError, OSError) as exc:
        raise SkipFileError(f"malformed XML: {exc}") from exc
    image = _find_image(images_dir, xml_path.stem, root.findtext("filename"))
    width, height = image_size(image)
    boxes: list[Box] = []
    for obj in root.iter("object"):
        name = obj.findtext("name")
        bnd = obj.find("bndbox")
        if not name or bnd is None:
            raise SkipFileError("object without name or bndbox")
        try:
            x1, y1, x2, y2 = (
                float(bnd.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError as exc:
            raise SkipFileError(f"non-numeric box: {exc}") from exc
        if any(math.isnan(v) for v in (x1, y1, x2, y2)):  # a missing coordinate
            raise SkipFileError("box with a missing coordinate")
        cls = map_class(name, class_map, classes)
        if cls is None:
            continue
        boxes.append(_check_box(Box(cls, x1, y1, x2, y2), width, height))
    return Sample(image, width, height, tuple(boxes))


def read_voc(
    folder: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a Pascal VOC folder (``images/`` + ``annotations/*.xml``; VOC's own layout too)."""
    classes = list(classes)
    ann_dir = next(
        (folder / d for d in ("annotations", "Annotations") if (folder / d).is_dir()), None
    )
    img_dir = next((folder / d for d in ("images", "JPEGImages") if (folder / d).is_dir()), None)
    result = ReadResult()
    if ann_dir is None or img_dir is None:
        result.issues.append(Issue(folder, "not a VOC folder (needs images/ and annotations/)"))
        return result
    for xml_path in sorted(ann_dir.glob("*.xml")):
        try:
            result.samples.append(parse_voc_xml(xml_path, img_dir, class_map, classes))
        except SkipFileError as exc:
            result.issues.append(Issue(xml_path, str(exc)))
    return result


def _yolo_names(folder: Path) -> list[str]:
    """Class names of a YOLO folder from ``classes.txt`` or ``data.yaml``/``dataset.yaml``."""
    txt = folder / "classes.txt"
    if txt.is_file():
        return [ln.strip() for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for name in ("data.yaml", "dataset.yaml"):
        path = folder / name
        if path.is_file():
            import yaml

            names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            if isinstance(names, list):
                return [str(n) for n in names]
    raise SkipFileError("no classes.txt or data.yaml with names")


def parse_yolo_txt(
    txt_path: Path,
    image: Path,
    names: list[str],
    class_map: Mapping[str, str | None],
    classes: Iterable[str],
) -> Sample:
    """Parse one YOLO label file (``cls cx cy w h`` normalised) into a Sample."""
    width, height = image_size(image)
    boxes: list[Box] = []
    try:
        text = txt_path.read_text(encoding="utf-8") if txt_path.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SkipFileError(f"unreadable label file: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise SkipFileError(f"line {lineno}: expected 5 fields, got {len(parts)}")
        try:
            idx = int(parts[0])
            cx, cy, bw, bh = (float(p) for p in parts[1:])
        except ValueError as exc:
            raise SkipFileError(f"line {lineno}: {exc}") from exc
        if not 0 <= idx < len(names):
            raise SkipFileError(f"line {lineno}: unknown class index {idx}")
        cls = map_class(names[idx], class_map, classes)
        if cls is None:
            continue
        box = Box(
            cls,
            (cx - bw / 2) * width,
            (cy - bh / 2) * height,
            (cx + bw / 2) * width,
            (cy + bh / 2) * height,
        )
        boxes.append(_check_box(box, width, height))
    return Sample(image, width, height, tuple(boxes))


def read_yolo(
    folder: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a YOLO-txt folder (``images/`` + ``labels/*.txt`` + ``classes.txt`` or data.yaml)."""
    classes = list(classes)
    result = ReadResult()
    try:
        names = _yolo_names(folder)
    except SkipFileError as exc:
        result.issues.append(Issue(folder, str(exc)))
        return result
    img_dir, lbl_dir = folder / "images", folder / "labels"
    if not img_dir.is_dir():
        result.issues.append(Issue(folder, "not a YOLO folder (needs images/)"))
        return result
    for image in sorted(p for p in img_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = image.relative_to(img_dir).with_suffix(".txt")
        try:
            result.samples.append(parse_yolo_txt(lbl_dir / rel, image, names, class_map, classes))
        except SkipFileError as exc:
            result.issues.append(Issue(image, str(exc)))
    return result


def read_folder(
    folder: Path, fmt: str, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a folder in the named format (``voc`` or ``yolo``; ``auto`` looks at its layout)."""
    if fmt == "auto":
        fmt = (
            "voc" if any((folder / d).is_dir() for d in ("annotations", "Annotations")) else "yolo"
        )
    if fmt == "voc":
        return read_voc(folder, class_map, classes)
    if fmt == "yolo":
        return read_yolo(folder, class_map, classes)
    raise ValueError(f"unknown dataset format {fmt!r} (expected voc, yolo or auto)")
