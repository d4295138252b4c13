"""One photo held on a record's own row: a delivery's (进货查验) or a rapid test's (快检).

Both tables keep the photo as ``photo_sha256`` and ``photo_media_type`` on the row, the
bytes in the evidence store by hash. Attaching checks the bytes (type, decoding,
decompression bombs), locks the row in the caller's scope and replaces any earlier photo;
the stored files are kept by hash. Reading answers the hash and type, or None.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import psycopg

from api.auth.scope import SiteScope
from api.services.evidence import EvidenceStore, check_image

Conn = psycopg.Connection[Any]

PhotoTable = Literal["purchases", "rapid_tests"]
"""Tables whose rows carry ``photo_sha256`` and ``photo_media_type`` (fixed, never input)."""


def attach_row_photo(
    conn: Conn,
    *,
    table: PhotoTable,
    row_id: int,
    store: EvidenceStore,
    content: bytes,
    scope: SiteScope,
    missing: Exception,
) -> str:
    """Check ``content``, store it by hash and set it as the row's photo; answer the hash.

    Raises ``missing`` when the row is not there or not in ``scope`` (nothing is stored).
    """
    info = check_image(content)  # type, decompression bomb, decodes: the evidence checks
    sha = hashlib.sha256(content).hexdigest()
    with conn.transaction():
        row = conn.execute(
            f"SELECT 1 FROM {table} WHERE id = %(id)s AND {scope.clause('site_id')} FOR UPDATE",
            {"id": row_id, **scope.params()},
        ).fetchone()
        if row is None:
            raise missing
        store.put(sha, content)
        conn.execute(
            f"UPDATE {table} SET photo_sha256 = %s, photo_media_type = %s WHERE id = %s",
            (sha, info.media_type, row_id),
        )
    return sha


def row_photo(
    conn: Conn, *, table: PhotoTable, row_id: int, scope: SiteScope
) -> tuple[str, str] | None:
    """(sha256, media type) of the row's photo in scope, or None."""
    row = conn.execute(
        f"""SELECT photo_sha256, photo_media_type FROM {table}
            WHERE id = %(id)s AND photo_sha256 IS NOT NULL AND {scope.clause("site_id")}""",
        {"id": row_id, **scope.params()},
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))
