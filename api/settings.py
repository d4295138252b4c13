"""Settings of the API service and its workers, read from the environment (prefix ``BK_API_``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bkcommon.errors import ConfigError

_MAX_DEADLINE_H = 90 * 24


MIN_SECRET_KEY_CHARS = 32
"""Shortest ``BK_API_SECRET_KEY`` taken: 32 characters of base64 carry 192 bits."""


class ApiSettings(BaseSettings):
    """How the API listens, how tickets get deadlines, and how notifications are delivered."""

    model_config = SettingsConfigDict(env_prefix="BK_API_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8000, ge=1, le=65535)
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        pattern=r"^[0-9A-Fa-f.:/,* ]+$",
        description="Proxies whose X-Forwarded-For names the client (comma-separated "
        "addresses or CIDRs, '*' for any): behind an ingress, its pods' range, or every "
        "request seems to come from the ingress and shares one rate limit.",
    )
    workers_enabled: bool = Field(
        default=True,
        description="Run the ticket engine and the notification dispatcher inside the API process.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port where `api worker` (no HTTP API of its own) serves /metrics.",
    )
    engine_threads: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Ticket-engine threads per process; they share the findings outbox with "
        "SKIP LOCKED, so a burst (a district's sensors going offline) is worked off in parallel.",
    )
    deadline_tier1_h: float = Field(default=24.0, gt=0, le=_MAX_DEADLINE_H)
    deadline_tier2_h: float = Field(default=72.0, gt=0, le=_MAX_DEADLINE_H)
    deadline_tier3_h: float = Field(default=168.0, gt=0, le=_MAX_DEADLINE_H)

    smtp_host: str = Field(default="localhost", min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="brightkitchen@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)

    max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before 'dead'.")
    backoff_base_s: float = Field(default=2.0, gt=0, le=3600, description="First retry delay.")
    backoff_max_s: float = Field(default=600.0, gt=0, le=86400, description="Retry delay cap.")
    backoff_jitter: float = Field(
        default=0.2, ge=0, le=1, description="Fraction of the delay drawn at random (±)."
    )
    send_lease_s: float = Field(
        default=60.0, gt=0, le=3600, description="A claimed notification is hidden this long."
    )
    send_concurrency: int = Field(default=8, ge=1, le=64)
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Rows claimed per round.")
    poll_interval_s: float = Field(
        default=5.0, gt=0, le=300, description="Workers also poll this often (missed NOTIFYs)."
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="HTTP connection pool size.")
    db_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Wait this long for a database connection."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://\S+$",
        description="Public base URL of this server, for links in messages.",
    )

    # Rectification closed loop (tickets, escalation, evidence, triage, ack links, SMS).
    evidence_dir: Path = Field(
        default=Path("var/evidence"), description="Local evidence store root (content-addressed)."
    )
    evidence_store: Literal["disk", "s3"] = Field(
        default="disk",
        description="Where evidence files live: 'disk' (evidence_dir, a shared volume) or 's3' "
        "(an S3-compatible bucket such as MinIO; edge snapshots move there from the database).",
    )
    s3_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="S3 endpoint URL (MinIO: http://minio:9000); unset = AWS for s3_region.",
    )
    s3_public_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Endpoint browsers reach, used to sign download links (default s3_endpoint).",
    )
    s3_bucket: str = Field(
        default="brightkitchen-evidence", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
    )
    s3_region: str = Field(default="us-east-1", min_length=1)
    s3_prefix: str = Field(default="evidence/", description="Key prefix of every evidence object.")
    s3_access_key: SecretStr | None = Field(
        default=None, description="Unset = the SDK's own chain (AWS_* variables, pod identity)."
    )
    s3_secret_key: SecretStr | None = None
    s3_presign_s: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="0 = the API streams each download itself; N = it answers an allowed "
        "request with a redirect to a download link signed for N seconds.",
    )
    s3_offload_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often workers move edge snapshots to S3."
    )
    max_upload_mb: float = Field(default=10.0, gt=0, le=200, description="Largest evidence file.")
    secret_key: SecretStr | None = Field(
        default=None, description="Signs acknowledge links; no links in messages when unset."
    )
    ack_link_ttl_h: float = Field(default=72.0, gt=0, le=24 * 30)
    escalation_interval_s: float = Field(default=60.0, gt=0, le=3600)
    reminder_before_h: float = Field(default=4.0, ge=0, le=_MAX_DEADLINE_H)
    unack_after_h: float = Field(
        default=2.0, gt=0, le=_MAX_DEADLINE_H, description="Not acknowledged → director."
    )
    regulator_after_h: float = Field(
        default=24.0, ge=0, le=_MAX_DEADLINE_H, description="Overdue this long → regulator."
    )
    yellow_card_after_d: float = Field(default=5.0, ge=0, le=365, description="Tier 1 overdue.")
    red_card_after_d: float = Field(default=10.0, ge=0, le=365, description="Tier 1 overdue.")
    close_stable_min: float = Field(
        default=30.0, ge=0, le=7 * 24 * 60, description="Back in range this long: close proposed."
    )
    triage_default: Literal["direct", "review"] = Field(
        default="direct", description="Vision violations open tickets or wait for review."
    )
    dual_push_sources: list[
        Literal["alarm", "violation", "inspection", "manual", "rapid_test", "complaint"]
    ] = Field(
        default=["violation"],
        max_length=6,
        description="Ticket sources whose opening notice goes to the site's regulator (its 包保 "
        "cadre) as well as its officer (双推送: every AI capture reaches both the canteen and its "
        'regulator). JSON list, e.g. \'["violation", "rapid_test"]\'; [] turns it off.',
    )
    sms_url_template: str | None = Field(
        default=None, description="SMS gateway URL; {phone} and {text} are URL-encoded into it."
    )
    sms_method: Literal["GET", "POST"] = "POST"
    sms_body_template: str = Field(
        default='{"phone": "{phone}", "text": "{text}"}',
        description="POST body; {phone} and {text} escaped for sms_content_type.",
    )
    sms_content_type: Literal["application/json", "application/x-www-form-urlencoded"] = (
        "application/json"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApiSettings:
        if not (self.deadline_tier1_h <= self.deadline_tier2_h <= self.deadline_tier3_h):
            raise ValueError(
                "deadlines must not shrink with a lower tier: deadline_tier1_h <= "
                "deadline_tier2_h <= deadline_tier3_h"
            )
        if self.red_card_after_d < self.yellow_card_after_d:
            raise ValueError("red_card_after_d must not be before yellow_card_after_d")
        if self.backoff_base_s > self.backoff_max_s:
            raise ValueError("backoff_base_s must not exceed backoff_max_s")
        if self.send_lease_s < 2 * max(self.smtp_timeout_s, self.webhook_timeout_s):
            raise ValueError(
                "send_lease_s must be at least twice the slowest channel timeout "
                "(smtp_timeout_s, webhook_timeout_s): a send outliving its lease is sent twice"
            )
        if (self.s3_access_key is None) != (self.s3_secret_key is None):
            raise ValueError("set both s3_access_key and s3_secret_key, or neither")
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key) < MIN_SECRET_KEY_CHARS or "change" in key.lower():
                # it signs the acknowledge links: a placeholder or a short key lets anyone
                # forge a link that acknowledges a ticket in an officer's name
                raise ValueError(
                    f"secret_key must be at least {MIN_SECRET_KEY_CHARS} random characters "
                    "(e.g. `openssl rand -base64 32`), not a placeholder"
                )
        return self

    def deadline(self, tier: int) -> timedelta:
        """Time allowed to rectify a ticket of ``tier`` (1 = most urgent)."""
        hours = {1: self.deadline_tier1_h, 2: self.deadline_tier2_h, 3: self.deadline_tier3_h}
        if tier not in hours:
            raise ValueError(f"tier must be 1, 2 or 3, got {tier}")
        return timedelta(hours=hours[tier])

    def link(self, path: str) -> str:
        """Absolute URL of ``path`` on this server (for links in messages)."""
        return self.public_base_url.rstrip("/") + "/" + path.lstrip("/")


def load_api_settings() -> ApiSettings:
    """Build ApiSettings from the environment; raise ConfigError naming each bad variable."""
    try:
        return ApiSettings()
    except ValidationError as exc:
        raise ConfigError("invalid environment (BK_API_*):\n" + _env_errors(exc)) from exc


def _env_errors(exc: ValidationError) -> str:
    """One line per problem, named by its environment variable (or the model for cross-checks)."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = "BK_API_" + loc[0].upper() if loc else "BK_API_*"
        lines.append(f"{name}: {err['msg']}")
    return "\n".join(lines)
