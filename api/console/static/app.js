// The console shell: sign-in, header (language, user, sign-out), navigation and the router.
import { api, ApiError, setUnauthorizedHandler } from "./api.js";
import { h, mount } from "./dom.js";
import { explain, getLang, setLang, setTimeZone, t } from "./i18n.js";
import { ruleLabel, setConfig } from "./labels.js";
import { clearLiveViews, liveBadge, liveViewsReady, onLiveGlobal, startLive, stopLive } from "./live.js";
import { renderOverview, renderTickets } from "./views.js";
import { renderTicketNotice } from "./notice.js";
import { renderReviews, renderTicket } from "./ticket.js";
import { renderSite } from "./site.js";
import { renderKitchen } from "./kitchen.js";
import { renderInspection, renderInspections, renderNewInspection } from "./inspections.js";
import { renderInsurance } from "./insurance.js";
import { renderDisinfection } from "./disinfection.js";
import { renderRapidTests } from "./rapidtests.js";
import { renderDeliveries } from "./deliveries.js";
import { renderComplaints } from "./complaints.js";
import { renderPublication, renderQrSheet } from "./publication.js";
import { renderDuties } from "./duties.js";
import { renderCoverage } from "./coverage.js";
import { renderVisits } from "./visits.js";
import { renderReports } from "./reports.js";
import { renderSettings } from "./settings.js";
import { renderWall } from "./wall.js";
import { installDownloads } from "./downloads.js";

const BASE = "/console";
const main = document.getElementById("main");
const top = document.getElementById("top");
const state = { me: null, configured: false, siteNames: {} };

/** Go to a console path (pushState) and render it. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

/** Who is signed in ({username, role, read_only, ...}). */
export function me() {
  return state.me;
}

/** The name of a site in scope (its id until the names are loaded). */
export function siteName(id) {
  return state.siteNames[id] || id;
}

/** Load the time zone, labels and site names once per sign-in. */
async function configure() {
  if (state.configured) return;
  const [config, sites] = await Promise.all([api("/console/api/config"), api("/sites")]);
  setConfig(config);
  setTimeZone(config.time_zone);
  state.siteNames = Object.fromEntries(sites.data.map((s) => [s.id, s.name]));
  state.configured = true;
  startLive();
}

const TOAST_MS = 8000;

/** A short notice of a new alarm, violation or ticket, linking to where it happened. */
function toast(ev) {
  const fresh = ev.op === "insert" && ["alarm", "violation", "ticket"].includes(ev.kind);
  const cleared = ev.kind === "alarm" && ev.status === "cleared";
  if (!fresh && !cleared) return;
  const box = document.getElementById("toasts");
  const key = cleared ? "toast_cleared" : `toast_${ev.kind}`;
  const href = ev.kind === "ticket" ? `${BASE}/tickets/${ev.id}` : `${BASE}/sites/${encodeURIComponent(ev.site_id)}`;
  const item = h("li", { class: `toast toast-${cleared ? "cleared" : ev.kind}`, dataset: { kind: ev.kind } },
    h("a", { href, "data-link": true }, t(key, { what: ruleLabel(ev.rule), site: siteName(ev.site_id) })));
  box.prepend(item);
  while (box.children.length > 4) box.lastChild.remove();
  setTimeout(() => item.remove(), TOAST_MS);
}
onLiveGlobal(toast);

const ROUTES = [
  [/^\/?$/, () => renderOverview(main)],
  [/^\/kitchen\/?$/, () => renderKitchen(main, new URLSearchParams(location.search))],
  [/^\/tickets\/?$/, () => renderTickets(main, new URLSearchParams(location.search))],
  [/^\/tickets\/(\d+)$/, (m) => renderTicket(main, Number(m[1]))],
  [/^\/tickets\/(\d+)\/notice$/, (m) => renderTicketNotice(main, Number(m[1]))],
  [/^\/sites\/([^/]+)$/, (m) => renderSite(main, decodeURIComponent(m[1]), new URLSearchParams(location.search))],
  [/^\/reviews\/?$/, () => renderReviews(main, new URLSearchParams(location.search))],
  [/^\/inspections\/?$/, () => renderInspections(main, new URLSearchParams(location.search))],
  [/^\/inspections\/new$/, () => renderNewInspection(main, new URLSearchParams(location.search))],
  [/^\/inspections\/(\d+)$/, (m) => renderInspection(main, Number(m[1]))],
  [/^\/insurance\/?$/, () => renderInsurance(main, new URLSearchParams(location.search))],
  [/^\/disinfection\/?$/, () => renderDisinfection(main, new URLSearchParams(location.search))],
  [/^\/rapid-tests\/?$/, () => renderRapidTests(main, new URLSearchParams(location.search))],
  [/^\/deliveries\/?$/, () => renderDeliveries(main, new URLSearchParams(location.search))],
  [/^\/complaints\/?$/, () => renderComplaints(main, new URLSearchParams(location.search))],
  [/^\/publication\/?$/, () => renderPublication(main, new URLSearchParams(location.search))],
  [/^\/sites\/([^/]+)\/qr$/, (m) => renderQrSheet(main, decodeURIComponent(m[1]))],
  [/^\/duties\/?$/, () => renderDuties(main, new URLSearchParams(location.search))],
  [/^\/coverage\/?$/, () => renderCoverage(main)],
  [/^\/visits\/?$/, () => renderVisits(main, new URLSearchParams(location.search))],
  [/^\/reports\/?$/, () => renderReports(main, new URLSearchParams(location.search))],
  [/^\/settings\/?$/, () => renderSettings(main)],
  [/^\/wall\/?$/, () => renderWall(main)],
];

function currentPath() {
  const p = location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length) : p;
}

/**
 * The pages a role is offered, as [group, [href, label key]...]: the overview and the ledger on
 * their own, the rest in three menus (监管 / 台账 / 设置) so the header is one short row even
 * on a phone. A group with nothing in it for the role is left out. An inspector (执法检查人员)
 * is offered its day's work only: inspections, tickets, the review queue and the ledgers it
 * checks on a visit; no settings, users, channels, publication or insurance.
 */
function navGroups(u) {
  const authority = ["admin", "regulator"].includes(u.role);
  const canteen = ["officer", "director"].includes(u.role);
  const inspector = u.role === "inspector";
  const pick = (...entries) => entries.filter((e) => e[0]);
  return [
    [null, pick([true, "/", "nav_overview"], [true, "/tickets", "nav_tickets"])],
    ["nav_g_supervise", pick([!u.read_only, "/reviews", "nav_reviews"], [authority, "/complaints", "nav_complaints"],
      [true, "/inspections", "nav_inspections"], [authority, "/visits", "nav_visits"], [authority, "/coverage", "nav_coverage"],
      [true, "/wall", "nav_wall"], [true, "/kitchen", "nav_kitchen"])],
    ["nav_g_records", pick([canteen, "/duties", "nav_duties"], [canteen, "/reports", "nav_reports"], [true, "/rapid-tests", "nav_rapid_tests"],
      [u.role !== "insurer", "/deliveries", "nav_deliveries"], [!inspector, "/insurance", "nav_insurance"])],
    ["nav_g_settings", pick([authority, "/publication", "nav_publication"], [!inspector, "/settings", "nav_settings"])],
  ].map(([group, entries]) => [group, entries.map(([, href, key]) => [href, key])]).filter(([, entries]) => entries.length);
}

/** Close every open menu of the header but `keep`. */
function closeMenus(keep = null) {
  for (const d of top.querySelectorAll("details.nav-group[open]")) if (d !== keep) d.open = false;
}

function header() {
  const path = currentPath();
  const isHere = (href) => (href === "/" ? path === "/" || path === "" : path.startsWith(href));
  const link = (href, key) => h("li", {}, h("a", { href: BASE + href, "data-link": true, "aria-current": isHere(href) ? "page" : null }, t(key)));
  const menu = (group, entries) => {
    const here = entries.some(([href]) => isHere(href));
    const details = h("details", { class: "nav-group", dataset: { group } },
      h("summary", { class: here ? "here" : null }, t(group)),
      h("ul", { class: "nav-menu" }, entries.map(([href, key]) => link(href, key))));
    details.addEventListener("toggle", () => { if (details.open) closeMenus(details); });
    details.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape" || !details.open) return;
      details.open = false;
      details.querySelector("summary").focus();
    });
    return h("li", {}, details);
  };
  const u = state.me;
  mount(
    top,
    h("span", { class: "brand" }, t("app_title")),
    h("nav", { "aria-label": t("nav") },
      h("ul", {}, navGroups(u).map(([group, entries]) => (group ? menu(group, entries) : entries.map(([href, key]) => link(href, key)))))),
    h("div", { class: "who" },
      liveBadge(),
      h("button", {
        type: "button", id: "lang-switch", class: "secondary", lang: getLang() === "en" ? "zh-CN" : "en",
        "aria-label": t("switch_lang_label"),
        onclick: () => { setLang(getLang() === "en" ? "zh-CN" : "en"); render(); },
      }, t("switch_lang")),
      h("span", { id: "user", title: t("signed_in_as") }, `${u.username} · `, h("span", { id: "user-role" }, t(`role_${u.role}`))),
      h("button", { type: "button", id: "logout", class: "secondary", onclick: logout }, t("signout"))),
  );
  top.hidden = false;
}

async function logout() {
  try {
    await api("/auth/logout", { method: "POST", quiet401: true });
  } catch (e) {
    // already signed out
  }
  state.me = null;
  state.configured = false;
  stopLive();
  history.replaceState(null, "", `${BASE}/`);
  renderLogin();
}

function renderLogin(message = "") {
  top.hidden = true;
  document.title = `${t("signin_title")} · ${t("app_title")}`;
  const err = h("p", { id: "login-error", class: "error", role: "alert" }, message);
  const form = h("form", { id: "login-form", class: "card login", novalidate: true },
    h("h1", {}, t("app_title")),
    h("h2", {}, t("signin_title")),
    h("label", { for: "username" }, t("username")),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    h("label", { for: "password" }, t("password")),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    err,
    h("div", { class: "row" },
      h("button", { type: "submit", id: "login-submit" }, t("signin")),
      h("button", { type: "button", class: "secondary", id: "lang-switch", onclick: () => { setLang(getLang() === "en" ? "zh-CN" : "en"); renderLogin(); } }, t("switch_lang"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      const out = await api("/auth/login", { method: "POST", json: { username: data.get("username"), password: data.get("password") }, quiet401: true });
      state.me = out.user;
      render();
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? t("signin_failed") : t("error", { msg: e.message });
    }
  });
  mount(main, form);
  form.querySelector("#username").focus();
}

/** Values typed into the page (by element id) and the focused element, kept over a refresh. */
function typedState() {
  const values = {};
  for (const el of main.querySelectorAll("input[id], textarea[id], select[id]")) {
    if (el.type !== "file" && el.type !== "checkbox") values[el.id] = el.value;
  }
  const notes = {};
  const fresh = Date.now() - KEEP_MS;
  for (const el of main.querySelectorAll("[data-keep][id]")) {
    if (Number(el.dataset.at || 0) > fresh) notes[el.id] = [el.textContent, el.className, el.dataset.at];
  }
  return { values, notes, focus: document.activeElement && document.activeElement.id, y: window.scrollY };
}

function restoreTyped(kept) {
  for (const [id, value] of Object.entries(kept.values)) {
    const el = document.getElementById(id);
    if (el && el.value !== value && el.type !== "file") el.value = value;
  }
  for (const [id, [text, cls, at]] of Object.entries(kept.notes)) {
    const el = document.getElementById(id);
    if (el && !el.textContent) {
      el.textContent = text;
      el.className = cls;
      el.dataset.at = at;
    }
  }
  const f = kept.focus && document.getElementById(kept.focus);
  if (f && main.contains(f)) f.focus({ preventScroll: true });
  window.scrollTo(0, kept.y);
}

let refreshing = null;
const KEEP_MS = 10000; // a status message outlives live redraws for this long

/** "This page has changed: reload" at the top of the page, instead of redrawing it. */
function staleNotice() {
  if (document.getElementById("stale-notice")) return;
  main.prepend(h("p", { id: "stale-notice", class: "notice", role: "status" }, t("stale_notice"), " ",
    h("button", { type: "button", class: "secondary", onclick: () => render() }, t("reload"))));
}

/** Redraw the current view with fresh data, in place: no loading notice, typing kept. */
export async function refresh() {
  if (!state.me || refreshing) return refreshing;
  if ([...main.querySelectorAll("input[type=file]")].some((i) => i.files && i.files.length)) {
    staleNotice(); // photos chosen: never throw them away, offer the reload instead
    return null;
  }
  refreshing = (async () => {
    const kept = typedState();
    try {
      await render({ quiet: true });
      restoreTyped(kept);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Render the view of the current path (the sign-in page when nobody is signed in). */
export async function render({ quiet = false } = {}) {
  document.documentElement.lang = getLang();
  document.getElementById("skip-link").textContent = t("skip");
  if (!state.me) {
    try {
      state.me = await api("/auth/me", { quiet401: true });
    } catch (e) {
      renderLogin();
      return;
    }
  }
  try {
    await configure();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    mount(main, h("p", { class: "error", role: "alert" }, t("error", { msg: e.message })));
    return;
  }
  header();
  document.title = t("app_title");
  clearLiveViews();
  const path = currentPath();
  if (!/^\/wall\/?$/.test(path)) document.body.classList.remove("wall-mode");
  for (const [re, view] of ROUTES) {
    const m = path.match(re);
    if (m) {
      if (!quiet) mount(main, h("p", { class: "loading", role: "status" }, t("loading")));
      try {
        await view(m);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return;
        const msg = explain(e);
        mount(main, h("p", { class: "error", role: "alert" }, msg));
      } finally {
        liveViewsReady();
      }
      return;
    }
  }
  mount(main, h("div", { class: "card", id: "page-missing" },
    h("h1", {}, t("page_missing")),
    h("p", {}, t("page_missing_hint")),
    h("p", {}, h("a", { href: `${BASE}/`, "data-link": true }, t("nav_overview")))));
}

function signedOut() {
  state.me = null;
  state.configured = false;
  stopLive();
  renderLogin();
}

setUnauthorizedHandler(signedOut);
installDownloads(signedOut);

document.addEventListener("click", (ev) => {
  if (!(ev.target.closest && ev.target.closest("details.nav-group"))) closeMenus(); // a click elsewhere
  const a = ev.target.closest && ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
  main.focus();
});
window.addEventListener("popstate", () => render());
render();
