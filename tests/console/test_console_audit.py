"""Accessibility and phone-width audit of every console page, for every role.

Each role signs in and the pages its header's navigation offers are read from the page itself
(never a list kept here), plus the pages one level down that the role works in (the first
canteen, the first ticket; the inspection form and record for a regulator). Every page is
opened at 1280 px and at 375 px (a phone) and must show:

- no console errors;
- no sideways scrolling at 375 px (``document.scrollingElement.scrollWidth <= innerWidth``,
  and no wider than the screen: see ``sideways``);
- no axe-core violation of impact "serious" or "critical" among the rules in ``RULES``
  (names of form controls, buttons and links; image alternatives; colour contrast; ARIA
  validity; the page's language), and no two elements with one id;
- at 1280 px, from the keyboard: Tab reaches every navigation entry (each menu opened with
  Enter), every button, link and form field of the page, and each shows a focus ring that
  stands out (3:1) against what is around it; nothing that looks clickable (a pointer cursor)
  is left out of the Tab order.

axe-core is a test-only npm package (tests/console/axe, installed by scripts/system-deps.sh);
it is put into each page by the browser driver, never shipped with the console.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, viewport
from tests.console.test_console_browser import find
from tests.console.test_console_pages import TEMPLATE, add_policy_and_people, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = (1280, 900)
PHONE = (375, 812)

RULES = (
    # names of form controls and buttons
    *("label", "select-name", "button-name", "input-button-name", "summary-name"),
    *("form-field-multiple-labels", "aria-input-field-name", "aria-toggle-field-name"),
    *("aria-command-name", "aria-tooltip-name", "aria-progressbar-name", "aria-meter-name"),
    "link-name",
    "color-contrast",
    # images
    *("image-alt", "input-image-alt", "role-img-alt", "svg-img-alt", "area-alt", "object-alt"),
    # ids and ARIA
    *("duplicate-id-aria", "aria-allowed-attr", "aria-conditional-attr", "aria-deprecated-role"),
    *("aria-hidden-body", "aria-hidden-focus", "aria-prohibited-attr", "aria-required-attr"),
    *("aria-required-children", "aria-required-parent", "aria-roles", "aria-valid-attr"),
    "aria-valid-attr-value",
    # the page's language
    *("html-has-lang", "html-lang-valid", "valid-lang"),
)

# Put into every new document before the console's own scripts: a count of fetches in flight
# (a page is ready when none is and no loading notice is left) and a record of what took the
# keyboard focus, with whether a focus ring showed.
PROBE = r"""
(() => {
  window.__bkInflight = 0;
  const realFetch = window.fetch;
  window.fetch = function (...args) {
    window.__bkInflight += 1;
    return realFetch.apply(this, args).finally(() => { window.__bkInflight -= 1; });
  };
  const rgb = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (x, y) => {
    const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p);
    return (a + 0.05) / (b + 0.05);
  };
  /** The colour behind `el`'s outline: the first opaque background of an ancestor. */
  const behind = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  window.__bkDescribe = (el) => {
    const id = el.id ? `#${el.id}` : "";
    const link = el.getAttribute && el.getAttribute("href");
    const href = link ? `[href=${link}]` : "";
    const words = (el.innerText || el.value || el.getAttribute("aria-label") || "")
      .trim().slice(0, 30);
    return `${el.tagName.toLowerCase()}${id}${href} "${words}"`;
  };
  window.__bkFocused = new Set();
  window.__bkNoRing = [];
  document.addEventListener("focusin", (ev) => {
    const el = ev.target;
    if (!(el instanceof Element)) return;
    window.__bkFocused.add(el);
    if (window.__bkQuiet) return; // focused by the test's script, not by a key
    const s = getComputedStyle(el);
    const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2
      && rgb(s.outlineColor);
    const shadow = s.boxShadow !== "none";
    const seen = outline ? ratio(outline, behind(el)) >= 3 : shadow;
    if (!seen) {
      const why = outline
        ? `outline ${s.outlineColor} on ${JSON.stringify(behind(el))}` : "no outline";
      window.__bkNoRing.push(`${window.__bkDescribe(el)}: ${why}`);
    }
  }, true);
})();
"""

AXE_RUN = """
const done = arguments[arguments.length - 1];
const known = new Set(axe.getRules().map((r) => r.ruleId));
axe.run(document, { runOnly: { type: "rule", values: arguments[0].filter((r) => known.has(r)) },
                    resultTypes: ["violations"] })
  .then((res) => done(res.violations.flatMap((v) => v.nodes
      .filter((n) => ["serious", "critical"].includes(n.impact || v.impact))
      .slice(0, 4)
      .map((n) => `${v.id} (${n.impact || v.impact}) ${n.target.join(" ")}: `
                  + `${(n.failureSummary || "").replace(/\\s+/g, " ").slice(0, 240)}`))))
  .catch((e) => done([`axe failed: ${e}`]));
"""

DUPLICATE_IDS = """
const seen = {};
for (const e of document.querySelectorAll("[id]")) seen[e.id] = (seen[e.id] || 0) + 1;
return Object.entries(seen).filter(([, n]) => n > 1).map(([id, n]) => `#${id} ×${n}`);
"""

# What Tab must reach: the visible, enabled controls of the header and the page.
TABBABLE = """
const visible = (e) => e.checkVisibility({ visibilityProperty: true });
const sel = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
return [...document.querySelectorAll(`header ${sel.replaceAll(", ", ", header ")}, `
                                      + `main ${sel.replaceAll(", ", ", main ")}`)]
  .filter((e) => visible(e) && !e.disabled && e.tabIndex >= 0 && !e.closest("[inert]"));
"""

# Things drawn as clickable (a pointer cursor) that the keyboard can never reach.
MOUSE_ONLY = """
const focusable = "a[href], button, input, select, textarea, summary, label, [tabindex]";
return [...document.querySelectorAll("main *")]
  .filter((e) => e.checkVisibility() && getComputedStyle(e).cursor === "pointer"
          && !e.closest(focusable) && !e.querySelector(focusable)
          && (!e.parentElement || getComputedStyle(e.parentElement).cursor !== "pointer"))
  .map((e) => window.__bkDescribe(e));
"""


def ready(b: WebDriver) -> None:
    """Wait until the page has drawn: signed-in header or sign-in form, no fetch in flight and
    no loading notice, twice in a row."""
    calm = [0]

    def settled() -> bool:
        now = bool(
            b.execute_script(
                "return document.readyState === 'complete' && window.__bkInflight === 0"
                " && !document.querySelector('main .loading')"
                " && !!document.querySelector('main > *:not(.loading)')"
            )
        )
        calm[0] = calm[0] + 1 if now else 0
        return calm[0] >= 3

    wait_until(settled, timeout=20, interval=0.1, what=f"{b.current_url} drawn")


def sideways(b: WebDriver, width: int) -> int:
    """How far the page scrolls sideways past a ``width`` px screen (0 or less: not at all).

    ``scrollWidth <= innerWidth`` alone misses it on an emulated phone: there the layout
    viewport (and ``innerWidth``) grows to the content's width, so the page is also measured
    against the screen's width and the root's ``clientWidth``."""
    return int(
        b.execute_script(
            "const e = document.scrollingElement;"
            "return e.scrollWidth - Math.min(innerWidth, e.clientWidth, arguments[0]);",
            width,
        )
    )


def axe_violations(b: WebDriver) -> list[str]:
    b.set_script_timeout(60)
    return list(b.execute_async_script(AXE_RUN, list(RULES)))


def keyboard(b: WebDriver) -> list[str]:
    """Walk the page with Tab (and each header menu with Enter, Tab, Escape); what was not
    reached or showed no focus ring."""
    problems: list[str] = []
    b.execute_script(
        "window.__bkFocused.clear(); window.__bkNoRing.length = 0;"
        "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);"
    )
    # twice as many presses as the page has controls: a date field takes one stop for each of
    # its parts and a scrolling table one of its own; going round again does no harm
    stops = int(b.execute_script(f"return (() => {{{TABBABLE}}})().length"))
    ActionChains(b).send_keys(*([Keys.TAB] * min(2 * stops + 10, 600))).perform()
    missed = b.execute_script(
        f"const all = (() => {{{TABBABLE}}})();"
        # a group of radio buttons is one stop: Tab reaches one of them, the arrows the rest
        "const radio = (e) => e.type === 'radio' && e.name && [...window.__bkFocused]"
        "  .some((f) => f.type === 'radio' && f.name === e.name && f.form === e.form);"
        "return all.filter((e) => !window.__bkFocused.has(e) && !radio(e))"
        "  .map(window.__bkDescribe);"
    )
    problems += [f"Tab never reaches {m}" for m in missed]
    menus = b.execute_script(  # those shown (the wall screen hides the header)
        "return [...document.querySelectorAll('header nav details summary')]"
        ".map((s, i) => s.getClientRects().length ? i : -1).filter((i) => i >= 0)"
    )
    for i in menus:
        b.execute_script(
            "window.__bkFocused.clear(); window.__bkQuiet = true;"
            "document.querySelectorAll('header nav details summary')[arguments[0]].focus();"
            "window.__bkQuiet = false;",
            i,
        )
        b.switch_to.active_element.send_keys(Keys.ENTER)
        wait_until(
            lambda i=i: b.execute_script(
                "return document.querySelectorAll('header nav details')[arguments[0]].open", i
            ),
            what="menu open",
        )
        links = int(
            b.execute_script(
                "return document.querySelectorAll('header nav details')[arguments[0]]"
                ".querySelectorAll('a').length",
                i,
            )
        )
        ActionChains(b).send_keys(*([Keys.TAB] * links)).perform()
        missed = b.execute_script(
            "return [...document.querySelectorAll('header nav details')[arguments[0]]"
            ".querySelectorAll('a')].filter((a) => !window.__bkFocused.has(a))"
            ".map(window.__bkDescribe)",
            i,
        )
        problems += [f"Tab never reaches menu entry {m}" for m in missed]
        b.switch_to.active_element.send_keys(Keys.ESCAPE)
    problems += list(b.execute_script("return window.__bkNoRing"))
    mouse_only = b.execute_script(MOUSE_ONLY)
    problems += [f"clickable but not reachable by keyboard: {m}" for m in mouse_only]
    return sorted(set(problems))


def audit(
    b: WebDriver, c: Console, path: str, sizes: tuple[tuple[int, int], ...] = (DESKTOP, PHONE)
) -> list[str]:
    """Open ``path`` at a desktop's and at a phone's width; every problem found, by width."""
    found: list[str] = []
    for width, height in sizes:
        viewport(b, width, height, mobile=width < 600)
        try:
            b.get(c.url + path)
            ready(b)
            at = f"{path} @{width}px"
            found += [f"{at}: console: {e}" for e in console_errors(b)]
            found += [f"{at}: {v}" for v in axe_violations(b)]
            found += [f"{at}: duplicate id {d}" for d in b.execute_script(DUPLICATE_IDS)]
            if width < 600 and sideways(b, width) > 0:
                found.append(f"{at}: scrolls sideways by {sideways(b, width)} px")
            if width >= 600:
                found += [f"{at}: {k}" for k in keyboard(b)]
            found += [f"{at}: console: {e}" for e in console_errors(b)]
        finally:
            b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return found


def nav_paths(b: WebDriver) -> list[str]:
    """The console paths the signed-in role's header offers, in order."""
    hrefs = b.execute_script(
        "return [...document.querySelectorAll('header nav a[href]')]"
        ".map((a) => a.getAttribute('href'))"
    )
    return [str(h) for h in hrefs if str(h).startswith("/console")]


def first_link(b: WebDriver, pattern: str) -> str | None:
    """The first link on the page whose path matches ``pattern`` (a detail page)."""
    hrefs = b.execute_script(
        "return [...document.querySelectorAll('main a[href]')].map((a) => a.getAttribute('href'))"
    )
    return next((str(h) for h in hrefs if re.fullmatch(pattern, str(h))), None)


@pytest.fixture(scope="module")
def world(module_console: Console) -> Console:
    """Beside the seeded world: a checklist, an inspection with a failed item, an insurer of
    east-1 with a policy, an administrator and east-1's director."""
    c = module_console
    with httpx.Client(base_url=c.url, timeout=10) as reg:
        r = reg.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        assert r.status_code == 200
        r = reg.post("/api/v1/checklist-templates", json=TEMPLATE)
        assert r.status_code == 201, r.text
        inspection = {
            "site_id": "east-2",
            "kind": "routine",
            "template_id": r.json()["id"],
            "inspectors": ["reg-east"],
            "started_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "items": [
                {"code": "A1", "result": "pass"},
                {"code": "A2", "result": "fail", "note": "两名帮厨未戴口罩"},
            ],
        }
        r = reg.post("/api/v1/inspections", json=inspection)
        assert r.status_code == 201, r.text
        add_policy_and_people(c, reg)
    return c


@pytest.fixture(scope="module")
def browser(module_browser: WebDriver) -> WebDriver:
    """The module's Chromium with axe-core and the page probe in every new document."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run scripts/system-deps.sh (npm ci in tests/console/axe)")
    source = AXE.read_text(encoding="utf-8")
    for script in (source, PROBE):
        module_browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    return module_browser


def test_sign_in_page(world: Console, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    problems = audit(browser, world, "/console/")
    assert find(browser, "#login-form")
    assert problems == [], "\n".join(problems)


# The console's roles; the inspector (执法检查人员), like a regulator or an administrator,
# records inspections, so the inspection form and a record are audited with its pages.
ROLES = {
    "regulator": "reg-east",
    "inspector": "insp-east",
    "officer": "officer-e1",
    "director": "director-e1",
    "insurer": "insurer-pa",
    "admin": "admin-1",
}


def role_pages(b: WebDriver, c: Console, role: str) -> list[str]:
    """Sign in as ``role``: the pages its navigation offers, then the first canteen and ticket
    it can open (and, for those who inspect, the inspection form and a record)."""
    sign_in_as(b, c, ROLES[role], "/console/")
    ready(b)
    pages = nav_paths(b)
    assert "/console/" in pages, pages
    # an inspector has no settings to manage (users, channels, deadlines)
    assert ("/console/settings" in pages) == (role != "inspector"), pages
    deeper: list[str] = []
    site = first_link(b, r"/console/sites/[^/]+")
    if site:
        deeper.append(site)
    b.get(c.url + "/console/tickets")
    ready(b)
    ticket = first_link(b, r"/console/tickets/\d+")
    if ticket:
        deeper.append(ticket)
    if role in ("regulator", "admin", "inspector"):
        b.get(c.url + "/console/inspections")
        ready(b)
        record = first_link(b, r"/console/inspections/\d+")
        assert record, "the seeded inspection is listed"
        deeper += ["/console/inspections/new", record]
    if role in ("regulator", "inspector", "officer"):
        assert site, "a canteen of the role's is listed"
        assert ticket, "a ticket of the role's is listed"
    return pages + deeper


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_of_the_role(world: Console, browser: WebDriver, role: str) -> None:
    c, b = world, browser
    pages = role_pages(b, c, role)
    problems = [p for path in pages for p in audit(b, c, path)]
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems)
    print(json.dumps({"role": role, "pages": pages}, ensure_ascii=False))


@pytest.mark.parametrize("role", ["officer", "regulator"])
def test_english_pages_on_a_phone(world: Console, browser: WebDriver, role: str) -> None:
    """English words run longer than Chinese: the same pages at 375 px in English."""
    c, b = world, browser
    pages = role_pages(b, c, role)
    b.execute_script("localStorage.setItem('bk.lang', 'en')")
    try:
        problems = [p for path in pages for p in audit(b, c, path, (PHONE,))]
        assert b.execute_script("return document.documentElement.lang") == "en"
    finally:
        b.execute_script("localStorage.removeItem('bk.lang')")
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems)
