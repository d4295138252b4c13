"""What the box decides: scripted detections through the real pipeline and rules (faces found
every other look, a clock step back, two boxes on one face, a re-acquired person, a glimpse long
ago, an overnight schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from bkcommon.sitefile import Camera, Zone
from edge.detect.base import Detections
from edge.events import ViolationEvent
from edge.pipeline import CameraPipeline, VisionSettings
from edge.rules.base import FrameContext, RuleConfig
from edge.rules.cutting_board import CuttingBoardConfig, CuttingBoardRule
from edge.zones import ZoneSet
from tests.edge.support import GREEN, RED, Patch, kitchen_background, render
from tests.edge.test_rules import BAD, PREP, NoMaskConfig, Obs, run_no_mask

NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
WHOLE = Zone(id="prep", kind="prep_room", polygon=[(0, 0), (640, 0), (640, 360), (0, 360)])
FPS = 5.0


class ColourDetector:
    """Boxes each solid colour square in a crop; colour → the (class id, confidence) it yields."""

    class_names = NAMES
    input_size = (320, 320)
    model_version = "scripted-1"

    def __init__(self, table: dict[tuple[int, int, int], list[tuple[int, float]]]) -> None:
        self.table = table
        self.calls = 0

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        self.calls += 1
        out = []
        for img in images:
            xyxy, conf, cls = [], [], []
            for bgr, yields in self.table.items():
                m = np.all(np.abs(img.astype(np.int16) - np.array(bgr)) < 8, axis=2)
                n, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8))
                for k in range(1, n):
                    x, y, w, h, area = stats[k]
                    if area >= 20:
                        for c, p in yields:
                            xyxy.append([x, y, x + w, y + h])
                            conf.append(p)
                            cls.append(c)
            out.append(
                Detections(
                    np.array(xyxy, np.float32).reshape(-1, 4),
                    np.array(conf, np.float32),
                    np.array(cls, np.int64),
                )
            )
        return out


class EveryOtherLook(ColourDetector):
    """A small face the model finds on every other look only."""

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        found = super().detect(images)
        return found if self.calls % 2 else [Detections.empty() for _ in images]


def run(
    det: ColourDetector,
    seconds: float,
    visible: callable,  # type: ignore[valid-type]
    colour: tuple[int, int, int],
    clock: callable = lambda t: T0 + timedelta(seconds=t),  # type: ignore[valid-type]
    rules: dict[str, object] | None = None,
) -> list[tuple[float, ViolationEvent]]:
    cam = Camera(id="c", url="0", analyse_fps=FPS, zones=[WHOLE], rules=rules or {})
    pipe = CameraPipeline(cam, det, VisionSettings())
    bg = kitchen_background()
    face = render(bg, [Patch(160, 180, 24, colour)])
    out = []
    for i in range(round(seconds * FPS)):
        t = i / FPS
        for e in pipe.process(face if visible(t) else bg, clock(t)):
            out.append((t, e))
    return out


def test_face_found_every_other_look_is_raised() -> None:
    # unmasked the whole time, the model sees the face on half of its looks
    events = run(EveryOtherLook({RED: [(1, 0.9)]}), 20, lambda t: t >= 1, RED)
    assert len(events) == 1


def test_absent_frames_do_not_count_as_masked() -> None:
    script = [[Obs(BAD)] if i % 2 == 0 else [] for i in range(50)]
    assert len(run_no_mask(script, [PREP], NoMaskConfig())) == 1


def test_person_reacquired_under_a_new_track_keeps_the_cooldown() -> None:
    # unmasked, hidden 3 s behind a shelf (the track is lost), back at the same place
    events = run(ColourDetector({RED: [(1, 0.9)]}), 16, lambda t: 1 <= t < 6 or t >= 9, RED)
    assert len(events) == 1, [(t, e.track_id) for t, e in events]


def test_weak_second_box_of_a_masked_face_raises_nothing() -> None:
    # the model boxes the masked face twice: with_mask 0.85 and, weaker, without_mask 0.55
    events = run(ColourDetector({GREEN: [(0, 0.85), (1, 0.55)]}), 20, lambda t: t >= 1, GREEN)
    assert events == []


def test_clock_step_back_does_not_blind_the_camera() -> None:
    # 2 s after start NTP steps the wall clock back two minutes
    def clock(t: float) -> datetime:
        return T0 + timedelta(seconds=t - (120 if t >= 2 else 0))

    events = run(ColourDetector({RED: [(1, 0.9)]}), 30, lambda t: t >= 1, RED, clock)
    assert events, "no event in 30 s of a continuous violation"
    t, e = events[0]
    assert t < 6
    # reported on the corrected wall clock: the face appeared 1 s after start (seen at 1.6 s)
    assert abs((e.started_at - (T0 + timedelta(seconds=1 - 120))).total_seconds()) <= 1.0


def test_board_glimpsed_long_ago_does_not_shorten_the_hold() -> None:
    names = ["person", "cutting_board"]
    zs = ZoneSet([Zone(id="ck", kind="cooked_area", polygon=WHOLE.polygon)])
    frame = np.full((360, 640, 3), 150, np.uint8)
    cv2.rectangle(frame, (100, 100), (220, 180), (0, 0, 230), -1)  # a red (raw-meat) board
    rule = CuttingBoardRule(CuttingBoardConfig())

    def look(t: float) -> list[ViolationEvent]:
        d = Detections(
            np.array([[100, 100, 220, 180]], np.float32),
            np.array([0.45], np.float32),  # below the tracker's activation: untracked
            np.array([1]),
            np.array([-1]),
        )
        ctx = FrameContext("c", T0 + timedelta(seconds=t), frame, d, True, names, zs, "m")
        return rule.update(ctx)

    assert look(0) == []  # a glimpse
    # a minute later a raw board is carried through for 1.2 s (window_s is 3)
    assert [e for t in (60, 60.6, 61.2) for e in look(t)] == []


def test_overnight_schedule_is_active_overnight() -> None:
    cfg = RuleConfig(schedule=["mon-fri 22:00-06:00"], timezone="Asia/Shanghai")
    sh = ZoneInfo("Asia/Shanghai")
    assert cfg.active_at(datetime(2026, 3, 2, 23, 0, tzinfo=sh))  # Monday night
    assert cfg.active_at(datetime(2026, 3, 3, 5, 0, tzinfo=sh))  # Tuesday morning
    assert cfg.active_at(datetime(2026, 3, 7, 5, 0, tzinfo=sh))  # Saturday morning (Fri night)
    assert not cfg.active_at(datetime(2026, 3, 3, 12, 0, tzinfo=sh))
    assert not cfg.active_at(datetime(2026, 3, 2, 5, 0, tzinfo=sh))  # Monday morning (Sun night)
