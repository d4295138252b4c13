"""The rectification notice (整改通知书) of an inspection, as printable HTML or plain text.

It states what failed, the evidence, the deadline of each item (the due time of the
ticket the failure opened), the person responsible (the site's food-safety officer)
and who signed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

import psycopg

from api.auth.scope import SiteScope
from api.services.inspections import InspectionItemPublic, InspectionPublic, get_inspection
from bkcommon.localtime import fmt_local

Conn = psycopg.Connection[Any]

KIND_LABELS = {
    "routine": "日常检查 routine",
    "special": "专项检查 special",
    "joint": "联合检查 joint",
    "random": "随机抽查 random",
    "public_spot": "百姓点检 public spot check",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """Everything a notice prints."""

    inspection: InspectionPublic
    site_name: str
    site_address: str
    officers: list[str]
    failed: list[InspectionItemPublic]


def load_notice(*, conn: Conn, inspection_id: int, scope: SiteScope) -> Notice | None:
    """The notice of an inspection, or None when absent or out of scope."""
    insp = get_inspection(conn=conn, inspection_id=inspection_id, scope=scope)
    if insp is None:
        return None
    site = conn.execute("SELECT name, address FROM sites WHERE id = %s", (insp.site_id,)).fetchone()
    officers = conn.execute(
        """SELECT p.name FROM site_people sp JOIN people p ON p.id = sp.person_id
           WHERE sp.site_id = %s AND sp.role = 'officer' ORDER BY p.id""",
        (insp.site_id,),
    ).fetchall()
    return Notice(
        inspection=insp,
        site_name=str(site[0]) if site else insp.site_id,
        site_address=str(site[1]) if site else "",
        officers=[str(o[0]) for o in officers],
        failed=[i for i in insp.items if i.result == "fail"],
    )


def _local(at: datetime | None) -> str:
    return fmt_local(at)


def _evidence(item: InspectionItemPublic) -> str:
    return ", ".join(f"sha256:{s[:12]}" for s in item.photos) or "—"


def _signature(n: Notice) -> str:
    i = n.inspection
    if i.notice_signed_at is None:
        return "未签署 not signed"
    return f"{i.notice_signed_by} {_local(i.notice_signed_at)}"


def render_text(n: Notice) -> str:
    """Plain-text notice (for SMS / e-mail bodies and terminals)."""
    i = n.inspection
    lines = [
        "整改通知书 Rectification notice",
        f"编号 No.: {i.notice_no or '（签署后生成 assigned when signed）'}",
        f"单位 Site: {n.site_name} {n.site_address}".rstrip(),  # its name: the id is for machines
        f"检查 Inspection: #{i.id} {KIND_LABELS[i.kind.value]}, {_local(i.started_at)}",
        f"检查人员 Inspectors: {', '.join(i.inspectors)}",
        f"责任人 Responsible: {', '.join(n.officers) or '—'}",
        "",
        "不合格项 Failed items:",
    ]
    for k, item in enumerate(n.failed, 1):
        lines.append(
            f"{k}. [{item.code}] {item.text_zh} {item.text_en}".rstrip()
            + f" | 说明 note: {item.note or '—'}"
            + f" | 整改单 ticket: {item.ticket_no or '—'}"
            + f" | 期限 deadline: {_local(item.due_at)}"
            + f" | 证据 evidence: {_evidence(item)}"
        )
    if not n.failed:
        lines.append("（无 none）")
    lines += ["", f"签署 Signed: {_signature(n)}"]
    return "\n".join(lines) + "\n"


def render_html(n: Notice) -> str:
    """Printable HTML notice (no external resources)."""
    i = n.inspection
    e = escape
    rows = "".join(
        "<tr>"
        f"<td>{k}</td><td>{e(item.code)}</td><td>{e(item.text_zh)}<br><small>{e(item.text_en)}"
        f"</small></td><td>{e(item.note)}</td><td>{e(item.ticket_no or '—')}</td>"
        f"<td>{e(_local(item.due_at))}</td><td>{e(_evidence(item))}</td>"
        "</tr>"
        for k, item in enumerate(n.failed, 1)
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>整改通知书 {e(i.notice_no or str(i.id))}</title>
<style>
body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #444;padding:.3em}}
@media print{{body{{margin:0}}}}
</style></head><body>
<h1>整改通知书 <small>Rectification notice</small></h1>
<p>编号 No.: <b class="notice-no">{e(i.notice_no or "（签署后生成 assigned when signed）")}</b></p>
<p>单位 Site: {e(n.site_name)} {e(n.site_address)}</p>
<p>检查 Inspection: #{i.id} {e(KIND_LABELS[i.kind.value])}, {e(_local(i.started_at))};
检查人员 Inspectors: {e(", ".join(i.inspectors))}</p>
<p>责任人 Responsible: <span class="responsible">{e(", ".join(n.officers) or "—")}</span></p>
<table><thead><tr><th>#</th><th>代码 code</th><th>项目 item</th><th>说明 note</th>
<th>整改单 ticket</th><th>整改期限 deadline</th><th>证据 evidence</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>请于期限前完成整改并提交整改照片。Rectify each item by its deadline and submit photos.</p>
<p>签署 Signed: <span class="signature">{e(_signature(n))}</span></p>
</body></html>
"""
