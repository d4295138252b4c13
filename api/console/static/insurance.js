// Insurance (食品安全责任险): policies, incidents and their claims with the claim evidence bundle,
// and the insurer's read-only risk record of each insured canteen. Administrators and regulators
// register a canteen's policy; the canteen's people, regulators and administrators record an
// incident and each step of its claim as the insurer decides (the insurer's account reads only).
import { api, ApiError } from "./api.js";
import { me, refresh, siteName } from "./app.js";
import { cell, h, mount, pager, qs, say } from "./dom.js";
import { explain, fmtNum, fmtTime, getLang, localNow, localToIso, t, wordsOf } from "./i18n.js";
import { incidentKindLabel, incidentKindOptions } from "./labels.js";
import { lineChart } from "./site.js";

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
const money = (x) => (x === null || x === undefined ? "—" : `¥${Number(x).toLocaleString("zh-CN")}`);

const RISK_PAGE = 50; // canteens per page of the risk records
const LIST_PAGE = 50; // policies, incidents per page
const RISK_COLS = ["site", "risk", "open_tickets", "overdue_tickets", "ins_repeated", "ins_excursion", "ins_sensor_uptime", "ins_camera_uptime", "ins_fail_rate"];
const POLICY_COLS = ["site", "ins_insurer", "ins_policy_no", "ins_cover", "ins_premium", "ins_period"];
const INCIDENT_COLS = ["created_at", "site", "kind", "ins_description", "ins_claim", "ins_amount", "ins_bundle"];
const head = (cols) => h("thead", {}, h("tr", {}, cols.map((x) => h("th", { scope: "col" }, t(x)))));
/** A cell labelled with its column's words (a phone shows each row as a card). */
const c = (col, attrs, ...content) => cell(t(col), attrs, ...content);

/** Where a claim may go from each state (api/services/claims.py NEXT, the server decides). */
const NEXT = { none: ["filed"], filed: ["accepted", "rejected"], accepted: ["paid", "rejected"], rejected: ["filed"], paid: [] };

const WORDS = {
  "zh-CN": {
    new_policy: "登记保单", new_incident: "记录事故", save: "保存", starts_on: "起保日期", ends_on: "终止日期",
    occurred_at: "发生时间", claim_step: "理赔进展", claim_to: "改为", claim_note: "说明（报案号、拒赔理由等）",
    claim_save: "记录", claim_history: "理赔记录", policy_saved: "保单 {no} 已登记。", policy_taken: "保单号 {no} 已存在。",
    incident_saved: "事故已记录。", claim_saved: "理赔状态已改为“{s}”。", claim_final: "已赔付，理赔结束。",
    by: "{who} 于 {at}", no_sites: "没有可选的食堂。", risk_hint_staff: "保险机构看到的就是这份风险记录（只读）。",
    needs_reason: "拒赔请在“说明”中写明保险机构的理由。", needs_amount: "已赔付请填写赔付金额。",
    bad_amount: "金额不对：请填写不小于 0、最多两位小数的金额。", ends_before: "终止日期不能早于起保日期。",
    future: "发生时间不能晚于现在。", bad_time: "发生时间不对，请重新选择。", with_incident: "随事故一并记录",
    risk_more: "风险分走势与事故", risk_trend: "{name}风险分走势", no_history: "尚无历史风险分。",
    losses: "事故 {n} 起，已赔付 {paid}，处理中 {open} 起。", no_losses: "无事故记录。",
    csv: "导出 CSV", xlsx: "导出 Excel", risk_order: "按最近一次评分从高到低排列；各项为当前数值。",
    risk_pages: "第 {p} / {n} 页（共 {total} 家）", risk_pager: "承保食堂分页",
    page_n: "第 {p} 页", policies_pager: "保单分页", incidents_pager: "事故分页",
  },
  en: {
    new_policy: "Register a policy", new_incident: "Record an incident", save: "Save", starts_on: "Starts on", ends_on: "Ends on",
    occurred_at: "Occurred at", claim_step: "Claim progress", claim_to: "Change to", claim_note: "Note (claim reference, reason of a refusal…)",
    claim_save: "Record", claim_history: "Claim history", policy_saved: "Policy {no} registered.", policy_taken: "Policy number {no} exists already.",
    incident_saved: "Incident recorded.", claim_saved: "Claim changed to “{s}”.", claim_final: "Paid: the claim is settled.",
    by: "{who} at {at}", no_sites: "No canteen to choose.", risk_hint_staff: "The insurer sees this same risk record, read-only.",
    needs_reason: "A rejection needs the insurer's reason in the note.", needs_amount: "A paid claim needs the amount paid.",
    bad_amount: "The amount is not right: a sum of 0 or more with at most two decimals.", ends_before: "The policy cannot end before it starts.",
    future: "The time it occurred cannot be later than now.", bad_time: "The time it occurred is not right; choose it again.", with_incident: "recorded with the incident",
    risk_more: "Score trend and incidents", risk_trend: "Risk score of {name} over time", no_history: "No past score yet.",
    losses: "{n} incident(s), {paid} paid, {open} claim(s) in progress.", no_losses: "No incident recorded.",
    csv: "Export CSV", xlsx: "Export Excel", risk_order: "Highest latest stored score first; the figures are as of now.",
    risk_pages: "page {p} of {n} ({total} canteens)", risk_pager: "Pages of insured canteens",
    page_n: "page {p}", policies_pager: "Pages of policies", incidents_pager: "Pages of incidents",
  },
};
const w = wordsOf(WORDS);

const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
const siteSelect = (id, sites) => h("select", { id, name: "site_id", required: true }, sites.map((s) => h("option", { value: s.id }, s.name)));

/** Submit `form` to the API and report in `status`; `message(answer)` on success, a refusal in
 * words. `check(data)` names what is wrong before anything is sent ([words, the field to fix]),
 * `refusal(e)` words a refusal of the API (a 409, or a 422 naming a field) its own way. */
function wire(form, status, send, message, refusal = () => null, check = () => null) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    status.className = "";
    const wrong = check(new FormData(form));
    if (wrong) {
      say(status, wrong[0]);
      status.className = "error";
      form.querySelector(`[name=${wrong[1]}]`)?.focus();
      return;
    }
    try {
      const answer = await send(new FormData(form));
      form.reset(); // recorded: the page redraws with an empty form, not the values just sent
      say(status, message(answer));
      status.className = "ok";
      await refresh();
    } catch (e) {
      say(status, refusal(e) || explain(e));
      status.className = "error";
    }
  });
}

function policyForm(sites) {
  const status = h("p", { id: "policy-status", role: "status", "data-keep": true });
  const today = localNow().slice(0, 10);
  const nextYear = `${Number(today.slice(0, 4)) + 1}${today.slice(4)}`;
  const form = h("form", { id: "policy-form", class: "filters", novalidate: true },
    field("pf-site", t("site"), siteSelect("pf-site", sites)),
    field("pf-insurer", t("ins_insurer"), h("input", { id: "pf-insurer", name: "insurer", required: true, maxlength: 200 })),
    field("pf-no", t("ins_policy_no"), h("input", { id: "pf-no", name: "policy_no", required: true, maxlength: 100 })),
    field("pf-cover", t("ins_cover"), h("input", { id: "pf-cover", name: "cover_cny", type: "number", min: "0.01", step: "0.01", required: true, inputmode: "decimal" })),
    field("pf-premium", t("ins_premium"), h("input", { id: "pf-premium", name: "premium_cny", type: "number", min: "0", step: "0.01", required: true, inputmode: "decimal" })),
    field("pf-start", w("starts_on"), h("input", { id: "pf-start", name: "starts_on", type: "date", required: true, value: today })),
    field("pf-end", w("ends_on"), h("input", { id: "pf-end", name: "ends_on", type: "date", required: true, value: nextYear })),
    h("button", { type: "submit", id: "policy-save" }, w("save")));
  wire(form, status,
    (d) => api("/policies", { method: "POST", json: {
      site_id: d.get("site_id"), insurer: String(d.get("insurer")).trim(), policy_no: String(d.get("policy_no")).trim(),
      cover_cny: String(d.get("cover_cny")), premium_cny: String(d.get("premium_cny")),
      starts_on: d.get("starts_on"), ends_on: d.get("ends_on"),
    } }),
    (p) => w("policy_saved", { no: p.policy_no }),
    (e) => (e instanceof ApiError && e.status === 409 ? w("policy_taken", { no: form.querySelector("#pf-no").value })
      : unprocessable(e, /ends_on/) ? w("ends_before") : null),
    (d) => (String(d.get("ends_on")) < String(d.get("starts_on")) ? [w("ends_before"), "ends_on"] : null));
  return h("div", {}, h("details", { class: "form-box", id: "policy-box" }, h("summary", {}, w("new_policy")), form), status);
}

function incidentForm(sites) {
  const status = h("p", { id: "incident-status", role: "status", "data-keep": true });
  const form = h("form", { id: "incident-form", class: "filters", novalidate: true },
    field("if-site", t("site"), siteSelect("if-site", sites)),
    field("if-at", w("occurred_at"), h("input", { id: "if-at", name: "occurred_at", type: "datetime-local", required: true, value: localNow() })),
    field("if-kind", t("kind"), h("select", { id: "if-kind", name: "kind" }, incidentKindOptions().map(([k, label]) => h("option", { value: k }, label)))),
    field("if-desc", t("ins_description"), h("textarea", { id: "if-desc", name: "description", rows: 3, maxlength: 5000, required: true })),
    h("button", { type: "submit", id: "incident-save" }, w("save")));
  wire(form, status,
    (d) => api("/incidents", { method: "POST", json: {
      site_id: d.get("site_id"), occurred_at: localToIso(String(d.get("occurred_at"))), kind: d.get("kind"),
      description: String(d.get("description")).trim(),
    } }),
    () => w("incident_saved"),
    (e) => (unprocessable(e, /occurred_at/) ? (/passed/.test(e.message) ? w("future") : w("bad_time")) : null),
    (d) => (new Date(localToIso(String(d.get("occurred_at")))) > Date.now() + SKEW_MS ? [w("future"), "occurred_at"] : null));
  return h("div", {}, h("details", { class: "form-box", id: "incident-box" }, h("summary", {}, w("new_incident")), form), status);
}

/** A refusal of the form's input (422) whose message names a field matching `field`. */
const unprocessable = (e, field) => e instanceof ApiError && e.status === 422 && field.test(e.message);
/** How far ahead of the server a phone's clock may run (INCIDENT_CLOCK_SKEW in insurance.py). */
const SKEW_MS = 10 * 60 * 1000;
/** An amount as the API takes it: at least 0, at most two decimals, 14 digits. */
const AMOUNT = /^\d{1,12}(\.\d{1,2})?$/;

/** The next step of one incident's claim: its state, the amount, a note; `status` says how it went. */
function claimForm(incident, status) {
  const next = NEXT[incident.claim_status] || [];
  const id = `claim-${incident.id}`;
  const form = h("form", { id, class: "claim-form", novalidate: true },
    field(`${id}-to`, w("claim_to"), h("select", { id: `${id}-to`, name: "claim_status" }, next.map((s) => h("option", { value: s }, t(`claim_${s}`))))),
    field(`${id}-amount`, t("ins_amount"), h("input", { id: `${id}-amount`, name: "amount_cny", type: "number", min: "0", step: "0.01", inputmode: "decimal", placeholder: incident.amount_cny === null ? "" : money(incident.amount_cny) })),
    field(`${id}-note`, w("claim_note"), h("input", { id: `${id}-note`, name: "note", maxlength: 2000 })),
    h("button", { type: "submit", class: "secondary", id: `${id}-save` }, w("claim_save")));
  wire(form, status,
    (d) => api(`/incidents/${incident.id}/claim`, { method: "POST", json: {
      claim_status: d.get("claim_status"), note: String(d.get("note") || "").trim(),
      amount_cny: String(d.get("amount_cny") || "") === "" ? null : String(d.get("amount_cny")),
    } }),
    (e) => w("claim_saved", { s: t(`claim_${e.to_status}`) }),
    (e) => (unprocessable(e, /note/) ? w("needs_reason")
      : unprocessable(e, /amount/) ? (incident.amount_cny === null ? w("needs_amount") : w("bad_amount")) : null),
    (d) => {
      const to = d.get("claim_status");
      const amount = String(d.get("amount_cny") || "").trim();
      if (to === "rejected" && !String(d.get("note") || "").trim()) return [w("needs_reason"), "note"];
      if (amount && !AMOUNT.test(amount)) return [w("bad_amount"), "amount_cny"];
      if (to === "paid" && !amount && incident.amount_cny === null) return [w("needs_amount"), "amount_cny"];
      return null;
    });
  return form;
}

/** The note the API keeps on a claim recorded with its incident (create_incident). */
const WITH_INCIDENT = "recorded with the incident";

/** Every recorded step of a claim, read when the reader opens it (most rows are never opened). */
function historyBox(incident) {
  const list = h("ol", { class: "claim-history" });
  const box = h("details", { class: "claim-history-box" }, h("summary", {}, w("claim_history")), list);
  box.addEventListener("toggle", async () => {
    if (!box.open || box.dataset.loaded) return;
    box.dataset.loaded = "1";
    try {
      const steps = await api(`/incidents/${incident.id}/claim`);
      mount(list, steps.length ? steps.map((s) => h("li", {},
        `${fmtTime(s.at)} `, h("span", { class: "actor", title: s.actor }, s.actor_name || s.actor),
        `: ${t(`claim_${s.from_status}`)} → ${t(`claim_${s.to_status}`)}`,
        s.amount_cny === null ? "" : ` · ${money(s.amount_cny)}`,
        s.note ? ` · ${s.note === WITH_INCIDENT ? w("with_incident") : s.note}` : "")) : h("li", {}, t("claim_none")));
    } catch (e) {
      delete box.dataset.loaded;
      mount(list, h("li", { class: "error" }, explain(e)));
    }
  });
  return box;
}

function claimCell(incident, canWrite) {
  const next = NEXT[incident.claim_status] || [];
  const status = h("p", { id: `claim-${incident.id}-status`, role: "status", "data-keep": true });
  const updated = incident.claim_updated_at
    ? h("span", { class: "muted small" }, ` · ${w("by", { who: incident.claim_updated_by_name || incident.claim_updated_by, at: fmtTime(incident.claim_updated_at) })}`) : null;
  return c("ins_claim", { class: "claim", dataset: { claim: incident.claim_status } }, h("div", {},
    h("strong", {}, t(`claim_${incident.claim_status}`)), updated,
    canWrite && next.length ? h("details", { class: "claim-step" }, h("summary", {}, w("claim_step")), claimForm(incident, status)) : null,
    canWrite && !next.length ? h("p", { class: "muted small" }, w("claim_final")) : null,
    incident.claim_updated_at || incident.claim_status !== "none" ? historyBox(incident) : null,
    status));
}

/** The score's trend and the loss history of one insured canteen (what an insurer prices on),
 * read from its whole risk record when the reader opens it. */
function riskMore(summary) {
  const body = h("div", { class: "risk-more-body" });
  const box = h("details", { class: "risk-more" }, h("summary", {}, w("risk_more")), body);
  let asked = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || asked) return;
    asked = true;
    body.replaceChildren(h("p", { class: "loading", role: "status" }, t("loading")));
    try {
      const r = await api(`/insurance/risk-record?site_id=${encodeURIComponent(summary.site_id)}`);
      const hist = [...r.history].reverse().map((p) => ({ x: new Date(p.computed_at).getTime(), y: p.score }));
      const paid = r.incidents.filter((i) => i.claim_status === "paid").reduce((sum, i) => sum + Number(i.amount_cny || 0), 0);
      const open = r.incidents.filter((i) => ["filed", "accepted"].includes(i.claim_status)).length;
      body.replaceChildren(
        hist.length ? lineChart(hist, { label: w("risk_trend", { name: r.site_name }), gapMs: Infinity }) : h("p", { class: "muted small" }, w("no_history")),
        h("p", { class: "small losses" }, r.incidents.length ? w("losses", { n: r.incidents.length, paid: money(paid), open }) : w("no_losses")));
    } catch (e) {
      asked = false; // opening it again asks again
      body.replaceChildren(h("p", { class: "error", role: "alert" }, explain(e)));
    }
  });
  return box;
}

/** The risk records' pager (`?page=N`: back, forward and reload keep it), or nothing. */
function riskPager(page, total, params) {
  const pages = Math.max(1, Math.ceil(total / RISK_PAGE));
  const info = w("risk_pages", { p: Math.min(page, pages), n: pages, total });
  return pager({ id: "risk-pager", nextId: "risk-next", page, more: page < pages, href: (p) => `/console/insurance${qs({ ...Object.fromEntries(params), page: p > 1 ? p : "" })}`,
    prev: t("prev"), next: t("next"), label: w("risk_pager"), info });
}

export async function renderInsurance(main, params = new URLSearchParams()) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const u = me();
  const canPolicy = ["admin", "regulator"].includes(u.role) && !u.read_only;
  const canIncident = ["admin", "regulator", "officer", "director"].includes(u.role) && !u.read_only;
  // every insured canteen's record from one request, the highest score first
  const polPage = Math.max(1, Number(params.get("policies_page")) || 1);
  const incPage = Math.max(1, Number(params.get("incidents_page")) || 1);
  // one more than a page says that another page exists
  const [policiesMore, incidentsMore, sites, risk] = await Promise.all([
    api(`/policies${qs({ limit: LIST_PAGE + 1, offset: (polPage - 1) * LIST_PAGE })}`),
    api(`/incidents${qs({ limit: LIST_PAGE + 1, offset: (incPage - 1) * LIST_PAGE })}`),
    canIncident ? api("/sites") : { data: [] },
    api(`/insurance/risk-records${qs({ limit: RISK_PAGE, offset: (page - 1) * RISK_PAGE })}`)]);
  const records = risk.data;
  const policies = policiesMore.slice(0, LIST_PAGE), incidents = incidentsMore.slice(0, LIST_PAGE);
  const listPager = (key, id, pg, more) => pager({ id: `${id}-pager`, nextId: `${id}-next`, page: pg, more,
    href: (n) => `/console/insurance${qs({ ...Object.fromEntries(params), [key]: n > 1 ? n : "" })}`,
    prev: t("prev"), next: t("next"), label: w(`${id}_pager`), info: w("page_n", { p: pg }) });
  const siteList = sites.data.map((s) => ({ id: s.id, name: s.name }));
  mount(main,
    h("h1", {}, t("nav_insurance")),
    h("section", { class: "card", "aria-labelledby": "rr-h" },
      h("h2", { id: "rr-h" }, t("ins_risk_record")),
      h("p", { class: "muted" }, u.role === "insurer" ? t("ins_risk_hint") : w("risk_hint_staff")),
      risk.total ? h("p", { class: "muted small" }, w("risk_order")) : null,
      records.length ? h("div", { class: "row" },
        h("a", { id: "risk-csv", class: "button secondary", href: `/api/v1/insurance/risk-records.csv?lang=${getLang()}`, download: "risk-records.csv" }, w("csv")),
        h("a", { id: "risk-xlsx", class: "button secondary", href: `/api/v1/insurance/risk-records.xlsx?lang=${getLang()}`, download: "risk-records.xlsx" }, w("xlsx"))) : null,
      h("div", { class: "table-wrap" }, h("table", { id: "risk-records", class: "stack" },
        head(RISK_COLS),
        h("tbody", {}, records.length ? records.map((r) => h("tr", { dataset: { siteId: r.site_id } },
          h("th", { scope: "row" }, r.site_name, riskMore(r)), c("risk", { class: "num" }, fmtNum(r.score, 0)),
          c("open_tickets", { class: "num" }, r.open_tickets), c("overdue_tickets", { class: "num" }, r.overdue_tickets),
          c("ins_repeated", { class: "num" }, r.repeated_tickets), c("ins_excursion", { class: "num" }, fmtNum(r.excursion_min, 0)),
          c("ins_sensor_uptime", { class: "num" }, pct(r.sensor_uptime)), c("ins_camera_uptime", { class: "num" }, pct(r.camera_uptime)),
          c("ins_fail_rate", { class: "num" }, pct(r.inspection_fail_rate))))
          : h("tr", {}, h("td", { colspan: RISK_COLS.length }, t("ins_none")))))),
      riskPager(page, risk.total, params)),
    h("section", { class: "card", "aria-labelledby": "pol-h" },
      h("h2", { id: "pol-h" }, t("ins_policies")),
      canPolicy ? (siteList.length ? policyForm(siteList) : h("p", {}, w("no_sites"))) : null,
      h("div", { class: "table-wrap" }, h("table", { id: "policies", class: "stack" },
        head(POLICY_COLS),
        h("tbody", {}, policies.length ? policies.map((p) => h("tr", { dataset: { policyNo: p.policy_no } },
          h("th", { scope: "row" }, siteName(p.site_id)), c("ins_insurer", {}, p.insurer), c("ins_policy_no", {}, p.policy_no),
          c("ins_cover", { class: "num" }, money(p.cover_cny)), c("ins_premium", { class: "num" }, money(p.premium_cny)),
          c("ins_period", {}, `${p.starts_on} – ${p.ends_on}`)))
          : h("tr", {}, h("td", { colspan: POLICY_COLS.length }, t("ins_none")))))),
      listPager("policies_page", "policies", polPage, policiesMore.length > LIST_PAGE)),
    h("section", { class: "card", "aria-labelledby": "inc-h" },
      h("h2", { id: "inc-h" }, t("ins_incidents")),
      canIncident && siteList.length ? incidentForm(siteList) : null,
      h("div", { class: "table-wrap" }, h("table", { id: "incidents", class: "stack" },
        head(INCIDENT_COLS),
        h("tbody", {}, incidents.length ? incidents.map((i) => h("tr", { dataset: { incidentId: i.id } },
          h("th", { scope: "row" }, fmtTime(i.occurred_at)), c("site", {}, siteName(i.site_id)), c("kind", {}, incidentKindLabel(i.kind)),
          c("ins_description", {}, i.description), claimCell(i, canIncident), c("ins_amount", { class: "num" }, money(i.amount_cny)),
          c("ins_bundle", {}, h("a", { href: `/api/v1/incidents/${i.id}/bundle.zip`, download: `claim-${i.id}.zip`, class: "bundle-link" }, t("ins_download")))))
          : h("tr", {}, h("td", { colspan: INCIDENT_COLS.length }, t("ins_no_incidents")))))),
      listPager("incidents_page", "incidents", incPage, incidentsMore.length > LIST_PAGE)));
}
