"""A short-lived, bounded cache of who a token is and which sites they see.

Looking up the token and resolving the scope costs two queries and a thread hop per
request; under load that is most of a ticket read. An entry lives ``ttl_s`` seconds
(``BK_AUTH_CACHE_TTL_S``, default 5; 0 turns the cache off) and never past the token's
own expiry. Sign-out and user changes made through this process drop entries at once;
changes made elsewhere (another API replica, ``brightkitchen users disable``, an edit of
the registry) take effect within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from api.auth.scope import Principal, SiteScope


@dataclass(frozen=True, slots=True)
class CachedAuth:
    """A resolved token: the principal, its scope and when the token itself expires."""

    principal: Principal
    scope: SiteScope
    token_expires_at: datetime | None


class AuthCache:
    """LRU of token hash → ``CachedAuth`` with a time-to-live; thread-safe.

    Example:
        >>> from api.auth.scope import Role
        >>> c = AuthCache(ttl_s=5, max_entries=2, clock=lambda: 0.0)
        >>> p = Principal(user_id="1", username="a", role=Role.ADMIN)
        >>> c.put("h", CachedAuth(p, SiteScope.everything(), None))
        >>> c.get("h", now=None).principal.username
        'a'
        >>> c.forget_user("1"); c.get("h", now=None) is None
        True
    """

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedAuth]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the time-to-live is zero: every request looks its token up."""
        return self.ttl_s > 0

    def get(self, key: str, *, now: datetime | None) -> CachedAuth | None:
        """The live entry of ``key``, or None (absent, stale, or the token expired at ``now``)."""
        if not self.enabled:
            return None
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            born, entry = item
            ends = entry.token_expires_at
            if self._clock() - born > self.ttl_s or (now is not None and ends is not None
                                                      and ends <= now):  # fmt: skip
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CachedAuth) -> None:
        """Remember ``entry`` for ``ttl_s`` seconds, evicting the least recently used."""
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = (self._clock(), entry)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop one token (sign-out)."""
        with self._lock:
            self._entries.pop(key, None)

    def forget_user(self, user_id: str) -> None:
        """Drop every token of one user (disabled, changed)."""
        with self._lock:
            for key in [k for k, (_, e) in self._entries.items() if e.principal.user_id == user_id]:
                del self._entries[key]

    def clear(self) -> None:
        """Drop everything (a change that may move many scopes)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries held (stale ones included until touched)."""
        return len(self._entries)
