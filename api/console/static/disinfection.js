// The disinfection ledger (消毒记录): each cabinet's cycles and each meal's judged window,
// with the CSV and XLSX exports. Phone-first: the tables scroll inside their card.
import { api } from "./api.js";
import { siteName } from "./app.js";
import { cell, h, mount, pager, qs } from "./dom.js";
import { fmtNum, fmtTime, getLang, getTimeZone, wordsOf } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "消毒记录", cycles: "消毒周期", checks: "餐后消毒检查", site: "单位", all_sites: "全部单位",
    from: "开始日期", to: "结束日期", show: "查询", day: "日期", cabinet: "消毒设备", start: "开始",
    end: "结束", minutes: "时长(分钟)", peak: "最高温度(℃)", held: "达标保持(分钟)", verdict: "结果",
    meal: "餐次", window_end: "检查截止", outcome: "检查结果", ticket: "整改单", none: "没有记录",
    csv: "导出 CSV", xlsx: "导出 Excel",
    valid: "合格", too_cool: "温度不足", too_short: "时间不足",
    done: "已消毒", missed: "未消毒", failed: "消毒不合格",
    breakfast: "早餐", lunch: "午餐", dinner: "晚餐",
    powered: "通电(分钟)", by_power: "仅凭通电判定(无温度)", by_power_temperature: "插座计时", by_temperature: "",
    newer: "较新的记录", older: "更早的记录", page_of: "第 {p} / {n} 页，共 {count} 条",
  },
  en: {
    title: "Disinfection ledger", cycles: "Cycles", checks: "After-meal checks", site: "Site", all_sites: "All sites",
    from: "From", to: "To", show: "Show", day: "Date", cabinet: "Cabinet", start: "Start",
    end: "End", minutes: "Minutes", peak: "Peak (°C)", held: "Held (min)", verdict: "Verdict",
    meal: "Meal", window_end: "Window end", outcome: "Outcome", ticket: "Ticket", none: "No records",
    csv: "Export CSV", xlsx: "Export Excel",
    valid: "valid", too_cool: "too cool", too_short: "too short",
    done: "done", missed: "missed", failed: "failed",
    breakfast: "breakfast", lunch: "lunch", dinner: "dinner",
    powered: "Powered (min)", by_power: "judged by power alone (no temperature)", by_power_temperature: "timed by the plug", by_temperature: "",
    newer: "Newer", older: "Older", page_of: "Page {p} of {n}, {count} in all",
  },
};

const w = wordsOf(WORDS, { missing: "" });

/** YYYY-MM-DD of `d` in the console's time zone (the ledger's dates are the sites' local dates). */
function isoDay(d) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: getTimeZone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
}

const PAGE = 100;

/** Page `page` of a table in the URL's `key`, the filter kept (?page=N cycles, ?checks_page=N checks). */
function pageHref(key, page) {
  const p = new URLSearchParams(location.search);
  if (page > 1) p.set(key, String(page)); else p.delete(key);
  const s = p.toString();
  return `/console/disinfection${s ? `?${s}` : ""}`;
}

/** The pager of a table with `count` rows in all, or nothing when one page holds them. */
function tablePager(key, id, page, count) {
  const pages = Math.max(1, Math.ceil(count / PAGE));
  const info = w("page_of", { p: page, n: pages, count });
  return pager({ id: `${id}-pager`, nextId: `${id}-older`, page, more: page < pages, href: (p) => pageHref(key, p),
    prev: w("newer"), next: w("older"), label: info, info });
}

/**
 * The ledger page; `params` may hold site_id, date_from and date_to, and the pages of the two
 * tables (newest first): page (the cycles) and checks_page.
 */
export async function renderDisinfection(main, params) {
  const num = (k) => Math.max(1, Number(params.get(k)) || 1);
  const page = num("page"), checksPage = num("checks_page");
  const today = new Date();
  const filter = {
    site_id: params.get("site_id") || "",
    date_from: params.get("date_from") || isoDay(new Date(today.getTime() - 6 * 86400000)),
    date_to: params.get("date_to") || isoDay(today),
  };
  const [cycles, checks, sites] = await Promise.all([
    api(`/disinfection/cycles${qs({ ...filter, limit: PAGE, offset: (page - 1) * PAGE })}`),
    api(`/disinfection/checks${qs({ ...filter, limit: PAGE, offset: (checksPage - 1) * PAGE })}`),
    api("/sites"),
  ]);
  const lang = getLang() === "en" ? "en" : "zh-CN";
  const exportQs = qs({ ...filter, lang });
  const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, w(c)))));
  const empty = (n) => h("tr", {}, h("td", { colspan: n }, w("none")));
  const c = (col, attrs, ...content) => cell(w(col), attrs, ...content);
  mount(main,
    h("h1", {}, w("title")),
    h("form", { id: "dis-filter", class: "card row", method: "get", action: "/console/disinfection" },
      h("label", { for: "dis-site" }, w("site")),
      h("select", { id: "dis-site", name: "site_id" },
        h("option", { value: "" }, w("all_sites")),
        sites.data.map((s) => h("option", { value: s.id, selected: s.id === filter.site_id }, s.name))),
      h("label", { for: "dis-from" }, w("from")),
      h("input", { id: "dis-from", name: "date_from", type: "date", value: filter.date_from }),
      h("label", { for: "dis-to" }, w("to")),
      h("input", { id: "dis-to", name: "date_to", type: "date", value: filter.date_to }),
      h("button", { type: "submit", id: "dis-show" }, w("show")),
      h("a", { id: "dis-csv", href: `/api/v1/disinfection/cycles.csv${exportQs}`, download: "disinfection.csv" }, w("csv")),
      h("a", { id: "dis-xlsx", href: `/api/v1/disinfection/cycles.xlsx${exportQs}`, download: "disinfection.xlsx" }, w("xlsx"))),
    h("section", { class: "card", "aria-labelledby": "dis-checks-h" },
      h("h2", { id: "dis-checks-h" }, w("checks")),
      h("div", { class: "table-wrap" }, h("table", { id: "dis-checks", class: "stack" },
        head("day", "site", "cabinet", "meal", "window_end", "outcome", "ticket"),
        h("tbody", {}, checks.data.length ? checks.data.map((k) => h("tr", { dataset: { outcome: k.outcome, siteId: k.site_id } },
          c("day", {}, k.service_date), c("site", {}, siteName(k.site_id)), c("cabinet", { title: k.sensor_id }, k.sensor_name || k.sensor_id),
          c("meal", {}, w(k.meal)), c("window_end", {}, fmtTime(k.window_end)),
          c("outcome", { class: `outcome-${k.outcome}` }, w(k.outcome)),
          c("ticket", {}, k.ticket_id ? h("a", { href: `/console/tickets/${k.ticket_id}`, "data-link": true }, k.ticket_no || `#${k.ticket_id}`) : "—")))
          : empty(7)))),
      tablePager("checks_page", "dis-checks", checksPage, checks.count)),
    h("section", { class: "card", "aria-labelledby": "dis-cycles-h" },
      h("h2", { id: "dis-cycles-h" }, w("cycles")),
      h("div", { class: "table-wrap" }, h("table", { id: "dis-cycles", class: "stack" },
        head("day", "site", "cabinet", "start", "end", "minutes", "peak", "held", "powered", "verdict"),
        h("tbody", {}, cycles.data.length ? cycles.data.map((y) => h("tr", { dataset: { verdict: y.verdict, siteId: y.site_id } },
          c("day", {}, y.day), c("site", {}, y.site_name), c("cabinet", {}, y.sensor_name),
          c("start", {}, fmtTime(y.started_at)), c("end", {}, fmtTime(y.ended_at)),
          c("minutes", { class: "num" }, fmtNum(y.duration_s / 60, 1)), c("peak", { class: "num" }, y.peak_c === null ? "—" : fmtNum(y.peak_c, 1)),
          c("held", { class: "num" }, fmtNum(y.held_s / 60, 1)),
          c("powered", { class: "num" }, y.on_s === null || y.on_s === undefined ? "—" : fmtNum(y.on_s / 60, 1)),
          c("verdict", { dataset: { judgedBy: y.judged_by || "temperature" } }, h("span", {}, w(y.verdict),
            w(`by_${y.judged_by || "temperature"}`) ? h("small", { class: "muted" }, ` · ${w(`by_${y.judged_by || "temperature"}`)}`) : null))))
          : empty(10)))),
      tablePager("page", "dis-cycles", page, cycles.count)));
}
