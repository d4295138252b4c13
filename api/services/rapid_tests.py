"""Rapid tests (快检): record a tested sample, open a ticket when it fails, flag the supplier.

A failed sample becomes a finding (kind ``rapid_test``, rule ``rapid_test_failed``) of the site
that bought it, so the ticket engine opens the ticket and notifies the officers exactly as
for an alarm. In the same transaction the supplier's other deliveries of the last
``BK_RAPID_FLAG_WINDOW_DAYS`` days (default 14) to any site of the same top-level region
are flagged (``supplier_flags``): trace forward through the purchase records. Each sample
is written whole or not at all; re-recording the same sample number and item adds nothing.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth.scope import SiteScope
from api.input_types import IsoDateTime
from api.services.evidence import EvidenceStore
from api.services.purchases import upsert_supplier
from api.services.row_photo import attach_row_photo, row_photo
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.errors import RequestError
from bkcommon.localtime import local_date

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RULE = "rapid_test_failed"
FLAG_RULE = "supplier_flagged"
KIND = "rapid_test"
"""Finding kind (and ticket source) of a failed sample and of a supplier flag."""


class RapidTestSettings(BaseSettings):
    """Defaults of the rapid-test workflow (environment prefix ``BK_RAPID_``)."""

    model_config = SettingsConfigDict(env_prefix="BK_RAPID_", extra="ignore")

    flag_window_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="A failed sample flags the supplier's deliveries of this many days before.",
    )
    fail_tier: int = Field(
        default=1, ge=1, le=3, description="Tier of the ticket a failed sample opens."
    )
    flag_tickets: bool = Field(
        default=True,
        description="Each flagged delivery also opens a ticket on its site (check, hold stock).",
    )
    flag_tier: int = Field(
        default=2, ge=1, le=3, description="Tier of a flagged delivery's ticket."
    )


class TestItem(StrEnum):
    """What a sample is tested for (the common items of a canteen or market rapid-test lab)."""

    PESTICIDE_ENZYME = "pesticide_enzyme"  # 农药残留 (酶抑制率法)
    CLENBUTEROL = "clenbuterol"  # 瘦肉精 (克伦特罗)
    RACTOPAMINE = "ractopamine"  # 莱克多巴胺
    VETERINARY_DRUG = "veterinary_drug"  # 兽药残留
    FORMALDEHYDE = "formaldehyde"  # 甲醛
    SULFUR_DIOXIDE = "sulfur_dioxide"  # 二氧化硫
    NITRITE = "nitrite"  # 亚硝酸盐
    BORAX = "borax"  # 硼砂
    MALACHITE_GREEN = "malachite_green"  # 孔雀石绿
    AFLATOXIN = "aflatoxin"  # 黄曲霉毒素


ITEM_LABELS: dict[str, tuple[str, str]] = {
    "pesticide_enzyme": ("农药残留(酶抑制法)", "pesticide residue (enzyme inhibition)"),
    "clenbuterol": ("克伦特罗", "clenbuterol"),
    "ractopamine": ("莱克多巴胺", "ractopamine"),
    "veterinary_drug": ("兽药残留", "veterinary drug residue"),
    "formaldehyde": ("甲醛", "formaldehyde"),
    "sulfur_dioxide": ("二氧化硫", "sulfur dioxide"),
    "nitrite": ("亚硝酸盐", "nitrite"),
    "borax": ("硼砂", "borax"),
    "malachite_green": ("孔雀石绿", "malachite green"),
    "aflatoxin": ("黄曲霉毒素", "aflatoxin"),
}
"""Item → (zh, en); the CSV import also accepts the Chinese name."""


class RapidTestError(RequestError):
    """Bad rapid-test input that only the database can tell (422)."""

    status_code = 422


class RapidTestNotFoundError(RequestError, LookupError):
    """No such site, purchase or test in the caller's scope (404)."""

    status_code = 404


class RapidTestIn(BaseModel):
    """One tested sample: what, from whom, which test, the result, who tested and when."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: str = Field(min_length=1, max_length=100, description="The site that bought it.")
    sample_no: str = Field(min_length=1, max_length=60)
    purchase_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="The delivery the sample came from."
    )
    product: str = Field(min_length=1, max_length=100)
    supplier_name: str | None = Field(default=None, min_length=1, max_length=200)
    supplier_licence: str | None = Field(default=None, min_length=1, max_length=60)
    batch_no: str = Field(default="", max_length=60)
    item: TestItem
    method: str = Field(min_length=1, max_length=100)
    result: Literal["pass", "fail"]
    value: float | None = Field(default=None, ge=-1e9, le=1e9, allow_inf_nan=False)
    limit: float | None = Field(default=None, ge=-1e9, le=1e9, allow_inf_nan=False)
    unit: str = Field(default="", max_length=20)
    tester: str = Field(min_length=1, max_length=100)
    tested_at: IsoDateTime

    @model_validator(mode="after")
    def _supplier_named(self) -> RapidTestIn:
        if self.supplier_name is not None and self.supplier_licence is None:
            raise ValueError("supplier_licence: required when supplier_name is given")
        return self


class RapidTestPublic(BaseModel):
    """A stored rapid test, with the ticket a failure opened and how many deliveries it flagged."""

    id: int
    site_id: str
    sample_no: str
    purchase_id: int | None
    product: str
    supplier_licence: str | None
    supplier_name: str | None
    batch_no: str
    item: str
    method: str
    result: str
    value: float | None
    limit: float | None
    unit: str
    tester: str
    tested_at: datetime
    photo_sha256: str | None
    source: str
    created_by: str
    ticket_id: int | None
    ticket_no: str | None = Field(
        default=None, description="The number of the ticket a failure opened (ZG-…)."
    )
    flagged: int


class FlagPublic(BaseModel):
    """A delivery flagged because a sample of the same supplier failed."""

    id: int
    site_id: str
    purchase_id: int
    product: str
    batch_no: str
    delivered_on: date
    supplier_licence: str
    supplier_name: str
    rapid_test_id: int
    failed_site_id: str | None = Field(
        description="The site whose sample failed; null when that site is outside your scope."
    )
    failed_item: str
    failed_at: datetime
    created_at: datetime


_SELECT = """SELECT t.id, t.site_id, t.sample_no, t.purchase_id, t.product, t.supplier_licence,
       s.name AS supplier_name, t.batch_no, t.item, t.method, t.result, t.value,
       t.limit_value AS "limit", t.unit, t.tester, t.tested_at, t.photo_sha256, t.source,
       t.created_by, f.ticket_id, tk.ticket_no,
       (SELECT count(*) FROM supplier_flags sf WHERE sf.rapid_test_id = t.id)::int AS flagged
FROM rapid_tests t
LEFT JOIN suppliers s ON s.licence_no = t.supplier_licence
LEFT JOIN findings f ON f.finding_key = 'rapid_test:' || t.id
LEFT JOIN tickets tk ON tk.id = f.ticket_id"""


def record_test(
    conn: Conn,
    *,
    data: RapidTestIn,
    scope: SiteScope,
    actor: str,
    now: datetime,
    settings: RapidTestSettings,
    source: Literal["api", "csv"] = "api",
) -> tuple[int, bool]:
    """Store one sample (and on failure its finding and flags) atomically.

    Returns (test id, created); ``created`` is False when the same site, sample number and
    item were recorded before (nothing changes). Raises RapidTestNotFoundError for a site
    or purchase outside the scope, RapidTestError when the purchase does not fit.
    """
    if not scope.allows(data.site_id):
        raise RapidTestNotFoundError(f"site_id: site {data.site_id} not found")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM sites WHERE id = %s", (data.site_id,)).fetchone() is None:
            raise RapidTestNotFoundError(f"site_id: site {data.site_id} not found")
        licence, batch = _resolve_purchase(conn, data)
        if data.supplier_name is not None and licence is not None:
            upsert_supplier(conn, licence_no=licence, name=data.supplier_name)
        elif licence is not None and (
            conn.execute("SELECT 1 FROM suppliers WHERE licence_no = %s", (licence,)).fetchone()
            is None
        ):
            raise RapidTestError(
                f"supplier_licence: unknown supplier {licence!r}; give supplier_name too"
            )
        row = conn.execute(
            """INSERT INTO rapid_tests (site_id, purchase_id, sample_no, product,
                   supplier_licence, batch_no, item, method, result, value, limit_value, unit,
                   tester, tested_at, source, created_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (site_id, sample_no, item) DO NOTHING RETURNING id""",
            (
                data.site_id,
                data.purchase_id,
                data.sample_no,
                data.product,
                licence,
                batch,
                data.item.value,
                data.method,
                data.result,
                data.value,
                data.limit,
                data.unit,
                data.tester,
                data.tested_at,
                source,
                actor,
            ),
        ).fetchone()
        if row is None:
            existing = conn.execute(
                "SELECT id FROM rapid_tests WHERE site_id = %s AND sample_no = %s AND item = %s",
                (data.site_id, data.sample_no, data.item.value),
            ).fetchone()
            assert existing is not None
            return int(existing[0]), False
        test_id = int(row[0])
        if data.result == "fail":
            _failed(conn, test_id, data, licence, batch, now=now, settings=settings)
    return test_id, True


def _resolve_purchase(conn: Conn, data: RapidTestIn) -> tuple[str | None, str]:
    """Supplier licence and batch of the sample: from its purchase when given, else as sent."""
    if data.purchase_id is None:
        return data.supplier_licence, data.batch_no
    row = conn.execute(
        "SELECT site_id, supplier_licence, batch_no FROM purchases WHERE id = %s",
        (data.purchase_id,),
    ).fetchone()
    if row is None or row[0] != data.site_id:
        raise RapidTestNotFoundError(
            f"purchase_id: purchase {data.purchase_id} of site {data.site_id} not found"
        )
    if data.supplier_licence is not None and data.supplier_licence != row[1]:
        raise RapidTestError(
            f"supplier_licence: the purchase was delivered by {row[1]}, not {data.supplier_licence}"
        )
    return str(row[1]), data.batch_no or str(row[2])


def _failed(
    conn: Conn,
    test_id: int,
    data: RapidTestIn,
    licence: str | None,
    batch: str,
    *,
    now: datetime,
    settings: RapidTestSettings,
) -> None:
    """The finding of a failed sample (the engine opens the ticket) and the supplier's flags."""
    zh, en = ITEM_LABELS[data.item.value]
    subject = f"{data.product} {batch}".strip()
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_key) DO NOTHING""",
        (
            f"rapid_test:{test_id}",
            KIND,
            data.site_id,
            subject,
            RULE,
            settings.fail_tier,
            data.tested_at,
            Jsonb(
                {
                    "rapid_test_id": test_id,
                    "sample_no": data.sample_no,
                    "product": data.product,
                    "supplier_licence": licence,
                    "batch_no": batch,
                    "item": data.item.value,
                    "item_zh": zh,
                    "item_en": en,
                    "method": data.method,
                    "value": data.value,
                    "limit": data.limit,
                    "unit": data.unit,
                }
            ),
        ),
    )
    flagged = 0
    if licence is not None:
        flagged = _flag_supplier(conn, test_id, data, licence, now=now, settings=settings)
    conn.execute("SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, f"rapid_test:{test_id}"))
    logger.warning(
        "rapid test %s failed: %s %s of %s at %s; %d other deliveries flagged",
        test_id,
        data.product,
        data.item.value,
        licence or "unknown supplier",
        data.site_id,
        flagged,
        extra={"site_id": data.site_id},
    )


def _flag_supplier(
    conn: Conn,
    test_id: int,
    data: RapidTestIn,
    licence: str,
    *,
    now: datetime,
    settings: RapidTestSettings,
) -> int:
    """Flag the supplier's other recent deliveries region-wide; each flag's finding.

    Recent: delivered since ``flag_window_days`` before the test. The region is the top of
    the failing site's region tree, with everything under it: a supplier delivers across
    district lines, so a trace stopping at the district would miss the canteen next door.
    With ``flag_tickets`` each flagged delivery becomes a finding of its site (rule
    ``supplier_flagged``), so its officers are alerted to check and hold the stock.
    """
    # days of the region's calendar (delivered_on is one): the date of tested_at in whatever
    # offset the client wrote ("Z" from a script) moved the window a day at night
    since = local_date(data.tested_at) - timedelta(days=settings.flag_window_days)
    flags = conn.execute(
        """WITH RECURSIVE up AS (
               SELECT r.id, r.parent_id FROM regions r
               JOIN sites s ON s.region_id = r.id WHERE s.id = %(site)s
               UNION ALL
               SELECT r.id, r.parent_id FROM regions r JOIN up ON r.id = up.parent_id),
           tree AS (
               SELECT id FROM up WHERE parent_id IS NULL
               UNION SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id)
           INSERT INTO supplier_flags (rapid_test_id, purchase_id, site_id, supplier_licence,
                                       created_at)
           SELECT %(test)s, p.id, p.site_id, p.supplier_licence, %(now)s
           FROM purchases p JOIN sites s ON s.id = p.site_id
           WHERE p.supplier_licence = %(licence)s
             AND p.delivered_on >= %(since)s
             AND p.id IS DISTINCT FROM %(purchase)s
             AND s.region_id IN (SELECT id FROM tree)
           ON CONFLICT DO NOTHING
           RETURNING id, site_id, purchase_id""",
        {
            "site": data.site_id,
            "test": test_id,
            "now": now,
            "licence": licence,
            "since": since,
            "purchase": data.purchase_id,
        },
    ).fetchall()
    if settings.flag_tickets:
        for flag_id, site_id, purchase_id in flags:
            _flag_finding(
                conn,
                flag_id=int(flag_id),
                site_id=str(site_id),
                purchase_id=int(purchase_id),
                test_id=test_id,
                data=data,
                settings=settings,
            )
    return len(flags)


def _flag_finding(
    conn: Conn,
    *,
    flag_id: int,
    site_id: str,
    purchase_id: int,
    test_id: int,
    data: RapidTestIn,
    settings: RapidTestSettings,
) -> None:
    """The finding of one flagged delivery: its site's ticket to check and hold the stock."""
    row = conn.execute(
        "SELECT product, batch_no, delivered_on, supplier_licence FROM purchases WHERE id = %s",
        (purchase_id,),
    ).fetchone()
    assert row is not None
    zh, en = ITEM_LABELS[data.item.value]
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (finding_key) DO NOTHING""",
        (
            f"supplier_flag:{flag_id}",
            KIND,
            site_id,
            f"{row[0]} {row[1]}".strip(),
            FLAG_RULE,
            settings.flag_tier,
            data.tested_at,
            Jsonb(
                {
                    "flag_id": flag_id,
                    "purchase_id": purchase_id,
                    "rapid_test_id": test_id,
                    "supplier_licence": row[3],
                    "delivered_on": row[2].isoformat(),
                    "failed_product": data.product,
                    "failed_item": data.item.value,
                    "failed_item_zh": zh,
                    "failed_item_en": en,
                }
            ),
        ),
    )


def get_test(conn: Conn, *, test_id: int, scope: SiteScope) -> RapidTestPublic | None:
    """One rapid test in scope, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"{_SELECT} WHERE t.id = %(id)s AND {scope.clause('t.site_id')}",
            {"id": test_id, **scope.params()},
        ).fetchone()
    return None if row is None else RapidTestPublic.model_validate(row)


def list_tests(
    conn: Conn,
    *,
    scope: SiteScope,
    site_id: str | None,
    result: str | None,
    limit: int,
    offset: int,
) -> list[RapidTestPublic]:
    """Rapid tests in scope, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""{_SELECT}
                WHERE {scope.clause("t.site_id")}
                  AND (%(site)s::text IS NULL OR t.site_id = %(site)s)
                  AND (%(result)s::text IS NULL OR t.result = %(result)s)
                ORDER BY t.tested_at DESC, t.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {"site": site_id, "result": result, "limit": limit, "offset": offset, **scope.params()},
        ).fetchall()
    return [RapidTestPublic.model_validate(r) for r in rows]


def list_flags(
    conn: Conn, *, scope: SiteScope, site_id: str | None, limit: int, offset: int
) -> list[FlagPublic]:
    """Flagged deliveries of sites in scope, newest first.

    The failing site is named only when it is in the caller's scope too: an officer learns
    that their delivery is suspect, not which other canteen's sample failed.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT f.id, f.site_id, f.purchase_id, p.product, p.batch_no, p.delivered_on,
                       f.supplier_licence, s.name AS supplier_name, f.rapid_test_id,
                       CASE WHEN {scope.clause("t.site_id")} THEN t.site_id END
                           AS failed_site_id,
                       t.item AS failed_item, t.tested_at AS failed_at, f.created_at
                FROM supplier_flags f
                JOIN purchases p ON p.id = f.purchase_id
                JOIN suppliers s ON s.licence_no = f.supplier_licence
                JOIN rapid_tests t ON t.id = f.rapid_test_id
                WHERE {scope.clause("f.site_id")}
                  AND (%(site)s::text IS NULL OR f.site_id = %(site)s)
                ORDER BY f.created_at DESC, f.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {"site": site_id, "limit": limit, "offset": offset, **scope.params()},
        ).fetchall()
    return [FlagPublic.model_validate(r) for r in rows]


def attach_photo(
    conn: Conn, *, store: EvidenceStore, test_id: int, content: bytes, scope: SiteScope
) -> str:
    """Check the photo of the strip or instrument screen, store it by hash, attach it."""
    return attach_row_photo(
        conn,
        table="rapid_tests",
        row_id=test_id,
        store=store,
        content=content,
        scope=scope,
        missing=RapidTestNotFoundError(f"rapid test {test_id} not found"),
    )


def photo_of(conn: Conn, *, test_id: int, scope: SiteScope) -> tuple[str, str] | None:
    """(sha256, media type) of a test's photo in scope, or None."""
    return row_photo(conn, table="rapid_tests", row_id=test_id, scope=scope)
