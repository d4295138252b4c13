// Overview (every canteen at a glance) and the rectification ledger (整改台账).
import { api } from "./api.js";
import { me, navigate, refresh } from "./app.js";
import { h, mount, qs } from "./dom.js";
import { fmtClock, fmtNum, fmtTime, getLang, t } from "./i18n.js";
import { escalationLabel, ruleLabel, ruleOptions, sourceOptions, ticketTitle, tierLabel } from "./labels.js";
import { onLiveTick, onLiveView } from "./live.js";

const BASE = "/console";
const STATUSES = ["open", "acknowledged", "rectified", "rejected", "closed"];
const PAGE = 25;

/** A site's traffic light: red with overdue tickets, amber with open ones, else green. */
export function siteState(s) {
  if (s.overdue_tickets > 0) return "red";
  if (s.open_tickets > 0 || s.active_alarms > 0) return "amber";
  return "green";
}

/** A coloured status badge (the text says it too, never colour alone). */
export function statusBadge(status) {
  return h("span", { class: `badge st-${status}` }, t(`status_${status}`));
}

const sortState = { key: "state", dir: "desc", filter: "", region: "" };
const STATE_RANK = { red: 2, amber: 1, green: 0 };

/**
 * Today's duties at a glance: for a canteen's officer or director each canteen's daily check
 * and food samples with a link to do them; for a regulator the region's totals. Nothing when
 * no canteen in scope keeps duties.
 */
function dutiesCard(duties) {
  if (!duties.length) return null;
  const canteenRole = ["officer", "director"].includes(me().role);
  const line = (d) => {
    const check = d.done ? t("duty_check_done", { t: fmtClock(d.completed_at).slice(0, 5) })
      : d.overdue ? t("duty_check_overdue") : t("duty_check_due", { t: fmtClock(d.deadline_at).slice(0, 5) });
    const meals = d.meals_scheduled ? t("duty_meals", { s: d.meals_sampled, n: d.meals_scheduled })
      + (d.meals_overdue ? ` · ${t("duty_meals_overdue", { n: d.meals_overdue })}` : "") : "";
    const state = d.overdue || d.meals_overdue ? "red" : d.done && d.meals_sampled >= d.meals_scheduled ? "green" : "amber";
    return h("li", { dataset: { siteId: d.site_id, state } },
      h("span", { class: `light light-${state}` }, d.site_name), " ",
      h("span", {}, [check, meals].filter(Boolean).join(" · ")), " ",
      h("a", { href: `${BASE}/duties${qs({ site_id: d.site_id })}`, "data-link": true }, t("duty_go")));
  };
  if (canteenRole && duties.length <= 5) {
    return h("section", { class: "card", id: "duty-today", "aria-labelledby": "duty-today-h" },
      h("h2", { id: "duty-today-h" }, t("duty_today")), h("ul", { class: "plain" }, duties.map(line)));
  }
  const sum = (k) => duties.reduce((a, d) => a + Number(d[k]), 0); // true counts as 1
  return h("section", { class: "card", id: "duty-today", "aria-labelledby": "duty-today-h" },
    h("h2", { id: "duty-today-h" }, t("duty_today")),
    h("p", { id: "duty-summary" }, t("duty_summary", {
      done: sum("done"), n: duties.length, over: sum("overdue"), meals: sum("meals_overdue"),
    })));
}

export async function renderOverview(main) {
  const [overview, duties] = await Promise.all([
    api("/console/api/overview"), api("/duties/today").catch(() => []),
  ]);
  const rows = overview.data.map((s) => ({
    ...s,
    region: overview.regions[s.region_id] || s.region_id,
    state: siteState(s),
  }));
  const total = (list, k) => list.reduce((a, r) => a + r[k], 0);
  const tbody = h("tbody");
  const stat = (id) => h("strong", { id });
  const stats = { sites: stat("stat-sites"), open: stat("stat-open"), overdue: stat("stat-overdue"), alarms: stat("stat-alarms") };
  const cols = [
    ["name", "name"], ["region", "region"], ["state", "state"], ["open_tickets", "open_tickets"],
    ["overdue_tickets", "overdue_tickets"], ["active_alarms", "active_alarms"], ["risk", "risk"],
  ];
  const ths = cols.map(([key, label]) => {
    const th = h("th", { scope: "col", dataset: { key } },
      h("button", { type: "button", class: "sort", title: t("sort_by", { col: t(label) }), onclick: () => {
        sortState.dir = sortState.key === key && sortState.dir === "asc" ? "desc" : "asc";
        sortState.key = key;
        draw();
      } }, t(label)));
    return th;
  });
  const filter = h("input", { id: "site-filter", type: "search", value: sortState.filter, placeholder: t("filter_name"), "aria-label": t("filter_name") });
  filter.addEventListener("input", () => { sortState.filter = filter.value; draw(); });
  // a prefecture's or a city's regulator sees several districts: one at a time, or all
  const regionIds = [...new Set(rows.map((r) => r.region_id))].sort((a, b) =>
    (overview.regions[a] || a).localeCompare(overview.regions[b] || b, "zh-CN"));
  if (!regionIds.includes(sortState.region)) sortState.region = "";
  const regionPick = regionIds.length > 1 ? h("select", { id: "region-filter", "aria-label": t("region") },
    h("option", { value: "" }, t("all_regions")),
    regionIds.map((id) => h("option", { value: id, selected: id === sortState.region },
      `${overview.regions[id] || id} (${rows.filter((r) => r.region_id === id).length})`))) : null;
  regionPick?.addEventListener("change", () => { sortState.region = regionPick.value; draw(); });

  function value(r, key) {
    if (key === "state") return STATE_RANK[r.state] * 1e6 + r.overdue_tickets * 1e3 + r.open_tickets;
    if (key === "risk") return r.risk ?? -1;
    return r[key];
  }

  function draw() {
    const f = sortState.filter.trim().toLowerCase();
    const inRegion = rows.filter((r) => !sortState.region || r.region_id === sortState.region);
    const shown = inRegion.filter((r) => !f || r.name.toLowerCase().includes(f) || r.id.toLowerCase().includes(f));
    stats.sites.textContent = inRegion.length; // the tiles count the region chosen
    stats.open.textContent = total(inRegion, "open_tickets");
    stats.overdue.textContent = total(inRegion, "overdue_tickets");
    stats.alarms.textContent = total(inRegion, "active_alarms");
    const sign = sortState.dir === "asc" ? 1 : -1;
    shown.sort((a, b) => {
      const va = value(a, sortState.key), vb = value(b, sortState.key);
      const c = typeof va === "string" ? va.localeCompare(vb, "zh-CN") : va - vb;
      return c * sign || a.id.localeCompare(b.id);
    });
    for (const th of ths) {
      th.setAttribute("aria-sort", th.dataset.key === sortState.key ? (sortState.dir === "asc" ? "ascending" : "descending") : "none");
    }
    mount(tbody, shown.length ? shown.map((r) => h("tr", { class: `site-row state-${r.state}`, dataset: { siteId: r.id, state: r.state } },
      h("th", { scope: "row" }, h("a", { href: `${BASE}/sites/${encodeURIComponent(r.id)}`, "data-link": true }, r.name)),
      h("td", { "data-label": t("region") }, r.region),
      h("td", { "data-label": t("state") }, h("span", { class: `light light-${r.state}` }, t(`state_${r.state}`))),
      h("td", { class: "num", "data-label": t("open_tickets") }, r.open_tickets ? h("a", { href: `${BASE}/tickets${qs({ site_id: r.id })}`, "data-link": true }, r.open_tickets) : "0"),
      h("td", { class: "num", "data-label": t("overdue_tickets") }, r.overdue_tickets ? h("a", { href: `${BASE}/tickets${qs({ site_id: r.id, overdue: 1 })}`, "data-link": true }, r.overdue_tickets) : "0"),
      h("td", { class: "num", "data-label": t("active_alarms") }, r.active_alarms),
      h("td", { class: "num", "data-label": t("risk") }, fmtNum(r.risk, 0))))
      : h("tr", {}, h("td", { colspan: cols.length }, t("no_sites"))));
  }
  draw();
  // what the overview counts: tickets (opened, moved on, escalated) and alarms; not comments
  // or captures in review. Deadlines pass without any event, so it also redraws each minute.
  onLiveView((ev) => ev.kind === "ticket" || ev.kind === "alarm", refresh);
  onLiveTick(60000, refresh);
  mount(main,
    h("h1", {}, t("overview_title")),
    h("ul", { class: "stats" },
      h("li", {}, stats.sites, t("canteens")),
      h("li", { class: "amber" }, stats.open, t("open_tickets")),
      h("li", { class: "red" }, stats.overdue, t("overdue_tickets")),
      h("li", {}, stats.alarms, t("active_alarms"))),
    dutiesCard(duties),
    h("div", { class: "toolbar" }, regionPick, filter),
    h("div", { class: "table-wrap" }, h("table", { id: "sites-table", class: "stack" }, h("caption", { class: "sr-only" }, t("overview_title")),
      h("thead", {}, h("tr", {}, ths)), tbody)));
}

/** The ticket filters of a URL query. */
function filtersOf(params) {
  return {
    status: params.get("status") || "",
    tier: params.get("tier") || "",
    rule: params.get("rule") || "",
    source: params.get("source") || "",
    site_id: params.get("site_id") || "",
    overdue: params.get("overdue") === "1" || params.get("overdue") === "true",
    opened_from: params.get("opened_from") || "",
  };
}

/** One page of tickets; the API filters overdue tickets itself, so the count and pages are exact. */
async function ticketPage(f, page) {
  const base = { status: f.status, tier: f.tier, rule: f.rule, source: f.source, site_id: f.site_id, opened_from: f.opened_from, overdue: f.overdue ? "true" : "" };
  const out = await api(`/tickets${qs({ ...base, limit: PAGE, offset: (page - 1) * PAGE })}`);
  return { data: out.data, count: out.count, estimate: Boolean(out.count_is_estimate) };
}

export async function renderTickets(main, params) {
  const f = filtersOf(params);
  const page = Math.max(1, Number(params.get("page") || 1));
  const [sites, result] = await Promise.all([api("/sites"), ticketPage(f, page)]);
  const names = Object.fromEntries(sites.data.map((s) => [s.id, s.name]));
  const pages = Math.max(1, Math.ceil(result.count / PAGE));

  const select = (id, label, options, value) => h("div", { class: "field" },
    h("label", { for: id }, label),
    h("select", { id, name: id.replace("f-", "") },
      h("option", { value: "" }, t("any")),
      options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text))));
  const form = h("form", { id: "ticket-filters", class: "filters", "aria-label": t("filters") },
    select("f-status", t("status"), STATUSES.map((s) => [s, t(`status_${s}`)]), f.status),
    select("f-tier", t("tier"), [1, 2, 3].map((n) => [n, t("tier_n", { n })]), f.tier),
    select("f-rule", t("rule"), ruleOptions(), f.rule),
    select("f-source", t("source"), sourceOptions(), f.source),
    select("f-site_id", t("site"), sites.data.map((s) => [s.id, s.name]), f.site_id),
    h("div", { class: "field check" }, h("input", { id: "f-overdue", name: "overdue", type: "checkbox", value: "1", checked: f.overdue }),
      h("label", { for: "f-overdue" }, t("overdue"))),
    // the window a trend of the wall screen links with: kept until unticked
    f.opened_from ? h("div", { class: "field check" }, h("input", { id: "f-opened_from", name: "opened_from", type: "checkbox", value: f.opened_from, checked: true }),
      h("label", { for: "f-opened_from" }, t("opened_since", { date: fmtTime(f.opened_from) }))) : null,
    h("div", { class: "field buttons" },
      h("button", { type: "submit", id: "f-apply" }, t("apply")),
      h("a", { href: `${BASE}/tickets`, "data-link": true, class: "button secondary" }, t("reset"))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    navigate(`${BASE}/tickets${qs({ status: d.get("status"), tier: d.get("tier"), rule: d.get("rule"), source: d.get("source"), site_id: d.get("site_id"), overdue: d.get("overdue") ? 1 : "", opened_from: d.get("opened_from") })}`);
  });
  onLiveView((ev) => ev.kind === "ticket", refresh);
  onLiveTick(60000, refresh); // a deadline passing makes a ticket overdue without any event
  const exportQuery = qs({ status: f.status, tier: f.tier, rule: f.rule, source: f.source, site_id: f.site_id, overdue: f.overdue ? "true" : "", opened_from: f.opened_from });
  const go = (p) => `${BASE}/tickets${qs({ ...f, overdue: f.overdue ? 1 : "", page: p })}`;

  mount(main,
    h("h1", {}, t("tickets_title")),
    // on a phone the filters fold away unless one is set, so the rows come first
    h("details", { class: "filters-box", id: "filters-box",
      open: !window.matchMedia("(max-width: 640px)").matches || Boolean(f.status || f.tier || f.rule || f.source || f.site_id || f.overdue || f.opened_from) },
    h("summary", {}, t("filters")), form),
    h("div", { class: "toolbar" },
      h("span", { id: "ticket-count" }, t("count_of", { n: result.estimate ? `≈${result.count}` : result.count })),
      h("span", { class: "row no-print" },
        h("a", { id: "export-xlsx", class: "button", href: `${BASE}/export/tickets.xlsx${exportQuery}${exportQuery ? "&" : "?"}lang=${getLang()}`, download: "" }, t("export_xlsx")),
        h("a", { id: "export-csv", class: "button secondary", href: `${BASE}/export/tickets.csv${exportQuery}`, download: "tickets.csv" }, t("export_csv")),
        h("button", { type: "button", id: "print-ledger", class: "secondary", onclick: () => window.print() }, t("print")))),
    h("p", { class: "print-only" }, t("printed_at", { at: fmtTime(new Date().toISOString()) })),
    h("div", { class: "table-wrap" }, h("table", { id: "tickets-table", class: "stack" },
      h("caption", { class: "sr-only" }, t("tickets_title")),
      h("thead", {}, h("tr", {}, ["ticket_no", "site", "title", "rule", "tier", "status", "opened_at", "due_at", "escalation"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, result.data.length ? result.data.map((x) => h("tr", { class: x.overdue ? "overdue" : null, dataset: { ticketId: x.id } },
        h("th", { scope: "row" }, h("a", { href: `${BASE}/tickets/${x.id}`, "data-link": true }, x.ticket_no)),
        h("td", { "data-label": t("site") }, h("a", { href: `${BASE}/sites/${encodeURIComponent(x.site_id)}`, "data-link": true }, names[x.site_id] || x.site_id)),
        h("td", { "data-label": t("title") }, ticketTitle(x)),
        h("td", { "data-label": t("rule") }, ruleLabel(x.rule, x.details && x.details.profile)),
        h("td", { "data-label": t("tier") }, tierLabel(x.tier)),
        h("td", { "data-label": t("status") }, statusBadge(x.status)),
        h("td", { "data-label": t("opened_at") }, fmtTime(x.opened_at)),
        h("td", { "data-label": t("due_at") }, fmtTime(x.due_at), x.overdue ? h("span", { class: "badge st-overdue" }, t("overdue_badge")) : null),
        h("td", { "data-label": t("escalation"), dataset: { level: String(x.escalation_level) } }, escalationLabel(x.escalation_level))))
        : h("tr", {}, h("td", { colspan: 9 }, t("no_tickets")))))),
    h("nav", { class: "pager", "aria-label": t("page_of", { p: page, n: pages }) },
      page > 1 ? h("a", { href: go(page - 1), "data-link": true, rel: "prev" }, t("prev")) : null,
      h("span", { id: "page-info" }, t("page_of", { p: page, n: pages })),
      page < pages ? h("a", { href: go(page + 1), "data-link": true, rel: "next", id: "next-page" }, t("next")) : null));
}
