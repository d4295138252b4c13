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


INCIDENT_KIND_LABELS: dict[str, tuple[str, str]] = {
    "foodborne_illness": ("疑似食源性疾病", "suspected foodborne illness"),
    "foreign_object": ("食品中有异物", "foreign object in food"),
    "spoiled_food": ("食品变质", "spoiled food served"),
    "allergen": ("过敏事件", "allergic reaction"),
    "injury": ("人身伤害", "injury"),
    "other": ("其他", "other"),
}
"""(zh, en) of the kinds of incident the console offers (an incident's kind is free text over
the API; an unknown one reads as it was written)."""


INSPECTION_RULE_PREFIX = "inspection_"
"""A checklist item without a rule of its own opens tickets of ``inspection_<item code>``."""

INSPECTION_RULE_WORDS: tuple[str, str] = (
    "监督检查不合格（{code}）",
    "inspection item {code} failed",
)
"""(zh, en) words of such a rule; ``{code}`` is the item's number in capitals (the console
gets them from /console/api/config)."""


RULE_ADVICE: dict[str, tuple[str, str]] = {
    "temp_high": (
        "立即检查柜门是否关严、压缩机是否运转；把食品转移到正常的冷柜，并记录温度。",
        "Check the door is shut and the compressor runs; move the food to a working fridge and "
        "note the temperature.",
    ),
    "temp_low": (
        "检查温控设定和柜门；确认食品未被冻坏，必要时转移并记录。",
        "Check the thermostat and the door; make sure the food is not frozen, move it if needed "
        "and note it.",
    ),
    "sensor_offline": (
        "检查传感器电源和信号，确认设备在位；恢复前人工记录温度。",
        "Check the sensor's power and signal; note temperatures by hand until it is back.",
    ),
    "low_battery": (
        "今天内更换传感器电池。",
        "Replace the sensor's battery today.",
    ),
    "camera_offline": (
        "检查摄像头电源和网线，恢复画面。",
        "Check the camera's power and cable to bring the picture back.",
    ),
    "camera_blurred": (
        "擦拭镜头、移开遮挡物。",
        "Wipe the lens and remove whatever covers it.",
    ),
    "no_mask": (
        "请立即戴好口罩。",
        "Put on a mask now.",
    ),
    "no_chef_hat": (
        "请立即戴好工作帽。",
        "Put on a hat now.",
    ),
    "no_uniform": (
        "请立即穿好工作服。",
        "Put on work clothes now.",
    ),
    "smoking": (
        "后厨禁止吸烟，请立即熄灭。",
        "No smoking in the kitchen: put it out now.",
    ),
    "phone": (
        "操作时请放下手机，洗手后再继续。",
        "Put the phone away and wash your hands before going on.",
    ),
    "mixed_cutting_board": (
        "立即停用混用的砧板，按颜色区分生熟，清洗消毒后再用。",
        "Stop using the mixed board; keep raw and cooked boards by colour, wash and disinfect.",
    ),
    "pest": (
        "立即检查并清理，联系消杀，封堵入口。",
        "Check and clean now, call pest control, close the way in.",
    ),
    "bin_uncovered": (
        "请盖好垃圾桶。",
        "Close the bin lid.",
    ),
    "disinfection_missed": (
        "餐后立即对餐具消毒并记录；检查消毒柜是否通电、是否每餐按时启动。",
        "Disinfect the tableware now and record it; check the cabinet has power and is started "
        "after every meal.",
    ),
    "disinfection_failed": (
        "本批餐具重新消毒，直到温度和时间达标；检查消毒柜的加热或紫外灯，必要时报修。",
        "Disinfect this batch again until it reaches its temperature for its time; check the "
        "cabinet's heating or UV lamp and have it repaired if needed.",
    ),
    "rapid_test_failed": (
        "立即停用并封存该批食材，不得加工；通知供应商和监管部门，记录处理结果。",
        "Stop using this batch and seal it now, do not cook it; tell the supplier and the "
        "regulator, and record what was done.",
    ),
    "supplier_flagged": (
        "核查该供应商近期供货的食材并加测快检，合格前暂停使用。",
        "Check this supplier's recent deliveries and test them again; do not use them until they "
        "pass.",
    ),
    "public_complaint": (
        "核实投诉反映的情况，整改存在的问题，并向投诉人反馈处理结果。",
        "Look into what the complaint says, fix what is wrong and tell the person who complained "
        "what was done.",
    ),
    "daily_check_no": (
        "逐项整改日管控中答“否”的项目，整改后重新检查并记录。",
        "Fix each item the daily control check answered “no”, then check it again and record it.",
    ),
    "daily_check_missed": (
        "今天内完成日管控检查并在平台提交；指定专人每天按时检查。",
        "Do today's daily control check and submit it in the platform today; name someone to do "
        "it on time every day.",
    ),
    "food_sample_missed": (
        "查明该餐次未留样的原因；每餐每样菜留样不少于 125 克，冷藏保存 48 小时以上，并登记。",
        "Find out why the meal was not sampled; keep at least 125 g of every dish of every meal, "
        "refrigerated for at least 48 hours, and record it.",
    ),
    "supervision_finding": (
        "按包保督导指出的问题逐项整改，在期限前提交整改照片和说明。",
        "Fix each problem the supervision visit found and submit photos and a note before the "
        "deadline.",
    ),
}
"""(zh, en) of what to do about each rule: the ticket page, the printed notice, the alert
that opens a ticket and the kitchen board say it in these words (the console gets them from
/console/api/config)."""

INSPECTION_ADVICE: tuple[str, str] = (
    "按检查项要求整改，在期限前提交整改照片和说明，等待复查。",
    "Fix the item as the checklist requires, submit photos and a note before the deadline and "
    "wait for the re-check.",
)
"""What to do about a checklist item without a rule of its own (``inspection_<code>``)."""

DEFAULT_ADVICE: tuple[str, str] = (
    "查明原因并整改，在期限前通过平台提交整改照片和说明。",
    "Find the cause and fix it; submit photos and a note in the platform before the deadline.",
)
"""What to do about any other problem (a ticket opened by hand, a rule added later)."""


def advice_for(rule: str) -> tuple[str, str]:
    """The (zh, en) of what to do about ``rule``.

    Example:
        >>> advice_for("low_battery")
        ('今天内更换传感器电池。', "Replace the sensor's battery today.")
        >>> advice_for("inspection_b3") == INSPECTION_ADVICE
        True
    """
    if rule in RULE_ADVICE:
        return RULE_ADVICE[rule]
    if rule.startswith(INSPECTION_RULE_PREFIX):
        return INSPECTION_ADVICE
    return DEFAULT_ADVICE


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
