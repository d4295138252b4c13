"""Site file validation: the example is valid; mistakes name their key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bkcommon.errors import ConfigError
from bkcommon.profiles import Profile, params_for
from bkcommon.sitefile import load_site_file, parse_site_file

EXAMPLE = Path(__file__).resolve().parents[2] / "brightkitchen/examples/site.yaml"


def _base() -> dict[str, Any]:
    return {
        "regions": [{"id": "r1", "name": "R"}],
        "people": [{"id": "p1", "name": "P", "channels": [{"kind": "email", "address": "a@b.c"}]}],
        "sites": [
            {
                "id": "s1",
                "name": "S",
                "region": "r1",
                "people": {"officer": ["p1"]},
                "sensors": [{"id": "f1", "profile": "fridge"}],
            }
        ],
    }


def test_example_site_file_is_valid() -> None:
    sf = load_site_file(EXAMPLE)
    idx = sf.sensor_index()
    assert idx["s001-hot-1"][1].params().delay_s == 600
    assert idx["s001-fridge-1"][1].params().high_c == 8.0


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["sites"][0]["sensors"][0].update(profile="oven"), "sites.0.sensors.0.profile"),
        (lambda d: d["sites"][0].update(region="nowhere"), "sites.0.region"),
        (lambda d: d["sites"][0]["people"].update(officer=["ghost"]), "sites.0.people.officer"),
        (lambda d: d["sites"][0]["sensors"][0].update(rules={"delay_s": -1}), "delay_s"),
        (lambda d: d["sites"][0]["sensors"][0].update(colour="red"), "sites.0.sensors.0.colour"),
        (
            lambda d: d["sites"][0]["sensors"].append({"id": "f1", "profile": "freezer"}),
            "duplicate",
        ),
        (lambda d: d["people"][0]["channels"][0].update(kind="pigeon"), "people.0.channels.0.kind"),
    ],
)
def test_errors_name_the_key_path(mutate: Any, path: str) -> None:
    data = _base()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_site_file(data)
    assert path in str(info.value)


def test_unreadable_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_site_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_site_file(bad)


def test_profile_overrides_are_revalidated() -> None:
    assert params_for(Profile.FREEZER).high_c == -12.0
    with pytest.raises(ValueError, match="low_c"):
        params_for(Profile.FRIDGE, {"low_c": 10})
