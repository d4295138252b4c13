"""HTML of the public pages: a canteen's page with its complaint form, and the tracking page.

Small, self-contained pages for a phone that scanned the door's QR code: no scripts, no
external assets, every value escaped. Chinese first, English after, like the notices.
"""

from __future__ import annotations

import html
from datetime import datetime

from api.services.complaints import BODY_MAX, COMMENT_MAX, CONTACT_MAX, MAX_PHOTOS, Tracking
from api.services.public_page import (
    COLD_CHAIN_DAYS,
    DISINFECTION_DAYS,
    RAPID_DAYS,
    RECTIFICATION_DAYS,
    PublicPage,
)
from bkcommon.localtime import fmt_local

_STYLE = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem;
line-height:1.5;color:#1b1b1b}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem;
border-bottom:1px solid #ddd}table{border-collapse:collapse;width:100%}td,th{text-align:left;
padding:.25rem .4rem;border-bottom:1px solid #eee}.ok{color:#0a7d32}.bad{color:#b00020}
textarea,input[type=text]{width:100%;box-sizing:border-box;font-size:1rem;padding:.5rem}
button{font-size:1.1rem;padding:.7rem 1rem;border:0;border-radius:.4rem;background:#0a5ad4;
color:#fff;margin:.25rem 0}.muted{color:#666;font-size:.9rem}.code{font-size:1.5rem;
font-family:monospace;letter-spacing:.1rem}"""

_STAGES = {
    "received": ("已受理，待核实", "received, being checked"),
    "dispatched": ("已立案，整改中", "dispatched: the canteen is rectifying"),
    "rectified": ("已整改，待复核", "rectified, being verified"),
    "closed": ("已办结", "closed"),
    "dismissed": ("经核实不予立案", "dismissed: checked, no case opened"),
}


PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""The public and acknowledge pages: no scripts anywhere, their own inline style, forms that
post to this server, and never inside another site's frame (a framed "acknowledge" or
complaint button could be clicked through a decoy)."""


def _e(value: object) -> str:
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>{body}</body></html>"""


def _local(at: datetime | None) -> str:
    return fmt_local(at)


def _percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def render_unpublished(site_name: str) -> str:
    """The page of a canteen whose region publishes nothing."""
    return _page(
        site_name,
        f"<h1>{_e(site_name)}</h1><p>本食堂信息暂未公示。<br>"
        "This canteen's information is not published.</p>",
    )


def render_canteen(page: PublicPage, *, complaint_action: str) -> str:
    """The canteen's public page: the published sections, then the complaint form."""
    parts = [f"<h1>{_e(page.site_name)}</h1><p class=muted>阳光公示 · public information</p>"]
    if page.inspection_shown:
        parts.append("<h2>最近一次监督检查 Latest inspection</h2>")
        i = page.inspection
        if i is None:
            parts.append("<p>暂无检查记录 No inspection yet.</p>")
        else:
            cls = "ok" if i.result == "符合" else "bad"
            parts.append(
                f"<p>{_e(i.on)} · {_e(i.kind)} · 结果 result: "
                f"<strong class={cls}>{_e(i.result)}</strong> · "
                f"不合格项 failed items: {i.failed_items}</p>"
            )
    if page.rectification is not None:
        r = page.rectification
        parts.append(
            f"<h2>整改情况（近{RECTIFICATION_DAYS}天）Rectification, last {RECTIFICATION_DAYS} days"
            f"</h2><table><tr><th>新开整改单 opened</th><td>{r.opened}</td></tr>"
            f"<tr><th>已办结 closed</th><td>{r.closed}</td></tr>"
            f"<tr><th>整改中 open now</th><td>{r.open_now}</td></tr>"
            f"<tr><th>已超期 overdue now</th><td>{r.overdue_now}</td></tr></table>"
        )
    if page.cold_chain is not None:
        c = page.cold_chain
        parts.append(
            f"<h2>冷链温控（近{COLD_CHAIN_DAYS}天）Cold chain, last {COLD_CHAIN_DAYS} days</h2>"
            f"<table><tr><th>监测设备 devices</th><td>{c.devices}</td></tr>"
            f"<tr><th>温度报警 alarms</th><td>{c.alarms}</td></tr>"
            f"<tr><th>超限时长 minutes out of range</th><td>{c.minutes_out}</td></tr>"
            f"<tr><th>达标率 compliance</th><td>{_percent(c.compliance)}</td></tr></table>"
        )
    if page.disinfection is not None:
        d = page.disinfection
        parts.append(
            f"<h2>餐具消毒（近{DISINFECTION_DAYS}天）Tableware disinfection, last "
            f"{DISINFECTION_DAYS} days</h2>"
            f"<table><tr><th>餐次 meal services</th><td>{d.meals}</td></tr>"
            f"<tr><th>按时有效消毒 disinfected by a valid cycle in time</th>"
            f"<td>{d.meals_disinfected}</td></tr>"
            f"<tr><th>达标率 compliance</th><td>{_percent(d.compliance)}</td></tr>"
            f"<tr><th>未消毒 no cycle</th><td>{d.missed}</td></tr>"
            f"<tr><th>消毒不到位 cycle too cool, too short or late</th><td>{d.failed}</td></tr>"
            f"<tr><th>有未达标的天数 days with a miss</th><td>{d.days_not_done}</td></tr>"
            "</table>"
        )
    if page.rapid_tests is not None:
        parts.append(f"<h2>食材快检（近{RAPID_DAYS}天）Rapid tests, last {RAPID_DAYS} days</h2>")
        if not page.rapid_tests:
            parts.append("<p>暂无快检记录 No rapid test.</p>")
        else:
            rows = "".join(
                f"<tr><td>{_e(t.on)}</td><td>{_e(t.product)}</td><td>{_e(t.item)}</td>"
                f"<td class={'ok' if t.result == '合格' else 'bad'}>{_e(t.result)}</td></tr>"
                for t in page.rapid_tests
            )
            parts.append(
                "<table><tr><th>日期 date</th><th>食材 product</th><th>项目 item</th>"
                f"<th>结果 result</th></tr>{rows}</table>"
            )
    if page.accept_complaints:
        parts.append(
            f"""<h2>我要投诉 Report a problem</h2>
<form method="post" action="{_e(complaint_action)}" enctype="multipart/form-data">
<p><label>看到的问题 What you saw<br>
<textarea name="body" required maxlength="{BODY_MAX}" rows="5"></textarea></label></p>
<p><label>联系方式（选填）Contact (optional)<br>
<input type="text" name="contact" maxlength="{CONTACT_MAX}"></label></p>
<p><label>照片（最多{MAX_PHOTOS}张）Photos (up to {MAX_PHOTOS})<br>
<input type="file" name="photos" accept="image/jpeg,image/png" multiple></label></p>
<button type="submit">提交 Submit</button>
<p class=muted>提交后会得到查询码，可查看处理结果并评价。
You get a tracking code to follow the outcome and rate it.</p></form>"""
        )
    return _page(page.site_name, "".join(parts))


def render_tracking(view: Tracking, *, rating_action: str) -> str:
    """The complainant's page: stage, the regulator's reply, the dates, the rating form."""
    zh, en = _STAGES[view.stage]
    rows = [
        ("食堂 canteen", _e(view.site_name)),
        ("受理时间 received", _local(view.received_at)),
        ("状态 stage", f"<strong>{_e(zh)}</strong> {_e(en)}"),
    ]
    if view.ticket_no:
        rows.append(("整改单 ticket", _e(view.ticket_no)))
    if view.dispatched_at:
        rows.append(("立案时间 dispatched", _local(view.dispatched_at)))
    if view.rectified_at:
        rows.append(("整改时间 rectified", _local(view.rectified_at)))
    if view.closed_at:
        rows.append(("办结时间 closed", _local(view.closed_at)))
    if view.reply:
        rows.append(("答复 reply", _e(view.reply)))
    if view.rating:
        label = "满意 satisfied" if view.rating == "satisfied" else "不满意 unsatisfied"
        rows.append(("您的评价 your rating", label))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    form = ""
    if view.can_rate:
        form = f"""<h2>评价处理结果 Rate the handling</h2>
<form method="post" action="{_e(rating_action)}">
<p><label><input type="radio" name="rating" value="satisfied" required> 满意 satisfied</label>
<label><input type="radio" name="rating" value="unsatisfied"> 不满意 unsatisfied</label></p>
<p><label>意见（选填）Comment (optional)<br>
<textarea name="comment" maxlength="{COMMENT_MAX}" rows="3"></textarea></label></p>
<button type="submit">提交评价 Submit</button></form>"""
    body = (
        f"<h1>投诉查询 Complaint</h1><p>查询码 tracking code: "
        f"<span class=code>{_e(view.tracking_code)}</span></p>"
        f"<p class=muted>请保存此页面地址或查询码。Keep this page's address or the code.</p>"
        f"<table>{table}</table>{form}"
    )
    return _page("投诉查询 Complaint", body)
