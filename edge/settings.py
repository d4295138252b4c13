"""Settings of the edge box, read from the environment with the ``BK_EDGE_`` prefix."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bkcommon.errors import ConfigError
from bkcommon.settings import format_validation_error

REPO_ROOT = Path(__file__).resolve().parents[1]
# The edge box runs a mask model fine-tuned at 416 px and quantized to INT8 with 7-bit weights
# (exact on every CPU; dynamic batch axis), on person/motion crops zoomed up to 2x: on a CPU with
# VNNI it costs what float at 320 did for 1.7x the pixels (models/MODEL_CARD.md, "The edge default
# v5" and "8-bit weights on CPUs without VNNI"); its held-out numbers: mask_yolo_edge.metrics.json.
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "weights" / "mask_yolo_edge.onnx"


def _default_client_id() -> str:
    host = socket.gethostname().split(".")[0] or "host"
    return f"bk-edge-{host}"[:64]


class EdgeSettings(BaseSettings):
    """Where the edge box keeps its outbox, what it serves locally and how it sends evidence."""

    model_config = SettingsConfigDict(env_prefix="BK_EDGE_", extra="ignore")

    box_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Id of this box in the site file (or pass --box).",
    )
    site_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Site of the box; default: the site the site file puts the box in.",
    )
    client_id: str = Field(
        default_factory=_default_client_id,
        min_length=1,
        max_length=64,
        description="MQTT client id of the box.",
    )
    data_dir: Path = Field(default=Path("var/edge"), description="Outbox and local state.")
    outbox_max_mb: float = Field(default=512, gt=0, description="Disk the outbox may use.")
    outbox_max_rows: int = Field(default=100_000, ge=1, description="Rows the outbox may hold.")
    outbox_reserve_mb: float = Field(
        default=32,
        ge=0,
        description="Free disk the outbox leaves on its filesystem; below it the oldest evidence "
        "images are pruned (the events are kept).",
    )
    inflight_max: int = Field(default=20, ge=1, le=1000, description="Unacked QoS 1 publishes.")
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT protocol version; 3.1.1 for brokers without v5 (amqtt). Under 3.1.1 "
        "a publish the broker refuses (its ACL) cannot be told from a delivered one.",
    )
    resend_after_s: float = Field(
        default=60,
        gt=0,
        description="Republish an in-flight row unacked this long while connected.",
    )
    display_host: str = Field(default="127.0.0.1", description="Kitchen-display page address.")
    display_port: int = Field(default=8088, ge=0, le=65535, description="0 = any free port.")
    display_keep: int = Field(default=50, ge=1, description="Snapshots the page keeps in memory.")
    popup_seconds: float = Field(default=15, gt=0, description="How long a pop-up stays up.")
    metrics_host: str = Field(default="127.0.0.1")
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="0 = any free port.")
    model_path: Path = Field(default=DEFAULT_MODEL_PATH, description="ONNX detector file.")
    detector_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="ONNX Runtime intra-op threads of the one shared detector, not spinning "
        "(2: sixteen cameras sustained with the INT8 model in three of three trials, 1: one "
        "of two; docs/benchmarks.md, Round 5).",
    )
    detector_workers: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Scheduler threads running detector calls at once on the one model; with 2, "
        "set detector_threads to 1 (docs/benchmarks.md, Round 7).",
    )
    detector_max_batch: int = Field(
        default=8, ge=1, le=64, description="Crops of all cameras run in one detector call."
    )
    detect_every_n_frames: int = Field(
        default=3,
        ge=1,
        le=25,
        description="Run the detector on every n-th analysed frame with motion; the tracker "
        "carries boxes between (rules count only frames the detector saw).",
    )
    jpeg_quality: int = Field(default=85, ge=10, le=100)
    evidence_max_width_px: int = Field(default=1280, ge=160)
    inline_evidence: bool = Field(
        default=True, description="Put the base64 JPEG in the MQTT payload (kept under the limit)."
    )
    status_interval_s: float = Field(default=30, gt=0, description="Retained status period.")
    camera_alarm_cooldown_s: float = Field(
        default=600, ge=0, description="Minimum gap between two camera health findings per camera."
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)


def load_edge_settings() -> EdgeSettings:
    """Build EdgeSettings from the environment; raise ConfigError naming the variable."""
    try:
        return EdgeSettings()
    except ValidationError as exc:
        raise ConfigError(
            "invalid environment (BK_EDGE_*):\n" + format_validation_error(exc)
        ) from exc
