"""The capture review queue: confirm (a ticket opens), dismiss (a kept false positive), report.

Confirming opens the ticket through the engine's own path (``open_or_add``), so a confirmed
capture behaves exactly like one in direct mode. Dismissals keep their reason and feed the
false-alarm rate per rule, camera and model version, and the Pascal VOC export that turns
reviewed captures into training data.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from xml.etree import ElementTree as ET

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth.scope import SiteScope
from api.services.evidence import EvidenceStore, UnsupportedMediaError, load_bytes, sniff_image
from api.services.tickets import load_finding, open_or_add
from api.settings import ApiSettings
from bkcommon.datasets import NEEDS_LABEL
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_COLUMNS = """id, finding_id, event_id, site_id, camera_id, rule, model_version, evidence_sha256,
status, reason, reviewed_by, reviewed_at, ticket_id, created_at"""


class ReviewError(RequestError):
    """A review action was refused; ``status_code`` is the HTTP answer."""

    status_code = 409


class ReviewNotFoundError(ReviewError):
    """No such review in the caller's scope."""

    status_code = 404


def list_reviews(
    conn: Conn, *, scope: SiteScope, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Reviews in scope (optionally of one status), oldest first, and the total count."""
    where = f"WHERE (%(status)s::text IS NULL OR status = %(status)s) AND {scope.clause()}"
    params = {"status": status, "limit": limit, "offset": offset, **scope.params()}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM capture_reviews {where} "
            "ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute(f"SELECT count(*) AS n FROM capture_reviews {where}", params)
        n = total.fetchone()
    return rows, int(n["n"]) if n else 0


def get_review(conn: Conn, *, review_id: int, scope: SiteScope) -> dict[str, Any] | None:
    """One review in scope, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM capture_reviews WHERE id = %(id)s AND {scope.clause()}",
            {"id": review_id, **scope.params()},
        ).fetchone()


def _lock_pending(conn: Conn, review_id: int, scope: SiteScope) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM capture_reviews WHERE id = %(id)s AND {scope.clause()} "
            "FOR UPDATE",
            {"id": review_id, **scope.params()},
        ).fetchone()
    if row is None:
        raise ReviewNotFoundError(f"review {review_id} not found")
    if row["status"] != "pending":
        raise ReviewError(f"review {review_id} is already {row['status']}")
    return row


def confirm_review(
    conn: Conn,
    *,
    review_id: int,
    reviewer: str,
    scope: SiteScope,
    now: datetime,
    settings: ApiSettings,
) -> int:
    """Confirm a pending capture: open its ticket (or add an occurrence); return the ticket id."""
    with conn.transaction():
        review = _lock_pending(conn, review_id, scope)
        finding = load_finding(conn, int(review["finding_id"]))
        if finding is None:
            raise ReviewNotFoundError(f"finding of review {review_id} is gone")
        outcome = open_or_add(conn, finding, now=now, settings=settings)
        assert outcome.ticket_id is not None
        conn.execute(
            """UPDATE capture_reviews SET status = 'confirmed', reviewed_by = %s,
                   reviewed_at = %s, ticket_id = %s WHERE id = %s""",
            (reviewer, now, outcome.ticket_id, review_id),
        )
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) "
            "VALUES (%s, %s, %s, 'capture_confirmed', %s)",
            (outcome.ticket_id, now, reviewer, Jsonb({"review_id": review_id})),
        )
    logger.info("review %s confirmed by %s: ticket %s", review_id, reviewer, outcome.ticket_id)
    return outcome.ticket_id


def dismiss_review(
    conn: Conn, *, review_id: int, reviewer: str, reason: str, scope: SiteScope, now: datetime
) -> None:
    """Dismiss a pending capture as a false positive, keeping the reason."""
    if not reason.strip():
        raise ReviewError("a dismissal needs a reason")
    with conn.transaction():
        _lock_pending(conn, review_id, scope)
        conn.execute(
            """UPDATE capture_reviews SET status = 'dismissed', reason = %s, reviewed_by = %s,
                   reviewed_at = %s WHERE id = %s""",
            (reason.strip(), reviewer, now, review_id),
        )
    logger.info("review %s dismissed by %s: %s", review_id, reviewer, reason)


@dataclass(frozen=True, slots=True)
class RateRow:
    """Counts of one group and its false-alarm rate (dismissed / reviewed)."""

    key: str
    confirmed: int
    dismissed: int
    pending: int

    @property
    def false_alarm_rate(self) -> float | None:
        """dismissed / (confirmed + dismissed), None before any review."""
        reviewed = self.confirmed + self.dismissed
        return None if reviewed == 0 else self.dismissed / reviewed


def false_alarm_rates(conn: Conn, *, scope: SiteScope, by: str) -> list[RateRow]:
    """Counts per ``by`` (rule, camera_id or model_version) in scope, by key."""
    if by not in ("rule", "camera_id", "model_version"):
        raise ValueError(f"cannot group by {by!r}")
    rows = conn.execute(
        f"""SELECT {by},
                   count(*) FILTER (WHERE status = 'confirmed'),
                   count(*) FILTER (WHERE status = 'dismissed'),
                   count(*) FILTER (WHERE status = 'pending')
            FROM capture_reviews WHERE {scope.clause()} GROUP BY {by} ORDER BY {by}""",
        scope.params(),
    ).fetchall()
    return [RateRow(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]


def _voc_xml(
    *,
    name: str,
    width: int,
    height: int,
    boxes: list[dict[str, Any]],
    rule: str,
    review: dict[str, Any],
) -> bytes:
    """One Pascal VOC annotation file."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = name
    src = ET.SubElement(root, "source")
    ET.SubElement(src, "database").text = "brightkitchen captures"
    ET.SubElement(src, "camera").text = str(review["camera_id"])
    ET.SubElement(src, "model_version").text = str(review["model_version"])
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    ET.SubElement(root, "review").text = str(review["status"])
    if review["reason"]:
        ET.SubElement(root, "review_reason").text = str(review["reason"])
    dismissed = review["status"] == "dismissed"
    for b in boxes:
        obj = ET.SubElement(root, "object")
        label = str(b.get("label") or rule)
        # a dismissed box is not what the edge box called it, nor background: a person says
        ET.SubElement(obj, "name").text = NEEDS_LABEL if dismissed else label
        if dismissed:
            ET.SubElement(obj, "model_label").text = label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        x1, y1 = max(0.0, float(b["x1"])), max(0.0, float(b["y1"]))
        x2, y2 = min(float(width), float(b["x2"])), min(float(height), float(b["y2"]))
        for tag, v in (("xmin", x1), ("ymin", y1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bb, tag).text = str(round(v))
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def export_voc(
    conn: Conn,
    store: EvidenceStore,
    out: IO[bytes],
    *,
    scope: SiteScope,
    from_ts: datetime,
    to_ts: datetime,
) -> int:
    """Write reviewed captures (reviewed in [from, to)) as a Pascal VOC zip; return images.

    Layout: ``JPEGImages/<event>.jpg``, ``Annotations/<event>.xml`` (boxes from the
    violation's ``evidence.boxes``, label = box label or rule; a dismissed capture's box is
    named ``needs_label`` with that label as ``model_label``, since the dismissal says only
    that it was not the violation), ``ImageSets/Main/confirmed.txt`` and ``dismissed.txt``.
    Captures without an image, or whose stored evidence is not an image, are left out
    (logged).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        reviews = cur.execute(
            f"""SELECT r.id, r.event_id, r.camera_id, r.rule, r.model_version, r.status,
                       r.reason, r.evidence_sha256, f.payload
                FROM capture_reviews r JOIN findings f ON f.id = r.finding_id
                WHERE r.status <> 'pending' AND r.reviewed_at >= %(from)s
                  AND r.reviewed_at < %(to)s AND {scope.clause("r.site_id")}
                ORDER BY r.id""",
            {"from": from_ts, "to": to_ts, **scope.params()},
        ).fetchall()
    splits: dict[str, list[str]] = {"confirmed": [], "dismissed": []}
    labels: set[str] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for r in reviews:
            sha = r["evidence_sha256"]
            found = load_bytes(conn, store, sha) if sha else None
            if found is None:
                continue
            data = found[1]
            try:
                info = sniff_image(data)
            except UnsupportedMediaError:
                # Bytes an edge box sent, not the caller's upload: one broken capture must not
                # cost the reviewer the whole export (nor answer them with a 415).
                logger.warning(
                    "VOC export: capture %s left out, stored evidence %s is not an image",
                    r["event_id"],
                    sha,
                )
                continue
            name = f"{r['event_id']}"
            payload = r["payload"] or {}
            boxes = list((payload.get("evidence") or {}).get("boxes") or [])
            if r["status"] == "dismissed":
                labels.update([NEEDS_LABEL] if boxes else [])
            else:
                labels.update(str(b.get("label") or r["rule"]) for b in boxes)
            zf.writestr(f"JPEGImages/{name}.jpg", data, compress_type=zipfile.ZIP_STORED)
            zf.writestr(
                f"Annotations/{name}.xml",
                _voc_xml(
                    name=f"{name}.jpg",
                    width=info.width_px,
                    height=info.height_px,
                    boxes=boxes,
                    rule=str(r["rule"]),
                    review=r,
                ),
            )
            splits[str(r["status"])].append(name)
        for split, names in splits.items():
            zf.writestr(f"ImageSets/Main/{split}.txt", "".join(n + "\n" for n in names))
        zf.writestr("labels.txt", "".join(n + "\n" for n in sorted(labels)))
    return sum(len(v) for v in splits.values())
