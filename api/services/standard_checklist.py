"""The checklist a district starts from: a routine inspection of a school canteen.

Without a template the console cannot record an inspection at all, and a regulator should
not have to write JSON to begin. The items follow the headings of a routine supervision
visit to a school canteen (licence, staff health and dress, purchase records, storage, cold
chain, raw / cooked separation, processing, additives, food samples, tableware
disinfection, pests, kitchen waste, the head's accompanied meal, the bright-kitchen
cameras). A district edits or replaces it through ``POST /checklist-templates``; items carry
no rule, so a failure opens a ticket named by the item (``监督检查不合格（C1）: …``). Tier 1
(immediate warning) is kept for what can make children ill today.
"""

from __future__ import annotations

from typing import Any

from api.services.inspections import (
    InspectionKind,
    TemplateCreate,
    TemplatePublic,
    create_template,
    list_templates,
)

Conn = Any

STANDARD_NAME = "学校食堂日常监督检查表（标准）"

_ITEMS: tuple[tuple[str, str, str, int], ...] = (
    ("A1", "食品经营许可证公示且在有效期内", "Food business licence displayed and valid", 3),
    (
        "A2",
        "从业人员健康证明有效，晨检记录完整",
        "Staff health certificates valid; morning checks recorded",
        2,
    ),
    (
        "A3",
        "从业人员穿戴工作衣帽、佩戴口罩，无佩戴饰物",
        "Staff in work clothes, cap and mask; no jewellery",
        2,
    ),
    (
        "B1",
        "进货查验记录和票证齐全（索证索票）",
        "Purchase checks and supplier documents complete",
        2,
    ),
    (
        "B2",
        "原料分类分架、离地离墙存放，无过期变质",
        "Stock sorted, off floor and wall; nothing expired or spoiled",
        2,
    ),
    (
        "B3",
        "冷藏 0–8 ℃、冷冻 ≤ −12 ℃，温度记录完整",
        "Fridges 0-8 °C, freezers at or below -12 °C, logged",
        1,
    ),
    (
        "C1",
        "生熟分开，刀具砧板容器分区分色使用",
        "Raw and cooked kept apart; boards, knives, containers by colour",
        1,
    ),
    (
        "C2",
        "食品烧熟煮透，专间操作和温度符合要求",
        "Food cooked through; prep room practice and temperature right",
        1,
    ),
    (
        "C3",
        "食品添加剂专柜存放、专人管理、使用有记录",
        "Additives locked away, one person in charge, use recorded",
        2,
    ),
    (
        "C4",
        "每餐次每品种留样 ≥125 g，冷藏 48 小时以上并记录",
        "Samples of every dish, at least 125 g, kept 48 h, recorded",
        1,
    ),
    (
        "D1",
        "餐用具清洗消毒、保洁符合要求，消毒记录完整",
        "Tableware washed, disinfected and stored clean; records kept",
        2,
    ),
    (
        "D2",
        "防蝇防鼠防虫设施完好，无有害生物痕迹",
        "Fly, rodent and insect screens intact; no sign of pests",
        2,
    ),
    (
        "D3",
        "餐厨废弃物加盖存放、及时清运并有记录",
        "Kitchen waste lidded, removed in time, recorded",
        3,
    ),
    ("E1", "学校负责人陪餐并记录", "A school head ate with the pupils and recorded it", 3),
    ("E2", "明厨亮灶摄像头在线、画面清晰", "Bright-kitchen cameras online with a clear picture", 3),
)

STANDARD_TEMPLATE = TemplateCreate.model_validate(
    {
        "name": STANDARD_NAME,
        "kind": InspectionKind.ROUTINE,
        "items": [
            {"code": code, "text_zh": zh, "text_en": en, "tier": tier}
            for code, zh, en, tier in _ITEMS
        ],
    }
)
"""The standard template, validated like any template a district posts."""


def ensure_standard_template(conn: Conn) -> tuple[TemplatePublic, bool]:
    """The standard template, created unless one of that name exists; and whether it was
    created now (pressing the button twice gives one template, not two)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('bk_standard_checklist'))")
        for template in list_templates(conn=conn):
            if template.name == STANDARD_NAME:
                return template, False
        return create_template(conn=conn, data=STANDARD_TEMPLATE), True
