"""Rule name → factory. Adding a rule is one module plus one entry here and one config entry.

Per camera, ``Camera.rules`` in the site file maps a rule name to its settings
(``{no_mask: {window_s: 5, schedule: ["mon-fri 06:00-20:00"]}}``); a rule is on
by default where the camera has the zones it needs, and ``enabled: false``
turns it off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from bkcommon.errors import ConfigError
from bkcommon.settings import format_validation_error
from bkcommon.sitefile import Camera
from edge.boards import BoardColourModel
from edge.rules.base import Rule, RuleConfig
from edge.rules.cutting_board import CuttingBoardConfig, CuttingBoardRule
from edge.rules.no_mask import NoMaskConfig, NoMaskRule
from edge.zones import MASK_ZONE_KINDS


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """How to configure and build one rule, and whether a camera wants it by default."""

    config: type[RuleConfig]
    build: Callable[[RuleConfig, BoardColourModel], Rule]
    default_on: Callable[[Camera, list[str]], bool]


def _mask_default(camera: Camera, _names: list[str]) -> bool:
    return any(
        z.mask_required or (z.mask_required is None and z.kind in MASK_ZONE_KINDS)
        for z in camera.zones
    )


def _board_default(camera: Camera, names: list[str]) -> bool:
    return any(z.kind == "board_station" for z in camera.zones) or "cutting_board" in names


def _build_no_mask(cfg: RuleConfig, _colours: BoardColourModel) -> Rule:
    assert isinstance(cfg, NoMaskConfig)
    return NoMaskRule(cfg)


def _build_board(cfg: RuleConfig, colours: BoardColourModel) -> Rule:
    assert isinstance(cfg, CuttingBoardConfig)
    return CuttingBoardRule(cfg, colours)


RULES: dict[str, RuleSpec] = {
    "no_mask": RuleSpec(NoMaskConfig, _build_no_mask, _mask_default),
    "mixed_cutting_board": RuleSpec(CuttingBoardConfig, _build_board, _board_default),
}


def rule_config(camera: Camera, name: str) -> RuleConfig:
    """Validate a camera's settings of one rule; raise ConfigError naming the key path."""
    spec = RULES[name]
    try:
        return spec.config.model_validate(camera.rules.get(name) or {})
    except ValidationError as exc:
        detail = format_validation_error(exc).replace("\n", "; ")
        raise ConfigError(f"cameras[{camera.id}].rules.{name}: {detail}") from exc


def build_rules(
    camera: Camera, class_names: list[str], colours: BoardColourModel | None = None
) -> list[Rule]:
    """Build the rules a camera runs: defaults for its zones plus those its settings name."""
    unknown = sorted(set(camera.rules) - set(RULES))
    if unknown:
        raise ConfigError(
            f"cameras[{camera.id}].rules: unknown rule(s) {unknown}; known: {sorted(RULES)}"
        )
    colours = colours or BoardColourModel()
    rules: list[Rule] = []
    for name, spec in RULES.items():
        if name not in camera.rules and not spec.default_on(camera, class_names):
            continue
        cfg = rule_config(camera, name)
        if cfg.enabled:
            rules.append(spec.build(cfg, colours))
    return rules
