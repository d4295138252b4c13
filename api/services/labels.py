"""Human labels (Chinese + English) of rules and equipment, for ticket titles and messages."""

from __future__ import annotations

RULE_LABELS: dict[str, tuple[str, str]] = {
    "temp_high": ("温度超标", "over temperature limit"),
    "temp_low": ("温度过低", "under temperature limit"),
    "sensor_offline": ("传感器离线", "sensor offline"),
    "low_battery": ("传感器电量低", "sensor battery low"),
    "camera_offline": ("视频离线", "camera offline"),
    "camera_blurred": ("视频遮挡", "camera covered or blurred"),
    "no_mask": ("未戴口罩", "no mask"),
    "mixed_cutting_board": ("生熟砧板混用", "raw/cooked cutting boards mixed"),
    "no_chef_hat": ("未戴厨师帽", "no chef hat"),
    "no_uniform": ("未穿工作服", "no work uniform"),
    "smoking": ("吸烟", "smoking"),
    "phone": ("玩手机", "phone use"),
    "pest": ("鼠患", "pest in kitchen"),
    "bin_uncovered": ("垃圾桶未盖", "bin uncovered"),
    "disinfection_missed": ("餐具未消毒", "tableware not disinfected after the meal"),
    "disinfection_failed": ("餐具消毒不达标", "tableware disinfection cycle too cool or too short"),
    "rapid_test_failed": ("快检不合格", "rapid test failed"),
    "supplier_flagged": ("同供应商快检不合格", "same supplier failed a rapid test"),
    "public_complaint": ("群众投诉", "public complaint"),
    "daily_check_no": ("日管控检查不合格", "daily control check answered no"),
    "daily_check_missed": ("日管控未按时完成", "daily control check not done by its deadline"),
    "food_sample_missed": ("未按规定留样", "no food sample on record for a meal served"),
    "supervision_finding": ("包保督导发现问题", "supervision visit finding"),
}
"""Rule id → (zh, en); unknown rules fall back to the id itself. Two rules never share
words: the ledger's filter, the wall screen's kinds and the Excel ledger tell them apart."""

FORMER_RULE_LABELS: dict[str, tuple[tuple[str, str], ...]] = {
    # both disinfection rules were "餐具消毒不到位" in Chinese until 2026-12-06
    "disinfection_missed": (("餐具消毒不到位", "tableware not disinfected after the meal"),),
    "disinfection_failed": (
        ("餐具消毒不到位", "tableware disinfection cycle too cool or too short"),
    ),
}
"""Words a rule had before: titles stored with them still split into the reader's language
(read with today's words)."""

PROFILE_LABELS: dict[str, tuple[str, str]] = {
    "fridge": ("冷藏", "fridge"),
    "freezer": ("冷冻", "freezer"),
    "prep_room": ("专间", "prep room"),
    "sample_fridge": ("留样柜", "sample fridge"),
    "hot_holding": ("保温", "hot holding"),
    "disinfection": ("消毒柜", "disinfection cabinet"),
}
"""Equipment profile → (zh, en)."""

SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "alarm": ("设备报警", "device alarm"),
    "violation": ("视频违规", "camera violation"),
    "inspection": ("现场检查", "inspection"),
    "manual": ("人工开单", "opened by hand"),
    "rapid_test": ("食材快检", "rapid test"),
    "complaint": ("群众投诉", "public complaint"),
}
"""Ticket source (the kind of finding that opened it, ``api.schemas.TicketSource``) → (zh,
en); the console reads the same table (``/console/api/config``)."""

TIER_LABELS: dict[int, tuple[str, str]] = {
    1: ("立即预警", "immediate warning"),
    2: ("限期整改", "rectify by deadline"),
    3: ("日常监督", "routine supervision"),
}
"""Tier → (zh, en), after Hubei's grading (DOMAIN.md)."""

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "open": ("待处理", "open"),
    "acknowledged": ("已接收", "acknowledged"),
    "rectified": ("已整改", "rectified"),
    "closed": ("已关闭", "closed"),
    "rejected": ("已驳回", "rejected"),
}
"""A ticket's status in words (Chinese, English): the Excel ledger, the acknowledge page."""

_TEMP_RULES = {"temp_high", "temp_low"}


INSPECTION_RULE_PREFIX = "inspection_"
"""A checklist item without a rule of its own opens tickets of ``inspection_<item code>``."""

INSPECTION_RULE_WORDS: tuple[str, str] = (
    "监督检查不合格（{code}）",
    "inspection item {code} failed",
)
"""(zh, en) words of such a rule; ``{code}`` is the item's number in capitals (the console
gets them from /console/api/config)."""


def rule_label(rule: str, profile: str | None = None) -> tuple[str, str]:
    """Return the (zh, en) label of ``rule``, prefixed by the equipment for temperature rules;
    a checklist item's own rule names the item's number as printed on the checklist.

    Example:
        >>> rule_label("temp_high", "fridge")
        ('冷藏温度超标', 'fridge over temperature limit')
        >>> rule_label("inspection_b3")
        ('监督检查不合格（B3）', 'inspection item B3 failed')
    """
    if rule not in RULE_LABELS and rule.startswith(INSPECTION_RULE_PREFIX):
        code = rule[len(INSPECTION_RULE_PREFIX) :].upper()  # the rule is lower case
        zh, en = INSPECTION_RULE_WORDS
        return zh.format(code=code), en.format(code=code)
    zh, en = RULE_LABELS.get(rule, (rule, rule.replace("_", " ")))
    if rule in _TEMP_RULES and profile in PROFILE_LABELS:
        pzh, pen = PROFILE_LABELS[profile]
        return pzh + zh, f"{pen} {en}"
    return zh, en


def title_in(title: str, rule: str, lang: str) -> str:
    """A stored ticket title in one language: ``冷藏温度超标: 冷藏柜 1`` of ``ticket_title``'s
    ``冷藏温度超标 fridge over temperature limit: 冷藏柜 1``; any other title (typed by a
    person) as it is. The console's ``ticketTitle`` (labels.js) splits the same way.

    Example:
        >>> title_in("未戴口罩 no mask: 凉菜专间", "no_mask", "en")
        'no mask: 凉菜专间'
        >>> title_in("冷藏温度超标 fridge over temperature limit: 冷藏柜 1", "temp_high", "zh-CN")
        '冷藏温度超标: 冷藏柜 1'
        >>> title_in("日管控未按时完成 daily control check not done by its deadline",
        ...          "daily_check_missed", "en")
        'daily control check not done by its deadline'
        >>> title_in("门口地面有积水", "manual", "en")
        '门口地面有积水'
        >>> title_in("餐具消毒不到位 tableware not disinfected after the meal: 消毒柜 2",
        ...          "disinfection_missed", "zh-CN")
        '餐具未消毒: 消毒柜 2'
    """
    profiles = [None, *PROFILE_LABELS] if rule in _TEMP_RULES else [None]
    for profile in profiles:
        zh, en = rule_label(rule, profile)
        words = en if lang == "en" else zh
        for fzh, fen in ((zh, en), *FORMER_RULE_LABELS.get(rule, ())):
            if title == f"{fzh} {fen}":
                return words
            prefix = f"{fzh} {fen}: "
            if title.startswith(prefix):
                return f"{words}: {title[len(prefix) :]}"
    return title


SUBJECT_LABELS: dict[str, str] = {"daily_check": "日管控", "food_sample": "留样"}
"""Subjects of findings that name a duty, not a sensor or camera, and their name (like a
device's name, one language). A ticket about one is titled by its rule alone (the rule
already says what it is about)."""


def ticket_title(rule: str, subject_name: str, profile: str | None = None) -> str:
    """Title of a ticket in Chinese and English, e.g. ``冷藏温度超标 fridge over ...: 冷藏柜 1``;
    the rule's words alone when there is no device to name.

    Example:
        >>> ticket_title("no_mask", "凉菜专间")
        '未戴口罩 no mask: 凉菜专间'
        >>> ticket_title("daily_check_missed", "")
        '日管控未按时完成 daily control check not done by its deadline'
    """
    zh, en = rule_label(rule, profile)
    return f"{zh} {en}: {subject_name}" if subject_name else f"{zh} {en}"
