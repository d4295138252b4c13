"""Camera zones from the site file as numpy polygons, with vectorised point-in-polygon tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bkcommon.sitefile import Zone

MASK_ZONE_KINDS = frozenset({"prep_room", "dish_up"})
COOKED_ZONE_KINDS = frozenset({"cooked_area", "prep_room", "dish_up"})


def points_in_polygon(
    points: npt.NDArray[np.float32], polygon: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_]:
    """Ray casting for many points at once: (n, 2) points, (m, 2) polygon → (n,) bool.

    Example:
        >>> sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
        >>> points_in_polygon(np.array([[5, 5], [15, 5]], np.float32), sq).tolist()
        [True, False]
    """
    if len(points) == 0:
        return np.zeros((0,), bool)
    x = points[:, 0:1]
    y = points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    hits = crosses & (x < x_at)
    return np.asarray(hits.sum(axis=1) % 2 == 1)


@dataclass(frozen=True, slots=True)
class CameraZone:
    """A zone ready for per-frame use: polygon array, bounding box and its rule meaning."""

    id: str
    kind: str
    polygon: npt.NDArray[np.float32]
    mask_required: bool
    board_type: str | None

    @classmethod
    def from_zone(cls, zone: Zone) -> CameraZone:
        """Build from a site-file zone (mask_required defaults to prep_room / dish_up)."""
        required = (
            zone.mask_required if zone.mask_required is not None else zone.kind in MASK_ZONE_KINDS
        )
        return cls(
            zone.id, zone.kind, np.array(zone.polygon, np.float32), required, zone.board_type
        )

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Integer bounding box x1, y1, x2, y2 of the polygon."""
        x1, y1 = np.floor(self.polygon.min(axis=0)).astype(int)
        x2, y2 = np.ceil(self.polygon.max(axis=0)).astype(int)
        return int(x1), int(y1), int(x2), int(y2)

    @property
    def centroid(self) -> npt.NDArray[np.float32]:
        """Mean of the polygon's vertices."""
        return np.asarray(self.polygon.mean(axis=0), np.float32)

    def contains(self, points: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Which of the (n, 2) points lie inside."""
        return points_in_polygon(points, self.polygon)

    def points(self) -> list[tuple[float, float]]:
        """The polygon as a list of (x, y) for events."""
        return [(float(x), float(y)) for x, y in self.polygon]


class ZoneSet:
    """All zones of one camera."""

    def __init__(self, zones: list[Zone], scale: tuple[float, float] = (1.0, 1.0)) -> None:
        """Prepare the camera's zones, their points multiplied by ``scale`` (x, y).

        Zones are drawn in the camera's main-stream pixels; a camera analysed on its
        sub-stream gets them scaled to that stream (``scale`` = sub size / main size).
        """
        self.scale = scale
        self.zones = [CameraZone.from_zone(z) for z in zones]
        if scale != (1.0, 1.0):
            factor = np.array(scale, np.float32)
            self.zones = [
                CameraZone(z.id, z.kind, z.polygon * factor, z.mask_required, z.board_type)
                for z in self.zones
            ]

    @classmethod
    def for_frame(
        cls, zones: list[Zone], main_size: tuple[int, int] | None, frame_w: int, frame_h: int
    ) -> ZoneSet:
        """Zones for frames of ``frame_w`` x ``frame_h`` when they are drawn on ``main_size``.

        Example:
            >>> from bkcommon.sitefile import Zone
            >>> z = Zone(id="p", kind="prep_room", polygon=[(0, 0), (1280, 0), (640, 720)])
            >>> ZoneSet.for_frame([z], (1280, 720), 640, 360).zones[0].points()
            [(0.0, 0.0), (640.0, 0.0), (320.0, 360.0)]
        """
        if main_size is None or main_size == (frame_w, frame_h):
            return cls(zones)
        return cls(zones, (frame_w / main_size[0], frame_h / main_size[1]))

    def of_kind(self, *kinds: str) -> list[CameraZone]:
        """Zones of the given kinds."""
        return [z for z in self.zones if z.kind in kinds]

    def mask_zones(self) -> list[CameraZone]:
        """Zones where masks are required."""
        return [z for z in self.zones if z.mask_required]

    def first_containing(
        self, points: npt.NDArray[np.float32], zones: list[CameraZone]
    ) -> list[CameraZone | None]:
        """For each point, the first of ``zones`` that contains it (or None)."""
        out: list[CameraZone | None] = [None] * len(points)
        for z in zones:
            inside = z.contains(points)
            for i in np.flatnonzero(inside):
                if out[i] is None:
                    out[i] = z
        return out
