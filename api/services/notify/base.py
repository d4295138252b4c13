"""The small interface every notification channel implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One notification ready to send: where to, and what (subject, text body, JSON payload)."""

    notification_id: int
    channel: str
    address: str
    subject: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    secret: str | None = None


class Channel(Protocol):
    """A way to deliver a message; ``send`` raises DeliveryError when it did not arrive."""

    def send(self, msg: OutgoingMessage) -> None:
        """Deliver ``msg`` or raise DeliveryError saying why not."""

    def close(self) -> None:
        """Release connections held by the channel."""
