"""Random inspection plans: sites drawn without replacement, weighted by their risk score.

Weight of a site = ``1 + score`` (its latest risk score, 0..100; 0 when never scored), so a
site at score 100 is 101 times as likely to be drawn first as one at 0, and every site can
be drawn. The draw is Efraimidis–Spirakis weighted sampling without replacement: each
site, in site-id order, gets ``u ** (1 / w)`` with ``u`` from ``random.Random(seed)``; the
``n`` largest keys win. The same seed and the same sites and scores give the same list.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.auth.scope import SiteScope
from api.services.risk import LATEST_SQL

Conn = psycopg.Connection[Any]


class PlanRequest(BaseModel):
    """Which sites to draw from, how many, and the seed that makes the draw reproducible."""

    model_config = ConfigDict(extra="forbid")

    region_id: str | None = Field(default=None, description="Region and its sub-regions.")
    n: int = Field(ge=1, le=10_000)
    seed: int = Field(ge=0, le=2**63 - 1)


class PlannedSite(BaseModel):
    """One site drawn, in draw order."""

    site_id: str
    name: str
    region_id: str
    score: float
    weight: float


class PlanPublic(BaseModel):
    """The drawn sites and how many were eligible."""

    seed: int
    eligible: int
    sites: list[PlannedSite]


def weighted_sample(weights: Sequence[tuple[str, float]], n: int, seed: int) -> list[str]:
    """Draw ``n`` ids without replacement, probability proportional to weight (A-ES).

    Example:
        >>> weighted_sample([("a", 1.0), ("b", 1.0)], 2, seed=1) == weighted_sample(
        ...     [("b", 1.0), ("a", 1.0)], 2, seed=1)
        True
    """
    if any(w <= 0 for _, w in weights):
        raise ValueError("weights must be positive")
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / w), key) for key, w in sorted(weights)]
    keyed.sort(key=lambda kv: (-kv[0], kv[1]))
    return [key for _, key in keyed[:n]]


_ELIGIBLE = (
    """
WITH RECURSIVE tree(id) AS (
    SELECT id FROM regions WHERE id = %(region)s
    UNION
    SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id
)
SELECT s.id AS site_id, s.name, s.region_id, coalesce(rk.score, 0)::float8 AS score
FROM sites s
LEFT JOIN ("""
    + LATEST_SQL
    + """) rk ON rk.site_id = s.id
WHERE (%(region)s::text IS NULL OR s.region_id IN (SELECT id FROM tree))
  AND {scope}
ORDER BY s.id
"""
)


def plan_inspections(*, conn: Conn, request: PlanRequest, scope: SiteScope) -> PlanPublic:
    """Draw ``request.n`` sites of the region (within scope) for random inspection."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _ELIGIBLE.format(scope=scope.clause("s.id")),
            {"region": request.region_id, **scope.params()},
        ).fetchall()
    by_id = {r["site_id"]: r for r in rows}
    drawn = weighted_sample(
        [(r["site_id"], 1.0 + float(r["score"])) for r in rows], request.n, request.seed
    )
    return PlanPublic(
        seed=request.seed,
        eligible=len(rows),
        sites=[
            PlannedSite(
                site_id=s,
                name=by_id[s]["name"],
                region_id=by_id[s]["region_id"],
                score=float(by_id[s]["score"]),
                weight=1.0 + float(by_id[s]["score"]),
            )
            for s in drawn
        ],
    )
