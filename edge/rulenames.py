"""Human titles of rules (Chinese + English) for evidence captions, pop-ups and alerts."""

from __future__ import annotations

RULE_TITLES: dict[str, tuple[str, str]] = {
    "no_mask": ("未戴口罩", "No mask"),
    "mixed_cutting_board": ("生熟砧板混用", "Raw/cooked board mixed"),
    "no_chef_hat": ("未戴厨师帽", "No chef hat"),
    "no_uniform": ("未穿工作服", "No work clothes"),
    "smoking": ("吸烟", "Smoking"),
    "phone": ("玩手机", "Phone use"),
    "pest": ("有害生物", "Pest"),
    "bin_uncovered": ("垃圾桶未盖", "Bin uncovered"),
    "camera_offline": ("视频离线", "Camera offline"),
    "camera_blurred": ("视频遮挡", "Camera blurred/covered"),
}


def rule_title(rule: str) -> tuple[str, str]:
    """Return (zh, en) titles of a rule; unknown rules fall back to their id.

    Example:
        >>> rule_title("no_mask")
        ('未戴口罩', 'No mask')
    """
    return RULE_TITLES.get(rule, (rule, rule.replace("_", " ").capitalize()))
