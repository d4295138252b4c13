"""``mixed_cutting_board`` (生熟砧板混用): a board whose colour type does not belong where it is.

Without a board detector the rule looks at fixed ``board_station`` zones: the
station's crop is classified by colour and compared with the station's
``board_type`` (or the ``allowed`` table); a station inside a 专间 / cooked area
accepts only cooked boards. When the model has a board class, detected boards
are classified instead and judged by the zone they lie in; when it has raw-food
classes, raw food on a cooked board is a violation too.
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from edge.boards import COOKED, RAW_TYPES, BoardColourModel
from edge.events import EvidenceBox, ViolationEvent
from edge.rules.base import FrameContext, HoldWindow, RuleConfig
from edge.zones import COOKED_ZONE_KINDS, CameraZone

Box = tuple[float, float, float, float]


class CuttingBoardConfig(RuleConfig):
    """Settings of the mixed_cutting_board rule."""

    check_every_s: float = Field(default=0.5, ge=0, description="Station check period.")
    allowed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Station board_type → board types allowed there (default: only itself).",
    )
    board_classes: list[str] = Field(default_factory=lambda: ["cutting_board", "board"])
    raw_food_classes: list[str] = Field(
        default_factory=lambda: ["raw_meat", "raw_food", "raw_seafood", "raw_fish"]
    )


class CuttingBoardRule:
    """Judge boards at stations (fixed zones) or detected boards, held over a window."""

    name = "mixed_cutting_board"

    def __init__(self, config: CuttingBoardConfig, colours: BoardColourModel | None = None) -> None:
        """Create the rule with its configuration and the board colour classifier."""
        self.config = config
        self.colours = colours or BoardColourModel()
        self._windows: dict[str, HoldWindow] = {}
        self._last_check: datetime | None = None
        self._masks: dict[str, npt.NDArray[np.uint8]] = {}

    def allowed_types(self, station_type: str | None, zone_kinds: set[str]) -> set[str] | None:
        """Board types allowed at a place; None = anything goes (nothing to check)."""
        if zone_kinds & COOKED_ZONE_KINDS:
            base = {COOKED}
            if station_type and station_type not in RAW_TYPES:
                base.add(station_type)
        elif station_type:
            base = {station_type}
        else:
            return None
        for t in list(base):
            base |= set(self.config.allowed.get(t, []))
        return base

    def update(self, ctx: FrameContext) -> list[ViolationEvent]:
        """Check stations or detected boards on this frame (at most every ``check_every_s``)."""
        cfg = self.config
        if not cfg.enabled or not cfg.active_at(ctx.clock_ts):
            return []
        if (
            self._last_check is not None
            and (ctx.ts - self._last_check).total_seconds() < cfg.check_every_s
        ):
            return []
        self._last_check = ctx.ts
        board_ids = ctx.class_ids(set(cfg.board_classes))
        if len(board_ids):
            return self._detected_boards(ctx, board_ids)
        return self._stations(ctx)

    # -- fixed stations --------------------------------------------------------------------
    def _stations(self, ctx: FrameContext) -> list[ViolationEvent]:
        events: list[ViolationEvent] = []
        h, w = ctx.frame.shape[:2]
        for st in ctx.zones.of_kind("board_station"):
            kinds = self._kinds_at(ctx, st.centroid)
            allowed = self.allowed_types(st.board_type, kinds)
            if allowed is None:
                continue
            x1, y1, x2, y2 = st.bbox
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if x2 <= x1 or y2 <= y1:
                continue
            crop = ctx.frame[y1:y2, x1:x2]
            mask = self._station_mask(st, (x1, y1, x2, y2))
            board, score = self.colours.classify(crop, mask)
            bad = board is not None and board not in allowed
            ev = self._judge(
                ctx,
                key=f"station:{st.id}",
                bad=bad,
                score=score,
                zone=st,
                board=board,
                allowed=allowed,
                box=(x1, y1, x2, y2),
                track_id=None,
            )
            if ev:
                events.append(ev)
        return events

    def _station_mask(
        self, st: CameraZone, box: tuple[int, int, int, int]
    ) -> npt.NDArray[np.uint8]:
        key = f"{st.id}:{box}"
        if key not in self._masks:
            x1, y1, x2, y2 = box
            mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
            pts = np.round(st.polygon - np.array([x1, y1], np.float32)).astype(np.int32)
            cv2.fillPoly(mask, [pts], 255)
            self._masks[key] = mask
        return self._masks[key]

    @staticmethod
    def _kinds_at(ctx: FrameContext, point: npt.NDArray[np.float32]) -> set[str]:
        return {
            z.kind
            for z in ctx.zones.zones
            if z.kind != "board_station" and bool(z.contains(point.reshape(1, 2))[0])
        }

    # -- detected boards ---------------------------------------------------------------------
    def _detected_boards(
        self, ctx: FrameContext, board_ids: npt.NDArray[np.int64]
    ) -> list[ViolationEvent]:
        if not ctx.detected:
            return []
        cfg = self.config
        d = ctx.detections
        sel = np.isin(d.class_id, board_ids) & (d.confidence >= cfg.min_confidence)
        boards = d.select(sel)
        raw_ids = ctx.class_ids(set(cfg.raw_food_classes))
        raw = d.select(np.isin(d.class_id, raw_ids) & (d.confidence >= cfg.min_confidence))
        raw_centres = raw.anchors("center")
        stations = ctx.zones.of_kind("board_station")
        h, w = ctx.frame.shape[:2]
        events: list[ViolationEvent] = []
        for i in range(len(boards)):
            x1, y1, x2, y2 = (int(v) for v in np.round(boards.xyxy[i]))
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if x2 <= x1 or y2 <= y1:
                continue
            centre = boards.anchors("center")[i]
            station = next((s for s in stations if bool(s.contains(centre.reshape(1, 2))[0])), None)
            kinds = self._kinds_at(ctx, centre)
            allowed = self.allowed_types(station.board_type if station else None, kinds)
            board, score = self.colours.classify(ctx.frame[y1:y2, x1:x2])
            bad = board is not None and allowed is not None and board not in allowed
            raw_on_cooked = False
            if board == COOKED and len(raw_centres):
                inside = (
                    (raw_centres[:, 0] >= x1)
                    & (raw_centres[:, 0] <= x2)
                    & (raw_centres[:, 1] >= y1)
                    & (raw_centres[:, 1] <= y2)
                )
                raw_on_cooked = bool(inside.any())
            tid = int(boards.tracker_id[i]) if boards.tracker_id is not None else -1
            key = f"track:{tid}" if tid >= 0 else f"station:{station.id if station else i}"
            ev = self._judge(
                ctx,
                key=key,
                bad=bad or raw_on_cooked,
                score=score,
                zone=station,
                board=board,
                allowed=allowed or set(),
                box=(x1, y1, x2, y2),
                track_id=tid if tid >= 0 else None,
                raw_on_cooked=raw_on_cooked,
            )
            if ev:
                events.append(ev)
        return events

    # -- shared ---------------------------------------------------------------------------------
    def _judge(
        self,
        ctx: FrameContext,
        *,
        key: str,
        bad: bool,
        score: float,
        zone: CameraZone | None,
        board: str | None,
        allowed: set[str],
        box: Box | tuple[int, int, int, int],
        track_id: int | None,
        raw_on_cooked: bool = False,
    ) -> ViolationEvent | None:
        cfg = self.config
        window = self._windows.setdefault(key, HoldWindow())
        window.add(ctx.ts, bad, score, cfg.window_s)
        fires, share, mean_score = window.decide(ctx.ts, cfg)
        if not fires or not bad:
            return None
        window.last_event = ctx.ts
        label = f"{board or 'board'}"
        return ViolationEvent(
            rule=self.name,
            camera_id=ctx.camera_id,
            zone_id=zone.id if zone else None,
            started_at=window.started_at(),
            ended_at=None,
            confidence=round(min(max(mean_score, 0.0), 1.0), 4),
            track_id=track_id,
            model_version=ctx.model_version,
            frame=ctx.frame,
            boxes=[
                EvidenceBox(
                    float(box[0]), float(box[1]), float(box[2]), float(box[3]), label, score
                )
            ],
            zone_polygon=zone.points() if zone else None,
            details={
                "board_type": board,
                "station_type": zone.board_type if zone else None,
                "allowed": sorted(allowed),
                "raw_food_on_cooked_board": raw_on_cooked,
                "share": round(share, 3),
            },
        )
