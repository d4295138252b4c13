"""Settings of sign-in and sessions, read from the environment (prefix ``BK_AUTH_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bkcommon.errors import ConfigError


class AuthSettings(BaseSettings):
    """How long sessions last, when sign-in locks, and how the console cookie is set."""

    model_config = SettingsConfigDict(env_prefix="BK_AUTH_", extra="ignore")

    session_ttl_h: float = Field(default=12.0, gt=0, le=24 * 90, description="Session lifetime.")
    max_failures: int = Field(
        default=10, ge=1, le=1000, description="Failed sign-ins in a row before the lock."
    )
    lock_s: float = Field(default=300.0, gt=0, le=86400, description="How long a lock lasts.")
    cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="Remember a token's user and sites this long (0: look up every request). "
        "Sign-out and user changes through this process apply at once; elsewhere within this.",
    )
    cache_max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    client_max_failures: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Failed sign-ins from one client address within client_window_s before "
        "that address gets 429 (any username): stops password spraying across accounts.",
    )
    client_window_s: float = Field(default=600.0, gt=0, le=86400)
    device_token_ttl_d: float = Field(
        default=180.0,
        gt=0,
        le=3650,
        description="Lifetime of a device token; a device rotates it with POST /auth/rotate.",
    )
    rotate_grace_s: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="After a rotation the old device token keeps working this long, so a "
        "device that lost the answer can still fetch it again.",
    )
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set in production)."
    )

    @property
    def session_ttl(self) -> timedelta:
        """Lifetime of a console session token."""
        return timedelta(hours=self.session_ttl_h)

    @property
    def lock(self) -> timedelta:
        """How long a username stays locked after too many failures."""
        return timedelta(seconds=self.lock_s)

    @property
    def client_window(self) -> timedelta:
        """The window in which failures of one client address are counted."""
        return timedelta(seconds=self.client_window_s)

    @property
    def device_token_ttl(self) -> timedelta:
        """Lifetime of a device token."""
        return timedelta(days=self.device_token_ttl_d)

    @property
    def rotate_grace(self) -> timedelta:
        """How long a rotated-out device token stays valid."""
        return timedelta(seconds=self.rotate_grace_s)


def load_auth_settings() -> AuthSettings:
    """Build AuthSettings from the environment; raise ConfigError naming each bad variable."""
    try:
        return AuthSettings()
    except ValidationError as exc:
        lines = [
            f"BK_AUTH_{str(e['loc'][0]).upper() if e['loc'] else '*'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("invalid environment (BK_AUTH_*):\n" + "\n".join(lines)) from exc
