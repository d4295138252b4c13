"""Purchase records (进货查验): one row per delivery, so a failed rapid test can be traced forward.

Each delivery names its supplier by licence number (the supplier row is created or renamed
on the way), the product, batch, delivery date, quantity and the person who received it.
A failed rapid test looks here for the same supplier's other recent deliveries across the
region (``api.services.rapid_tests``). The receiving person is internal: no public page
shows it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.auth.scope import SiteScope
from api.input_types import IsoDate
from api.services.duties import china_today
from api.services.evidence import EvidenceStore
from api.services.row_photo import attach_row_photo, row_photo
from bkcommon.errors import RequestError
from bkcommon.timeutil import utcnow

Conn = psycopg.Connection[Any]


class PurchaseNotFoundError(RequestError, LookupError):
    """No such site or purchase in the caller's scope (404)."""

    status_code = 404


class PurchaseInputError(RequestError):
    """A delivery that cannot be right, e.g. dated after today in China (422)."""

    status_code = 422


class PurchaseConflictError(RequestError):
    """The same delivery (site, supplier, product, batch, date) is recorded already (409)."""

    status_code = 409


class PurchaseIn(BaseModel):
    """One delivery as the receiving canteen records it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: str = Field(min_length=1, max_length=100)
    supplier_name: str = Field(min_length=1, max_length=200)
    supplier_licence: str = Field(
        min_length=1, max_length=60, description="The supplier's food business licence number."
    )
    product: str = Field(min_length=1, max_length=100)
    batch_no: str = Field(min_length=1, max_length=60)
    delivered_on: IsoDate
    quantity: Decimal = Field(gt=0, le=Decimal("999999999.999"), decimal_places=3)
    unit: str = Field(default="kg", min_length=1, max_length=10)
    received_by: str = Field(min_length=1, max_length=100)


class PurchasePublic(BaseModel):
    """A stored delivery."""

    id: int
    site_id: str
    supplier_name: str
    supplier_licence: str
    product: str
    batch_no: str
    delivered_on: date
    quantity: float
    unit: str
    received_by: str
    created_by: str
    created_at: datetime
    photo_sha256: str | None = Field(
        description="The delivery's photo (GET /purchases/{id}/photo), if one was taken."
    )


_SELECT = """SELECT p.id, p.site_id, s.name AS supplier_name, p.supplier_licence, p.product,
       p.batch_no, p.delivered_on, p.quantity::float8 AS quantity, p.unit, p.received_by,
       p.created_by, p.created_at, p.photo_sha256
FROM purchases p JOIN suppliers s ON s.licence_no = p.supplier_licence"""


def upsert_supplier(conn: Conn, *, licence_no: str, name: str) -> None:
    """Create the supplier, or keep the latest name it was recorded under."""
    conn.execute(
        """INSERT INTO suppliers (licence_no, name) VALUES (%s, %s)
           ON CONFLICT (licence_no) DO UPDATE SET name = excluded.name
           WHERE suppliers.name <> excluded.name""",
        (licence_no, name),
    )


def record_purchase(
    conn: Conn, *, data: PurchaseIn, scope: SiteScope, actor: str, now: datetime | None = None
) -> PurchasePublic:
    """Store one delivery of a site in scope; 404 outside it, 409 when recorded already,
    422 when it is dated after today (the region's local day, ``BK_TIME_ZONE``)."""
    if not scope.allows(data.site_id):
        raise PurchaseNotFoundError(f"site {data.site_id} not found")
    if data.delivered_on > china_today(now or utcnow()):
        raise PurchaseInputError("delivered_on: must not be after today (local time)")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
            raise PurchaseNotFoundError(f"site {data.site_id} not found")
        upsert_supplier(conn, licence_no=data.supplier_licence, name=data.supplier_name)
        row = conn.execute(
            """INSERT INTO purchases (site_id, supplier_licence, product, batch_no, delivered_on,
                                      quantity, unit, received_by, created_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING RETURNING id""",
            (
                data.site_id,
                data.supplier_licence,
                data.product,
                data.batch_no,
                data.delivered_on,
                data.quantity,
                data.unit,
                data.received_by,
                actor,
            ),
        ).fetchone()
        if row is None:
            raise PurchaseConflictError(
                f"delivery of {data.product} batch {data.batch_no} from {data.supplier_licence} "
                f"on {data.delivered_on} is recorded already"
            )
    found = get_purchase(conn, purchase_id=int(row[0]), scope=scope)
    assert found is not None
    return found


def get_purchase(conn: Conn, *, purchase_id: int, scope: SiteScope) -> PurchasePublic | None:
    """One delivery in scope, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"{_SELECT} WHERE p.id = %(id)s AND {scope.clause('p.site_id')}",
            {"id": purchase_id, **scope.params()},
        ).fetchone()
    return None if row is None else PurchasePublic.model_validate(row)


def list_purchases(
    conn: Conn,
    *,
    scope: SiteScope,
    site_id: str | None,
    supplier_licence: str | None,
    limit: int,
    offset: int,
) -> list[PurchasePublic]:
    """Deliveries in scope, newest first, optionally of one site or supplier."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""{_SELECT}
                WHERE {scope.clause("p.site_id")}
                  AND (%(site)s::text IS NULL OR p.site_id = %(site)s)
                  AND (%(sup)s::text IS NULL OR p.supplier_licence = %(sup)s)
                ORDER BY p.delivered_on DESC, p.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {
                "site": site_id,
                "sup": supplier_licence,
                "limit": limit,
                "offset": offset,
                **scope.params(),
            },
        ).fetchall()
    return [PurchasePublic.model_validate(r) for r in rows]


def attach_purchase_photo(
    conn: Conn, *, store: EvidenceStore, purchase_id: int, content: bytes, scope: SiteScope
) -> str:
    """Check a delivery's photo (type, size, decompression bombs), store it by hash, attach it.

    A second photo replaces the first on the record; the stored files are kept by hash.
    """
    return attach_row_photo(
        conn,
        table="purchases",
        row_id=purchase_id,
        store=store,
        content=content,
        scope=scope,
        missing=PurchaseNotFoundError(f"purchase {purchase_id} not found"),
    )


def purchase_photo(conn: Conn, *, purchase_id: int, scope: SiteScope) -> tuple[str, str] | None:
    """(sha256, media type) of a delivery's photo in scope, or None."""
    return row_photo(conn, table="purchases", row_id=purchase_id, scope=scope)
