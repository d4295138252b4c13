// Insurance (食品安全责任险): policies, incidents with the claim evidence bundle, and the
// insurer's read-only risk record of each insured canteen.
import { api } from "./api.js";
import { siteName } from "./app.js";
import { h, mount, qs } from "./dom.js";
import { fmtNum, fmtTime, t } from "./i18n.js";

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
const money = (x) => (x === null || x === undefined ? "—" : `¥${Number(x).toLocaleString("zh-CN")}`);

export async function renderInsurance(main) {
  const [policies, incidents] = await Promise.all([api("/policies"), api("/incidents")]);
  const insured = [...new Set(policies.map((p) => p.site_id))];
  const records = await Promise.all(insured.map((s) => api(`/insurance/risk-record${qs({ site_id: s })}`)));
  mount(main,
    h("h1", {}, t("nav_insurance")),
    h("section", { class: "card", "aria-labelledby": "rr-h" },
      h("h2", { id: "rr-h" }, t("ins_risk_record")),
      h("p", { class: "muted" }, t("ins_risk_hint")),
      h("div", { class: "table-wrap" }, h("table", { id: "risk-records" },
        h("thead", {}, h("tr", {}, [t("site"), t("risk"), t("open_tickets"), t("overdue_tickets"), t("ins_repeated"), t("ins_excursion"), t("ins_sensor_uptime"), t("ins_camera_uptime"), t("ins_fail_rate")].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, records.length ? records.map((r) => h("tr", { dataset: { siteId: r.site_id } },
          h("th", { scope: "row" }, r.site_name), h("td", { class: "num" }, fmtNum(r.score, 0)),
          h("td", { class: "num" }, r.open_tickets), h("td", { class: "num" }, r.overdue_tickets),
          h("td", { class: "num" }, r.repeated_tickets), h("td", { class: "num" }, fmtNum(r.excursion_min, 0)),
          h("td", { class: "num" }, pct(r.sensor_uptime)), h("td", { class: "num" }, pct(r.camera_uptime)),
          h("td", { class: "num" }, pct(r.inspection_fail_rate))))
          : h("tr", {}, h("td", { colspan: 9 }, t("ins_none"))))))),
    h("section", { class: "card", "aria-labelledby": "pol-h" },
      h("h2", { id: "pol-h" }, t("ins_policies")),
      h("div", { class: "table-wrap" }, h("table", { id: "policies" },
        h("thead", {}, h("tr", {}, [t("site"), t("ins_insurer"), t("ins_policy_no"), t("ins_cover"), t("ins_premium"), t("ins_period")].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, policies.length ? policies.map((p) => h("tr", {},
          h("td", {}, siteName(p.site_id)), h("td", {}, p.insurer), h("td", {}, p.policy_no),
          h("td", { class: "num" }, money(p.cover_cny)), h("td", { class: "num" }, money(p.premium_cny)),
          h("td", {}, `${p.starts_on} – ${p.ends_on}`)))
          : h("tr", {}, h("td", { colspan: 6 }, t("ins_none"))))))),
    h("section", { class: "card", "aria-labelledby": "inc-h" },
      h("h2", { id: "inc-h" }, t("ins_incidents")),
      h("div", { class: "table-wrap" }, h("table", { id: "incidents" },
        h("thead", {}, h("tr", {}, [t("created_at"), t("site"), t("kind"), t("ins_description"), t("ins_claim"), t("ins_amount"), t("ins_bundle")].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, incidents.length ? incidents.map((i) => h("tr", { dataset: { incidentId: i.id } },
          h("td", {}, fmtTime(i.occurred_at)), h("td", {}, siteName(i.site_id)), h("td", {}, i.kind),
          h("td", {}, i.description), h("td", {}, t(`claim_${i.claim_status}`)), h("td", { class: "num" }, money(i.amount_cny)),
          h("td", {}, h("a", { href: `/api/v1/incidents/${i.id}/bundle.zip`, download: `claim-${i.id}.zip`, class: "bundle-link" }, t("ins_download")))))
          : h("tr", {}, h("td", { colspan: 7 }, t("ins_no_incidents"))))))));
}
