"""Daily-control checklists (日管控检查清单): defaults per business type, region overrides.

The defaults follow the daily-control record that SAMR Order No. 60 (2022, 《企业落实食品安全
主体责任监督管理规定》, art. 9 and 10) asks every catering business's food-safety officer to
keep, with the items taken from the catering operating code (《餐饮服务食品安全操作规范》,
SAMR announcement 2018 No. 12: staff health, sample retention, tableware disinfection,
storage, raw/cooked separation, pests, additives, waste) and, for school canteens, the
school rules (《学校食品安全与营养健康管理规定》, 2019, art. 24-36). They are paraphrases
for a region to review, not the official forms: a region sets its own list per business
type (``duty_checklists``), and the nearest region up a site's tree wins over the default.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

Conn = psycopg.Connection[Any]

DEFAULT_SOURCE = (
    "SAMR Order No. 60 (2022) daily control; items after the catering operating code "
    "(SAMR 2018 No. 12) and, for schools, the school food safety rules (2019)"
)


class ChecklistItem(BaseModel):
    """One yes/no question of the daily check; "no" needs a photo and opens a ticket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)
    tier: int = Field(default=2, ge=1, le=3, description="Tier of the ticket a 'no' opens.")


class Checklist(BaseModel):
    """The checklist a site answers, and where it comes from."""

    business_type: str
    region_id: str | None = Field(description="The region whose list this is; null: default.")
    source: str
    items: list[ChecklistItem]


def _item(key: str, zh: str, en: str, tier: int = 2) -> ChecklistItem:
    return ChecklistItem(key=key, zh=zh, en=en, tier=tier)


_COMMON = [
    _item("health_check_done", "从业人员晨检已完成并记录", "morning health check of staff done"),
    _item("licence_displayed", "许可证件公示在有效期内", "licence displayed and valid", 3),
    _item("raw_cooked_separate", "生熟分开存放、加工", "raw and cooked kept apart"),
    _item("storage_ok", "原料离地离墙、无过期变质", "stock off floor and wall, none expired"),
    _item("cold_chain_ok", "冷藏冷冻设施温度正常", "fridges and freezers in range"),
    _item("tableware_disinfected", "餐用具清洗消毒并保洁", "tableware cleaned, disinfected"),
    _item("pests_controlled", "无蝇鼠蟑等有害生物痕迹", "no sign of flies, rodents, cockroaches"),
    _item("waste_covered", "餐厨废弃物加盖、及时清理", "food waste covered and removed"),
    _item("additives_ledger", "食品添加剂专柜存放并记录", "additives locked away and logged"),
]

DEFAULT_CHECKLISTS: dict[str, list[ChecklistItem]] = {
    "school_canteen": [
        *_COMMON,
        _item("samples_retained", "每餐次每品种留样≥125g并记录", "each dish sampled ≥ 125 g"),
        _item("purchase_inspected", "进货查验记录完整", "deliveries inspected and recorded"),
        _item("accompanied_meal", "学校负责人陪餐并记录", "school leader ate with pupils", 3),
    ],
    "restaurant": [*_COMMON],
    "group_meal": [
        *_COMMON,
        _item("samples_retained", "每餐次每品种留样≥125g并记录", "each dish sampled ≥ 125 g"),
        _item("delivery_temperature", "配送温度、时间符合要求", "delivery temperature and time"),
    ],
}
"""Business type → default items (``DEFAULT_SOURCE``)."""

BUSINESS_TYPES = tuple(DEFAULT_CHECKLISTS)


def checklist_for(conn: Conn, *, site_id: str, business_type: str) -> Checklist:
    """The site's checklist: the nearest region's own list for its type, else the default."""
    row = conn.execute(
        """WITH RECURSIVE up AS (
               SELECT r.id, r.parent_id, 0 AS depth FROM regions r
               JOIN sites s ON s.region_id = r.id WHERE s.id = %(site)s
               UNION ALL
               SELECT r.id, r.parent_id, up.depth + 1 FROM regions r
               JOIN up ON r.id = up.parent_id WHERE up.depth < 32)
           SELECT c.region_id, c.source, c.items FROM duty_checklists c
           JOIN up ON up.id = c.region_id
           WHERE c.business_type = %(type)s ORDER BY up.depth LIMIT 1""",
        {"site": site_id, "type": business_type},
    ).fetchone()
    if row is None:
        return Checklist(
            business_type=business_type,
            region_id=None,
            source=DEFAULT_SOURCE,
            items=DEFAULT_CHECKLISTS[business_type],
        )
    return Checklist(
        business_type=business_type,
        region_id=str(row[0]),
        source=str(row[1]),
        items=[ChecklistItem.model_validate(i) for i in row[2]],
    )
