// The region wall screen (大屏) for a supervision centre: counts at a glance, every canteen
// as a coloured tile grouped by district (no online map), tickets per day by kind (rule, in
// words) over 7/30/90 days with each kind's total linking to the ledger filtered the same
// way, the riskiest canteens. Live, and redrawn every minute besides.
import { api } from "./api.js";
import { refresh } from "./app.js";
import { h, mount, qs } from "./dom.js";
import { fmtClock, fmtNum, getLang, getTimeZone, t } from "./i18n.js";
import { onLiveView } from "./live.js";
import { ruleLabel } from "./labels.js";
import { siteState } from "./views.js";

const BASE = "/console";
const WINDOWS = [7, 30, 90];
// one colour per kind (rule), most tickets first; distinct on the dark wall background (the
// swatches of the totals list use the same colours: .kind-0 … .kind-9 in console.css)
const PALETTE = ["#ff6b5b", "#f5b041", "#5dade2", "#af7ac5", "#58d68d", "#f1948a", "#48c9b0", "#dc7633", "#aab7b8", "#f7dc6f"];
let windowDays = 30;
let timer = null;

function kpi(id, value, label, cls = "") {
  return h("li", { class: `wall-kpi ${cls}` }, h("strong", { id }, value), h("span", {}, label));
}

function trendChart(trend) {
  const box = h("div", { class: "uchart", id: "wall-trend", role: "img", "aria-label": t("wall_trend"), dataset: { days: trend.days.length } });
  if (typeof window.uPlot !== "function") return box;
  const tz = getTimeZone();
  const xs = trend.days.map((d) => new Date(`${d}T12:00:00Z`).getTime() / 1000);
  const kinds = Object.keys(trend.by_kind);
  const md = new Intl.DateTimeFormat(getLang(), { timeZone: "UTC", month: "numeric", day: "numeric" });
  const chart = new window.uPlot({
    width: 400,
    height: 220,
    legend: { show: false }, // nobody hovers a wall screen: the totals below name each line
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), tz),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [
      { stroke: "#c9d4de", grid: { stroke: "#2b353f" }, values: (u, s) => s.map((v) => md.format(new Date(v * 1000))) },
      { stroke: "#c9d4de", grid: { stroke: "#2b353f" }, label: t("wall_tickets_per_day"), labelSize: 18, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
    ],
    series: [{ label: t("chart_time"), value: (u, v) => (v ? md.format(new Date(v * 1000)) : "--") },
      ...kinds.map((k, i) => ({ label: ruleLabel(k), stroke: PALETTE[i % PALETTE.length], width: 2 }))],
  }, [xs, ...kinds.map((k) => trend.by_kind[k])], box);
  const fit = () => chart.setSize({ width: Math.max(240, box.clientWidth), height: 220 });
  new ResizeObserver(fit).observe(box);
  return box;
}

/** Each kind's tickets in the window, linking to the ledger of that kind since the window began. */
function kindTotals(trend) {
  const kinds = Object.keys(trend.totals);
  if (!kinds.length) return h("p", { id: "wall-kinds" }, t("no_tickets"));
  return h("ul", { class: "wall-kinds", id: "wall-kinds", "aria-label": t("wall_kinds", { n: trend.days.length }) },
    kinds.map((k, i) => h("li", { dataset: { rule: k } },
      h("span", { class: `swatch kind-${i % PALETTE.length}`, "aria-hidden": "true" }), " ",
      h("a", { href: `${BASE}/tickets${qs({ rule: k, opened_from: trend.since })}`, "data-link": true }, ruleLabel(k)), " ",
      h("strong", { class: "n" }, trend.totals[k]))));
}

export async function renderWall(main) {
  const [sites, wall] = await Promise.all([api("/console/api/overview"), api(`/console/api/wall${qs({ days: windowDays })}`)]);
  const summary = { regions: sites.regions, risk: Object.fromEntries(sites.data.filter((s) => s.risk !== null).map((s) => [s.id, { score: s.risk }])) };
  document.body.classList.add("wall-mode");
  const k = wall.kpis;
  const byRegion = new Map();
  for (const s of sites.data) {
    if (!byRegion.has(s.region_id)) byRegion.set(s.region_id, []);
    byRegion.get(s.region_id).push(s);
  }
  const riskiest = sites.data
    .filter((s) => summary.risk[s.id])
    .sort((a, b) => summary.risk[b.id].score - summary.risk[a.id].score)
    .slice(0, 8);
  const clock = h("span", { id: "wall-clock" }, fmtClock());
  clearInterval(timer);
  timer = setInterval(() => {
    if (!document.body.contains(clock)) {
      clearInterval(timer);
      document.body.classList.remove("wall-mode");
      return;
    }
    clock.textContent = fmtClock();
    if (new Date().getSeconds() === 0) refresh(); // once a minute besides the live events
  }, 1000);
  onLiveView((ev) => ["ticket", "alarm", "violation"].includes(ev.kind), refresh); // not comments or reviews
  mount(main,
    h("div", { class: "wall", id: "wall" },
      h("div", { class: "wall-bar" },
        h("h1", {}, t("wall_title")), clock,
        h("div", { class: "row", role: "group", "aria-label": t("wall_window") }, WINDOWS.map((d) => h("button", {
          type: "button", class: "secondary range", "aria-pressed": String(d === windowDays), dataset: { days: d },
          onclick: () => { windowDays = d; refresh(); },
        }, t("wall_days", { n: d })))),
        h("button", { type: "button", class: "secondary", id: "wall-full", onclick: () => document.documentElement.requestFullscreen?.() }, t("wall_fullscreen")),
        h("a", { href: `${BASE}/`, "data-link": true, class: "button secondary", id: "wall-exit" }, t("wall_exit"))),
      h("ul", { class: "wall-kpis" },
        kpi("kpi-online", `${k.sites_online} / ${k.sites}`, t("wall_online")),
        kpi("kpi-open", k.open_tickets, t("open_tickets"), "amber"),
        kpi("kpi-overdue", k.overdue_tickets, t("overdue_tickets"), "red"),
        kpi("kpi-alarms", k.active_alarms, t("active_alarms"), k.active_alarms ? "red" : ""),
        kpi("kpi-rate", k.rectification_rate === null ? "—" : `${Math.round(k.rectification_rate * 100)}%`, t("wall_rate", { n: windowDays })),
        kpi("kpi-mttr", k.mean_hours_to_rectify === null ? "—" : t("hours_n", { n: fmtNum(k.mean_hours_to_rectify, 1) }), t("wall_mttr"))),
      h("div", { class: "wall-grid" },
        h("section", { class: "wall-panel", "aria-labelledby": "wall-map-h" },
          h("h2", { id: "wall-map-h" }, t("wall_districts")),
          h("div", { class: "districts", id: "districts" }, [...byRegion.entries()].map(([rid, list]) => h("div", { class: "district", dataset: { regionId: rid } },
            h("h3", {}, summary.regions[rid] || rid, h("small", {}, ` ${list.length}`)),
            h("div", { class: "tiles" }, list.map((s) => {
              const st = siteState(s);
              return h("a", { href: `${BASE}/sites/${encodeURIComponent(s.id)}`, "data-link": true, class: `tile tile-${st}`, title: `${s.name} · ${t(`state_${st}`)}`, "aria-label": `${s.name}: ${t(`state_${st}`)}`, dataset: { siteId: s.id, state: st } });
            }))))),
          h("p", { class: "legend" }, ["red", "amber", "green"].map((st) => h("span", { class: `tile tile-${st}` })), " ",
            ["red", "amber", "green"].map((st) => t(`state_${st}`)).join(" / "))),
        h("section", { class: "wall-panel", "aria-labelledby": "wall-trend-h" },
          h("h2", { id: "wall-trend-h" }, t("wall_trend")), trendChart(wall.trend), kindTotals(wall.trend)),
        h("section", { class: "wall-panel", "aria-labelledby": "wall-risk-h" },
          h("h2", { id: "wall-risk-h" }, t("wall_riskiest")),
          riskiest.length ? h("ol", { id: "wall-riskiest" }, riskiest.map((s) => h("li", { dataset: { siteId: s.id } },
            h("a", { href: `${BASE}/sites/${encodeURIComponent(s.id)}`, "data-link": true }, s.name), " ",
            h("strong", {}, fmtNum(summary.risk[s.id].score, 0)))))
            : h("p", {}, t("no_history"))))));
}
