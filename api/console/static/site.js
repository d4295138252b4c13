// One canteen: sensors with their last 24 h (an inline SVG drawn here), tickets, alarms, risk.
import { api } from "./api.js";
import { refresh } from "./app.js";
import { h, mount, qs } from "./dom.js";
import { fmtNum, fmtTime, t, tOr } from "./i18n.js";
import { profileLabel, ruleLabel, ticketTitle } from "./labels.js";
import { onLiveView } from "./live.js";
import { siteState, statusBadge } from "./views.js";
import { alarmPeriods, tempChart } from "./charts.js";

const BASE = "/console";
const W = 320;
const H = 90;
const PAD = 4;

/**
 * A line chart of `points` ([{x: ms, y}]) with optional horizontal limit lines, as SVG.
 * The y range covers the data and the limits; gaps over 3 buckets break the line.
 */
export function lineChart(points, { limits = [], from, to, label, gapMs = 15 * 60 * 1000 } = {}) {
  const ys = points.map((p) => p.y).concat(limits.filter((v) => v !== null && v !== undefined));
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const margin = (hi - lo) * 0.1;
  lo -= margin; hi += margin;
  const x0 = from ?? points[0].x, x1 = to ?? points[points.length - 1].x;
  const sx = (x) => PAD + ((x - x0) / Math.max(1, x1 - x0)) * (W - 2 * PAD);
  const sy = (y) => H - PAD - ((y - lo) / (hi - lo)) * (H - 2 * PAD);
  const segments = [];
  let seg = [];
  points.forEach((p, i) => {
    if (i > 0 && p.x - points[i - 1].x > gapMs && seg.length) { segments.push(seg); seg = []; }
    seg.push(`${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`);
  });
  if (seg.length) segments.push(seg);
  return h("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, preserveAspectRatio: "none" },
    h("title", {}, label),
    h("rect", { x: 0, y: 0, width: W, height: H, class: "chart-bg" }),
    limits.filter((v) => v !== null && v !== undefined).map((v) => h("line", { x1: PAD, x2: W - PAD, y1: sy(v), y2: sy(v), class: "chart-limit" })),
    segments.map((s) => (s.length === 1
      ? h("circle", { cx: s[0].split(",")[0], cy: s[0].split(",")[1], r: 1.5, class: "chart-dot" })
      : h("polyline", { points: s.join(" "), class: "chart-line" }))));
}

const RANGES = [
  ["24h", 24 * 3600e3, "5m", 400],
  ["7d", 7 * 24 * 3600e3, "1h", 400],
  ["30d", 30 * 24 * 3600e3, "1h", 800],
  ["365d", 365 * 24 * 3600e3, "1h", 9000],
];

/** Readings of `sensor` over the last `span` ms at `resolution`, as chart points. */
async function chartPoints(sensorId, span, resolution, limit, to) {
  const from = new Date(to.getTime() - span);
  const data = await api(`/sensors/${encodeURIComponent(sensorId)}/readings${qs({ resolution, from: from.toISOString(), to: to.toISOString(), limit })}`);
  return data.points.map((p) => ({ x: new Date(p.ts).getTime(), y: p.temp_c, lo: p.temp_min_c, hi: p.temp_max_c }));
}

const chosenRange = new Map(); // sensor id → the range the reader picked, kept over live redraws

async function sensorCard(sensor, to, alarms) {
  const lim = [sensor.params.low_c, sensor.params.high_c];
  const limText = lim.every((v) => v === null || v === undefined) ? "—" : `${fmtNum(lim[0])} … ${fmtNum(lim[1])} °C`;
  const name = sensor.name || profileLabel(sensor.profile);
  const holder = h("div", { class: "chart-holder" });
  const summary = h("p", { class: "muted" });
  const periods = alarmPeriods(alarms, sensor.id, to.getTime());
  const buttons = RANGES.map(([key]) => h("button", { type: "button", class: "secondary range", dataset: { range: key }, "aria-pressed": "false", onclick: () => draw(key) }, t(`range_${key}`)));
  async function draw(key) {
    const [, span, resolution, limit] = RANGES.find((r) => r[0] === key);
    chosenRange.set(sensor.id, key);
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === key)));
    const pts = await chartPoints(sensor.id, span, resolution, limit, to);
    const last = pts.length ? pts[pts.length - 1] : null;
    summary.textContent = `${t("limits")}: ${limText}` + (last
      ? ` · ${t("latest")}: ${fmtNum(last.y)} °C · ${t("min")} ${fmtNum(Math.min(...pts.map((p) => p.lo ?? p.y)))} · ${t("max")} ${fmtNum(Math.max(...pts.map((p) => p.hi ?? p.y)))}`
      : "");
    mount(holder, pts.length
      ? tempChart({ points: pts, low: lim[0], high: lim[1], alarms: periods, from: to.getTime() - span, to: to.getTime(), label: `${name}: ${t(`range_${key}`)}` })
      : h("p", { class: "muted no-readings" }, t("no_readings_in", { range: t(`range_${key}`) })));
  }
  await draw(chosenRange.get(sensor.id) || "24h");
  return h("li", { class: "card sensor", dataset: { sensorId: sensor.id } },
    h("h3", {}, name, " ", h("small", {}, profileLabel(sensor.profile))),
    summary,
    h("div", { class: "row ranges", role: "group", "aria-label": t("chart_range") }, buttons),
    holder,
    h("p", { class: "muted small" }, t("chart_hint")));
}

function cameraCard(c) {
  return h("li", { class: "card camera", dataset: { cameraId: c.id, state: c.state } },
    h("h3", {}, c.name || t("device"), " ", h("span", { class: `cam cam-${c.state}` }, t(`cam_${c.state}`))),
    h("p", { class: "muted small" }, `${t("cam_last_report")}: ${fmtTime(c.status_at)}`),
    c.last_evidence_sha256
      ? h("figure", {}, h("img", { src: `/api/v1/evidence/${c.last_evidence_sha256}`, alt: `${t("cam_latest")} ${c.name}`, class: "evidence-img", loading: "lazy" }),
        h("figcaption", { class: "small muted" }, `${t("cam_latest")} · ${fmtTime(c.last_violation_at)}`))
      : h("p", { class: "muted" }, t("cam_no_snapshot")));
}

const TICKETS_PAGE = 25;

export async function renderSite(main, siteId, params = new URLSearchParams()) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [sites, sensors, cameras, summary, recentAlarms, risk, tickets, alarms, inspections, checks] = await Promise.all([
    api("/sites"),
    api(`/console/api/sites/${encodeURIComponent(siteId)}/sensors`),
    api(`/console/api/sites/${encodeURIComponent(siteId)}/cameras`),
    api("/console/api/summary"),
    api(`/alarms${qs({ site_id: siteId, limit: 500 })}`),
    api(`/sites/${encodeURIComponent(siteId)}/risk`),
    // the site's open tickets (any status but closed), asked of the API: the count is the true one
    api(`/tickets${qs({ site_id: siteId, closed: "false", limit: TICKETS_PAGE, offset: (page - 1) * TICKETS_PAGE })}`),
    api(`/alarms${qs({ site_id: siteId, status: "active", limit: 100 })}`),
    api(`/inspections${qs({ site_id: siteId, limit: 20 })}`),
    api(`/disinfection/checks${qs({ site_id: siteId, limit: 12 })}`).catch(() => ({ data: [] })),
  ]);
  const site = sites.data.find((s) => s.id === siteId);
  const open = tickets.data;
  const pages = Math.max(1, Math.ceil(tickets.count / TICKETS_PAGE));
  const go = (p) => `${BASE}/sites/${encodeURIComponent(siteId)}${qs({ page: p > 1 ? p : "" })}`;
  const now = new Date();
  const cards = await Promise.all(sensors.map((s) => sensorCard(s, now, recentAlarms.data)));
  const stored = summary.risk[siteId] || null; // the number the overview shows too
  const hist = [...risk.history].reverse();
  const deviceNames = Object.fromEntries([
    ...sensors.map((x) => [x.id, x.name || profileLabel(x.profile)]),
    ...cameras.map((c) => [c.id, c.name || t("camera")]), // camera_offline alarms name their camera
  ]);
  const profiles = Object.fromEntries(sensors.map((x) => [x.id, x.profile]));
  onLiveView((ev) => ev.site_id === siteId, refresh);
  document.title = `${site.name} · ${t("app_title")}`;
  const state = siteState(site);
  mount(main,
    h("h1", {}, t("site_title", { name: site.name }), " ", h("span", { class: `light light-${state}` }, t(`state_${state}`))),
    site.address ? h("p", { class: "muted" }, `${t("address")}: ${site.address}`) : null,
    h("p", {}, h("a", { id: "site-qr", href: `/console/sites/${encodeURIComponent(siteId)}/qr`, "data-link": true }, t("site_print_qr"))),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "risk-h" },
        h("h2", { id: "risk-h" }, t("risk"), ": ", h("span", { id: "risk-now" }, fmtNum(stored ? stored.score : risk.current.score, 0))),
        h("p", { class: "muted small" }, stored ? t("risk_stored_at", { at: fmtTime(stored.computed_at) }) : t("risk_not_stored"),
          stored ? ` · ${t("risk_live", { v: fmtNum(risk.current.score, 0) })}` : ""),
        h("table", { class: "compact" }, h("caption", {}, t("components")), h("tbody", {},
          Object.entries(risk.current.components).map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, tOr(`comp_${k}`, k)), h("td", { class: "num" }, fmtNum(v, 2)))))),
        h("h3", {}, t("risk_history")),
        hist.length > 1
          ? lineChart(hist.map((p) => ({ x: new Date(p.computed_at).getTime(), y: p.score })), { label: t("risk_history"), gapMs: Infinity })
          : h("p", { class: "muted" }, hist.length ? `${fmtTime(hist[0].computed_at)}: ${fmtNum(hist[0].score, 0)}` : t("no_history"))),
      h("section", { class: "card", "aria-labelledby": "alarms-h" },
        h("h2", { id: "alarms-h" }, t("alarms")),
        alarms.data.length ? h("ul", { id: "site-alarms" }, alarms.data.map((a) => h("li", { dataset: { alarmId: a.id } },
          h("strong", {}, ruleLabel(a.rule, profiles[a.sensor_id])), ` · ${deviceNames[a.sensor_id ?? a.camera_id] || t("device")} · ${fmtTime(a.raised_at)}`,
          a.peak_temp_c !== null ? ` · ${fmtNum(a.peak_temp_c)} °C` : "",
          a.ticket_id ? [" · ", h("a", { href: `${BASE}/tickets/${a.ticket_id}`, "data-link": true }, t("to_ticket"))] : null)))
          : h("p", {}, t("no_alarms")))),
    h("section", { "aria-labelledby": "cameras-h" },
      h("h2", { id: "cameras-h" }, t("cameras")),
      cameras.length ? h("ul", { class: "sensors", id: "cameras" }, cameras.map(cameraCard)) : h("p", {}, t("no_cameras"))),
    h("section", { "aria-labelledby": "sensors-h" },
      h("h2", { id: "sensors-h" }, t("sensors")),
      cards.length ? h("ul", { class: "sensors", id: "sensors" }, cards) : h("p", {}, t("no_sensors"))),
    h("section", { class: "card", "aria-labelledby": "open-h" },
      h("h2", { id: "open-h" }, t("open_tickets"), " (", h("span", { id: "site-open-count" }, tickets.count_is_estimate ? `≈${tickets.count}` : String(tickets.count)), ")"),
      open.length ? h("ul", { id: "site-tickets" }, open.map((x) => h("li", { class: x.overdue ? "overdue" : null },
        h("a", { href: `${BASE}/tickets/${x.id}`, "data-link": true }, x.ticket_no), " ", statusBadge(x.status), ` ${ticketTitle(x)} · ${t("due_at")} ${fmtTime(x.due_at)}`,
        x.overdue ? h("span", { class: "badge st-overdue" }, t("overdue_badge")) : null)))
        : h("p", {}, t("no_tickets")),
      pages > 1 ? h("nav", { class: "pager", id: "site-tickets-pager", "aria-label": t("page_of", { p: page, n: pages }) },
        page > 1 ? h("a", { href: go(page - 1), "data-link": true, rel: "prev" }, t("prev")) : null,
        h("span", {}, t("page_of", { p: page, n: pages })),
        page < pages ? h("a", { href: go(page + 1), "data-link": true, rel: "next", id: "site-tickets-next" }, t("next")) : null) : null),
    checks.data.length ? h("section", { class: "card", "aria-labelledby": "dis-h" },
      h("h2", { id: "dis-h" }, t("dis_title"), " ",
        h("small", {}, h("a", { href: `${BASE}/disinfection${qs({ site_id: siteId })}`, "data-link": true, id: "dis-ledger" }, t("dis_ledger")))),
      h("table", { class: "compact", id: "site-disinfection" },
        h("thead", {}, h("tr", {}, [t("dis_day"), t("dis_meal"), t("dis_cabinet"), t("dis_outcome")].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, checks.data.map((c) => h("tr", { class: c.outcome === "done" ? null : "overdue", dataset: { outcome: c.outcome } },
          h("td", {}, c.service_date), h("td", {}, tOr(`meal_${c.meal}`, c.meal)),
          h("td", {}, deviceNames[c.sensor_id] || t("device")),
          h("td", {}, tOr(`dis_${c.outcome}`, c.outcome),
            c.ticket_id ? [" · ", h("a", { href: `${BASE}/tickets/${c.ticket_id}`, "data-link": true }, t("to_ticket"))] : null)))))) : null,
    h("section", { class: "card", "aria-labelledby": "insp-h" },
      h("h2", { id: "insp-h" }, t("inspections")),
      inspections.length ? h("table", { class: "compact", id: "site-inspections" },
        h("thead", {}, h("tr", {}, [t("created_at"), t("kind"), t("items"), t("failed"), t("notice")].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, inspections.map((i) => h("tr", {},
          h("td", {}, fmtTime(i.started_at)), h("td", {}, tOr(`insp_${i.kind}`, i.kind)), h("td", { class: "num" }, i.items), h("td", { class: "num" }, i.failed),
          h("td", {}, i.notice_no ? h("a", { href: `/api/v1/inspections/${i.id}/notice?format=html`, target: "_blank", rel: "noopener" }, i.notice_no) : "—")))))
        : h("p", {}, t("no_inspections"))));
}
