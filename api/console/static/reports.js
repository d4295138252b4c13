// The director's weekly review (周排查) and the monthly dispatch report (月调度): the week's
// and month's figures in words, the review form (the director's alone), and the report draft
// any writer of the site generates and edits, which only the director signs. A signed report
// is read-only: the page offers no edit and no signature for it.
import { api } from "./api.js";
import { me, render } from "./app.js";
import { h, mount, say } from "./dom.js";
import { explain, fmtTime, getLang, getTimeZone } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "周排查与月调度", site: "单位", weekly: "每周排查", monthly: "月调度报告",
    week_start: "周一日期", findings: "发现的风险隐患", measures: "整改措施", submit_review: "提交周排查",
    reviewed: "{who} 于 {t} 排查", no_reviews: "还没有周排查记录", month: "月份", generate: "生成报告",
    no_reports: "还没有月调度报告", save: "保存修改", sign: "签署", signed: "{who} 于 {t} 签署，不可再修改",
    draft: "草稿（签署前可修改）", saved: "已保存。", confirm_sign: "签署后报告不可再修改，确定签署吗？",
    figures: "数据", read_only: "您的角色只能查看。",
    days: "天数", daily_checks_done: "日管控完成天数", daily_check_no_answers: "日管控不合格项",
    health_checks: "晨检人次", staff_off_duty: "暂停上岗人次", meals_sampled: "留样餐次", meals_unsampled: "未按规定留样餐次",
    food_samples: "留样品种", tickets_opened: "新开整改单", tickets_closed: "关闭整改单",
    tickets_open_at_end: "期末未结整改单", alarms_raised: "报警次数", disinfection_checks: "餐具消毒检查",
    disinfection_not_done: "消毒不到位", rapid_tests: "快检批次", rapid_tests_failed: "快检不合格批次",
  },
  en: {
    title: "Weekly review and monthly report", site: "Site", weekly: "Weekly reviews", monthly: "Monthly reports",
    week_start: "Week starting (Monday)", findings: "Risks found", measures: "Measures", submit_review: "Submit the review",
    reviewed: "Reviewed by {who} at {t}", no_reviews: "No weekly review yet", month: "Month", generate: "Generate the report",
    no_reports: "No monthly report yet", save: "Save the text", sign: "Sign", signed: "Signed by {who} at {t}; final",
    draft: "Draft (editable until signed)", saved: "Saved.", confirm_sign: "A signed report cannot change. Sign it?",
    figures: "Figures", read_only: "Your role only reads.",
    days: "Days", daily_checks_done: "Days with the daily check", daily_check_no_answers: "“No” answers",
    health_checks: "Health checks", staff_off_duty: "Off duty", meals_sampled: "Meals sampled", meals_unsampled: "Meals without samples",
    food_samples: "Dishes sampled", tickets_opened: "Tickets opened", tickets_closed: "Tickets closed",
    tickets_open_at_end: "Tickets open at the end", alarms_raised: "Alarms", disinfection_checks: "Disinfection checks",
    disinfection_not_done: "Disinfection not done", rapid_tests: "Rapid tests", rapid_tests_failed: "Rapid tests failed",
  },
};
const FIGURES = ["days", "daily_checks_done", "daily_check_no_answers", "health_checks", "staff_off_duty", "meals_sampled", "meals_unsampled",
  "food_samples", "tickets_opened", "tickets_closed", "tickets_open_at_end", "alarms_raised", "disinfection_checks",
  "disinfection_not_done", "rapid_tests", "rapid_tests_failed"];

function w(key, vars = {}) {
  const s = (WORDS[getLang()] || WORDS["zh-CN"])[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

/** YYYY-MM-DD of today in the region's zone. */
function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: getTimeZone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

/** The Monday of the week of the ISO day `day`. */
function mondayOf(day) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d.toISOString().slice(0, 10);
}

/** The figures the server counted, labelled; keys without a label are left out. */
function figureList(figures, id) {
  return h("ul", { class: "stats figures", id }, FIGURES.filter((k) => k in figures).map((k) =>
    h("li", {}, h("strong", {}, String(figures[k])), " ", w(k))));
}

/** Run `work`; on a refusal put the API's sentence in `status`, else redraw the page. */
async function act(status, work) {
  try {
    await work();
  } catch (e) {
    status.className = "error";
    say(status, explain(e));
    return;
  }
  render({ quiet: true });
}

/** The reports page; `params` may hold site_id (default: the first site in scope). */
export async function renderReports(main, params) {
  const sites = (await api("/sites")).data;
  const siteId = params.get("site_id") || (sites[0] && sites[0].id) || "";
  const base = `/sites/${encodeURIComponent(siteId)}`;
  const [reviews, reports] = await Promise.all([api(`${base}/weekly-reviews`), api(`${base}/monthly-reports`)]);
  const role = me().role;
  const director = role === "director";
  const writer = !me().read_only;
  mount(main,
    h("h1", {}, w("title")),
    h("form", { id: "rep-site-form", class: "card row", method: "get", action: "/console/reports" },
      h("label", { for: "rep-site" }, w("site")),
      h("select", { id: "rep-site", name: "site_id", onchange: (ev) => ev.target.form.requestSubmit() },
        sites.map((s) => h("option", { value: s.id, selected: s.id === siteId }, s.name)))),
    writer ? null : h("p", { class: "muted" }, w("read_only")),
    weeklySection(base, reviews, director),
    monthlySection(base, reports, writer, director));
}

function weeklySection(base, reviews, director) {
  const status = h("p", { id: "review-status", role: "status", "data-keep": true });
  const form = h("form", { id: "review-form", novalidate: true },
    h("label", { for: "review-week" }, w("week_start")),
    h("input", { id: "review-week", type: "date", value: mondayOf(today()) }),
    h("label", { for: "review-findings" }, w("findings")), h("textarea", { id: "review-findings", rows: 3, maxlength: 5000 }),
    h("label", { for: "review-measures" }, w("measures")), h("textarea", { id: "review-measures", rows: 3, maxlength: 5000 }),
    status, h("button", { type: "submit", id: "review-submit" }, w("submit_review")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { week_start: form.querySelector("#review-week").value, findings: form.querySelector("#review-findings").value,
      measures: form.querySelector("#review-measures").value };
    act(status, () => api(`${base}/weekly-reviews`, { method: "POST", json: body }));
  });
  return h("section", { class: "card", "aria-labelledby": "weekly-h" },
    h("h2", { id: "weekly-h" }, w("weekly")),
    director ? form : null,
    h("ul", { id: "review-list" }, reviews.length ? reviews.map((r) => h("li", { dataset: { week: r.week_start } },
      h("h3", {}, r.week_start), h("p", { class: "muted" }, w("reviewed", { who: r.reviewed_by, t: fmtTime(r.reviewed_at) })),
      figureList(r.figures, null),
      h("p", {}, h("strong", {}, `${w("findings")}：`), r.findings),
      r.measures ? h("p", {}, h("strong", {}, `${w("measures")}：`), r.measures) : null))
      : h("li", { class: "muted" }, w("no_reviews"))));
}

function reportItem(base, r, writer, director) {
  const month = r.month.slice(0, 7);
  const status = h("p", { id: `report-status-${month}`, role: "status", "data-keep": true });
  const signed = Boolean(r.signed_at);
  const text = signed || !writer
    ? h("textarea", { class: "report-body", id: `report-body-${month}`, rows: 12, readonly: true }, r.body)
    : h("textarea", { id: `report-body-${month}`, class: "report-body", rows: 12, maxlength: 20000 }, r.body);
  const buttons = signed ? null : h("div", { class: "row" },
    writer ? h("button", { type: "button", class: "secondary", id: `report-save-${month}`,
      onclick: () => act(status, () => api(`${base}/monthly-reports`, { method: "PATCH", json: { month, body: text.value } })) }, w("save")) : null,
    director ? h("button", { type: "button", id: `report-sign-${month}`,
      onclick: () => { if (window.confirm(w("confirm_sign"))) act(status, () => api(`${base}/monthly-reports/sign`, { method: "POST", json: { month } })); } }, w("sign")) : null);
  return h("li", { dataset: { month, signed: String(signed) } },
    h("h3", {}, month),
    h("p", { class: signed ? "" : "muted", id: `report-state-${month}` },
      signed ? w("signed", { who: r.signed_by, t: fmtTime(r.signed_at) }) : w("draft")),
    figureList(r.figures, `report-figures-${month}`), text, status, buttons);
}

function monthlySection(base, reports, writer, director) {
  const status = h("p", { id: "generate-status", role: "status", "data-keep": true });
  const form = h("form", { id: "generate-form", class: "row", novalidate: true },
    h("label", { for: "report-month" }, w("month")),
    h("input", { id: "report-month", type: "month", value: today().slice(0, 7) }),
    h("button", { type: "submit", id: "report-generate" }, w("generate")), status);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(status, () => api(`${base}/monthly-reports`, { method: "POST", json: { month: form.querySelector("#report-month").value } }));
  });
  return h("section", { class: "card", "aria-labelledby": "monthly-h" },
    h("h2", { id: "monthly-h" }, w("monthly")),
    writer ? form : null,
    h("ul", { id: "report-list" }, reports.length ? reports.map((r) => reportItem(base, r, writer, director))
      : h("li", { class: "muted" }, w("no_reports"))));
}
