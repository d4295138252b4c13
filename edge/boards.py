"""Cutting-board colour codes: HSV ranges per board type and a classifier for board crops.

Boards in Chinese canteens are colour-coded (commonly red = raw meat, blue = raw
seafood, green = vegetables, yellow = cooked; sites differ, so the ranges are
configuration that can be saved, edited and learnt from labelled crops).
OpenCV HSV units: hue 0-179, saturation and value 0-255.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bkcommon.errors import ConfigError
from bkcommon.settings import format_validation_error

RAW_TYPES = frozenset({"raw_meat", "raw_seafood"})
COOKED = "cooked"


class HsvRange(BaseModel):
    """One inclusive HSV box (OpenCV units)."""

    model_config = ConfigDict(extra="forbid")

    h_min: int = Field(ge=0, le=179)
    h_max: int = Field(ge=0, le=179)
    s_min: int = Field(default=80, ge=0, le=255)
    s_max: int = Field(default=255, ge=0, le=255)
    v_min: int = Field(default=50, ge=0, le=255)
    v_max: int = Field(default=255, ge=0, le=255)

    @model_validator(mode="after")
    def _ordered(self) -> HsvRange:
        if self.h_min > self.h_max or self.s_min > self.s_max or self.v_min > self.v_max:
            raise ValueError("each *_min must be <= its *_max (split a red hue range in two)")
        return self


def _default_types() -> dict[str, list[HsvRange]]:
    return {
        "raw_meat": [HsvRange(h_min=0, h_max=8), HsvRange(h_min=170, h_max=179)],
        "raw_seafood": [HsvRange(h_min=95, h_max=130)],
        "vegetables": [HsvRange(h_min=38, h_max=85)],
        COOKED: [HsvRange(h_min=18, h_max=34)],
    }


class BoardColourConfig(BaseModel):
    """Board type → HSV ranges, and how much of a crop must match to decide."""

    model_config = ConfigDict(extra="forbid")

    types: dict[str, list[HsvRange]] = Field(default_factory=_default_types, min_length=1)
    min_fraction: float = Field(
        default=0.2, gt=0, le=1, description="Share of the crop's pixels a type needs to win."
    )

    @classmethod
    def load(cls, path: str | Path) -> BoardColourConfig:
        """Read a YAML or JSON file; raise ConfigError naming the key path."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except OSError as exc:
            raise ConfigError(f"cannot read board colours {p}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML/JSON: {exc}") from exc
        except ValidationError as exc:
            raise ConfigError(f"{p} is invalid:\n{format_validation_error(exc)}") from exc

    def save(self, path: str | Path) -> None:
        """Write as JSON (``.json``) or YAML (anything else)."""
        p = Path(path)
        data = self.model_dump(mode="json")
        text = (
            json.dumps(data, indent=2)
            if p.suffix == ".json"
            else yaml.safe_dump(data, sort_keys=False)
        )
        p.write_text(text, encoding="utf-8")


class BoardColourModel:
    """Classify a board crop by the colour type covering most of it."""

    def __init__(self, config: BoardColourConfig | None = None) -> None:
        """Prepare the HSV bounds of each type."""
        self.config = config or BoardColourConfig()
        self._bounds = {
            name: [
                (
                    np.array([r.h_min, r.s_min, r.v_min], np.uint8),
                    np.array([r.h_max, r.s_max, r.v_max], np.uint8),
                )
                for r in ranges
            ]
            for name, ranges in self.config.types.items()
        }

    @property
    def types(self) -> list[str]:
        """Board types this model knows."""
        return list(self.config.types)

    def fractions(
        self, crop_bgr: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8] | None = None
    ) -> dict[str, float]:
        """Share of the (masked) crop's pixels inside each type's ranges."""
        if crop_bgr.size == 0:
            return dict.fromkeys(self._bounds, 0.0)
        hsv = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV)
        total = (
            float(np.count_nonzero(mask))
            if mask is not None
            else float(hsv.shape[0] * hsv.shape[1])
        )
        out: dict[str, float] = {}
        for name, bounds in self._bounds.items():
            hit = np.zeros(hsv.shape[:2], np.uint8)
            for lo, hi in bounds:
                hit |= cv2.inRange(hsv, lo, hi)
            if mask is not None:
                hit &= mask
            out[name] = float(np.count_nonzero(hit)) / max(total, 1.0)
        return out

    def classify(
        self, crop_bgr: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8] | None = None
    ) -> tuple[str | None, float]:
        """Return (board type, share of pixels) of the best type, or (None, share) below the floor.

        Example:
            >>> red = np.zeros((20, 20, 3), np.uint8); red[:] = (0, 0, 200)
            >>> BoardColourModel().classify(red)
            ('raw_meat', 1.0)
        """
        fr = self.fractions(crop_bgr, mask)
        best = max(fr, key=lambda k: fr[k])
        score = fr[best]
        return (best if score >= self.config.min_fraction else None), score
