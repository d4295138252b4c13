// The regulator's at-a-glance view of the duties and of 包保 supervision: today's daily checks
// of every business (overdue first, as the API orders them) and the coverage table (director,
// officer and cadre named; visits done vs due), with the same figures as CSV and XLSX files.
import { api } from "./api.js";
import { h, mount, qs } from "./dom.js";
import { fmtClock, fmtTime, getLang, wordsOf } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "日管控与包保覆盖", today: "今日每日检查", site: "单位", deadline: "截止", state: "状态",
    done_at: "完成时间", overdue: "已超时", done: "已完成", pending: "待完成", none: "没有记录",
    coverage: "包保覆盖情况", on: "截至 {d}", directors: "食品安全总监", officers: "食品安全员",
    cadres: "包保干部", visits: "督导（已完成/应完成）", schedule: "督导进度", daily: "今日检查",
    on_schedule: "按时", behind: "滞后", not_kept: "不适用", last_visit: "最近督导",
    csv: "导出 CSV", xlsx: "导出 Excel", missing: "未指定",
    t_sites: "单位数", t_assigned: "三类人员齐全", t_visits: "督导完成", t_daily: "今日检查完成",
    samples: "今日留样", samples_n: "{s}/{n} 餐已留样", samples_late: "{k} 餐逾期未留样", no_meals: "无餐次安排",
  },
  en: {
    title: "Daily checks and supervision coverage", today: "Today's daily checks", site: "Site", deadline: "Due", state: "State",
    done_at: "Done at", overdue: "overdue", done: "done", pending: "pending", none: "No records",
    coverage: "Supervision coverage", on: "As of {d}", directors: "Director", officers: "Officer",
    cadres: "Cadre", visits: "Visits (done / due)", schedule: "Visits", daily: "Check today",
    on_schedule: "on schedule", behind: "behind", not_kept: "n/a", last_visit: "Last visit",
    csv: "Export CSV", xlsx: "Export Excel", missing: "none named",
    t_sites: "Businesses", t_assigned: "All three named", t_visits: "Visits done", t_daily: "Checks done today",
    samples: "Samples today", samples_n: "{s} of {n} meals sampled", samples_late: "{k} overdue", no_meals: "no meal schedule",
  },
};

const w = wordsOf(WORDS, { missing: "" });

const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, w(c)))));
const names = (list) => (list.length ? list.join("、") : h("span", { class: "overdue-text" }, w("missing")));

/** Today's food samples of one site: meals sampled of those scheduled, and those overdue
 * (each becomes a 未按规定留样 ticket); a site without a meal schedule says so. */
function samplesCell(d) {
  const late = d.meals_overdue > 0;
  return h("td", { class: late ? "overdue-text" : "", "data-label": w("samples"), dataset: { mealsOverdue: d.meals_overdue } },
    d.meals_scheduled ? [w("samples_n", { s: d.meals_sampled, n: d.meals_scheduled }), late ? ` · ${w("samples_late", { k: d.meals_overdue })}` : ""]
      : h("span", { class: "muted" }, w("no_meals")));
}

/** The regulator's page: today's checks, then coverage with its exports. */
export async function renderCoverage(main) {
  const [today, cov] = await Promise.all([api("/duties/today"), api("/supervision/coverage")]);
  const lang = getLang() === "en" ? "en" : "zh-CN";
  const exportQs = qs({ on: cov.on, lang });
  const tt = cov.totals;
  const stateOf = (d) => (d.done ? "done" : d.overdue ? "overdue" : "pending");
  mount(main,
    h("h1", {}, w("title")),
    h("section", { class: "card", "aria-labelledby": "today-h" },
      h("h2", { id: "today-h" }, w("today")),
      h("div", { class: "table-wrap" }, h("table", { id: "duties-today", class: "stack" },
        head("site", "deadline", "state", "done_at", "samples"),
        h("tbody", {}, today.length ? today.map((d) => h("tr", { class: d.overdue ? "overdue" : "", dataset: { siteId: d.site_id, state: stateOf(d) } },
          h("td", {}, d.site_name), h("td", { "data-label": w("deadline") }, fmtClock(d.deadline_at)),
          h("td", { class: d.overdue ? "overdue-text" : "", "data-label": w("state") }, w(stateOf(d))),
          h("td", { "data-label": w("done_at") }, d.completed_at ? fmtClock(d.completed_at) : "—"),
          samplesCell(d)))
          : h("tr", {}, h("td", { colspan: 5 }, w("none"))))))),
    h("section", { class: "card", "aria-labelledby": "coverage-h" },
      h("h2", { id: "coverage-h" }, w("coverage")),
      h("p", { class: "muted" }, w("on", { d: cov.on })),
      h("ul", { class: "stats", id: "coverage-totals" },
        h("li", {}, h("strong", {}, String(tt.sites)), " ", w("t_sites")),
        h("li", {}, h("strong", {}, `${tt.fully_assigned}/${tt.sites}`), " ", w("t_assigned")),
        h("li", {}, h("strong", {}, `${tt.visits_done}/${tt.visits_due}`), " ", w("t_visits")),
        h("li", {}, h("strong", {}, `${tt.daily_checks_done_today}/${tt.daily_checks_due_today}`), " ", w("t_daily"))),
      h("div", { class: "row" },
        h("a", { id: "coverage-csv", class: "button secondary", href: `/api/v1/supervision/coverage.csv${exportQs}`, download: "coverage.csv" }, w("csv")),
        h("a", { id: "coverage-xlsx", class: "button secondary", href: `/api/v1/supervision/coverage.xlsx${exportQs}`, download: "coverage.xlsx" }, w("xlsx"))),
      h("div", { class: "table-wrap" }, h("table", { id: "coverage-table", class: "stack" },
        head("site", "directors", "officers", "cadres", "visits", "schedule", "daily", "last_visit"),
        h("tbody", {}, cov.sites.length ? cov.sites.map((s) => h("tr", { dataset: { siteId: s.site_id, assigned: String(s.fully_assigned) } },
          h("td", {}, h("strong", {}, s.site_name)), h("td", { "data-label": w("directors") }, names(s.directors)),
          h("td", { "data-label": w("officers") }, names(s.officers)), h("td", { "data-label": w("cadres") }, names(s.cadres)),
          h("td", { class: "num", "data-label": w("visits") }, `${s.visits_done}/${s.visits_due}`),
          h("td", { class: s.on_schedule ? "" : "overdue-text", "data-label": w("schedule") }, w(s.on_schedule ? "on_schedule" : "behind")),
          h("td", { "data-label": w("daily") }, s.daily_check_due ? w(s.daily_check_done ? "done" : "pending") : w("not_kept")),
          h("td", { "data-label": w("last_visit") }, s.last_visit_at ? fmtTime(s.last_visit_at) : "—")))
          : h("tr", {}, h("td", { colspan: 8 }, w("none"))))))));
}
