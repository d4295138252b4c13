"""Capture triage: whether a vision violation opens a ticket at once or waits for a reviewer.

The mode is configured per camera and rule in ``triage_modes`` (most specific wins: camera +
rule, camera, rule) with ``ApiSettings.triage_default`` as the fallback. A capture in review
mode becomes a pending ``capture_reviews`` row; ``api.services.reviews`` confirms or
dismisses it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

import psycopg

Conn = psycopg.Connection[Any]
Mode = Literal["direct", "review"]

logger = logging.getLogger(__name__)


def triage_mode(conn: Conn, *, camera_id: str, rule: str, default: Mode) -> Mode:
    """The mode for captures of ``rule`` on ``camera_id``."""
    row = conn.execute(
        """SELECT mode FROM triage_modes
           WHERE (camera_id = %(cam)s OR camera_id IS NULL) AND (rule = %(rule)s OR rule IS NULL)
           ORDER BY (camera_id IS NULL), (rule IS NULL) LIMIT 1""",
        {"cam": camera_id, "rule": rule},
    ).fetchone()
    if row is None:
        return default
    return "review" if row[0] == "review" else "direct"


def set_triage_mode(conn: Conn, *, mode: Mode, camera_id: str | None, rule: str | None) -> None:
    """Create or replace the mode for a camera and/or rule (both None: not allowed)."""
    if camera_id is None and rule is None:
        raise ValueError("a triage mode needs a camera or a rule (the default is a setting)")
    conn.execute(
        """INSERT INTO triage_modes (camera_id, rule, mode) VALUES (%s, %s, %s)
           ON CONFLICT (coalesce(camera_id, ''), coalesce(rule, ''))
           DO UPDATE SET mode = excluded.mode""",
        (camera_id, rule, mode),
    )


def queue_for_review(
    conn: Conn,
    *,
    finding_id: int,
    site_id: str,
    camera_id: str,
    rule: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Put a capture in the review queue (idempotent per finding)."""
    evidence = payload.get("evidence") or {}
    sha = payload.get("evidence_sha256") or evidence.get("sha256")
    conn.execute(
        """INSERT INTO capture_reviews (finding_id, event_id, site_id, camera_id, rule,
                                        model_version, evidence_sha256, created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_id) DO NOTHING""",
        (
            finding_id,
            str(payload.get("event_id") or f"finding-{finding_id}"),
            site_id,
            camera_id,
            rule,
            str(payload.get("model_version") or ""),
            sha,
            now,
        ),
    )
    logger.info(
        "capture %s (%s on %s) waits for review",
        finding_id,
        rule,
        camera_id,
        extra={"site_id": site_id, "camera_id": camera_id},
    )
