// A 包保 cadre's supervision visit on a phone: the checklist from the API (GET
// /supervision/checklist) answered 是 / 否, a note saying what was found for each 否, and the
// recent visits with the tickets their findings opened. Only admins and regulators record.
import { api } from "./api.js";
import { me, render, siteName } from "./app.js";
import { h, mount, pager, qs, say } from "./dom.js";
import { explain, fmtTime, getLang, wordsOf } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "包保督导", new_visit: "记录督导检查", site: "单位", yes: "是", no: "否",
    what: "发现的问题（选“否”必填）", note: "总体意见", submit: "提交督导记录", recent: "最近督导",
    when: "时间", by: "督导人", findings: "问题数", tickets: "整改单", none: "没有记录",
    need_answer: "第 {n} 项还没有选择“是”或“否”。", source: "依据：{s}",
    newer: "较新的记录", older: "更早的记录", pages: "第 {p} 页",
  },
  en: {
    title: "Supervision visits", new_visit: "Record a visit", site: "Site", yes: "Yes", no: "No",
    what: "What was found (required for “No”)", note: "Overall remarks", submit: "Submit the visit", recent: "Recent visits",
    when: "When", by: "By", findings: "Findings", tickets: "Tickets", none: "No records",
    need_answer: "Item {n} has no answer yet.", source: "Source: {s}",
    newer: "Newer", older: "Older", pages: "Page {p}",
  },
};

const w = wordsOf(WORDS, { missing: "" });

const PAGE = 25;

/** The visits page: the form (for a cadre) and the visits in scope, newest first, ?page=N. */
export async function renderVisits(main, params = new URLSearchParams()) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [sites, checklist, rows] = await Promise.all([
    api("/sites"), api("/supervision/checklist"),
    api(`/supervision/visits${qs({ limit: PAGE + 1, offset: (page - 1) * PAGE })}`),
  ]);
  const visits = rows.slice(0, PAGE); // one more than a page says there are older ones
  const cadre = ["admin", "regulator"].includes(me().role);
  mount(main,
    h("h1", {}, w("title")),
    cadre ? visitForm(sites.data, checklist) : null,
    h("section", { class: "card", "aria-labelledby": "visits-h" },
      h("h2", { id: "visits-h" }, w("recent")),
      h("div", { class: "table-wrap" }, h("table", { id: "visits-table", class: "stack" },
        h("thead", {}, h("tr", {}, ["when", "site", "by", "findings", "tickets"].map((c) => h("th", { scope: "col" }, w(c))))),
        h("tbody", {}, visits.length ? visits.map((v) => h("tr", { dataset: { visitId: v.id, siteId: v.site_id } },
          h("td", { "data-label": w("when") }, fmtTime(v.visited_at)), h("td", { "data-label": w("site") }, siteName(v.site_id)),
          h("td", { "data-label": w("by") }, v.visited_by),
          h("td", { class: "num", "data-label": w("findings") }, String(v.findings)),
          h("td", { "data-label": w("tickets") }, v.ticket_ids.length ? v.ticket_ids.map((id, k) => h("a", { href: `/console/tickets/${id}`, "data-link": true }, `${(v.ticket_nos || [])[k] || `#${id}`} `)) : "—")))
          : h("tr", {}, h("td", { colspan: 5 }, w("none")))))),
      pager({ id: "visits-pager", nextId: "visits-older", page, more: rows.length > PAGE, href: (p) => `/console/visits${qs({ page: p > 1 ? p : "" })}`,
        prev: w("newer"), next: w("older"), label: w("pages", { p: page }) })));
}

function visitForm(sites, checklist) {
  const label = (item) => (getLang() === "en" ? item.en : item.zh);
  const status = h("p", { id: "visit-status", role: "status", "data-keep": true });
  const items = checklist.items.map((item, i) => {
    const name = `visit-${item.key}`;
    const what = h("div", { hidden: true },
      h("label", { for: `${name}-note` }, w("what")), h("input", { id: `${name}-note`, maxlength: 1000 }));
    const radio = (ok) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value: ok ? "yes" : "no", id: `${name}-${ok ? "yes" : "no"}`, onchange: () => { what.hidden = ok; } }),
      ` ${w(ok ? "yes" : "no")}`);
    return h("div", { class: "visit-item", dataset: { item: item.key } },
      h("fieldset", {}, h("legend", {}, `${i + 1}. ${label(item)}`), h("div", { class: "row" }, radio(true), radio(false)), what));
  });
  const form = h("form", { id: "visit-form", novalidate: true },
    h("label", { for: "visit-site" }, w("site")),
    h("select", { id: "visit-site" }, sites.map((s) => h("option", { value: s.id }, s.name))),
    h("p", { class: "muted small" }, w("source", { s: getLang() === "en" ? checklist.source_en : checklist.source })),
    h("div", { class: "visit-items" }, items),
    h("label", { for: "visit-note" }, w("note")), h("textarea", { id: "visit-note", maxlength: 2000, rows: 3 }),
    status, h("button", { type: "submit", id: "visit-submit" }, w("submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    const answers = [];
    for (const [i, item] of checklist.items.entries()) {
      const picked = form.querySelector(`input[name="visit-${item.key}"]:checked`);
      if (!picked) return say(status, w("need_answer", { n: i + 1 }));
      const ok = picked.value === "yes";
      answers.push({ item: label(item), ok, note: ok ? "" : form.querySelector(`#visit-${item.key}-note`).value });
    }
    const body = { site_id: form.querySelector("#visit-site").value, visited_at: new Date().toISOString(), checklist: answers,
      note: form.querySelector("#visit-note").value };
    try {
      await api("/supervision/visits", { method: "POST", json: body });
    } catch (e) {
      status.className = "error";
      return say(status, explain(e));
    }
    render({ quiet: true });
  });
  return h("section", { class: "card", "aria-labelledby": "visit-form-h" }, h("h2", { id: "visit-form-h" }, w("new_visit")), form);
}
