"""Readers for labelled image folders (Pascal VOC, YOLO txt, COCO JSON) into one in-memory form.

Every problem with a file (unreadable image, malformed XML/txt, box outside the image, unknown
class, an annotation written for another image size) becomes an ``Issue`` and the file is
skipped; reading a folder never raises for bad data.

Folders come from many labelling tools, so the VOC reader accepts the layouts they write
(``images/`` + ``annotations/``, VOC's ``JPEGImages/`` + ``Annotations/``, and labelImg's
default of each ``.xml`` next to its image), keeps VOC's ``difficult`` flag (``evaluate``
ignores such faces, as the VOC protocol does), and reconciles the annotation's ``<size>`` with
the image file: a tool that ignored a photo's EXIF rotation labelled the stored pixel grid, and
an image downscaled after labelling gets its boxes scaled with it.

YOLO folders are read as ultralytics, Roboflow, labelImg and CVAT write them (``labels/``
beside ``images/``, or each ``.txt`` beside its image; names in ``classes.txt``, ``obj.names``
or a dataset YAML; a Roboflow export's split folders), COCO as the COCO release and Roboflow
lay it out. Folder names match in any case and a file's name in another case still finds it
(Windows and macOS tools). What is assumed rather than read is said: a YOLO image without a
label file is background and listed in ``ReadResult.unlabelled``.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Folder names are matched whatever their case ("Images/", "Labels/" from Windows tools).
ANNOTATION_DIRS = ("annotations", "xml", "xmls", "labels")
IMAGE_DIRS = ("images", "JPEGImages", "imgs", "img")
# An annotation whose <size> has the image's aspect ratio within this fraction was written
# for the same picture at another resolution; its boxes are scaled to the file.
ASPECT_TOLERANCE = 0.01
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
    difficult: bool = False  # VOC's flag: evaluation neither requires nor penalises it


@dataclass(frozen=True, slots=True)
class Sample:
    """One readable image with its boxes (possibly none: a background image).

    ``ignore_orientation``: the boxes are on the stored pixel grid of a photo whose EXIF says
    to rotate it (the labelling tool did not rotate); read it with ``load_image``.
    """

    image: Path
    width_px: int
    height_px: int
    boxes: tuple[Box, ...]
    ignore_orientation: bool = False


@dataclass(frozen=True, slots=True)
class Issue:
    """A file that was skipped and why."""

    path: Path
    reason: str


@dataclass(slots=True)
class ReadResult:
    """What reading one folder gave: good samples and the skipped files.

    ``unlabelled``: images of a YOLO folder that have no label file, read as background (no
    faces) as YOLO's convention has it; said, since a misplaced labels folder looks the same.
    """

    samples: list[Sample] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    unlabelled: list[Path] = field(default_factory=list)

    def extend(self, other: ReadResult) -> None:
        """Add another folder's result to this one."""
        self.samples.extend(other.samples)
        self.issues.extend(other.issues)
        self.unlabelled.extend(other.unlabelled)


class SkipFileError(ValueError):
    """Raised inside the readers to skip one file with a reason."""


def _read(path: Path, ignore_orientation: bool) -> Any:
    import cv2

    flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION if ignore_orientation else 0)
    return cv2.imread(str(path), flags)


def image_size(path: Path, *, ignore_orientation: bool = False) -> tuple[int, int]:
    """Return (width, height) of an image file, raising SkipFileError if it cannot be decoded.

    OpenCV applies a JPEG's EXIF orientation unless ``ignore_orientation``.
    """
    img = _read(path, ignore_orientation)
    if img is None or img.size == 0:
        raise SkipFileError("unreadable image")
    _check_whole(path)
    h, w = img.shape[:2]
    return int(w), int(h)


def _check_whole(path: Path) -> None:
    """Refuse a truncated or corrupt file that OpenCV still decodes: libjpeg fills the
    missing half grey with a warning on stderr, and the photo's faces were scored as misses."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise SkipFileError(f"truncated or corrupt image ({exc})") from None


def load_image(sample: Sample) -> npt.NDArray[np.uint8] | None:
    """The BGR pixels a sample's boxes refer to (None if the file cannot be decoded)."""
    img = _read(sample.image, sample.ignore_orientation)
    return None if img is None else np.asarray(img, np.uint8)


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
    classes = list(classes)
    if key in class_map:
        return _mapped(key, class_map[key], classes)
    if key in set(classes):
        return key
    norm = normalise_class_name(key)
    for source, target in class_map.items():
        if normalise_class_name(source) == norm:
            return _mapped(key, target, classes)
    for ours in classes:
        if normalise_class_name(ours) == norm:
            return ours
    raise SkipFileError(f"unknown class {key!r}")


def _mapped(key: str, target: str | None, classes: list[str]) -> str | None:
    """A ``--map`` target, which must be one of the model's classes (or None: dropped)."""
    if target is None or target in classes:
        return target
    for ours in classes:  # "With Mask" for with_mask, as class names are matched
        if normalise_class_name(ours) == normalise_class_name(target):
            return ours
    raise SkipFileError(
        f"class {key!r} is mapped to {target!r}, which is not a class of the model "
        f"({', '.join(classes)})"
    )


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
        box.difficult,
    )


def _child_dirs(folder: Path, names: Iterable[str]) -> list[Path]:
    """The sub-folders of ``folder`` called one of ``names`` whatever their case, in the
    order of ``names``."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p for n in names for p in children if p.name.lower() == n.lower()]


def _child_dir(folder: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` that is a sub-folder of ``folder``, matched whatever its case."""
    return next(iter(_child_dirs(folder, names)), None)


Listings = dict[Path, dict[str, Path]]


def _listing(folder: Path, cache: Listings) -> dict[str, Path]:
    """Files of ``folder`` by lower-case name (kept in ``cache`` for one folder read)."""
    if folder not in cache:
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError:
            files = []
        cache[folder] = {}
        for p in files:
            cache[folder].setdefault(p.name.lower(), p)
    return cache[folder]


def _find_image(
    folders: Iterable[Path], stem: str, filename: str | None, listings: Listings | None = None
) -> Path:
    """Find the image for an annotation by its <filename> or by the same stem.

    The name as written wins; then, as labelling tools on Windows and macOS write them, the
    name in another case (``IMG_1.JPG`` for ``img_1.jpg``) and a ``<filename>`` without its
    extension (``frame_0`` for ``frame_0.jpg``).
    """
    folders = list(dict.fromkeys(folders))
    rel = Path(filename.replace("\\", "/")) if filename else None
    if rel is not None:
        for folder in folders:  # the path as written (COCO's cam1/x.jpg), then the bare name
            for cand in ((folder / rel,) if not rel.is_absolute() else ()) + (folder / rel.name,):
                if cand.is_file():
                    return cand
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
                if cand.is_file():
                    return cand
    listings = {} if listings is None else listings
    stems = [stem]
    if rel is not None and rel.suffix.lower() not in IMAGE_SUFFIXES:
        stems.insert(0, rel.name)  # <filename> without its extension
    for folder in folders:
        where = [folder]
        if rel is not None and not rel.is_absolute() and rel.parent != Path():
            where.insert(0, folder / rel.parent)
        for d in where:
            files = _listing(d, listings)
            names = [rel.name] if rel is not None else []
            names += [f"{s}{suffix}" for s in stems for suffix in IMAGE_SUFFIXES]
            for name in names:
                if name.lower() in files:
                    return files[name.lower()]
    raise SkipFileError("no image for this annotation")


def _annotated_size(root: ET.Element) -> tuple[int, int] | None:
    """The ``<size>`` the annotation was written for, or None where a tool left it out or 0."""
    try:
        w = int(float(root.findtext("size/width") or 0))
        h = int(float(root.findtext("size/height") or 0))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def _reconcile_size(image: Path, annotated: tuple[int, int] | None) -> tuple[int, int, bool, float]:
    """Image (width, height), whether to ignore EXIF orientation, and the box scale factor.

    Raises SkipFileError when the annotation was plainly written for another picture.
    """
    width, height = image_size(image)
    if annotated is None or annotated == (width, height):
        return width, height, False, 1.0
    aw, ah = annotated
    if (aw, ah) == (height, width) and image_size(image, ignore_orientation=True) == annotated:
        return aw, ah, True, 1.0  # labelled on the stored grid of an EXIF-rotated photo
    if abs((aw / ah) / (width / height) - 1) <= ASPECT_TOLERANCE:
        return width, height, False, width / aw  # resized after labelling
    raise SkipFileError(f"annotation is for a {aw}x{ah} image, the file is {width}x{height}")


def _is_difficult(obj: ET.Element) -> bool:
    return (obj.findtext("difficult") or "0").strip().lower() in {"1", "true", "yes"}


VOC_COORDS = ("xmin", "ymin", "xmax", "ymax")


def _voc_coordinate(bnd: ET.Element, tag: str, k: int, name: str) -> float:
    """One ``<bndbox>`` coordinate; the error names the object and the field."""
    text = (bnd.findtext(tag) or "").strip()
    if not text:
        raise SkipFileError(
            f"object {k} ({name}): bndbox/{tag} missing (box with a missing coordinate)"
        )
    try:
        value = float(text)
    except ValueError:
        raise SkipFileError(
            f"object {k} ({name}): bndbox/{tag} is {text[:20]!r}, not a number (non-numeric box)"
        ) from None
    if not math.isfinite(value):
        raise SkipFileError(f"object {k} ({name}): bndbox/{tag} is {text[:20]!r}, not finite")
    return value


def parse_voc_xml(
    xml_path: Path,
    images_dir: Path,
    class_map: Mapping[str, str | None],
    classes: Iterable[str],
    *,
    more_dirs: Iterable[Path] = (),
    listings: Listings | None = None,
) -> Sample:
    """Parse one Pascal VOC annotation file into a Sample (raises SkipFileError when bad).

    The image is looked for in ``images_dir``, beside the ``.xml`` and in ``more_dirs``."""
    try:
        root = ET.parse(xml_path).getroot()  # noqa: S314 - local files
    except (ET.ParseError, OSError) as exc:
        raise SkipFileError(f"malformed XML: {exc}") from exc
    image = _find_image(
        (images_dir, xml_path.parent, *more_dirs),
        xml_path.stem,
        root.findtext("filename"),
        listings,
    )
    width, height, ignore_orientation, scale = _reconcile_size(image, _annotated_size(root))
    boxes: list[Box] = []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        if not name:
            raise SkipFileError(f"object {k}: no <name> (object without name or bndbox)")
        if bnd is None:
            raise SkipFileError(f"object {k} ({name}): no <bndbox>")
        x1, y1, x2, y2 = (_voc_coordinate(bnd, tag, k, name) for tag in VOC_COORDS)
        cls = map_class(name, class_map, classes)
        if cls is None:
            continue
        x1, y1, x2, y2 = (v * scale for v in (x1, y1, x2, y2))
        boxes.append(_check_box(Box(cls, x1, y1, x2, y2, _is_difficult(obj)), width, height))
    return Sample(image, width, height, tuple(boxes), ignore_orientation)


def read_voc(
    folder: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a Pascal VOC folder: ``images/`` + ``annotations/*.xml``, VOC's own
    ``JPEGImages/`` + ``Annotations/``, or each ``.xml`` beside its image (labelImg)."""
    classes = list(classes)
    ann_dir = _voc_annotation_dir(folder)
    img_dir = _child_dir(folder, IMAGE_DIRS) or folder
    result = ReadResult()
    if ann_dir is None:
        result.issues.append(
            Issue(folder, "not a VOC folder (needs annotations/*.xml and images/, or .xml files)")
        )
        return result
    labelled: set[Path] = set()
    listings: Listings = {}
    claims: dict[Path, list[tuple[Path, Sample]]] = {}
    for xml_path in sorted(ann_dir.rglob("*.xml")):
        sub = xml_path.parent.relative_to(ann_dir)  # annotations/cam1/x.xml ↔ images/cam1/
        try:
            sample = parse_voc_xml(
                xml_path,
                img_dir / sub,
                class_map,
                classes,
                more_dirs=_sibling_image_dirs(xml_path, folder),
                listings=listings,
            )
        except SkipFileError as exc:
            result.issues.append(Issue(xml_path, str(exc)))
            labelled.add((img_dir / sub / xml_path.stem).resolve())  # its image: said once
            continue
        claims.setdefault(sample.image.resolve(), []).append((xml_path, sample))
    for image, entries in claims.items():
        # An .xml copied from another keeps its <filename>: the image named like the .xml
        # is then the other one; keep the .xml named after this image, name the rest.
        entries.sort(key=lambda e: e[0].stem.lower() != image.stem.lower())
        result.samples.append(entries[0][1])
        labelled.add(image.with_suffix(""))
        for xml_path, _ in entries[1:]:
            result.issues.append(
                Issue(xml_path, "its <filename> names an image another .xml already labels")
            )
    for image in sorted(p for p in img_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        if image.resolve().with_suffix("") not in labelled:  # said, not silently left out
            result.issues.append(Issue(image, "no VOC .xml for this image"))
    return result


def _sibling_image_dirs(xml_path: Path, folder: Path) -> list[Path]:
    """The image folder beside the annotation folder an ``.xml`` is in, up to the folder read
    (``VOCdevkit/VOC2007/Annotations/x.xml`` ↔ ``VOCdevkit/VOC2007/JPEGImages/``; the folder
    read may be ``Annotations/`` itself)."""
    out = []
    for ann in xml_path.parents:
        if ann != folder and folder not in ann.parents:
            break
        if ann.name.lower() in ANNOTATION_DIRS and (images := _child_dir(ann.parent, IMAGE_DIRS)):
            out.append(images / xml_path.parent.relative_to(ann))
        if ann == folder:
            break
    return out


def _voc_annotation_dir(folder: Path) -> Path | None:
    """Where a folder keeps its VOC ``.xml`` files, or None if it has none."""
    for d in (*_child_dirs(folder, ANNOTATION_DIRS), folder):
        if any(d.rglob("*.xml")):
            return d
    return None


def names_from_yaml(path: Path) -> list[str] | None:
    """Class names of an ultralytics dataset YAML (``names`` as a list or an id → name map;
    an id the map leaves out is ``""``). None if the file has no ``names``; SkipFileError if
    it is not YAML or its ``names`` are not ids and names."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())  # PyYAML's message spans lines
        raise SkipFileError(f"{path.name}: not readable YAML ({problem})"[:300]) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        try:
            ids = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise SkipFileError(f"{path.name}: names must map class ids 0, 1, … to names") from None
        if not ids or min(ids) < 0:
            raise SkipFileError(f"{path.name}: names must map class ids 0, 1, … to names")
        return [ids.get(k, "") for k in range(max(ids) + 1)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return None


YOLO_NAME_FILES = ("classes.txt", "obj.names")  # labelImg / ultralytics; darknet and CVAT
YOLO_YAMLS = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")


def _yolo_names_in(folder: Path) -> list[str] | None:
    """Class names kept in ``folder`` itself, or None: ``classes.txt`` or ``obj.names``,
    ``data.yaml`` (or ``dataset.yaml``, ``.yml``), else any other ``.yaml`` with ``names``
    (ultralytics takes a dataset YAML of any name, ``coco8.yaml``). A ``classes.txt`` and a
    YAML that name other classes are refused: which one the labels follow cannot be known."""
    listed, listing = None, ""
    for name in YOLO_NAME_FILES:
        txt = folder / name
        if txt.is_file():
            text = txt.read_text(encoding="utf-8-sig")  # a Windows editor's byte-order mark
            listed = [ln.strip() for ln in text.splitlines() if ln.strip()]
            listing = name
            break
    yamls = [folder / n for n in YOLO_YAMLS]
    if folder.is_dir():
        yamls += sorted(p for p in folder.iterdir() if p.suffix.lower() in {".yaml", ".yml"})
    for path in dict.fromkeys(p for p in yamls if p.is_file()):
        try:
            names = names_from_yaml(path)
        except SkipFileError:
            if listed is not None:
                continue  # the names file is enough
            raise
        if names is None:
            continue
        if listed is not None and [normalise_class_name(n) for n in listed] != [
            normalise_class_name(n) for n in names
        ]:
            raise SkipFileError(
                f"{listing} and {path.name} name different classes "
                f"({', '.join(listed)} / {', '.join(names)}); remove the stale one"[:300]
            )
        return listed if listed is not None else names
    return listed


def _yolo_names(folder: Path) -> list[str]:
    """Class names of a YOLO folder (see ``_yolo_names_in``), or of the folder above it: a
    Roboflow export keeps one ``data.yaml`` above its ``train/``, ``valid/``, ``test/``."""
    for d in (folder, folder.parent):
        names = _yolo_names_in(d)
        if names is not None:
            return names
    raise SkipFileError("no classes.txt, obj.names or data.yaml with names")


YOLO_FIELDS = ("class", "x_center", "y_center", "width", "height")


def _yolo_number(text: str, i: int, lineno: int, *, polygon: bool = False) -> float:
    """Field ``i`` (0-based) of a YOLO label line as a finite number in [0, 1]-ish units."""
    field = f"point {(i + 1) // 2} {'xy'[(i + 1) % 2]}" if polygon else YOLO_FIELDS[i]
    try:
        value = float(text)
    except ValueError:
        raise SkipFileError(
            f"line {lineno}: field {i + 1} ({field}) is {text[:20]!r}, not a number"
        ) from None
    if not math.isfinite(value):
        raise SkipFileError(f"line {lineno}: field {i + 1} ({field}) is not finite")
    return value


def _yolo_class(text: str, lineno: int) -> int:
    """Field 1 of a label line: a class index, ``3`` or as numpy writes it, ``3.0``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise SkipFileError(f"line {lineno}: field 1 (class) is {text[:20]!r}, not a whole number")
    return int(value)


def _yolo_xywh(parts: list[str], lineno: int) -> tuple[float, float, float, float]:
    """Centre and size (0-1) of a label line: ``cls cx cy w h``, or an ultralytics segment
    ``cls x1 y1 x2 y2 x3 y3 …`` (a polygon; its bounding box, as ultralytics trains on)."""
    if len(parts) == len(YOLO_FIELDS):
        cx, cy, bw, bh = (_yolo_number(parts[i], i, lineno) for i in range(1, 5))
        return cx, cy, bw, bh
    if len(parts) >= 7 and len(parts) % 2 == 1:
        xy = [_yolo_number(parts[i], i, lineno, polygon=True) for i in range(1, len(parts))]
        xs, ys = xy[0::2], xy[1::2]
        return (
            (min(xs) + max(xs)) / 2,
            (min(ys) + max(ys)) / 2,
            max(xs) - min(xs),
            max(ys) - min(ys),
        )
    raise SkipFileError(
        f"line {lineno}: expected 5 fields ({' '.join(YOLO_FIELDS)}) or a polygon "
        f"(class and 3 or more x y points), got {len(parts)}"
    )


def parse_yolo_txt(
    txt_path: Path,
    image: Path,
    names: list[str],
    class_map: Mapping[str, str | None],
    classes: Iterable[str],
) -> Sample:
    """Parse one YOLO label file (``cls cx cy w h`` normalised, or an ultralytics polygon)
    into a Sample; a missing file is an image without faces."""
    width, height = image_size(image)
    boxes: list[Box] = []
    try:
        text = txt_path.read_text(encoding="utf-8-sig") if txt_path.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SkipFileError(f"unreadable label file: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < len(YOLO_FIELDS):
            raise SkipFileError(
                f"line {lineno}: expected 5 fields ({' '.join(YOLO_FIELDS)}), got {len(parts)}"
            )
        idx = _yolo_class(parts[0], lineno)
        cx, cy, bw, bh = _yolo_xywh(parts, lineno)
        if not 0 <= idx < len(names) or not names[idx]:
            raise SkipFileError(
                f"line {lineno}: unknown class index {idx} (field 1; the folder names "
                f"{sum(1 for n in names if n)} classes)"
            )
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


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _yolo_splits(folder: Path) -> list[Path]:
    """Sub-folders that are YOLO folders of their own (``train/images/`` + ``train/labels/``)."""
    try:
        subs = sorted(d for d in folder.iterdir() if d.is_dir())
    except OSError:
        return []
    return [  # an empty split (Roboflow writes test/ with nothing in it) loses nothing
        d
        for d in subs
        if (images := _child_dir(d, ("images",))) and _child_dir(d, ("labels",))
        if _images_under(images)
    ]


def read_yolo(
    folder: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a YOLO-txt folder: ``images/`` + a parallel ``labels/`` tree (ultralytics), or each
    ``.txt`` beside its image (labelImg; CVAT's ``obj_train_data/``); names from
    ``classes.txt``, ``obj.names`` or a dataset YAML, in the folder or the one above it.
    ``folder`` may also be an ultralytics dataset YAML (its ``val`` images are read).

    An image without a label file is background (YOLO's convention) and is listed in
    ``unlabelled``."""
    if folder.is_file():
        return read_yolo_yaml(folder, class_map, classes)
    classes = list(classes)
    result = ReadResult()
    try:
        names = _yolo_names(folder)
    except (SkipFileError, OSError, UnicodeDecodeError) as exc:
        result.issues.append(Issue(folder, str(exc)))
        return result
    img_dir = _child_dir(folder, ("images",))
    if img_dir is None and (splits := _yolo_splits(folder)):
        for split in splits:  # Roboflow: train/, valid/, test/, each images/ + labels/
            result.extend(read_yolo(split, class_map, classes))
        return result
    lbl_dir = _child_dir(folder, ("labels",)) if img_dir is not None else None
    if not _read_yolo_images(img_dir or folder, lbl_dir, names, class_map, classes, result):
        result.issues.append(
            Issue(
                folder,
                "not a YOLO folder (no images: needs images/ + labels/, or images "
                "with a .txt beside each)",
            )
        )
    return result


def _read_yolo_images(  # noqa: PLR0917 - the folder pair, then what reading needs
    img_dir: Path,
    lbl_dir: Path | None,
    names: list[str],
    class_map: Mapping[str, str | None],
    classes: list[str],
    result: ReadResult,
) -> bool:
    """Read the images under ``img_dir`` with their labels (the same path under ``lbl_dir``,
    else beside the image) into ``result``; False if there is no image."""
    images = _images_under(img_dir)
    if not images:
        return False
    used: set[Path] = set()
    for image in images:
        label = image.with_suffix(".txt")  # beside the image (labelImg, CVAT)
        if lbl_dir is not None:
            parallel = lbl_dir / image.relative_to(img_dir).with_suffix(".txt")
            if parallel.is_file() or not label.is_file():
                label = parallel
        used.add(label)
        if not label.is_file():
            result.unlabelled.append(image)
        try:
            result.samples.append(parse_yolo_txt(label, image, names, class_map, classes))
        except SkipFileError as exc:
            result.issues.append(Issue(image, str(exc)))
    labels = list(lbl_dir.rglob("*.txt")) if lbl_dir is not None and lbl_dir.is_dir() else []
    labels += [  # .txt beside the images, but not a list of names or a read-me
        p
        for d in {p.parent for p in images}
        for p in d.glob("*.txt")
        if p.name.lower() not in YOLO_NAME_FILES and not p.name.lower().startswith("readme")
    ]
    for label in sorted(set(labels)):
        if label not in used:  # its faces would vanish from the count
            result.issues.append(Issue(label, "no image for this label file"))
    return True


def read_yolo_yaml(
    path: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read the ``val`` images (else ``test``) of an ultralytics dataset YAML, as
    ``yolo val data=…`` does: folders under ``path:`` (relative to the YAML's folder), each
    ``…/images/…`` with its labels in ``…/labels/…``."""
    import yaml

    classes = list(classes)
    result = ReadResult()
    try:
        names = names_from_yaml(path)
    except SkipFileError as exc:
        result.issues.append(Issue(path, str(exc)))
        return result
    if names is None:
        result.issues.append(Issue(path, f"{path.name}: no names"))
        return result
    doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    given = Path(str(doc.get("path") or "."))
    roots = [given] if given.is_absolute() else [path.parent / given, Path.cwd() / given]
    root = next((r for r in roots if r.is_dir()), roots[0])
    split = next((k for k in ("val", "test") if doc.get(k)), None)
    entries = doc.get(split) if split else None
    entries = entries if isinstance(entries, list) else [entries]
    for entry in entries:
        img_dir = (root / str(entry)) if entry else root
        if not img_dir.is_dir() and str(entry).startswith("../"):  # Roboflow's ../valid/images
            img_dir = root / str(entry)[3:]
        if not img_dir.is_dir():
            what = f"{split}: {entry}" if split else "no val: or test: images"
            result.issues.append(Issue(path, f"{path.name}: {what} is not a folder here"))
            continue
        parts = img_dir.parts
        if "images" in parts:  # ultralytics: the last images/ of the path becomes labels/
            k = len(parts) - 1 - parts[::-1].index("images")
            lbl_dir: Path | None = Path(*parts[:k], "labels", *parts[k + 1 :])
        else:
            lbl_dir = None
        if not _read_yolo_images(img_dir, lbl_dir, names, class_map, classes, result):
            result.issues.append(Issue(img_dir, "no images in this folder"))
    return result


COCO_KEYS = ("images", "annotations", "categories")


def _looks_coco(path: Path) -> bool:
    """A JSON object naming ``images``, ``annotations`` and ``categories``, wherever in the
    file: the COCO release writes ``categories`` last, after megabytes of annotations."""
    wanted = {f'"{k}"'.encode() for k in COCO_KEYS}
    overlap = max(len(w) for w in wanted)
    try:
        with path.open("rb") as fh:
            head = fh.read(4 << 20)
            if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
                return False
            chunk = head
            while chunk:
                wanted = {w for w in wanted if w not in chunk}
                if not wanted:
                    return True
                more = fh.read(4 << 20)
                chunk = chunk[-overlap:] + more if more else b""
    except OSError:
        return False
    return False


def coco_jsons(folder: Path) -> list[Path]:
    """The COCO annotation files of a folder, in it or in ``annotations/`` (``folder`` itself
    may be the ``.json``). Where some are ``instances_*.json`` (the COCO release also has
    ``person_keypoints_*.json`` beside them) only those."""
    if folder.is_file():
        return [folder] if folder.suffix.lower() == ".json" else []
    for d in (folder, *_child_dirs(folder, ("annotations",))):
        if not d.is_dir():
            continue
        found = [c for c in sorted(d.glob("*.json")) if _looks_coco(c)]
        instances = [c for c in found if c.name.lower().startswith("instances_")]
        if found:
            return instances or found
    return []


def find_coco_json(folder: Path) -> Path | None:
    """The COCO annotation file of a folder (``folder`` itself may be the ``.json``): a JSON
    object with ``images``, ``annotations`` and ``categories``, in the folder or
    ``annotations/`` (``instances_*.json``, ``_annotations.coco.json``, …); the first of
    several (``read_coco`` refuses to choose)."""
    found = coco_jsons(folder)
    return found[0] if found else None


def _coco_list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise SkipFileError(f"field {key!r} missing or not a list")
    return value


def _coco_categories(doc: dict[str, Any]) -> dict[Any, str]:
    names: dict[Any, str] = {}
    for k, cat in enumerate(_coco_list(doc, "categories")):
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name") or "").strip():
            raise SkipFileError(f"categories[{k}]: needs an id and a name")
        names[cat["id"]] = str(cat["name"]).strip()
    return names


def _is_coco_id(value: Any) -> bool:
    """An id COCO files use: a whole number or text (a list or object is a broken file)."""
    return isinstance(value, int | str) and not isinstance(value, bool)


def _coco_size(entry: Mapping[str, Any], key: str) -> int:
    """An image entry's width or height (0: not given), the field named when it is wrong."""
    value = entry.get(key) or 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SkipFileError(f"field {key} is {value!r}, not a number") from None


def _coco_box(
    ann: Any, k: int, names: Mapping[Any, str], file: str
) -> tuple[Any, str, list[float], bool]:
    """(image_id, category name, [x, y, w, h], crowd) of ``annotations[k]``, checked; an
    error names the JSON ``file``, the annotation and the field."""
    if not isinstance(ann, dict):
        raise SkipFileError(f"{file} annotations[{k}]: not an object")
    where = f"{file} annotations[{k}] (id {ann.get('id', '?')})"
    if "image_id" not in ann:
        raise SkipFileError(f"{where}: field image_id missing")
    category = ann.get("category_id")
    if not _is_coco_id(category) or category not in names:
        raise SkipFileError(
            f"{where}: field category_id {ann.get('category_id')!r} is not in categories"
        )
    bbox = ann.get("bbox")
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
        or not all(math.isfinite(float(v)) for v in bbox)
    ):
        raise SkipFileError(
            f"{where}: field bbox must be [x, y, width, height], got {bbox!r}"[:200]
        )
    return (
        ann["image_id"],
        names[ann["category_id"]],
        [float(v) for v in bbox],
        bool(ann.get("iscrowd")),
    )


def read_coco(
    folder: Path, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a COCO detection JSON (``bbox`` = x, y, width, height in pixels) and its images.

    Images are looked up by ``file_name`` beside the JSON, in ``images/`` or in the folder;
    ``iscrowd`` boxes are kept as ``difficult`` (ignored by ``evaluate``, as COCO does). An
    annotation that is malformed skips its image, and the issue names the field; a JSON
    file that is not COCO is one issue for the folder.
    """
    import json

    classes = list(classes)
    result = ReadResult()
    found = coco_jsons(folder)
    if not found:
        result.issues.append(
            Issue(
                folder, "not a COCO folder (needs a .json with images, annotations and categories)"
            )
        )
        return result
    if len(found) > 1:  # one per split, sharing images/: reading the first was silent
        result.issues.append(
            Issue(
                folder,
                f"{len(found)} COCO files ({', '.join(p.name for p in found)}): "
                "give the one to evaluate as --data",
            )
        )
        return result
    path = found[0]
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(doc, dict):
            raise SkipFileError("not a JSON object")
        names = _coco_categories(doc)
        images = _coco_list(doc, "images")
        anns = _coco_list(doc, "annotations")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        result.issues.append(Issue(path, f"malformed COCO JSON: {exc}"[:300]))
        return result
    base = path.parent.parent if path.parent.name.lower() == "annotations" else path.parent
    folders = [path.parent, base / "images", base, path.parent / "images"]
    if path.stem.lower().startswith("instances_"):  # COCO's own annotations/instances_val2017
        folders.append(base / path.stem[len("instances_") :])  # ↔ val2017/
    folders += _child_dirs(base, ("images",))  # Images/
    listings: Listings = {}
    by_image: dict[Any, list[tuple[int, Any]]] = {}
    for k, ann in enumerate(anns):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if image_id is not None and not _is_coco_id(image_id):
            result.issues.append(
                Issue(path, f"{path.name} annotations[{k}]: field image_id is {image_id!r}"[:200])
            )
            continue
        by_image.setdefault(image_id, []).append((k, ann))
    for k, entry in enumerate(images):
        if (
            not isinstance(entry, dict)
            or not _is_coco_id(entry.get("id"))
            or not entry.get("file_name")
        ):
            result.issues.append(
                Issue(
                    path, f"{path.name} images[{k}]: needs an id (a number or text) and a file_name"
                )
            )
            continue
        file_name = str(entry["file_name"])
        image = base / file_name  # named in an issue until the file is found
        try:
            image = _find_image(folders, Path(file_name).stem, file_name, listings)
            size = (_coco_size(entry, "width"), _coco_size(entry, "height"))
            width, height, ignore, scale = _reconcile_size(
                image, size if size[0] > 0 and size[1] > 0 else None
            )
            boxes = []
            for ak, ann in by_image.get(entry["id"], []):
                _, name, (x, y, w, h), crowd = _coco_box(ann, ak, names, path.name)
                cls = map_class(name, class_map, classes)
                if cls is None:
                    continue
                box = Box(cls, x * scale, y * scale, (x + w) * scale, (y + h) * scale, crowd)
                boxes.append(_check_box(box, width, height))
            result.samples.append(Sample(image, width, height, tuple(boxes), ignore))
        except (SkipFileError, ValueError, TypeError) as exc:
            result.issues.append(Issue(image, str(exc)))
    known = {e.get("id") for e in images if isinstance(e, dict) and _is_coco_id(e.get("id"))}
    for image_id, entries in by_image.items():
        if image_id not in known:
            k, ann = entries[0]
            ident = ann.get("id", "?") if isinstance(ann, dict) else "?"
            what = "missing" if image_id is None else f"{image_id!r} matches no entry of images"
            result.issues.append(
                Issue(path, f"{path.name} annotations[{k}] (id {ident}): field image_id {what}")
            )
    return result


def detect_format(folder: Path) -> str:
    """``voc``, ``coco`` or ``yolo`` from a folder's layout."""
    if folder.is_file():
        suffix = folder.suffix.lower()
        return "yolo" if suffix in {".yaml", ".yml"} else "coco" if suffix == ".json" else "none"
    if not folder.is_dir():
        return "none"
    if _voc_annotation_dir(folder) is not None:
        return "voc"
    if find_coco_json(folder) is not None:
        return "coco"
    if _child_dir(folder, ("labels",)) is not None or any(
        p.is_file() and (p.name.lower() in YOLO_NAME_FILES or p.suffix.lower() in {".yaml", ".yml"})
        for p in folder.iterdir()
    ):
        return "yolo"
    return "none"


def _labelled_subfolders(folder: Path) -> list[Path]:
    """Sub-folders with labels of their own (a Roboflow COCO export's ``train/``, ``valid/``,
    ``test/``, each with its ``_annotations.coco.json``)."""
    subs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    return [d for d in subs if detect_format(d) != "none"]


def read_folder(
    folder: Path, fmt: str, class_map: Mapping[str, str | None], classes: Iterable[str]
) -> ReadResult:
    """Read a folder in the named format (``voc``, ``yolo`` or ``coco``; ``auto`` looks at
    its layout)."""
    if fmt == "auto":
        fmt = detect_format(folder)
        if fmt == "none" and folder.is_dir() and (subs := _labelled_subfolders(folder)):
            result = ReadResult()
            for sub in subs:
                result.extend(read_folder(sub, "auto", class_map, classes))
            return result
    if fmt == "voc":
        return read_voc(folder, class_map, classes)
    if fmt == "yolo":
        return read_yolo(folder, class_map, classes)
    if fmt == "coco":
        return read_coco(folder, class_map, classes)
    if fmt == "none":
        result = ReadResult()
        result.issues.append(
            Issue(
                folder,
                "a file that is not a COCO .json or a YOLO dataset .yaml: give the folder"
                if folder.is_file()
                else "no labels found: no VOC .xml, COCO .json or YOLO data.yaml / classes.txt",
            )
        )
        return result
    raise ValueError(f"unknown dataset format {fmt!r} (expected voc, yolo, coco or auto)")
