"""Settings of the ingest worker, read from the environment with the ``BK_INGEST_`` prefix."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bkcommon.errors import ConfigError
from bkcommon.settings import format_validation_error

_counter = itertools.count()


def default_client_id() -> str:
    """Stable client id of this host's worker (the broker finds its persistent session by it)."""
    host = socket.gethostname().split(".")[0] or "host"
    n = next(_counter)
    base = f"bk-ingest-{host}-{n}"
    return base[:64]


class IngestSettings(BaseSettings):
    """How an ingest worker subscribes, batches, back-pressures and reports."""

    model_config = SettingsConfigDict(env_prefix="BK_INGEST_", extra="ignore")

    group: str = Field(
        default="ingest",
        pattern=r"^[A-Za-z0-9_.\-]*$",
        description="Shared subscription group ($share/<group>/...); empty = plain subscription.",
    )
    client_id: str = Field(
        default_factory=default_client_id,
        min_length=1,
        max_length=64,
        description="MQTT client id; keep it stable so the persistent session is found again.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT protocol version; 3.1.1 for brokers without v5 (amqtt)."
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="How long the broker keeps our session offline."
    )
    keepalive_s: int = Field(default=60, ge=5, le=3600)
    receive_maximum: int = Field(
        default=65535, ge=1, le=65535, description="QoS 1 messages the broker may have in flight."
    )
    batch_max: int = Field(default=5000, ge=1, le=100_000, description="Readings per COPY batch.")
    writers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Writer threads, each with its own database connection; a sensor's "
        "readings always go to the same one (their order and rule state stay whole).",
    )
    flush_interval_ms: int = Field(default=100, ge=1, le=60_000)
    max_pending: int = Field(
        default=50_000,
        ge=1,
        description="Messages received but not yet committed; beyond it the worker stops reading.",
    )
    max_pending_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Payload bytes received but not yet committed; beyond it the worker stops "
        "reading (violations carry their JPEG: 50,000 of them would be gigabytes).",
    )
    zigbee_base: str | None = Field(
        default=None, description="Zigbee2MQTT base topic (e.g. zigbee2mqtt); None = adapter off."
    )
    max_future_skew_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How far ahead of arrival a device's timestamp may be (clock skew).",
    )
    backfill_grace_days: float = Field(
        default=30.0,
        ge=0,
        description="How long before its site's registration a reading may be stamped.",
    )
    broker_drop_count: bool = Field(
        default=True,
        description="Read Mosquitto's $SYS count of messages it dropped at its queue limits "
        "(bk_ingest_broker_dropped_messages_total, the BkBrokerDroppedMessages alert). Off for "
        "a broker without it (EMQX: watch its delivery.dropped.queue_full metric), whose ACL "
        "would refuse the subscription.",
    )
    guard: bool = Field(
        default=True,
        description="With a group: one worker of the group (elected by a database lock) runs "
        "the gap guard, which writes what the broker routes while the shared subscription is "
        "not yet restored after a broker restart.",
    )
    guard_client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Client id of the group's guard session; default bk-ingest-guard-<group>.",
    )
    guard_check_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a worker tries to become (or checks it is) the guard.",
    )
    marker_interval_s: float = Field(
        default=5.0, gt=0, description="How often a subscribed worker tells the guard so."
    )
    directory_refresh_s: float = Field(default=30.0, gt=0)
    sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="Offline sensor and camera sweep period."
    )
    box_offline_after_s: float = Field(
        default=120.0,
        ge=10,
        le=86400,
        description="An edge box silent this long: its cameras are offline (camera_offline "
        "alarms); four missed statuses at the edge's default 30 s.",
    )
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    stats_log_s: float = Field(default=10.0, gt=0, description="Period of the counters log line.")
    db_backoff_max_s: float = Field(default=30.0, gt=0)
    broker_backoff_min_s: int = Field(
        default=1, ge=1, le=60, description="First wait before reconnecting to the broker."
    )
    broker_backoff_max_s: int = Field(default=30, ge=1)

    @property
    def worker_id(self) -> str:
        """Name written into dead letters: the client id and the process id."""
        return f"{self.client_id}:{os.getpid()}"


def load_ingest_settings() -> IngestSettings:
    """Build IngestSettings from the environment; raise ConfigError naming the variable."""
    try:
        return IngestSettings()
    except ValidationError as exc:
        text = format_validation_error(exc, root="")
        lines = [
            f"BK_INGEST_{line.split(':', 1)[0].upper()}:{line.split(':', 1)[1]}"
            if ":" in line
            else line
            for line in text.splitlines()
        ]
        raise ConfigError("invalid environment (BK_INGEST_*):\n" + "\n".join(lines)) from exc
