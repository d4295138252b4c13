"""API settings: defaults, environment, validation with the variable named."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from api.services.labels import rule_label, ticket_title
from api.settings import ApiSettings, load_api_settings
from bkcommon.errors import ConfigError


def test_defaults() -> None:
    s = ApiSettings()
    assert s.workers_enabled is True
    assert [s.deadline(t) for t in (1, 2, 3)] == [
        timedelta(hours=24),
        timedelta(hours=72),
        timedelta(hours=168),
    ]
    assert (s.max_attempts, s.backoff_base_s, s.backoff_max_s) == (8, 2.0, 600.0)
    assert s.link("/tickets/7") == "http://127.0.0.1:8000/tickets/7"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_API_DEADLINE_TIER1_H", "12")
    monkeypatch.setenv("BK_API_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("BK_API_WORKERS_ENABLED", "false")
    s = load_api_settings()
    assert s.deadline(1) == timedelta(hours=12)
    assert s.workers_enabled is False
    assert s.smtp_password is not None
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BK_API_DEADLINE_TIER2_H": "-1"}, "BK_API_DEADLINE_TIER2_H"),
        ({"BK_API_DEADLINE_TIER1_H": "100"}, "deadline_tier1_h <= deadline_tier2_h"),
        ({"BK_API_BACKOFF_BASE_S": "900"}, "backoff_base_s must not exceed"),
        ({"BK_API_PUBLIC_BASE_URL": "ftp://x"}, "BK_API_PUBLIC_BASE_URL"),
        ({"BK_API_SMTP_FROM": "no-at-sign"}, "BK_API_SMTP_FROM"),
    ],
)
def test_invalid_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=expected):
        load_api_settings()


def test_deadline_rejects_unknown_tier() -> None:
    with pytest.raises(ValueError, match="tier must be 1, 2 or 3"):
        ApiSettings().deadline(4)
    with pytest.raises(ValidationError):
        ApiSettings(max_attempts=0)


@pytest.mark.parametrize(
    ("rule", "profile", "expected"),
    [
        ("temp_high", "fridge", ("冷藏温度超标", "fridge over temperature limit")),
        ("temp_low", "hot_holding", ("保温温度过低", "hot holding under temperature limit")),
        ("sensor_offline", "fridge", ("传感器离线", "sensor offline")),
        ("brand_new_rule", None, ("brand_new_rule", "brand new rule")),
    ],
)
def test_rule_labels(rule: str, profile: str | None, expected: tuple[str, str]) -> None:
    assert rule_label(rule, profile) == expected


def test_ticket_title() -> None:
    assert ticket_title("temp_high", "冷藏柜 1", "fridge") == (
        "冷藏温度超标 fridge over temperature limit: 冷藏柜 1"
    )


@pytest.mark.parametrize("key", ["CHANGE-ME", "short-key", "change-me-" * 4])
def test_a_placeholder_or_short_secret_key_is_refused(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key signs acknowledge links; the example secret's placeholder must not start."""
    monkeypatch.setenv("BK_API_SECRET_KEY", key)
    with pytest.raises(ConfigError, match=r"BK_API_SECRET_KEY|secret_key"):
        load_api_settings()


def test_a_generated_secret_key_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_API_SECRET_KEY", "q3Z0pY5Hc1x8W2mV7rN4tK6sB9dF0gJ1aL3eU5iO7yT")
    key = load_api_settings().secret_key
    assert key is not None
    assert key.get_secret_value().startswith("q3Z0")
