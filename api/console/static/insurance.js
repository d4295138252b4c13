// Insurance (食品安全责任险): policies, incidents with the claim evidence bundle, and the
// insurer's read-only risk record of each insured canteen.
import { api } from "./api.js";
import { siteName } from "./app.js";
import { cell, h, mount, qs } from "./dom.js";
import { fmtNum, fmtTime, t } from "./i18n.js";

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
const money = (x) => (x === null || x === undefined ? "—" : `¥${Number(x).toLocaleString("zh-CN")}`);

const RISK_COLS = ["site", "risk", "open_tickets", "overdue_tickets", "ins_repeated", "ins_excursion", "ins_sensor_uptime", "ins_camera_uptime", "ins_fail_rate"];
const POLICY_COLS = ["site", "ins_insurer", "ins_policy_no", "ins_cover", "ins_premium", "ins_period"];
const INCIDENT_COLS = ["created_at", "site", "kind", "ins_description", "ins_claim", "ins_amount", "ins_bundle"];
const head = (cols) => h("thead", {}, h("tr", {}, cols.map((x) => h("th", { scope: "col" }, t(x)))));
/** A cell labelled with its column's words (a phone shows each row as a card). */
const c = (col, attrs, ...content) => cell(t(col), attrs, ...content);

export async function renderInsurance(main) {
  const [policies, incidents] = await Promise.all([api("/policies"), api("/incidents")]);
  const insured = [...new Set(policies.map((p) => p.site_id))];
  const records = await Promise.all(insured.map((s) => api(`/insurance/risk-record${qs({ site_id: s })}`)));
  mount(main,
    h("h1", {}, t("nav_insurance")),
    h("section", { class: "card", "aria-labelledby": "rr-h" },
      h("h2", { id: "rr-h" }, t("ins_risk_record")),
      h("p", { class: "muted" }, t("ins_risk_hint")),
      h("div", { class: "table-wrap" }, h("table", { id: "risk-records", class: "stack" },
        head(RISK_COLS),
        h("tbody", {}, records.length ? records.map((r) => h("tr", { dataset: { siteId: r.site_id } },
          h("th", { scope: "row" }, r.site_name), c("risk", { class: "num" }, fmtNum(r.score, 0)),
          c("open_tickets", { class: "num" }, r.open_tickets), c("overdue_tickets", { class: "num" }, r.overdue_tickets),
          c("ins_repeated", { class: "num" }, r.repeated_tickets), c("ins_excursion", { class: "num" }, fmtNum(r.excursion_min, 0)),
          c("ins_sensor_uptime", { class: "num" }, pct(r.sensor_uptime)), c("ins_camera_uptime", { class: "num" }, pct(r.camera_uptime)),
          c("ins_fail_rate", { class: "num" }, pct(r.inspection_fail_rate))))
          : h("tr", {}, h("td", { colspan: RISK_COLS.length }, t("ins_none"))))))),
    h("section", { class: "card", "aria-labelledby": "pol-h" },
      h("h2", { id: "pol-h" }, t("ins_policies")),
      h("div", { class: "table-wrap" }, h("table", { id: "policies", class: "stack" },
        head(POLICY_COLS),
        h("tbody", {}, policies.length ? policies.map((p) => h("tr", { dataset: { policyNo: p.policy_no } },
          h("th", { scope: "row" }, siteName(p.site_id)), c("ins_insurer", {}, p.insurer), c("ins_policy_no", {}, p.policy_no),
          c("ins_cover", { class: "num" }, money(p.cover_cny)), c("ins_premium", { class: "num" }, money(p.premium_cny)),
          c("ins_period", {}, `${p.starts_on} – ${p.ends_on}`)))
          : h("tr", {}, h("td", { colspan: POLICY_COLS.length }, t("ins_none"))))))),
    h("section", { class: "card", "aria-labelledby": "inc-h" },
      h("h2", { id: "inc-h" }, t("ins_incidents")),
      h("div", { class: "table-wrap" }, h("table", { id: "incidents", class: "stack" },
        head(INCIDENT_COLS),
        h("tbody", {}, incidents.length ? incidents.map((i) => h("tr", { dataset: { incidentId: i.id } },
          h("th", { scope: "row" }, fmtTime(i.occurred_at)), c("site", {}, siteName(i.site_id)), c("kind", {}, i.kind),
          c("ins_description", {}, i.description), c("ins_claim", {}, t(`claim_${i.claim_status}`)), c("ins_amount", { class: "num" }, money(i.amount_cny)),
          c("ins_bundle", {}, h("a", { href: `/api/v1/incidents/${i.id}/bundle.zip`, download: `claim-${i.id}.zip`, class: "bundle-link" }, t("ins_download")))))
          : h("tr", {}, h("td", { colspan: INCIDENT_COLS.length }, t("ins_no_incidents"))))))));
}
