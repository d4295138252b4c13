// Inspections (监督检查): the list, the risk-weighted random draw, recording one on a tablet
// with a checklist (failed items open tickets), one inspection with its notice to print.
import { api } from "./api.js";
import { me, navigate, refresh, siteName } from "./app.js";
import { cell, h, mount, qs, say } from "./dom.js";
import { explain, fmtNum, fmtTime, getLang, t, tOr } from "./i18n.js";
import { ruleLabel } from "./labels.js";
import { onLiveView } from "./live.js";

const BASE = "/console";
const KINDS = ["routine", "special", "joint", "random", "public_spot"];

/** Admins, regulators and inspectors (执法检查人员) inspect; the API refuses everyone else. */
export function mayInspect() {
  return ["admin", "regulator", "inspector"].includes(me().role);
}

function noticeLink(i) {
  return i.notice_no
    ? h("a", { href: `/api/v1/inspections/${i.id}/notice?format=html`, target: "_blank", rel: "noopener", class: "notice-link" }, i.notice_no)
    : "—";
}

const PAGE = 50;

export async function renderInspections(main, params = new URLSearchParams()) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const rows = await api(`/inspections${qs({ limit: PAGE + 1, offset: (page - 1) * PAGE })}`);
  const list = rows.slice(0, PAGE); // newest first; one more than a page says there are older ones
  const go = (p) => `${BASE}/inspections${qs({ page: p > 1 ? p : "" })}`;
  const planBox = h("div", { id: "plan-result" });
  const planForm = mayInspect() ? h("form", { id: "plan-form", class: "filters", "aria-label": t("insp_plan") },
    h("div", { class: "field" }, h("label", { for: "plan-n" }, t("insp_plan_n")), h("input", { id: "plan-n", name: "n", type: "number", min: 1, max: 200, value: 3 })),
    h("div", { class: "field" }, h("label", { for: "plan-seed" }, t("insp_plan_seed")), h("input", { id: "plan-seed", name: "seed", type: "number", min: 0, value: new Date().getFullYear() * 100 + new Date().getMonth() + 1 })),
    h("div", { class: "field buttons" }, h("button", { type: "submit", id: "plan-draw" }, t("insp_plan_draw")))) : null;
  if (planForm) {
    planForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const out = await api("/inspections/plan", { method: "POST", json: { n: Number(planForm.n.value), seed: Number(planForm.seed.value) } });
        mount(planBox, h("p", { class: "muted" }, t("insp_plan_eligible", { n: out.eligible, seed: out.seed })),
          h("ol", { id: "plan-sites" }, out.sites.map((s) => h("li", { dataset: { siteId: s.site_id } },
            `${s.name} · ${t("risk")} ${fmtNum(s.score, 0)} `,
            h("a", { href: `${BASE}/inspections/new${qs({ site: s.site_id, kind: "random" })}`, "data-link": true }, t("insp_record"))))));
      } catch (e) {
        mount(planBox, h("p", { class: "error", role: "alert" }, explain(e)));
      }
    });
  }
  mount(main,
    h("h1", {}, t("nav_inspections")),
    mayInspect() ? h("p", {}, h("a", { href: `${BASE}/inspections/new`, "data-link": true, class: "button", id: "insp-new" }, t("insp_record"))) : null,
    planForm ? h("section", { class: "card" }, h("h2", {}, t("insp_plan")), h("p", { class: "muted" }, t("insp_plan_hint")), planForm, planBox) : null,
    h("div", { class: "table-wrap" }, h("table", { id: "inspections-table", class: "stack" },
      h("thead", {}, h("tr", {}, [t("created_at"), t("site"), t("kind"), t("items"), t("failed"), t("notice")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, list.length ? list.map((i) => h("tr", { dataset: { inspectionId: i.id } },
        cell(t("created_at"), {}, h("a", { href: `${BASE}/inspections/${i.id}`, "data-link": true }, fmtTime(i.started_at))),
        cell(t("site"), {}, siteName(i.site_id)),
        cell(t("kind"), {}, tOr(`insp_${i.kind}`, i.kind)),
        cell(t("items"), { class: "num" }, i.items), cell(t("failed"), { class: "num" }, i.failed),
        cell(t("notice"), {}, noticeLink(i))))
        : h("tr", {}, h("td", { colspan: 6 }, t("no_inspections")))))),
    h("nav", { class: "pager", id: "insp-pager", "aria-label": t("page_of", { p: page, n: rows.length > PAGE ? `${page + 1}+` : page }) },
      page > 1 ? h("a", { href: go(page - 1), "data-link": true, rel: "prev" }, t("prev")) : null,
      rows.length > PAGE ? h("a", { href: go(page + 1), "data-link": true, rel: "next", id: "insp-next" }, t("next")) : null));
}

export async function renderInspection(main, id) {
  const i = await api(`/inspections/${id}`);
  onLiveView((ev) => ev.kind === "ticket" && ev.site_id === i.site_id, refresh); // findings → tickets
  const msg = h("p", { id: "insp-message", role: "status", "data-keep": true });
  const failed = i.items.some((x) => x.result === "fail");
  const sign = mayInspect() && !i.notice_signed_at && failed
    ? h("button", { type: "button", id: "insp-sign", onclick: async () => {
      try {
        await api(`/inspections/${id}/sign`, { method: "POST", json: {} });
        navigate(location.pathname, { replace: true });
      } catch (e) {
        msg.className = "error";
        say(msg, explain(e));
      }
    } }, t("insp_sign")) : null;
  mount(main,
    h("p", {}, h("a", { href: `${BASE}/inspections`, "data-link": true }, `← ${t("nav_inspections")}`)),
    h("h1", {}, `${t("inspection")} · ${siteName(i.site_id)}`),
    h("dl", { class: "facts card" },
      h("dt", {}, t("kind")), h("dd", {}, tOr(`insp_${i.kind}`, i.kind)),
      h("dt", {}, t("created_at")), h("dd", {}, fmtTime(i.started_at)),
      h("dt", {}, t("insp_inspectors")), h("dd", {}, i.inspectors.join("、") || "—"),
      h("dt", {}, t("notice")), h("dd", {}, noticeLink(i), i.notice_signed_at ? ` · ${t("insp_signed", { who: i.notice_signed_by, at: fmtTime(i.notice_signed_at) })}` : ""),
      i.notes ? [h("dt", {}, t("note")), h("dd", {}, i.notes)] : null),
    h("div", { class: "row no-print" }, sign,
      failed ? h("a", { class: "button secondary", href: `/api/v1/inspections/${id}/notice?format=html`, target: "_blank", rel: "noopener", id: "insp-print" }, t("insp_print_notice")) : null,
      h("button", { type: "button", class: "secondary", onclick: () => window.print() }, t("print_record"))),
    msg,
    h("div", { class: "table-wrap" }, h("table", { id: "insp-items", class: "stack" },
      h("thead", {}, h("tr", {}, [t("insp_item"), t("insp_result"), t("note"), t("ticket")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, i.items.map((x) => h("tr", { class: x.result === "fail" ? "overdue" : null, dataset: { result: x.result } },
        h("th", { scope: "row" }, getLang() === "en" ? x.text_en : x.text_zh),
        cell(t("insp_result"), {}, t(`result_${x.result}`)),
        x.note ? cell(t("note"), {}, x.note) : h("td", {}),
        x.ticket_id ? cell(t("ticket"), {}, h("a", { href: `${BASE}/tickets/${x.ticket_id}`, "data-link": true }, x.ticket_no)) : h("td", {}, "")))))));
}

export async function renderNewInspection(main, params) {
  if (!mayInspect()) {
    mount(main, h("h1", {}, t("insp_record")), h("p", { class: "error", role: "alert", id: "refusal" }, t("refused_role")));
    return;
  }
  const [templates, sites] = await Promise.all([api("/checklist-templates"), api("/sites")]);
  const msg = h("p", { id: "insp-message", role: "status", "data-keep": true });
  if (!templates.length) {
    // no checklist yet: those who may write one start from the standard one in a click
    const author = ["admin", "regulator"].includes(me().role);
    const status = h("p", { id: "standard-status", role: "status" });
    const start = author ? h("button", { type: "button", id: "use-standard", onclick: async () => {
      start.disabled = true;
      try {
        await api("/checklist-templates/standard", { method: "POST" });
        await refresh();
      } catch (e) {
        status.className = "error";
        say(status, explain(e));
        start.disabled = false;
      }
    } }, t("insp_use_standard")) : null;
    mount(main, h("h1", {}, t("insp_record")),
      h("section", { class: "card" },
        h("p", { id: "no-templates" }, t(author ? "insp_no_templates_author" : "insp_no_templates")),
        start, status));
    return;
  }
  // several checklists (routine, a special campaign...): the inspector picks one
  const tpl = templates.find((x) => String(x.id) === params.get("template")) || templates[0];
  const pick = templates.length > 1 ? h("select", { id: "insp-template", name: "template", onchange: (ev) =>
    navigate(`${location.pathname}${qs({ site: params.get("site"), kind: params.get("kind"), template: ev.target.value })}`) },
  templates.map((x) => h("option", { value: x.id, selected: x.id === tpl.id }, x.name))) : null;
  const rows = tpl.items.map((it) => {
    const name = `r-${it.code}`;
    const radio = (value) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value, checked: value === "pass", dataset: { code: it.code } }), t(`result_${value}`));
    return h("fieldset", { class: "check-item", dataset: { code: it.code } },
      h("legend", {}, getLang() === "en" ? it.text_en : it.text_zh, it.rule ? h("small", { class: "muted" }, ` · ${ruleLabel(it.rule)}`) : null),
      h("div", { class: "row" }, ["pass", "fail", "na"].map(radio)),
      h("input", { type: "text", id: `note-${it.code}`, "aria-label": t("note"), placeholder: t("note"), maxlength: 2000 }));
  });
  const form = h("form", { id: "insp-form", class: "card" },
    h("label", { for: "insp-site" }, t("site")),
    h("select", { id: "insp-site", name: "site" }, sites.data.map((s) => h("option", { value: s.id, selected: s.id === params.get("site") }, s.name))),
    h("label", { for: "insp-kind" }, t("kind")),
    h("select", { id: "insp-kind", name: "kind" }, KINDS.map((k) => h("option", { value: k, selected: k === (params.get("kind") || tpl.kind) }, t(`insp_${k}`)))),
    pick ? h("label", { for: "insp-template" }, t("insp_template")) : null, pick,
    h("h2", {}, tpl.name), rows,
    h("label", { for: "insp-notes" }, t("note")), h("textarea", { id: "insp-notes", rows: 2, maxlength: 4000 }),
    h("div", { class: "row" }, h("button", { type: "submit", id: "insp-submit" }, t("insp_submit"))), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const items = tpl.items.map((it) => ({
      code: it.code,
      result: form.querySelector(`input[name="r-${it.code}"]:checked`).value,
      note: form.querySelector(`#note-${it.code}`).value.trim(),
    }));
    try {
      const out = await api("/inspections", { method: "POST", json: {
        site_id: form.site.value, kind: form.kind.value, template_id: tpl.id, inspectors: [me().username],
        started_at: new Date().toISOString(), finished_at: new Date().toISOString(), notes: form.querySelector("#insp-notes").value.trim(), items,
      } });
      navigate(`${BASE}/inspections/${out.id}`);
    } catch (e) {
      msg.className = "error";
      say(msg, explain(e));
    }
  });
  mount(main, h("h1", {}, t("insp_record")), form);
}
