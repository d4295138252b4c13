"""The error tree of brightkitchen; every module raises from here."""

from __future__ import annotations

from typing import ClassVar


class BrightKitchenError(Exception):
    """Base class of every error brightkitchen raises on purpose."""


class ConfigError(BrightKitchenError):
    """A settings value or the site file is invalid; the message names the key path."""


class ContractError(BrightKitchenError):
    """A message, topic or payload does not follow the versioned contract."""


class TopicError(ContractError):
    """An MQTT topic does not match any known topic pattern."""


class PayloadError(ContractError):
    """A payload is not JSON, is too large, or fails schema validation."""


class DatabaseError(BrightKitchenError):
    """The database is unreachable or rejected a statement we expected to work."""


class MigrationError(DatabaseError):
    """A schema migration failed or the recorded version is inconsistent."""


class BrokerError(BrightKitchenError):
    """The MQTT broker is unreachable or refused us."""


class DeliveryError(BrightKitchenError):
    """A notification channel failed to deliver a message."""


class PermanentDeliveryError(DeliveryError):
    """The receiver refused the message in a way a retry cannot change (HTTP 400, 401, 403,
    404, 410...): the notification is given up at once, not retried for minutes."""


class ModelError(BrightKitchenError):
    """A detector model file is missing, unreadable or lacks its metadata."""


class RequestError(BrightKitchenError):
    """A caller's request was refused on purpose: unknown thing, wrong state or role, bad input.

    The message is written for the caller and is safe to show. ``status_code`` is the HTTP
    answer the API gives; the app maps this class once (``{"detail": message}``), so a
    service raises the fitting subclass and a route needs no handler of its own.
    """

    status_code: ClassVar[int] = 400
