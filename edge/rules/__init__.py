"""Rules: configuration plus small functions that turn tracked detections into violations."""

from edge.rules.base import FrameContext, Rule, RuleConfig
from edge.rules.registry import RULES, build_rules

__all__ = ["RULES", "FrameContext", "Rule", "RuleConfig", "build_rules"]
