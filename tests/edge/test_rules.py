"""Rule engine, table-driven on synthetic tracked detections (no model, no video)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from bkcommon.errors import ConfigError
from bkcommon.sitefile import Camera, Zone
from edge.detect.base import Detections
from edge.events import ViolationEvent
from edge.rules.base import FrameContext, RuleConfig, parse_schedule_entry
from edge.rules.no_mask import NoMaskConfig, NoMaskRule
from edge.rules.registry import build_rules
from edge.zones import ZoneSet

DoesNotRaise = nullcontext
NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]
GOOD, BAD, UNDER_NOSE = 0, 1, 2
# Monday 2026-03-02 10:00 Asia/Shanghai
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PREP = Zone(id="prep", kind="prep_room", polygon=[(0, 0), (320, 0), (320, 360), (0, 360)])
RAW = Zone(id="raw", kind="raw_area", polygon=[(320, 0), (640, 0), (640, 360), (320, 360)])
FRAME = np.zeros((360, 640, 3), np.uint8)


@dataclass(frozen=True)
class Obs:
    """One face seen on a frame: class, track id, centre, confidence."""

    cls: int
    track: int = 7
    x: float = 160
    y: float = 180
    conf: float = 0.9


def run_no_mask(
    script: list[list[Obs]], zones: list[Zone], cfg: NoMaskConfig, fps: float = 5.0
) -> list[ViolationEvent]:
    rule = NoMaskRule(cfg)
    zs = ZoneSet(zones)
    events = []
    for i, frame_obs in enumerate(script):
        xyxy = np.array([[o.x - 10, o.y - 10, o.x + 10, o.y + 10] for o in frame_obs], np.float32)
        dets = Detections(
            xyxy.reshape(-1, 4),
            np.array([o.conf for o in frame_obs], np.float32),
            np.array([o.cls for o in frame_obs]),
            np.array([o.track for o in frame_obs]),
        )
        ctx = FrameContext(
            "cam", T0 + timedelta(seconds=i / fps), FRAME, dets, True, NAMES, zs, "m-1"
        )
        events += rule.update(ctx)
    return events


def steady(cls: int, seconds: float, fps: float = 5.0, **kw: Any) -> list[list[Obs]]:
    return [[Obs(cls, **kw)] for _ in range(round(seconds * fps))]


def pattern(classes: list[int], seconds: float, fps: float = 5.0) -> list[list[Obs]]:
    n = round(seconds * fps)
    return [[Obs(classes[i % len(classes)])] for i in range(n)]


CASES: list[tuple[str, list[list[Obs]], list[Zone], dict[str, Any], int]] = [
    ("no mask 4 s in 专间", steady(BAD, 4), [PREP, RAW], {}, 1),
    ("mask worn 4 s", steady(GOOD, 4), [PREP, RAW], {}, 0),
    ("under the nose counts", steady(UNDER_NOSE, 4), [PREP], {}, 1),
    ("raw area needs no mask", steady(BAD, 4, x=480), [PREP, RAW], {}, 0),
    ("flicker 50% does not alarm", pattern([BAD, GOOD], 4), [PREP], {}, 0),
    ("two of three frames alarms", pattern([BAD, BAD, GOOD], 4), [PREP], {}, 1),
    ("too short: 2 s", steady(BAD, 2), [PREP], {}, 0),
    ("cooldown 60 s: one event in 10 s", steady(BAD, 10), [PREP], {}, 1),
    ("cooldown 2 s: every 2 s", steady(BAD, 10), [PREP], {"cooldown_s": 2}, 4),
    ("weak detections ignored", steady(BAD, 4, conf=0.3), [PREP], {}, 0),
    ("unconfirmed track ignored", steady(BAD, 4, track=-1), [PREP], {}, 0),
    ("outside working hours", steady(BAD, 4), [PREP], {"schedule": ["mon-fri 12:00-14:00"]}, 0),
    ("inside working hours", steady(BAD, 4), [PREP], {"schedule": ["mon-fri 06:00-20:00"]}, 1),
    ("disabled", steady(BAD, 4), [PREP], {"enabled": False}, 0),
    (
        "mask_required false overrides 专间",
        steady(BAD, 4),
        [Zone(id="p", kind="prep_room", polygon=PREP.polygon, mask_required=False)],
        {},
        0,
    ),
    (
        "mask_required true on a raw area",
        steady(BAD, 4, x=480),
        [Zone(id="r", kind="raw_area", polygon=RAW.polygon, mask_required=True)],
        {},
        1,
    ),
    ("longer window needs longer", steady(BAD, 4), [PREP], {"window_s": 5}, 0),
    (
        "two people: one alarms",
        [[Obs(BAD, track=1, x=100), Obs(GOOD, track=2, x=250)] for _ in range(20)],
        [PREP],
        {},
        1,
    ),
]


@pytest.mark.parametrize(
    ("script", "zones", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_no_mask_rule(
    script: list[list[Obs]], zones: list[Zone], overrides: dict[str, Any], expected: int
) -> None:
    events = run_no_mask(script, zones, NoMaskConfig(**overrides))
    assert len(events) == expected
    for e in events:
        assert e.rule == "no_mask"
        assert e.zone_id == zones[0].id or e.zone_id in {z.id for z in zones}
        assert e.track_id is not None
        assert e.model_version == "m-1"
        assert e.boxes
        assert e.boxes[0].label in {"without_mask", "mask_weared_incorrect"}
        assert e.zone_polygon is not None
        assert e.started_at <= T0 + timedelta(seconds=10)
        assert 0 < e.confidence <= 1


def test_no_mask_event_content() -> None:
    events = run_no_mask(steady(BAD, 4), [PREP], NoMaskConfig())
    (e,) = events
    assert e.track_id == 7
    assert e.zone_id == "prep"
    assert e.started_at == T0
    assert e.boxes[0].x1 == 150
    assert e.details["share"] == 1.0
    assert e.confidence == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("entry", "expectation"),
    [
        ("06:00-20:00", DoesNotRaise()),
        ("mon-fri 06:00-20:00", DoesNotRaise()),
        ("sat 08:00-12:00", DoesNotRaise()),
        ("fri-mon 08:00-12:00", DoesNotRaise()),
        ("mon-fri 6-20", pytest.raises(ValueError, match="not like")),
        ("someday 06:00-20:00", pytest.raises(ValueError, match="not like")),
        ("25:00-26:00", pytest.raises(ValueError, match="hour")),
    ],
)
def test_schedule_entries(entry: str, expectation: AbstractContextManager[object]) -> None:
    with expectation:
        parse_schedule_entry(entry)


def test_schedule_wraps_weekdays_and_uses_local_time() -> None:
    cfg = RuleConfig(schedule=["fri-mon 08:00-12:00"], timezone="Asia/Shanghai")
    sunday_9_local = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
    wednesday_9_local = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    assert cfg.active_at(sunday_9_local)
    assert not cfg.active_at(wednesday_9_local)
    with pytest.raises(ValueError, match="time zone"):
        RuleConfig(timezone="Mars/Base")


def camera(zones: list[Zone], rules: dict[str, Any] | None = None) -> Camera:
    return Camera(id="cam1", url="0", zones=zones, rules=rules or {})


STATION = Zone(
    id="st", kind="board_station", polygon=[(0, 0), (10, 0), (10, 10)], board_type="cooked"
)


@pytest.mark.parametrize(
    ("cam", "names", "expected", "expectation"),
    [
        (camera([PREP]), NAMES, ["no_mask"], DoesNotRaise()),
        (camera([RAW]), NAMES, [], DoesNotRaise()),
        (camera([PREP, STATION]), NAMES, ["no_mask", "mixed_cutting_board"], DoesNotRaise()),
        (camera([RAW]), ["cutting_board"], ["mixed_cutting_board"], DoesNotRaise()),
        (camera([PREP], {"no_mask": {"enabled": False}}), NAMES, [], DoesNotRaise()),
        (camera([RAW], {"no_mask": {"window_s": 5}}), NAMES, ["no_mask"], DoesNotRaise()),
        (
            camera([PREP], {"smoking": {}}),
            NAMES,
            [],
            pytest.raises(ConfigError, match="unknown rule"),
        ),
        (
            camera([PREP], {"no_mask": {"window": 5}}),
            NAMES,
            [],
            pytest.raises(ConfigError, match=r"cameras\[cam1\]\.rules\.no_mask: .*window"),
        ),
        (
            camera([PREP], {"no_mask": {"schedule": ["always"]}}),
            NAMES,
            [],
            pytest.raises(ConfigError, match="schedule"),
        ),
    ],
)
def test_registry_builds_rules_from_camera_settings(
    cam: Camera, names: list[str], expected: list[str], expectation: AbstractContextManager[object]
) -> None:
    with expectation:
        assert [r.name for r in build_rules(cam, names)] == expected
