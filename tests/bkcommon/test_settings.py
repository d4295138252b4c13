"""Settings come from BK_* variables; bad values name the variable."""

from __future__ import annotations

import doctest
import importlib

import pytest

from bkcommon.errors import ConfigError
from bkcommon.settings import load_common_settings, parse_mqtt_url


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_DATABASE_URL", "postgresql://u:secret@db:5432/x")
    monkeypatch.setenv("BK_MQTT_URL", "mqtt://broker:1884")
    s = load_common_settings()
    assert s.mqtt_url == "mqtt://broker:1884"
    assert "secret" not in repr(s)


def test_bad_env_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_MQTT_URL", "http://nope")
    with pytest.raises(ConfigError, match="mqtt_url"):
        load_common_settings()


def test_parse_mqtt_url() -> None:
    ep = parse_mqtt_url("mqtts://u:p@h")
    assert (ep.host, ep.port, ep.username, ep.password, ep.tls) == ("h", 8883, "u", "p", True)


@pytest.mark.parametrize(
    "module",
    [
        "bkcommon.topics",
        "bkcommon.messages",
        "bkcommon.profiles",
        "bkcommon.timeutil",
        "bkcommon.settings",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0
