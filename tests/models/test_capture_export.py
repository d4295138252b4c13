"""Reviewed captures of the triage queue (real PostgreSQL rows written by the API's own review
functions) exported as VOC folders: faces blurred unless the region allows them, unlabelled
faces painted out, dismissed captures set aside for a person to label, and the folders go
through ``models prepare``."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from api.auth.scope import SiteScope
from api.services.evidence import LocalDirStore, load_bytes
from api.services.reviews import confirm_review, dismiss_review
from api.services.triage import queue_for_review
from api.settings import ApiSettings
from bkcommon.errors import ModelError
from models.captures import blur_regions, export_captures
from models.prepare import DatasetConfig, SourceConfig, prepare
from models.sources import read_folder

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EDGE_MODEL = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"
FACE = (60.0, 40.0, 120.0, 110.0)


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (320, 240))
    img = cv2.add(img, rng.integers(0, 40, img.shape, dtype=np.uint8))  # texture to blur away
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(buf.tobytes())


def _capture(
    conn: psycopg.Connection[Any], n: int, *, site: str, rule: str, label: str
) -> tuple[int, bytes]:
    """A violation as ingest stores it (snapshot blob, finding with boxes), queued for review."""
    snap = _photo(n)
    sha = hashlib.sha256(snap).hexdigest()
    event_id = f"evt-{n:08d}"
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        (sha, snap),
    )
    payload = {
        "event_id": event_id,
        "camera_id": f"cam-{site}",
        "rule": rule,
        "model_version": "mask-v4",
        "evidence_sha256": sha,
        "evidence": {
            "sha256": sha,
            "width_px": 640,  # the box drew on a frame twice the stored snapshot's size
            "height_px": 480,
            "boxes": [
                {"x1": FACE[0] * 2, "y1": FACE[1] * 2, "x2": FACE[2] * 2, "y2": FACE[3] * 2,
                 "label": label, "confidence": 0.8},
            ],
        },
    }  # fmt: skip
    row = conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, 'violation', %s, %s, %s, 2, %s, %s) RETURNING id""",
        (f"violation:{event_id}", site, f"cam-{site}", rule, T0, Jsonb(payload)),
    ).fetchone()
    assert row is not None
    queue_for_review(
        conn,
        finding_id=int(row[0]),
        site_id=site,
        camera_id=f"cam-{site}",
        rule=rule,
        payload=payload,
        now=T0,
    )
    review = conn.execute(
        "SELECT id FROM capture_reviews WHERE finding_id = %s", (int(row[0]),)
    ).fetchone()
    assert review is not None
    return int(review[0]), snap


@pytest.fixture
def reviewed(db_url: str, tmp_path: Path) -> dict[str, Any]:
    """Two regions; captures confirmed and dismissed through the API's review functions."""
    settings = ApiSettings(evidence_dir=tmp_path / "evidence")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO regions (id, name) VALUES ('strict', 'Strict'), ('open', 'Open')")
        conn.execute(
            "INSERT INTO sites (id, region_id, name) VALUES ('s-strict', 'strict', 'A'), "
            "('s-open', 'open', 'B')"
        )
        everyone = SiteScope.everything()
        hat, hat_snap = _capture(conn, 1, site="s-strict", rule="no_hat", label="no_chef_hat")
        mask, _ = _capture(conn, 2, site="s-strict", rule="no_mask", label="without_mask")
        fa, fa_snap = _capture(conn, 3, site="s-strict", rule="no_mask", label="without_mask")
        open_mask, open_snap = _capture(conn, 4, site="s-open", rule="no_mask", label="bare face")
        _capture(conn, 5, site="s-open", rule="no_mask", label="without_mask")  # still pending
        worn, worn_snap = _capture(conn, 6, site="s-open", rule="no_mask", label="without_mask")
        capped, _ = _capture(conn, 7, site="s-strict", rule="no_hat", label="no_chef_hat")
        now = T0 + timedelta(hours=1)
        for rid in (hat, mask, open_mask):
            confirm_review(
                conn, review_id=rid, reviewer="u1", scope=everyone, now=now, settings=settings
            )
        for rid, reason in (
            (fa, "back of a head"),
            (worn, "wears a mask"),
            (capped, "wears a hat"),
        ):
            dismiss_review(
                conn, review_id=rid, reviewer="u1", reason=reason, scope=everyone, now=now
            )
    return {"url": db_url, "store": LocalDirStore(settings.evidence_dir), "snaps": {
        "hat": hat_snap, "dismissed": fa_snap, "open": open_snap, "worn": worn_snap}}  # fmt: skip


def _export(reviewed: dict[str, Any], out: Path, **kw: Any) -> Any:
    with psycopg.connect(reviewed["url"]) as conn:
        return export_captures(
            conn,
            lambda sha: load_bytes(conn, reviewed["store"], sha),
            out,
            from_ts=T0,
            to_ts=T0 + timedelta(days=1),
            **kw,
        )


def test_export_sorts_confirmed_for_training_and_dismissed_for_a_person(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "captures"
    res = _export(
        reviewed,
        out,
        class_map={"bare face": "without_mask"},
        faces_allowed_regions=["open"],
    )
    # training folder: the strict region's confirmed hat capture (blurred) and the open
    # region's confirmed mask capture; the strict region's mask captures (a confirmed one
    # and the dismissed back of a head) are faces that must be blurred, so they are out
    assert (res.confirmed, res.dismissed) == (2, 2)
    assert res.boxes == {"no_chef_hat": 1, "without_mask": 1}
    assert res.left_out == {
        "mask label on a face that must be blurred (region does not allow faces)": 1,
        "dismissed face in a region that blurs faces (nobody can label it)": 1,
    }
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "evt-00000001.jpg", "evt-00000004.jpg"
    ]  # fmt: skip
    # the open region's photo is the stored file, untouched
    assert (out / "images" / "evt-00000004.jpg").read_bytes() == reviewed["snaps"]["open"]
    read = read_folder(out, "auto", {}, ["no_chef_hat", "without_mask"])
    assert read.issues == []
    boxes = {s.image.stem: [(b.cls, b.x1, b.y1, b.x2, b.y2) for b in s.boxes] for s in read.samples}
    assert boxes == {
        "evt-00000001": [("no_chef_hat", *FACE)],
        "evt-00000004": [("without_mask", *FACE)],
    }
    hat_xml = (out / "annotations" / "evt-00000001.xml").read_text()
    assert "<faces_blurred>0</faces_blurred>" in hat_xml  # a hat box is not a face; no model
    report = json.loads((out / "export_report.json").read_text())
    assert report["faces_allowed_regions"] == ["open"]
    cfg = DatasetConfig(
        name="site",
        classes=["no_chef_hat", "with_mask", "without_mask"],
        sources=[SourceConfig(path=str(out), format="voc", split="train")],
    )
    rep = prepare(cfg, tmp_path, tmp_path / "ds")
    assert (rep.train_images, rep.issues) == (2, [])
    assert rep.boxes_per_class["train"] == {"no_chef_hat": 1, "with_mask": 0, "without_mask": 1}

    # dismissed: set aside with the box kept and named needs_label, never as background
    aside = out / "needs_label"
    assert sorted(p.name for p in (aside / "images").iterdir()) == [
        "evt-00000006.jpg", "evt-00000007.jpg"
    ]  # fmt: skip
    assert (aside / "images" / "evt-00000006.jpg").read_bytes() == reviewed["snaps"]["worn"]
    worn_xml = (aside / "annotations" / "evt-00000006.xml").read_text()
    assert "<review>dismissed</review>" in worn_xml
    assert "<review_reason>wears a mask</review_reason>" in worn_xml
    assert "<name>needs_label</name>" in worn_xml
    assert "<model_label>without_mask</model_label>" in worn_xml
    # as a source it trains on nothing until a person has relabelled every box
    cfg_aside = DatasetConfig(
        name="aside",
        classes=["no_chef_hat", "with_mask", "without_mask"],
        sources=[SourceConfig(path=str(aside), format="voc", split="train")],
    )
    with pytest.raises(ModelError, match=r"no usable image.*2 file\(s\) skipped.*needs_label"):
        prepare(cfg_aside, tmp_path, tmp_path / "ds-aside")
    # a person relabels: the cook's face is a masked face; the hat box was a hat, deleted
    (aside / "annotations" / "evt-00000006.xml").write_text(
        worn_xml.replace("<name>needs_label</name>", "<name>with_mask</name>")
    )
    hat_aside = aside / "annotations" / "evt-00000007.xml"
    text = hat_aside.read_text()
    hat_aside.write_text(text[: text.index("<object>")] + "</annotation>\n")
    rep = prepare(cfg_aside, tmp_path, tmp_path / "ds-relabelled")
    assert (rep.train_images, rep.issues) == (2, [])
    assert rep.boxes_per_class["train"] == {"no_chef_hat": 0, "with_mask": 1, "without_mask": 0}


OTHER_FACE = (200.0, 150.0, 260.0, 220.0)


def _faces_at(*boxes: tuple[float, float, float, float]) -> Any:
    """Where the face model reports faces in every image (the real model is run by the
    command's test; these photos are noise, in which it finds none)."""
    return lambda img: list(boxes)


def test_unlabelled_faces_are_painted_out_and_faces_blurred_where_the_region_wants(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    """A capture labels the one face the edge box drew; any other face in the frame would be
    learnt as background, so it is painted flat grey, and the labelled face keeps its pixels."""
    out = tmp_path / "captures"
    shifted = (FACE[0] + 3, FACE[1] - 2, FACE[2] + 2, FACE[3] + 4)  # the labelled face, found
    res = _export(
        reviewed, out, faces_allowed_regions=["open"], find_faces=_faces_at(shifted, OTHER_FACE)
    )
    # evt-4 (confirmed) and evt-6 (dismissed) are the open region's face captures
    assert res.faces_masked_out == 2
    img = cv2.imread(str(out / "images" / "evt-00000004.png"))  # changed: written losslessly
    before = cv2.imdecode(np.frombuffer(reviewed["snaps"]["open"], np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = (int(v) for v in OTHER_FACE)
    assert (img[y1:y2, x1:x2] == 114).all()
    f1, g1, f2, g2 = (int(v) for v in FACE)
    assert np.array_equal(img[g1:g2, f1:f2], before[g1:g2, f1:f2])
    xml = (out / "annotations" / "evt-00000004.xml").read_text()
    assert "<faces_masked_out>1</faces_masked_out>" in xml
    # the strict region's hat capture: every face found is blurred, nothing painted
    hat = cv2.imread(str(out / "images" / "evt-00000001.jpg"))
    hat_before = cv2.imdecode(np.frombuffer(reviewed["snaps"]["hat"], np.uint8), cv2.IMREAD_COLOR)
    inside = (slice(y1, y2), slice(x1, x2))
    assert (
        cv2.Laplacian(hat[inside], cv2.CV_64F).var()
        < 0.2 * cv2.Laplacian(hat_before[inside], cv2.CV_64F).var()
    )
    assert not (hat[inside] == 114).all()
    assert (
        "<faces_blurred>2</faces_blurred>" in (out / "annotations" / "evt-00000001.xml").read_text()
    )
    assert "faces_masked_out" not in (out / "annotations" / "evt-00000001.xml").read_text()


def test_region_and_time_filters_and_the_command(
    reviewed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    nothing = _export(reviewed, tmp_path / "none", regions=["nowhere"])
    assert nothing.images == 0
    argv = [
        "export-captures", "--out", str(tmp_path / "cli"), "--database-url", reviewed["url"],
        "--from", "2026-03-02", "--to", "2026-03-03", "--region", "strict",
        "--face-model", str(EDGE_MODEL),  # the faces the detector finds are blurred too
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote 1 confirmed captures" in out
    assert "wrote 1 dismissed captures" in out
    assert "left out 1: mask label on a face that must be blurred" in out
    assert "left out 1: dismissed face in a region that blurs faces" in out
    later = _export(reviewed, tmp_path / "later", regions=["strict"])
    assert later.images == 2


def test_blur_leaves_nothing_of_the_face() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    out, n = blur_regions(img, [(30.0, 30.0, 70.0, 70.0), (99.5, 99.5, 100.0, 100.0)])
    assert n == 1  # the second box is too small to hold a face
    face = out[30:70, 30:70].astype(float)
    assert face.std() < 0.25 * img[30:70, 30:70].astype(float).std()
    assert np.array_equal(out[:15], img[:15])


def test_reexport_into_a_used_folder_leaves_no_stale_unblurred_face(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    """A second export into the same folder (say, rerun without the region that was allowed
    by mistake) must not leave the first run's unblurred photos behind unreported."""
    out = tmp_path / "captures"
    first = _export(reviewed, out, faces_allowed_regions=["strict", "open"])
    assert first.unblurred_images == 6
    try:
        again = _export(reviewed, out)  # faces blurred everywhere this time
    except FileExistsError:
        return  # refused: the folder holds a previous export
    assert again.unblurred_images == 0
    # what the folder holds is what the report says: no unblurred photo of the strict region
    assert not (out / "images" / "evt-00000002.jpg").exists()
    assert not (out / "annotations" / "evt-00000002.xml").exists()


def _rendered_capture(conn: psycopg.Connection[Any], site: str) -> tuple[int, tuple[int, ...]]:
    """A capture whose evidence is what an edge box really sends: ``render_evidence``'s JPEG,
    boxes and label drawn on the frame and a caption bar below it."""
    from edge.events import EvidenceBox, ViolationEvent
    from edge.evidence import render_evidence

    rng = np.random.default_rng(7)
    frame = np.asarray(
        cv2.resize(rng.integers(60, 200, (24, 32, 3), dtype=np.uint8), (640, 480)), np.uint8
    )
    box = (200, 150, 300, 270)
    event = ViolationEvent(
        rule="no_mask", camera_id=f"cam-{site}", zone_id=None, started_at=T0, ended_at=None,
        confidence=0.8, track_id=1, model_version="mask-v4", frame=frame,
        boxes=[EvidenceBox(200.0, 150.0, 300.0, 270.0, "without_mask", 0.8)],
    )  # fmt: skip
    ev = render_evidence(event)
    payload = {
        "event_id": "evt-rendered",
        "evidence_sha256": ev.sha256,
        "evidence": {"sha256": ev.sha256, "width_px": ev.width_px, "height_px": ev.height_px,
                     "boxes": [b.model_dump() for b in ev.boxes]},
    }  # fmt: skip
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        (ev.sha256, ev.jpeg),
    )
    row = conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES ('violation:evt-rendered', 'violation', %s, %s, 'no_mask', 2, %s, %s)
           RETURNING id""",
        (site, f"cam-{site}", T0, Jsonb(payload)),
    ).fetchone()
    assert row is not None
    queue_for_review(conn, finding_id=int(row[0]), site_id=site, camera_id=f"cam-{site}",
                     rule="no_mask", payload=payload, now=T0)  # fmt: skip
    rid = conn.execute("SELECT id FROM capture_reviews WHERE event_id = 'evt-rendered'").fetchone()
    assert rid is not None
    return int(rid[0]), box


def test_exported_training_image_has_no_drawn_box_or_caption_bar(
    db_url: str, tmp_path: Path
) -> None:
    """The evidence JPEG is annotated for people (red box + label around the very face that is
    labelled, a caption bar below); a training image must not carry the answer drawn on it."""
    settings = ApiSettings(evidence_dir=tmp_path / "evidence")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO regions (id, name) VALUES ('open', 'Open')")
        conn.execute("INSERT INTO sites (id, region_id, name) VALUES ('s-open', 'open', 'B')")
        rid, box = _rendered_capture(conn, "s-open")
        confirm_review(conn, review_id=rid, reviewer="u1", scope=SiteScope.everything(),
                       now=T0 + timedelta(hours=1), settings=settings)  # fmt: skip
    out = tmp_path / "captures"
    res = _export({"url": db_url, "store": LocalDirStore(settings.evidence_dir)}, out,
                  faces_allowed_regions=["open"])  # fmt: skip
    assert res.confirmed == 1
    img = cv2.imread(str(next((out / "images").iterdir())))
    assert img is not None
    assert img.shape[:2] == (480, 640)  # the frame, without the caption bar
    x1, y1, x2, y2 = box
    edge = np.concatenate([img[y1 - 1 : y1 + 2, x1:x2].reshape(-1, 3),
                           img[y1:y2, x1 - 1 : x1 + 2].reshape(-1, 3)])  # fmt: skip
    red = (edge[:, 2] > 170) & (edge[:, 0] < 90) & (edge[:, 1] < 90)
    assert red.mean() < 0.05  # the drawn outline is gone
    read = read_folder(out, "auto", {}, ["without_mask"])
    assert [(b.x1, b.y1, b.x2, b.y2) for b in read.samples[0].boxes] == [box]


@pytest.mark.parametrize("class_map", [{"without_mask": "no_mask"}, {"without_mask": "bare face"}])
def test_a_renamed_face_class_is_still_a_face_that_must_be_blurred(
    reviewed: dict[str, Any], tmp_path: Path, class_map: dict[str, str]
) -> None:
    """``--map`` renames the label; the box is still on a face, in a region that forbids them."""
    out = tmp_path / "captures"
    res = _export(reviewed, out, class_map=class_map, regions=["strict"])
    assert res.unblurred_images == 0
    assert res.left_out == {
        "mask label on a face that must be blurred (region does not allow faces)": 1,
        "dismissed face in a region that blurs faces (nobody can label it)": 1,
    }
    assert not (out / "images" / "evt-00000002.jpg").exists()


def _zone_frame(width: int, height: int) -> np.ndarray:
    """A smooth synthetic kitchen frame (blocks of colour, no overlay drawn on it)."""
    rng = np.random.default_rng(11)
    small = rng.integers(60, 200, (24, 32, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (width, height)), np.uint8)


def _zone_capture(
    conn: psycopg.Connection[Any], n: int, frame: np.ndarray, *, recorded: bool
) -> int:
    """A no-mask violation in a zone as an edge box sends it (``prepare_violation``: the
    rendered JPEG with the zone outline) and ingest stores it (the payload without the inline
    JPEG); ``recorded=False`` is a box that predates ``scale`` / ``zone_polygon_px``."""
    from bkcommon.messages import Violation, decode
    from edge.events import EvidenceBox, ViolationEvent
    from edge.evidence import prepare_violation

    h, w = frame.shape[:2]
    event = ViolationEvent(
        rule="no_mask", camera_id="cam-z", zone_id="prep", started_at=T0, ended_at=None,
        confidence=0.8, track_id=1, model_version="mask-v4", frame=frame,
        boxes=[EvidenceBox(w * 0.45, h * 0.4, w * 0.6, h * 0.65, "without_mask", 0.8)],
        zone_polygon=[(w * 0.1, h * 0.15), (w * 0.85, h * 0.1), (w * 0.9, h * 0.9),
                      (w * 0.15, h * 0.8)],
    )  # fmt: skip
    event_id = f"evt-zone-{n}"
    prep = prepare_violation(event, event_id, inline=False)
    v = decode(Violation, prep.payload)  # what ingest accepts
    payload = v.model_dump(mode="json")  # what ingest stores in findings.payload
    payload["evidence_sha256"] = prep.image.sha256
    if not recorded:
        del payload["evidence"]["scale"], payload["evidence"]["zone_polygon_px"]
    conn.execute(  # the same frame renders the same JPEG: one blob, whatever the payload
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s) "
        "ON CONFLICT (sha256) DO NOTHING",
        (prep.image.sha256, prep.image.jpeg),
    )
    row = conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, 'violation', 's-open', 'cam-z', 'no_mask', 2, %s, %s) RETURNING id""",
        (f"violation:{event_id}", T0, Jsonb(payload)),
    ).fetchone()
    assert row is not None
    queue_for_review(conn, finding_id=int(row[0]), site_id="s-open", camera_id="cam-z",
                     rule="no_mask", payload=payload, now=T0)  # fmt: skip
    rid = conn.execute("SELECT id FROM capture_reviews WHERE event_id = %s", (event_id,)).fetchone()
    assert rid is not None
    return int(rid[0])


def _along_outline(img: np.ndarray, clean: np.ndarray, polygon: list[Any]) -> tuple[float, float]:
    """Along the drawn outline (edge.evidence's thickness): the mean colour difference from
    the clean frame, and the share of pixels in the outline's colour."""
    from edge.evidence import _ZONE_BGR

    line = np.zeros(clean.shape[:2], np.uint8)
    thick = max(1, round(clean.shape[1] / 400))
    cv2.polylines(line, [np.array(polygon, np.int32)], isClosed=True, color=255, thickness=thick)
    px, ref = img[line > 0].astype(int), clean[line > 0].astype(int)
    zone_coloured = (np.abs(px - np.array(_ZONE_BGR)).max(axis=1) < 60).mean()
    return float(np.abs(px - ref).mean()), float(zone_coloured)


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (640, 480)])
def test_exported_training_image_has_no_zone_outline(
    db_url: str, tmp_path: Path, width: int, height: int
) -> None:
    """The zone outline is drawn in the evidence image's pixels (a 1920 px frame shrunk to
    1280, a 640 px one as it is); the payload records where, and the export paints it out
    from its surroundings, so the training image is the scene, not the zone's answer. An
    older box's capture (no record) is still exported, with the outline, and says so."""
    settings = ApiSettings(evidence_dir=tmp_path / "evidence")
    frame = _zone_frame(width, height)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO regions (id, name) VALUES ('open', 'Open')")
        conn.execute("INSERT INTO sites (id, region_id, name) VALUES ('s-open', 'open', 'B')")
        for rid in (_zone_capture(conn, 1, frame, recorded=True),
                    _zone_capture(conn, 2, frame, recorded=False)):  # fmt: skip
            confirm_review(conn, review_id=rid, reviewer="u1", scope=SiteScope.everything(),
                           now=T0 + timedelta(hours=1), settings=settings)  # fmt: skip
        payload = conn.execute(
            "SELECT payload FROM findings WHERE finding_key = 'violation:evt-zone-1'"
        ).fetchone()
    assert payload is not None
    polygon = payload[0]["evidence"]["zone_polygon_px"]
    out = tmp_path / "captures"
    res = _export({"url": db_url, "store": LocalDirStore(settings.evidence_dir)}, out,
                  faces_allowed_regions=["open"])  # fmt: skip
    assert (res.confirmed, res.zone_outlines_removed, res.zone_outlines_kept) == (2, 1, 1)
    ew = min(width, 1280)  # the evidence width: frames wider than 1280 px are shrunk
    eh = round(height * ew / width)
    clean = cv2.resize(frame, (ew, eh), interpolation=cv2.INTER_AREA) if ew < width else frame

    removed = cv2.imread(str(out / "images" / "evt-zone-1.png"))
    assert removed is not None
    assert removed.shape == clean.shape  # the frame without the caption bar
    diff, zone_coloured = _along_outline(removed, clean, polygon)
    assert diff < 8  # the scene is back (the JPEG alone differs by ~3)
    assert zone_coloured == 0.0  # and no pixel of the outline's colour is left on it
    xml = (out / "annotations" / "evt-zone-1.xml").read_text()
    assert "<zone_outline_removed>true</zone_outline_removed>" in xml

    kept = cv2.imread(str(out / "images" / "evt-zone-2.png"))  # its boxes were painted out
    assert kept is not None
    assert kept.shape == clean.shape
    diff, zone_coloured = _along_outline(kept, clean, polygon)
    assert diff > 40
    assert zone_coloured > 0.5  # the outline stays where its place is not recorded
    xml = (out / "annotations" / "evt-zone-2.xml").read_text()
    assert "<zone_outline_removed>false</zone_outline_removed>" in xml
    report = json.loads((out / "export_report.json").read_text())
    assert (report["zone_outlines_removed"], report["zone_outlines_kept"]) == (1, 1)
    read = read_folder(out, "auto", {}, ["without_mask"])
    assert (len(read.samples), read.issues) == (2, [])


def test_a_capture_outside_any_zone_says_nothing_of_an_outline(db_url: str, tmp_path: Path) -> None:
    """No zone, no outline drawn: nothing to report (the rendered capture of the box test)."""
    settings = ApiSettings(evidence_dir=tmp_path / "evidence")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO regions (id, name) VALUES ('open', 'Open')")
        conn.execute("INSERT INTO sites (id, region_id, name) VALUES ('s-open', 'open', 'B')")
        rid, _box = _rendered_capture(conn, "s-open")
        confirm_review(conn, review_id=rid, reviewer="u1", scope=SiteScope.everything(),
                       now=T0 + timedelta(hours=1), settings=settings)  # fmt: skip
    out = tmp_path / "captures"
    res = _export({"url": db_url, "store": LocalDirStore(settings.evidence_dir)}, out,
                  faces_allowed_regions=["open"])  # fmt: skip
    assert (res.confirmed, res.zone_outlines_removed, res.zone_outlines_kept) == (1, 0, 0)
    assert "zone_outline" not in (out / "annotations" / "evt-rendered.xml").read_text()
