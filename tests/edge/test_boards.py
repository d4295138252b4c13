"""Board colours and the mixed_cutting_board rule on rendered kitchen scenes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bkcommon.errors import ConfigError
from bkcommon.sitefile import Zone
from edge.boards import BoardColourConfig, BoardColourModel, HsvRange
from edge.detect.base import Detections
from edge.events import ViolationEvent
from edge.rules.base import FrameContext
from edge.rules.cutting_board import CuttingBoardConfig, CuttingBoardRule
from edge.zones import ZoneSet
from tests.edge.support import BLUE, GREEN, RED, YELLOW, kitchen_background

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
COOKED_AREA = Zone(
    id="cooked", kind="cooked_area", polygon=[(0, 0), (640, 0), (640, 720), (0, 720)]
)
PREP = Zone(id="prep", kind="prep_room", polygon=[(0, 0), (640, 0), (640, 720), (0, 720)])
RAW_AREA = Zone(id="raw", kind="raw_area", polygon=[(640, 0), (1280, 0), (1280, 720), (640, 720)])


def station(sid: str, x: int, board_type: str | None) -> Zone:
    return Zone(
        id=sid,
        kind="board_station",
        polygon=[(x, 400), (x + 300, 400), (x + 300, 650), (x, 650)],
        board_type=board_type,
    )


ST_COOKED = station("st-cooked", 150, "cooked")
ST_VEG = station("st-veg", 800, "vegetables")
ST_MEAT = station("st-meat", 800, "raw_meat")


def scene(boards: dict[int, tuple[int, int, int]], brightness: float = 1.0) -> np.ndarray:
    """A kitchen with boards (station x → colour) drawn at the stations, lit by ``brightness``."""
    import cv2

    img = kitchen_background(1280, 720)
    for x, colour in boards.items():
        cv2.rectangle(img, (x + 40, 440), (x + 260, 610), colour, -1)
    return np.clip(img.astype(np.float32) * brightness, 0, 255).astype(np.uint8)


def run_rule(
    frame: np.ndarray,
    zones: list[Zone],
    seconds: float = 4.0,
    cfg: CuttingBoardConfig | None = None,
    names: list[str] | None = None,
    dets: Detections | None = None,
) -> list[ViolationEvent]:
    rule = CuttingBoardRule(cfg or CuttingBoardConfig())
    zs = ZoneSet(zones)
    events: list[ViolationEvent] = []
    for i in range(round(seconds * 5)):
        ctx = FrameContext(
            "cam",
            T0 + timedelta(seconds=i / 5),
            frame,
            dets if dets is not None else Detections.empty(),
            dets is not None,
            names or [],
            zs,
            "m-1",
        )
        events += rule.update(ctx)
    return events


@pytest.mark.parametrize("brightness", [0.7, 1.0, 1.3])
@pytest.mark.parametrize(
    ("boards", "zones", "expected"),
    [
        ({150: RED}, [COOKED_AREA, RAW_AREA, ST_COOKED], [("st-cooked", "raw_meat")]),
        ({150: BLUE}, [COOKED_AREA, RAW_AREA, ST_COOKED], [("st-cooked", "raw_seafood")]),
        ({150: YELLOW}, [COOKED_AREA, RAW_AREA, ST_COOKED], []),
        ({800: GREEN}, [COOKED_AREA, RAW_AREA, ST_VEG], []),
        ({800: RED}, [COOKED_AREA, RAW_AREA, ST_MEAT], []),
        ({800: RED}, [COOKED_AREA, RAW_AREA, ST_VEG], [("st-veg", "raw_meat")]),
        (
            {150: YELLOW, 800: RED},
            [COOKED_AREA, RAW_AREA, ST_COOKED, ST_VEG],
            [("st-veg", "raw_meat")],
        ),
        ({}, [COOKED_AREA, RAW_AREA, ST_COOKED, ST_VEG], []),
        # a station in 专间 with no type accepts only cooked boards
        ({150: GREEN}, [PREP, station("st-prep", 150, None)], [("st-prep", "vegetables")]),
        ({150: YELLOW}, [PREP, station("st-prep", 150, None)], []),
    ],
)
def test_cutting_board_stations(
    boards: dict[int, tuple[int, int, int]],
    zones: list[Zone],
    expected: list[tuple[str, str]],
    brightness: float,
) -> None:
    events = run_rule(scene(boards, brightness), zones)
    assert [(e.zone_id, e.details["board_type"]) for e in events] == expected
    for e in events:
        assert e.rule == "mixed_cutting_board"
        assert e.zone_polygon is not None
        assert e.boxes[0].label == e.details["board_type"]


def test_board_must_hold_for_the_window_and_cooldown_applies() -> None:
    frame = scene({150: RED})
    zones = [COOKED_AREA, ST_COOKED]
    assert run_rule(frame, zones, seconds=2.0) == []
    assert len(run_rule(frame, zones, seconds=10.0)) == 1
    assert len(run_rule(frame, zones, seconds=10.0, cfg=CuttingBoardConfig(cooldown_s=3))) == 3


def test_allowed_table_widens_a_station() -> None:
    cfg = CuttingBoardConfig(allowed={"vegetables": ["raw_meat"]})
    assert run_rule(scene({800: RED}), [RAW_AREA, ST_VEG], cfg=cfg) == []


def test_detected_boards_and_raw_food_on_cooked_board() -> None:
    names = ["person", "cutting_board", "raw_meat"]
    frame = scene({150: YELLOW, 800: RED})
    boards = Detections(
        np.array([[190, 440, 410, 610], [840, 440, 1060, 610]], np.float32),
        np.array([0.9, 0.9], np.float32),
        np.array([1, 1]),
        np.array([1, 2]),
    )
    events = run_rule(frame, [COOKED_AREA, RAW_AREA], names=names, dets=boards)
    assert events == []  # yellow board in the cooked area, red board in the raw area: fine
    with_meat = Detections.merge(
        [
            boards,
            Detections(
                np.array([[280, 500, 320, 540]], np.float32),
                np.array([0.8], np.float32),
                np.array([2]),
                np.array([3]),
            ),
        ]
    )
    events = run_rule(frame, [COOKED_AREA, RAW_AREA], names=names, dets=with_meat)
    assert len(events) == 1
    assert events[0].details["raw_food_on_cooked_board"] is True
    assert events[0].track_id == 1
    # a red (raw meat) board detected in the cooked area, no station needed
    events = run_rule(
        scene({150: RED}), [COOKED_AREA, RAW_AREA], names=names, dets=boards.select(np.array([0]))
    )
    assert [(e.details["board_type"], e.details["allowed"]) for e in events] == [
        ("raw_meat", ["cooked"])
    ]


@pytest.mark.parametrize(
    ("colour", "expected"),
    [
        (RED, "raw_meat"),
        (BLUE, "raw_seafood"),
        (GREEN, "vegetables"),
        (YELLOW, "cooked"),
        ((128, 128, 128), None),
    ],
)
def test_colour_model_classifies(colour: tuple[int, int, int], expected: str | None) -> None:
    crop = np.zeros((40, 60, 3), np.uint8)
    crop[:] = colour
    board, score = BoardColourModel().classify(crop)
    assert board == expected
    assert (score >= 0.9) == (expected is not None)


def test_colour_config_round_trips_and_validates(tmp_path: Path) -> None:
    cfg = BoardColourConfig(
        types={"cooked": [HsvRange(h_min=0, h_max=179, s_min=0, s_max=40, v_min=190)]},
        min_fraction=0.3,
    )
    for name in ("b.yaml", "b.json"):
        cfg.save(tmp_path / name)
        assert BoardColourConfig.load(tmp_path / name) == cfg
    white = np.full((10, 10, 3), 240, np.uint8)
    assert BoardColourModel(cfg).classify(white) == ("cooked", 1.0)
    (tmp_path / "bad.yaml").write_text("types: {cooked: [{h_min: 50, h_max: 10}]}\n")
    with pytest.raises(ConfigError, match="min"):
        BoardColourConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        BoardColourConfig.load(tmp_path / "none.yaml")
