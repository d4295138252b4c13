"""Dates and times as the API accepts them from people and their tools: ISO 8601 text only.

Pydantic's lax mode reads a number as a Unix time, so ``date_to=0`` or ``"3e-179"`` was
silently taken as 1970-01-01, and a ``started_at`` of ``1733040000`` as some moment in
2024: wrong answers instead of a 422. A query time without an offset
(``opened_from=2026-12-01T10:00``) went to PostgreSQL as it was and was read in the
session's zone, eight hours off for a canteen in China, while request bodies refused it.
These types refuse numbers and anything that is not ISO 8601, and a time without an offset
everywhere (RFC 3339: its zone is unknown), naming what is wanted. The OpenAPI document
still says ``format: date`` / ``date-time``.

Both are bounded to the years 2000-2099. Nothing this product records happened before 2000
or will be due after 2099, and a year like 0001 or 9999 is a typo or a probe; left through,
it reached date arithmetic (a day added to 9999-12-31, a window of hours before 0001-01-01)
and came back as a 500 instead of a 422 that names the range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # the date, then optionally the time and the offset
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def _iso_text(pattern: re.Pattern[str], wanted: str) -> Callable[[Any], Any]:
    """A before-validator letting objects and text matching ``pattern`` through and refusing
    numbers and other text with ``expected <wanted>``."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            if not pattern.fullmatch(value.strip()):
                raise ValueError(f"expected {wanted}")
            return value.strip()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # pydantic turns only ValueError into a 422; a TypeError would be a 500
            raise ValueError(f"expected {wanted}, not a number")  # noqa: TRY004
        return value

    return check


FIRST_DAY = date(2000, 1, 1)
"""The earliest day the API accepts, in a date or a time (in the time's own offset)."""
LAST_DAY = date(2099, 12, 31)
"""The last day the API accepts."""
_RANGE = "a day of the years 2000-2099"
_FIRST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
_LAST_MOMENT = datetime(2100, 1, 1, tzinfo=UTC)


def _in_era(value: date) -> date:
    """Refuse a day outside 2000-2099 (a time: in UTC) before anything adds a window to it."""
    if isinstance(value, datetime):
        if not _FIRST_MOMENT <= value <= _LAST_MOMENT:
            raise ValueError(f"expected {_RANGE} (in UTC)")
    elif not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"expected {_RANGE}")
    return value


def _aware(value: datetime) -> datetime:
    """A time without an offset names no moment: refuse it rather than guess its zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a time zone (RFC 3339 with offset or Z)")
    return value


IsoDate = Annotated[
    date, BeforeValidator(_iso_text(_DATE, "a date as YYYY-MM-DD")), AfterValidator(_in_era)
]
"""A calendar date given as ``YYYY-MM-DD``, of 2000-2099."""

IsoDateTime = Annotated[
    datetime,
    BeforeValidator(_iso_text(_DATETIME, "an ISO 8601 time such as 2026-12-01T10:00:00+08:00")),
    AfterValidator(_aware),
    AfterValidator(_in_era),
]
"""A moment given in ISO 8601 with its offset (``Z`` or ``+08:00``), in 2000-2099."""
