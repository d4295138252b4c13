"""Timezone-aware UTC helpers: every time in brightkitchen is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(tz=UTC)


def to_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; reject naive ones (their zone is unknown).

    Example:
        >>> from datetime import timezone, timedelta
        >>> to_utc(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))).hour
        0
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (RFC 3339 with offset or Z)")
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with a trailing Z."""
    return to_utc(value).isoformat().replace("+00:00", "Z")
