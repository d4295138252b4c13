"""Settings pieces read from the environment (prefix ``BK_``), built by functions, not at import.

Each service composes :class:`CommonSettings` with its own class and its own prefix
(``BK_INGEST_``, ``BK_API_``, ``BK_EDGE_``) so that one environment can configure
a whole deployment without names colliding.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bkcommon.errors import ConfigError
from bkcommon.topics import DEFAULT_PREFIX

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/brightkitchen"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


class CommonSettings(BaseSettings):
    """Settings every service reads: where the database and broker are, and how to log."""

    model_config = SettingsConfigDict(env_prefix="BK_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        title="Database URL",
        description="libpq URL of PostgreSQL (TimescaleDB used when the extension exists).",
    )
    mqtt_url: str = Field(
        default=DEFAULT_MQTT_URL,
        title="MQTT URL",
        description="mqtt://[user:pass@]host:port of the broker (mqtts:// for TLS).",
    )
    mqtt_ca_file: str | None = Field(
        default=None,
        title="MQTT CA file",
        description="PEM file of the CA that signed the broker's certificate, for mqtts:// "
        "(default: the system's trusted CAs). Read by every MQTT client: ingest, edge, simulate.",
    )
    mqtt_prefix: str = Field(default=DEFAULT_PREFIX, description="Topic prefix of the contract.")
    site_file: str | None = Field(default=None, description="Path of the YAML site file.")
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt(cls, v: str) -> str:
        parse_mqtt_url(v, ca_file="")
        return v

    @field_validator("mqtt_ca_file")
    @classmethod
    def _check_ca_file(cls, v: str | None) -> str | None:
        if v and not Path(v).is_file():
            raise ValueError(f"no such CA file: {v}")
        return v or None


MQTT_CA_FILE_ENV = "BK_MQTT_CA_FILE"


class MqttEndpoint:
    """Host, port, credentials, TLS flag and CA file of an MQTT URL; repr hides the password."""

    __slots__ = ("ca_file", "host", "password", "port", "tls", "username")

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        tls: bool,
        *,
        ca_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.tls = tls
        self.ca_file = ca_file

    def __repr__(self) -> str:
        return f"MqttEndpoint({self.host}:{self.port}, tls={self.tls}, user={self.username!r})"


def parse_mqtt_url(url: str, *, ca_file: str | None = None) -> MqttEndpoint:
    """Parse ``mqtt://user:pass@host:port``; raise ValueError on anything else.

    For ``mqtts://`` the CA file that verifies the broker is ``ca_file``, else
    ``$BK_MQTT_CA_FILE``, else none (the system's trusted CAs); clients pass it to
    ``tls_set(ca_certs=...)``, which checks the chain and the host name.

    Example:
        >>> parse_mqtt_url("mqtt://127.0.0.1:1884").port
        1884
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"MQTT URL has no host: {url!r}")
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=parts.username,
        password=parts.password,
        tls=tls,
        ca_file=(ca_file if ca_file is not None else os.environ.get(MQTT_CA_FILE_ENV)) or None,
    )


def format_validation_error(exc: ValidationError, root: str = "") -> str:
    """Render a pydantic error as one line per problem, each with its dotted key path."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        full = f"{root}.{path}" if root and path else (root or path or "<root>")
        lines.append(f"{full}: {err['msg']}")
    return "\n".join(lines)


def load_common_settings() -> CommonSettings:
    """Build CommonSettings from the environment; raise ConfigError naming the variable."""
    try:
        return CommonSettings()
    except ValidationError as exc:
        raise ConfigError("invalid environment (BK_*):\n" + format_validation_error(exc)) from exc
