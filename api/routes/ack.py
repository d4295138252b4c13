"""Acknowledge links: a phone opens ``/api/v1/ack/{token}`` and taps one button, no login.

The token (``api.services.acklink``) is good for one ticket and one person, until it
expires, once. GET renders a tiny page; POST acknowledges with the person as the actor.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse

from api.auth.scope import Role, SiteScope
from api.deps import ConnDep, SettingsDep
from api.services.acklink import AckClaim, AckLinkError, verify_ack_token
from api.services.labels import STATUS_LABELS, advice_for
from api.services.lifecycle import Action, Actor, LifecycleError, apply_action
from api.services.public_render import PAGE_CSP
from api.settings import ApiSettings
from bkcommon.localtime import fmt_local
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/ack", tags=["acknowledge links"])

TokenPath = Annotated[str, Path(max_length=512, pattern=r"^[A-Za-z0-9_\-.]+$")]

_ROLE_ORDER = {"officer": Role.OFFICER, "director": Role.DIRECTOR, "regulator": Role.REGULATOR}


def _html_page(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


# A phone shows the answer: refusals are pages too, not JSON (422 is a malformed token).
_PAGES: dict[int | str, dict[str, object]] = {
    200: _html_page("The ticket and the acknowledge button, or the confirmation."),
    400: _html_page("The ticket cannot be acknowledged as it is."),
    403: _html_page(
        "The link is not valid (bad signature, expired, not enabled) or the "
        "person is no longer responsible for the canteen."
    ),
    404: _html_page("The link's ticket no longer exists."),
    409: _html_page("The link was used before, or the ticket is past acknowledging."),
}


def _page(title: str, message: str, *, status: int = 200, button: bool = False) -> HTMLResponse:
    """A small self-contained mobile page (no scripts, no external assets)."""
    form = (
        '<form method="post"><button type="submit">确认收到 Acknowledge</button></form>'
        if button
        else ""
    )
    body = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;line-height:1.5}}
button{{font-size:1.25rem;padding:.9rem 1.2rem;width:100%;border:0;border-radius:.5rem;
background:#0a7d32;color:#fff}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{message}</p>{form}</body></html>"""
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": PAGE_CSP,
            "X-Frame-Options": "DENY",
        },
    )


def _claim(token: str, settings: ApiSettings) -> AckClaim:
    if settings.secret_key is None:
        raise AckLinkError("acknowledge links are not enabled on this server")
    return verify_ack_token(settings.secret_key.get_secret_value(), token, now=utcnow())


def get_settings_dep(settings: SettingsDep) -> ApiSettings:
    """The app settings (kept apart so this router needs no signed-in user)."""
    return settings


Settings = Annotated[ApiSettings, Depends(get_settings_dep)]


def _role_at(conn: psycopg.Connection[Any], site_id: str, person_id: str) -> Role | None:
    """The person's highest role at the canteen now (None: no longer responsible there)."""
    roles = {
        str(r[0])
        for r in conn.execute(
            "SELECT role FROM site_people WHERE site_id = %s AND person_id = %s",
            (site_id, person_id),
        ).fetchall()
    }
    return next((_ROLE_ORDER[r] for r in _ROLE_ORDER if r in roles), None)


@router.get("/{token}", response_class=HTMLResponse, responses=_PAGES)
def ack_page(token: TokenPath, conn: ConnDep, settings: Settings) -> HTMLResponse:
    """The page behind the link in a notice: what the ticket is, and one button."""
    try:
        claim = _claim(token, settings)
    except AckLinkError as exc:
        return _page("链接无效 Link not valid", html.escape(str(exc)), status=exc.status_code)
    row = conn.execute(
        "SELECT ticket_no, title, status, due_at, rule, site_id FROM tickets WHERE id = %s",
        (claim.ticket_id,),
    ).fetchone()
    if row is None:
        return _page("链接无效 Link not valid", "ticket not found", status=404)
    if _role_at(conn, str(row[5]), claim.person_id) is None:
        # someone who left the canteen keeps no window on its tickets until the link expires
        return _page("链接无效 Link not valid", "no longer responsible here", status=403)
    used = conn.execute(
        "SELECT 1 FROM ack_link_uses WHERE signature = %s", (claim.signature,)
    ).fetchone()
    # read on a phone away from the console: the deadline in the region's time with its zone
    # named, the status in words (both languages, like the rest of the page)
    zh, en = STATUS_LABELS.get(str(row[2]), (str(row[2]), str(row[2])))
    do_zh, do_en = advice_for(str(row[4]))
    info = (
        f"{html.escape(str(row[0]))}<br>{html.escape(str(row[1]))}<br>"
        f"整改期限 Due: {html.escape(fmt_local(row[3], show_zone=True))}<br>"
        f"状态 Status: {html.escape(zh)} {html.escape(en)}<br>"
        f"整改要求 What to do: {html.escape(do_zh)} {html.escape(do_en)}"
    )
    if used is not None:
        return _page("已确认 Already acknowledged", info, status=200)
    return _page("整改通知 Rectification notice", info, button=row[2] == "open")


@router.post("/{token}", response_class=HTMLResponse, responses=_PAGES)
def ack_submit(token: TokenPath, conn: ConnDep, settings: Settings) -> HTMLResponse:
    """Acknowledge the ticket as the link's person; the link is then used up."""
    try:
        claim = _claim(token, settings)
    except AckLinkError as exc:
        return _page("链接无效 Link not valid", html.escape(str(exc)), status=exc.status_code)
    now = utcnow()
    try:
        with conn.transaction():
            site = conn.execute(
                "SELECT site_id FROM tickets WHERE id = %s", (claim.ticket_id,)
            ).fetchone()
            if site is None:
                return _page("链接无效 Link not valid", "ticket not found", status=404)
            role = _role_at(conn, str(site[0]), claim.person_id)
            if role is None:
                return _page("链接无效 Link not valid", "no longer responsible here", status=403)
            first = conn.execute(
                "INSERT INTO ack_link_uses (signature, ticket_id, person_id, used_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (claim.signature, claim.ticket_id, claim.person_id, now),
            ).fetchone()
            if first is None:
                return _page(
                    "链接已使用 Link already used", "this link was used before", status=409
                )
            apply_action(
                conn,
                ticket_id=claim.ticket_id,
                action=Action.ACKNOWLEDGE,
                actor=Actor(f"person:{claim.person_id}", role, person_id=claim.person_id),
                scope=SiteScope(all_sites=False, site_ids=(str(site[0]),)),
                now=now,
                settings=settings,
                note="acknowledged from the notice link",
            )
    except LifecycleError as exc:
        return _page("无法确认 Cannot acknowledge", html.escape(str(exc)), status=exc.status_code)
    return _page(
        "已确认 Acknowledged", "谢谢 Thank you. 请按期整改 Please rectify by the deadline."
    )
