"""The data-layer scope: every query that touches site data takes a ``SiteScope``.

Scoping lives here, in the queries, not only in the routes: a route that forgets a
check still cannot return another canteen's rows, because the SQL it runs is
restricted by ``SiteScope.clause``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Roles of console and API users, and of devices."""

    ADMIN = "admin"
    REGULATOR = "regulator"  # scoped to a region and its sub-regions
    INSPECTOR = "inspector"  # 执法检查人员: a region like a regulator; inspections only
    OFFICER = "officer"  # 食品安全员: their sites
    DIRECTOR = "director"  # 食品安全总监: their sites
    INSURER = "insurer"  # sites it insures, read-only
    DEVICE = "device"  # edge boxes and ingest workers


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or device."""

    user_id: str
    username: str
    role: Role
    region_id: str | None = None
    person_id: str | None = None
    insurer: str | None = None

    @property
    def read_only(self) -> bool:
        """Insurers only read."""
        return self.role is Role.INSURER


@dataclass(frozen=True, slots=True)
class SiteScope:
    """The set of sites a principal may see: all of them, or an explicit list.

    Example:
        >>> s = SiteScope(all_sites=False, site_ids=("s1",))
        >>> s.clause("t.site_id")
        '(%(scope_all)s OR t.site_id = ANY(%(scope_sites)s::text[]))'
        >>> s.params()["scope_sites"]
        '{"s1"}'
        >>> s.allows("s2")
        False

    The site list is bound as one PostgreSQL array literal built once per scope (a
    scope is cached with the user's token): a regulator's region can hold thousands of
    canteens, and adapting that list element by element on every query was a measured
    6 % of the API's time under load (docs/benchmarks.md, console section).
    """

    all_sites: bool
    site_ids: tuple[str, ...] = field(default_factory=tuple)
    sites_literal: str = field(init=False, repr=False, compare=False)
    sites_digest: str = field(init=False, repr=False, compare=False)
    """A short fingerprint of the site list, for cache keys (the literal can be 60 kB)."""

    def __post_init__(self) -> None:
        literal = array_literal(self.site_ids)
        object.__setattr__(self, "sites_literal", literal)
        digest = hashlib.blake2b(literal.encode(), digest_size=16).hexdigest()
        object.__setattr__(self, "sites_digest", digest)

    @classmethod
    def everything(cls) -> SiteScope:
        """Scope of an admin and of internal jobs (ticket engine, escalation)."""
        return cls(all_sites=True)

    def clause(self, column: str = "site_id") -> str:
        """SQL boolean restricting ``column`` to this scope; bind with ``params()``."""
        return f"(%(scope_all)s OR {column} = ANY(%(scope_sites)s::text[]))"

    def params(self) -> dict[str, object]:
        """Bind parameters for ``clause``."""
        return {"scope_all": self.all_sites, "scope_sites": self.sites_literal}

    def allows(self, site_id: str) -> bool:
        """True when ``site_id`` is inside this scope."""
        return self.all_sites or site_id in self.site_ids


def array_literal(values: tuple[str, ...]) -> str:
    r"""A PostgreSQL ``text[]`` literal of ``values``, every element quoted and escaped.

    Example:
        >>> array_literal(("a", 'b"c'))
        '{"a","b\\"c"}'
        >>> array_literal(())
        '{}'
    """
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"
