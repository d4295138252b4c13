"""``models export-captures``: the triage queue's reviewed captures as a labelled dataset.

Every capture a person confirmed or dismissed (``capture_reviews``) becomes a Pascal VOC
sample that ``models prepare`` reads like any other source (``images/<event_id>.jpg`` +
``annotations/<event_id>.xml``), so the next ``models train`` learns from the kitchens:

- confirmed: the evidence image with the boxes the edge box drew (``evidence.boxes`` of the
  violation), each named by its label (or the rule), mapped through ``--map``;
- dismissed: the image with its boxes removed, a hard negative (what the model called a
  violation was not one); a labelling tool can add the right boxes later.

Privacy: faces are blurred unless the capture's region is named in ``faces_allowed_regions``
(the region's data agreement allows training on unblurred faces). Faces are what the shipped
mask model finds (any of its classes, confidence >= ``FACE_CONF``) plus every labelled box of a
face class. A mask label on a blurred face teaches nothing (or the wrong thing), so a
capture with a face-class box is left out when its faces must be blurred: mask training data
comes only from regions that allow unblurred faces. Each annotation records how many faces
were blurred; a face the model cannot find (turned away, tiny) is not blurred, so a person
looks through an export before it leaves the region's systems.
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

if TYPE_CHECKING:
    import psycopg


logger = logging.getLogger(__name__)

FACE_CLASSES = frozenset({"with_mask", "without_mask", "mask_weared_incorrect"})
FACE_CONF = 0.2
FACE_MARGIN = 0.25  # each blurred face box grows by this fraction of its size per side

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
    unblurred_images: int = 0
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def images(self) -> int:
        """Images written."""
        return self.confirmed + self.dismissed


def onnx_face_finder(weights: Path, conf: float = FACE_CONF) -> FaceFinder:
    """Faces as the shipped mask model sees them (every class is a face)."""
    from edge.detect.onnx import OnnxDetector

    det = OnnxDetector(weights, threads=2, conf_threshold=conf)

    def find(img: Image) -> list[tuple[float, float, float, float]]:
        d = det.detect([img])[0]
        return [(float(a), float(b), float(c), float(e)) for a, b, c, e in d.xyxy]

    return find


def blur_regions(
    img: Image, boxes: Iterable[tuple[float, float, float, float]]
) -> tuple[Image, int]:
    """``img`` with each box (grown by ``FACE_MARGIN``) blurred beyond recognition."""
    import cv2

    out = img.copy()
    h, w = img.shape[:2]
    n = 0
    for x1, y1, x2, y2 in boxes:
        mx, my = (x2 - x1) * FACE_MARGIN, (y2 - y1) * FACE_MARGIN
        a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
        c, d = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        if c - a < 2 or d - b < 2:
            continue
        patch = out[b:d, a:c]
        # pixelate to ~6 cells across, then smooth: no feature of the face survives
        cells = (max(1, (c - a) // 8), max(1, (d - b) // 8))
        small = cv2.resize(patch, cells, interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_LINEAR)
        out[b:d, a:c] = cv2.GaussianBlur(big, (0, 0), max(1.0, (c - a) / 10))
        n += 1
    return out, n


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
) -> str:
    objs = "".join(
        f"<object><name>{escape(c)}</name><difficult>0</difficult><bndbox>"
        f"<xmin>{x1:.0f}</xmin><ymin>{y1:.0f}</ymin><xmax>{x2:.0f}</xmax><ymax>{y2:.0f}</ymax>"
        "</bndbox></object>"
        for c, x1, y1, x2, y2 in boxes
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
    """Write the reviewed captures as a VOC folder (see the module docstring)."""
    import cv2

    allowed = set(faces_allowed_regions)
    table = dict(class_map or {})
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    result = CaptureExport(out=str(out))
    left: Counter[str] = Counter()
    boxes_written: Counter[str] = Counter()
    for r in reviewed_captures(conn, from_ts=from_ts, to_ts=to_ts, regions=regions, sites=sites):
        sha = r["evidence_sha256"]
        found = fetch(sha) if sha else None
        if found is None:
            left["no evidence image"] += 1
            continue
        img = cv2.imdecode(np.frombuffer(found[1], np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            left["evidence is not a decodable image"] += 1
            continue
        h, w = img.shape[:2]
        evidence = (r["payload"] or {}).get("evidence") or {}
        sx = w / float(evidence.get("width_px") or w)
        sy = h / float(evidence.get("height_px") or h)
        labelled: list[tuple[str, float, float, float, float]] = []
        for b in evidence.get("boxes") or []:
            cls = _mapped(str(b.get("label") or r["rule"]), table)
            if cls is None:
                continue
            x1, y1 = max(0.0, float(b["x1"]) * sx), max(0.0, float(b["y1"]) * sy)
            x2, y2 = min(float(w), float(b["x2"]) * sx), min(float(h), float(b["y2"]) * sy)
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                labelled.append((cls, x1, y1, x2, y2))
        keep = labelled if r["status"] == "confirmed" else []
        blur = r["region_id"] not in allowed
        n_blurred = 0
        if blur:
            if any(c in FACE_CLASSES for c, *_ in keep):
                left["mask label on a face that must be blurred (region does not allow faces)"] += 1
                continue
            faces = [(x1, y1, x2, y2) for c, x1, y1, x2, y2 in labelled if c in FACE_CLASSES]
            if find_faces is not None:
                faces.extend(find_faces(np.asarray(img, np.uint8)))
            img, n_blurred = blur_regions(np.asarray(img, np.uint8), faces)
        stem = str(r["event_id"])
        if blur:
            name = f"{stem}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                left["could not encode the blurred image"] += 1
                continue
            (out / "images" / name).write_bytes(buf.tobytes())
        else:  # the stored file as it is
            name = f"{stem}{'.png' if found[0] == 'image/png' else '.jpg'}"
            (out / "images" / name).write_bytes(found[1])
            result.unblurred_images += 1
        meta = {
            "review": str(r["status"]),
            "rule": str(r["rule"]),
            "camera": str(r["camera_id"]),
            "site": str(r["site_id"]),
            "model_version": str(r["model_version"]),
            "faces_blurred": str(n_blurred) if blur else "not blurred (region allows faces)",
        }
        if r["reason"]:
            meta["review_reason"] = str(r["reason"])
        (out / "annotations" / f"{stem}.xml").write_text(_voc(name, w, h, keep, meta), "utf-8")
        result.faces_blurred += n_blurred
        boxes_written.update(c for c, *_ in keep)
        if r["status"] == "confirmed":
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
