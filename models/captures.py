"""``models export-captures``: the triage queue's reviewed captures as a labelled dataset.

Every capture a person confirmed or dismissed (``capture_reviews``) becomes a Pascal VOC
sample (``<folder>/images/<event_id>.jpg`` + ``<folder>/annotations/<event_id>.xml``). A
training folder must not teach anything false, and a capture is labelled only where the edge
box drew its box, so the export sorts them:

- **confirmed** -> the training folder (``out``), which ``models prepare`` reads like any other
  source: the evidence image with the boxes the edge box drew (``evidence.boxes`` of the
  violation), each named by its label (or the rule), mapped through ``--map``. On a face
  capture (a face rule or a face-class box) every *other* face the shipped mask model finds is
  unlabelled, and an unlabelled face is "background" to a trainer: those faces are painted out
  in flat grey (``MASKED_BGR``, the letterbox fill, which the model reads as nothing) and each
  annotation says how many (``faces_masked_out``).
- **dismissed** -> ``out/needs_label/`` (same layout), never the training folder. A dismissal
  says the *violation* was wrong, not what the box holds: a no-mask box dismissed because the
  cook wore a mask is still a face (with a mask), a board box dismissed because the colour was
  misread is still a board. Exported with its box removed it would teach the model that a
  masked face or a board is background. Each annotation keeps the box as an object named
  ``needs_label`` (the model's label in ``model_label``), which ``models prepare`` refuses as an
  unknown class: a person renames or deletes it in a labelling tool (a true false alarm, a
  poster or the back of a head, becomes a hard negative by deleting the box), then the folder
  is a source like any other.

Privacy: faces are blurred unless the capture's region is named in ``faces_allowed_regions``
(the region's data agreement allows training on unblurred faces). Faces are what the shipped
mask model finds (any of its classes, confidence >= ``FACE_CONF``) plus every labelled box of a
face class. A mask label on a blurred face teaches nothing (or the wrong thing), so a
capture with a face-class box is left out when its faces must be blurred (a dismissed one too:
nobody can label a blurred face): mask training data comes only from regions that allow
unblurred faces. Each annotation records how many faces were blurred; a face the model cannot
find (turned away, tiny) is not blurred, so a person looks through an export before it leaves
the region's systems. A box counts as a face by its label before or after ``--map`` (any name
the mask recipe maps to a face class) or by its rule (``no_mask``).

The evidence JPEG is drawn for people (``edge.evidence``: red box + label on the very object
that is labelled, the zone's outline, a caption bar below); the export cuts the bar off and
paints the boxes, the title and the zone outline over from their surroundings
(``strip_overlay``) so the training image does not carry its answer. The outline is found
where the edge box recorded it (``evidence.zone_polygon_px``, in the image's own pixels: the
zone's polygon is in camera pixels, and a frame wider than the evidence width was shrunk).
Evidence from boxes that predate the record says neither the polygon nor the scale, so an
outline on it (a violation in a zone) stays, and its annotation says so
(``zone_outline_removed``: false; counted in the report as ``zone_outlines_kept``). The output
folder must be new: a previous export's files are never mixed in.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

from bkcommon.datasets import NEEDS_LABEL

if TYPE_CHECKING:
    import psycopg


logger = logging.getLogger(__name__)

FACE_CLASSES = frozenset({"with_mask", "without_mask", "mask_weared_incorrect"})
# rules whose boxes are faces whatever the box is called (an empty label falls back to the rule)
FACE_RULES = frozenset({"no_mask"})
MASK_RECIPE = Path(__file__).resolve().parent / "configs" / "mask.yaml"
FACE_CONF = 0.2
FACE_MARGIN = 0.25  # each blurred face box grows by this fraction of its size per side
MASKED_BGR = (114, 114, 114)  # the letterbox fill: what the detector is trained to see as nothing
SAME_FACE_IOU = 0.3  # a found face overlapping a reviewed box this much is that box's face

Image = npt.NDArray[np.uint8]
FaceFinder = Callable[[Image], list[tuple[float, float, float, float]]]
# sha256 -> (media type, bytes) of a stored evidence file, None if absent: the API's evidence
# store (disk, S3 or the database), handed in by the command (``brightkitchen.captures_cli``)
# because the training pipeline does not import the API.
FetchEvidence = Callable[[str], tuple[str, bytes] | None]


@dataclass(slots=True)
class CaptureExport:
    """What an export wrote and left out."""

    out: str
    confirmed: int = 0
    dismissed: int = 0
    boxes: dict[str, int] = field(default_factory=dict)
    faces_blurred: int = 0
    faces_masked_out: int = 0
    zone_outlines_removed: int = 0
    zone_outlines_kept: int = 0
    unblurred_images: int = 0
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def images(self) -> int:
        """Images written: confirmed to the training folder, dismissed to ``needs_label/``."""
        return self.confirmed + self.dismissed


def onnx_face_finder(weights: Path, conf: float = FACE_CONF) -> FaceFinder:
    """Faces as the shipped mask model sees them (every class is a face)."""
    from edge.detect.onnx import OnnxDetector

    det = OnnxDetector(weights, threads=2, conf_threshold=conf)

    def find(img: Image) -> list[tuple[float, float, float, float]]:
        d = det.detect([img])[0]
        return [(float(a), float(b), float(c), float(e)) for a, b, c, e in d.xyxy]

    return find


def _grown_face(
    box: tuple[float, float, float, float], w: int, h: int
) -> tuple[int, int, int, int] | None:
    """A face box grown by ``FACE_MARGIN`` each side, clipped to the image, in whole pixels;
    None when too small to hold a face (under 2 px)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * FACE_MARGIN, (y2 - y1) * FACE_MARGIN
    a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
    c, d = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    return None if c - a < 2 or d - b < 2 else (a, b, c, d)


def blur_regions(
    img: Image, boxes: Iterable[tuple[float, float, float, float]]
) -> tuple[Image, int]:
    """``img`` with each box (grown by ``FACE_MARGIN``) blurred beyond recognition."""
    import cv2

    out = img.copy()
    h, w = img.shape[:2]
    n = 0
    for x1, y1, x2, y2 in boxes:
        grown = _grown_face((x1, y1, x2, y2), w, h)
        if grown is None:
            continue
        a, b, c, d = grown
        patch = out[b:d, a:c]
        # pixelate to ~6 cells across, then smooth: no feature of the face survives
        cells = (max(1, (c - a) // 8), max(1, (d - b) // 8))
        small = cv2.resize(patch, cells, interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_LINEAR)
        out[b:d, a:c] = cv2.GaussianBlur(big, (0, 0), max(1.0, (c - a) / 10))
        n += 1
    return out, n


def mask_out_faces(
    img: Image,
    faces: Iterable[tuple[float, float, float, float]],
    keep: Sequence[tuple[float, float, float, float]],
) -> tuple[Image, int]:
    """``img`` with every face that is not one of the ``keep`` boxes painted ``MASKED_BGR``.

    A training image must not hold a face without a label: the trainer would learn that face
    as background. A found face is one of ``keep`` when it overlaps it by ``SAME_FACE_IOU`` or
    its centre lies inside it; the others are painted (grown by ``FACE_MARGIN``, as a blur
    would be) except where they cover a kept box, whose pixels stay as they were.
    """
    from models.evaluate import box_iou

    out = img.copy()
    h, w = img.shape[:2]
    faces = list(faces)
    overlap = box_iou(
        np.asarray(faces, np.float32).reshape(-1, 4), np.asarray(keep, np.float32).reshape(-1, 4)
    )
    n = 0
    for f, ious in zip(faces, overlap, strict=True):
        x1, y1, x2, y2 = f
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if (ious >= SAME_FACE_IOU).any() or any(
            k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in keep
        ):
            continue
        grown = _grown_face((x1, y1, x2, y2), w, h)
        if grown is None:
            continue
        a, b, c, d = grown
        out[b:d, a:c] = MASKED_BGR
        n += 1
    for x1, y1, x2, y2 in keep:  # a kept face next to a painted one keeps every pixel
        a, b = max(0, int(x1)), max(0, int(y1))
        c, d = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
        out[b:d, a:c] = img[b:d, a:c]
    return out, n


def _face_names() -> frozenset[str]:
    """Every name of a face class: the classes and the mask recipe's aliases (normalised)."""
    from models.sources import normalise_class_name

    names = set(FACE_CLASSES)
    try:
        import yaml

        cmap = (yaml.safe_load(MASK_RECIPE.read_text("utf-8")) or {}).get("class_map") or {}
        names.update(str(k) for k, v in cmap.items() if v in FACE_CLASSES)
    except (OSError, ImportError, AttributeError):
        pass
    return frozenset(normalise_class_name(n) for n in names)


def _is_face(raw: str, mapped: str, rule: str, face_names: frozenset[str]) -> bool:
    """A box on a face: its label before or after ``--map`` names a face class, or its rule
    is a face rule (``--map`` renames the box, it does not move it off the face)."""
    from models.sources import normalise_class_name

    return (
        rule in FACE_RULES
        or normalise_class_name(raw) in face_names
        or normalise_class_name(mapped) in face_names
    )


_BAR_BGR = (32, 32, 32)  # edge.evidence's caption bar
_BOX_BGR = (0, 0, 255)  # edge.evidence's box colour
OVERLAY_MARGIN_PX = 2  # every painted-over mark grows this much each side: JPEG smears edges


def _frame_height(h: int) -> int | None:
    """The frame height under ``edge.evidence``'s caption bar (bar = max(20, 7 %))."""
    for fh in range(max(1, int(h / 1.07) - 2), h - 19):
        if fh + max(20, round(fh * 0.07)) == h:
            return fh
    return None


def zone_outline_polygon(
    evidence: Mapping[str, Any], sx: float, sy: float
) -> list[tuple[float, float]] | None:
    """Where the edge box drew the zone outline on this image, or None where it is not known.

    Only the recorded outline (``zone_polygon_px``) is used, scaled like the boxes when the
    stored image is not the size the payload describes. The zone's polygon in camera pixels is
    never guessed onto the image: the shrink is not recorded by older boxes, and an evidence
    width at or under the limit does not prove the frame was not shrunk (a payload over its
    size limit is re-rendered at half width, and a sub-stream frame has other pixels again).
    """
    pts = evidence.get("zone_polygon_px")
    if not isinstance(pts, list) or len(pts) < 3:
        return None
    return [(float(x) * sx, float(y) * sy) for x, y in pts]


def outline_may_be_drawn(payload: Mapping[str, Any]) -> bool:
    """Whether the evidence may carry a zone outline whose place is not recorded: it was drawn
    on every violation in a zone, and a box that records outlines (``evidence.scale`` is set)
    records each one it draws."""
    evidence = payload.get("evidence") or {}
    return bool(payload.get("zone")) and evidence.get("scale") is None


def _zone_mask(
    shape: tuple[int, ...], polygon: Sequence[tuple[float, float]], width: int
) -> npt.NDArray[np.uint8]:
    """The pixels of the zone outline ``edge.evidence`` drew on an image ``width`` px wide:
    the same closed polyline at the same thickness (``strip_overlay`` grows it by
    ``OVERLAY_MARGIN_PX``)."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    thick = max(1, round(width / 400))  # edge.evidence's line
    pts = np.array([[round(x), round(y)] for x, y in polygon], dtype=np.int32)
    cv2.polylines(mask, [pts], isClosed=True, color=255, thickness=thick)
    return mask


def strip_overlay(
    img: Image,
    boxes: Sequence[Mapping[str, Any]],
    rule: str = "",
    zone_polygon: Sequence[tuple[float, float]] | None = None,
) -> Image:
    """The evidence frame without what ``edge.evidence.render_evidence`` drew for people: the
    caption bar below the frame is cut off and each box's outline and label tab (red, at the
    box's own pixels), the rule's Chinese title (top left, where a CJK font was installed) and
    the zone outline (at ``zone_polygon``, in the image's pixels, where known) are painted over
    from their surroundings (Telea inpainting, one pass for all of them, so no part is filled
    from another's colour). Images without the overlay (checked by its colours) come back
    unchanged; the zone outline is taken off wherever ``zone_polygon`` says it was drawn."""
    import cv2

    h, w = img.shape[:2]
    out = img
    fh = _frame_height(h)
    cropped = False
    if fh is not None:
        bar = img[fh:].reshape(-1, 3).astype(int)
        if (np.abs(bar - np.array(_BAR_BGR)).max(axis=1) < 24).mean() > 0.6:
            out, cropped = img[:fh].copy(), True
    mask = np.zeros(out.shape[:2], np.uint8)
    if cropped and fh is not None and rule:
        from edge.rulenames import rule_title

        zh, _en = rule_title(rule)
        size = max(14, (h - fh) - 6)
        corner = out[: 4 + int(size * 1.4), : 4 + size * len(zh)]
        if zh and corner.size and (corner.min(axis=2) > 225).mean() > 0.02:  # white strokes
            mask[: 6 + int(size * 1.4), : 6 + size * len(zh)] = 255
    thick = max(1, round(w / 400)) + 1
    font_scale = max(0.35, w / 1600)
    for b in boxes:
        x1, y1, x2, y2 = (round(float(b[k])) for k in ("x1", "y1", "x2", "y2"))
        ring = np.zeros_like(mask)
        cv2.rectangle(ring, (x1, y1), (x2, y2), 255, thick)
        px = out[ring > 0].astype(int)
        red = (px[:, 2] > 150) & (px[:, 0] < 110) & (px[:, 1] < 110) if len(px) else px
        if not len(px) or red.mean() < 0.5:
            continue  # no outline drawn here
        mask |= ring
        text = f"{b.get('label', '')} {float(b.get('confidence') or 0):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick - 1)
        ty = max(th + base, y1)
        cv2.rectangle(mask, (x1, ty - th - base), (x1 + tw, ty), 255, -1)
    if zone_polygon is not None:
        mask |= _zone_mask(mask.shape, zone_polygon, w)
    if not mask.any():
        return np.asarray(out, np.uint8)
    side = 2 * OVERLAY_MARGIN_PX + 1
    grown = cv2.dilate(mask, np.ones((side, side), np.uint8))
    return np.asarray(cv2.inpaint(np.ascontiguousarray(out), grown, 5, cv2.INPAINT_TELEA), np.uint8)


def _mapped(label: str, class_map: Mapping[str, str | None]) -> str | None:
    from models.sources import normalise_class_name

    if label in class_map:
        return class_map[label]
    norm = normalise_class_name(label)
    for src, dst in class_map.items():
        if normalise_class_name(src) == norm:
            return dst
    return label


def _voc(
    name: str,
    w: int,
    h: int,
    boxes: Sequence[tuple[str, float, float, float, float]],
    meta: dict[str, str],
    *,
    model_labels: Sequence[str] = (),
) -> str:
    """One VOC annotation; ``model_labels[i]``, where given, is box i's label on the edge box."""
    objs = "".join(
        f"<object><name>{escape(c)}</name><difficult>0</difficult>"
        + (f"<model_label>{escape(model_labels[i])}</model_label>" if i < len(model_labels) else "")
        + f"<bndbox><xmin>{x1:.0f}</xmin><ymin>{y1:.0f}</ymin><xmax>{x2:.0f}</xmax>"
        f"<ymax>{y2:.0f}</ymax></bndbox></object>"
        for i, (c, x1, y1, x2, y2) in enumerate(boxes)
    )
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in meta.items())
    return (
        f"<annotation><folder>images</folder><filename>{escape(name)}</filename>"
        f"<source><database>brightkitchen captures</database></source>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{extra}{objs}"
        "</annotation>\n"
    )


def reviewed_captures(
    conn: psycopg.Connection[Any],
    *,
    from_ts: datetime,
    to_ts: datetime,
    regions: Sequence[str] = (),
    sites: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Confirmed and dismissed captures reviewed in ``[from_ts, to_ts)``, oldest first."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT r.id, r.event_id, r.site_id, s.region_id, r.camera_id, r.rule,
                      r.model_version, r.status, r.reason, r.evidence_sha256, f.payload
               FROM capture_reviews r
               JOIN findings f ON f.id = r.finding_id
               JOIN sites s ON s.id = r.site_id
               WHERE r.status IN ('confirmed', 'dismissed')
                 AND r.reviewed_at >= %(from)s AND r.reviewed_at < %(to)s
                 AND (cardinality(%(regions)s::text[]) = 0 OR s.region_id = ANY(%(regions)s))
                 AND (cardinality(%(sites)s::text[]) = 0 OR r.site_id = ANY(%(sites)s))
               ORDER BY r.id""",
            {"from": from_ts, "to": to_ts, "regions": list(regions), "sites": list(sites)},
        ).fetchall()


def export_captures(
    conn: psycopg.Connection[Any],
    fetch: FetchEvidence,
    out: Path,
    *,
    from_ts: datetime,
    to_ts: datetime,
    regions: Sequence[str] = (),
    sites: Sequence[str] = (),
    class_map: Mapping[str, str | None] | None = None,
    faces_allowed_regions: Iterable[str] = (),
    find_faces: FaceFinder | None = None,
) -> CaptureExport:
    """Write the reviewed captures as VOC folders (see the module docstring)."""
    import cv2

    allowed = set(faces_allowed_regions)
    table = dict(class_map or {})
    face_names = _face_names()
    folders = {"confirmed": out, "dismissed": out / "needs_label"}
    used = [
        p
        for f in folders.values()
        for d in ("images", "annotations")
        if (f / d).is_dir()
        for p in (f / d).iterdir()
    ]
    if used:  # a previous export's files (unblurred ones, say) would stay behind unreported
        raise FileExistsError(f"{out} holds a previous export ({len(used)} files): use a new one")
    for f in folders.values():
        (f / "images").mkdir(parents=True, exist_ok=True)
        (f / "annotations").mkdir(parents=True, exist_ok=True)
    result = CaptureExport(out=str(out))
    left: Counter[str] = Counter()
    boxes_written: Counter[str] = Counter()
    for r in reviewed_captures(conn, from_ts=from_ts, to_ts=to_ts, regions=regions, sites=sites):
        status = str(r["status"])
        sha = r["evidence_sha256"]
        found = fetch(sha) if sha else None
        if found is None:
            left["no evidence image"] += 1
            continue
        img = cv2.imdecode(np.frombuffer(found[1], np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            left["evidence is not a decodable image"] += 1
            continue
        evidence = (r["payload"] or {}).get("evidence") or {}
        sx = img.shape[1] / float(evidence.get("width_px") or img.shape[1])
        sy = img.shape[0] / float(evidence.get("height_px") or img.shape[0])
        scale = (("x1", sx), ("y1", sy), ("x2", sx), ("y2", sy))
        raw_boxes = [
            {**b, **{k: float(b[k]) * f for k, f in scale}} for b in evidence.get("boxes") or []
        ]
        outline = zone_outline_polygon(evidence, sx, sy)
        clean = strip_overlay(np.asarray(img, np.uint8), raw_boxes, str(r["rule"]), outline)
        outline_kept = outline is None and outline_may_be_drawn(r["payload"] or {})
        changed = clean.shape != img.shape or not np.array_equal(clean, img)
        img = clean
        h, w = img.shape[:2]
        labelled: list[tuple[str, float, float, float, float]] = []
        model_labels: list[str] = []
        face_capture = str(r["rule"]) in FACE_RULES  # its boxes (and so its image) are faces
        for b in raw_boxes:
            raw = str(b.get("label") or r["rule"])
            cls = _mapped(raw, table)
            x1, y1 = max(0.0, b["x1"]), max(0.0, b["y1"])
            x2, y2 = min(float(w), b["x2"]), min(float(h), b["y2"])
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            face_capture = face_capture or _is_face(raw, cls or "", str(r["rule"]), face_names)
            if status == "dismissed":  # what the box holds is for a person to say
                labelled.append((NEEDS_LABEL, x1, y1, x2, y2))
                model_labels.append(raw)
            elif cls is not None:
                labelled.append((cls, x1, y1, x2, y2))
        blur = r["region_id"] not in allowed
        if blur and face_capture:
            left[
                "mask label on a face that must be blurred (region does not allow faces)"
                if status == "confirmed"
                else "dismissed face in a region that blurs faces (nobody can label it)"
            ] += 1
            continue
        found_faces: list[tuple[float, float, float, float]] = []
        if find_faces is not None and (blur or face_capture):
            found_faces = list(find_faces(np.asarray(img, np.uint8)))
        n_blurred = n_masked = 0
        if blur:
            # a face capture never gets here (left out above): the faces are the model's
            img, n_blurred = blur_regions(np.asarray(img, np.uint8), found_faces)
        elif face_capture:  # faces without a label would be learnt as background
            keep = [(x1, y1, x2, y2) for _c, x1, y1, x2, y2 in labelled]
            img, n_masked = mask_out_faces(np.asarray(img, np.uint8), found_faces, keep)
            changed = changed or n_masked > 0
        folder = folders[status]
        stem = str(r["event_id"])
        if blur:
            name = f"{stem}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                left["could not encode the blurred image"] += 1
                continue
            (folder / "images" / name).write_bytes(buf.tobytes())
        elif changed:  # the frame without the evidence overlay (or other faces), losslessly
            name = f"{stem}.png"
            ok, buf = cv2.imencode(".png", img)
            if not ok:
                left["could not encode the image"] += 1
                continue
            (folder / "images" / name).write_bytes(buf.tobytes())
            result.unblurred_images += 1
        else:  # the stored file as it is
            name = f"{stem}{'.png' if found[0] == 'image/png' else '.jpg'}"
            (folder / "images" / name).write_bytes(found[1])
            result.unblurred_images += 1
        meta = {
            "review": status,
            "rule": str(r["rule"]),
            "camera": str(r["camera_id"]),
            "site": str(r["site_id"]),
            "model_version": str(r["model_version"]),
            "faces_blurred": str(n_blurred) if blur else "not blurred (region allows faces)",
        }
        if face_capture and not blur:
            meta["faces_masked_out"] = (
                str(n_masked) if find_faces is not None else "unknown (no face model)"
            )
        if outline is not None or outline_kept:
            meta["zone_outline_removed"] = "true" if outline is not None else "false"
        if r["reason"]:
            meta["review_reason"] = str(r["reason"])
        (folder / "annotations" / f"{stem}.xml").write_text(
            _voc(name, w, h, labelled, meta, model_labels=model_labels), "utf-8"
        )
        result.faces_blurred += n_blurred
        result.faces_masked_out += n_masked
        result.zone_outlines_removed += int(outline is not None)
        result.zone_outlines_kept += int(outline_kept)
        if status == "confirmed":
            boxes_written.update(c for c, *_ in labelled)
            result.confirmed += 1
        else:
            result.dismissed += 1
    result.boxes = dict(sorted(boxes_written.items()))
    result.left_out = dict(left.most_common())
    report = {
        **asdict(result),
        "from": from_ts.isoformat(),
        "to": to_ts.isoformat(),
        "regions": list(regions),
        "sites": list(sites),
        "faces_allowed_regions": sorted(allowed),
    }
    (out / "export_report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    return result
