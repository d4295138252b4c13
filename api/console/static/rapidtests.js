// Rapid tests (快检): the tested batches with their result in words, the supplier flags a
// failure raised, a phone form to record a batch with a photo of the strip, the CSV import of
// an instrument's export (each refused row named), and the monthly statistics.
import { api } from "./api.js";
import { me, refresh, siteName } from "./app.js";
import { cell as labelled, h, mount, pager, qs, say } from "./dom.js";
import { explain, fmtNum, fmtTime, getLang, localNow, localToIso, wordsOf } from "./i18n.js";

const ITEMS = {
  pesticide_enzyme: ["农药残留(酶抑制法)", "pesticide residue (enzyme inhibition)"],
  clenbuterol: ["克伦特罗", "clenbuterol"],
  ractopamine: ["莱克多巴胺", "ractopamine"],
  veterinary_drug: ["兽药残留", "veterinary drug residue"],
  formaldehyde: ["甲醛", "formaldehyde"],
  sulfur_dioxide: ["二氧化硫", "sulfur dioxide"],
  nitrite: ["亚硝酸盐", "nitrite"],
  borax: ["硼砂", "borax"],
  malachite_green: ["孔雀石绿", "malachite green"],
  aflatoxin: ["黄曲霉毒素", "aflatoxin"],
};

const WORDS = {
  "zh-CN": {
    title: "快检", stats: "月度统计", month: "月份", batches: "批次", passed: "合格", failed_n: "不合格",
    pass_rate: "合格率", by_item: "不合格项目", by_supplier: "不合格供应商",
    record: "录入快检结果", import: "导入仪器 CSV", import_btn: "导入", csv_file: "CSV 文件",
    flags: "供应商预警", flags_hint: "同一供应商的样品快检不合格，以下进货需核查、暂停使用。",
    tests: "快检记录", none: "没有记录", save: "保存",
    site_id: "单位", sample_no: "样品编号", product: "样品名称", supplier_name: "供应商",
    supplier_licence: "供应商许可证号", batch_no: "批次", item: "检测项目", method: "检测方法",
    result: "检测结果", value: "检测值", limit: "限值", unit: "单位(计量)", tester: "检测人",
    tested_at: "检测时间", photo: "试纸或仪器屏幕照片", purchase_id: "进货记录", row: "行", field: "字段",
    reason: "原因", pass: "合格", fail: "不合格", ticket: "整改单", delivered_on: "进货日期",
    failed_item: "不合格项目", failed_at: "检测时间", failed_site: "不合格样品单位", other_site: "其他单位",
    saved: "已保存：{sample}", saved_again: "此前已录入，未改动：{sample}", photo_saved: "，照片已保存",
    photo_failed: "，但照片未保存：{msg}",
    imported: "导入 {imported} 条，重复 {duplicates} 条，失败 {failed} 条", choose_csv: "请先选择 CSV 文件",
    view_photo: "照片", flagged: "预警 {n} 批进货", trace: "追溯进货记录",
    newer: "较新的记录", older: "更早的记录", pages: "第 {p} 页",
  },
  en: {
    title: "Rapid tests", stats: "Monthly statistics", month: "Month", batches: "Batches", passed: "Passed",
    failed_n: "Failed", pass_rate: "Pass rate", by_item: "Failures by item", by_supplier: "Failures by supplier",
    record: "Record a rapid test", import: "Import an instrument CSV", import_btn: "Import", csv_file: "CSV file",
    flags: "Supplier flags", flags_hint: "A sample from the same supplier failed: check and hold these deliveries.",
    tests: "Tested batches", none: "No records", save: "Save",
    site_id: "Site", sample_no: "Sample no.", product: "Product", supplier_name: "Supplier",
    supplier_licence: "Supplier licence no.", batch_no: "Batch", item: "Test item", method: "Method",
    result: "Result", value: "Value", limit: "Limit", unit: "Unit", tester: "Tester",
    tested_at: "Tested at", photo: "Photo of the strip or screen", purchase_id: "Purchase record", row: "Row",
    field: "Field", reason: "Reason", pass: "pass", fail: "fail", ticket: "Ticket", delivered_on: "Delivered",
    failed_item: "Failed item", failed_at: "Tested at", failed_site: "Site of the failed sample", other_site: "another site",
    saved: "Saved: {sample}", saved_again: "Recorded before, unchanged: {sample}", photo_saved: ", photo saved",
    photo_failed: ", but the photo was not saved: {msg}",
    imported: "{imported} imported, {duplicates} duplicates, {failed} failed", choose_csv: "Choose a CSV file first",
    view_photo: "Photo", flagged: "{n} deliveries flagged", trace: "Trace the deliveries",
    newer: "Newer", older: "Older", pages: "Page {p}",
  },
};

const zh = () => getLang() !== "en";
const w = wordsOf(WORDS, { missing: "" });
/** The human name of a test item (its id only when unknown). */
export const itemLabel = (item) => (ITEMS[item] ? ITEMS[item][zh() ? 0 : 1] : item);

/** Send a raw body (CSV text, a photo) and answer JSON with the HTTP status. */
const send = (path, method, body, type) => api(path, { method, raw: body, type, withStatus: true });

const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, w(c)))));
const empty = (n) => h("tr", {}, h("td", { colspan: n }, w("none")));
const cell = (col, attrs, ...content) => labelled(w(col), attrs, ...content);
const resultWord = (r) => h("span", { class: `light ${r === "fail" ? "light-red" : "light-green"}` }, w(r));
/** The deliveries page for a supplier, with one delivery marked (进货查验 trace). */
const traceHref = (licence, purchaseId) =>
  `/console/deliveries${qs({ supplier: licence, purchase: purchaseId })}`;
const counts = (list) => list.map((c) => `${c.key in ITEMS ? itemLabel(c.key) : c.name || c.key} ${c.failed}`).join("、") || "—";

function statsCard(stats) {
  return h("section", { class: "card", "aria-labelledby": "rt-stats-h" },
    h("h2", { id: "rt-stats-h" }, w("stats")),
    h("div", { class: "table-wrap" }, h("table", { id: "rt-stats", class: "stack" },
      head("month", "batches", "passed", "failed_n", "pass_rate", "by_item", "by_supplier"),
      h("tbody", {}, stats.length ? stats.map((m) => h("tr", { dataset: { month: m.month } },
        cell("month", {}, m.month), cell("batches", { class: "num" }, m.batches), cell("passed", { class: "num" }, m.passed),
        cell("failed_n", { class: "num" }, m.failed),
        cell("pass_rate", { class: "num" }, m.pass_rate === null ? "—" : `${fmtNum(m.pass_rate * 100, 1)}%`),
        cell("by_item", {}, counts(m.failures_by_item)), cell("by_supplier", {}, counts(m.failures_by_supplier))))
        : empty(7)))));
}

const PAGE = 50;

/** Page `page` of a list in the URL's `key` (?page=N for the tests, ?flags_page=N for the flags). */
const pageHref = (key, page) => {
  const p = new URLSearchParams(location.search);
  if (page > 1) p.set(key, String(page)); else p.delete(key);
  const s = p.toString();
  return `/console/rapid-tests${s ? `?${s}` : ""}`;
};
const listPager = (key, id, page, more) => pager({ id: `${id}-pager`, nextId: `${id}-older`, page, more,
  href: (p) => pageHref(key, p), prev: w("newer"), next: w("older"), label: w("pages", { p: page }) });

function flagsCard(flags, page, more) {
  return h("section", { class: "card", "aria-labelledby": "rt-flags-h" },
    h("h2", { id: "rt-flags-h" }, w("flags")),
    flags.length ? h("p", { class: "muted small" }, w("flags_hint")) : null,
    h("div", { class: "table-wrap" }, h("table", { id: "rt-flags", class: "stack" },
      head("site_id", "product", "batch_no", "delivered_on", "supplier_name", "failed_item", "failed_at", "failed_site"),
      h("tbody", {}, flags.length ? flags.map((f) => h("tr", { dataset: { siteId: f.site_id, purchase: String(f.purchase_id) } },
        cell("site_id", {}, siteName(f.site_id)),
        cell("product", {}, h("a", { href: traceHref(f.supplier_licence, f.purchase_id), "data-link": true, class: "trace" }, f.product)),
        cell("batch_no", {}, f.batch_no || "—"), cell("delivered_on", {}, f.delivered_on),
        cell("supplier_name", {}, f.supplier_name), cell("failed_item", {}, itemLabel(f.failed_item)), cell("failed_at", {}, fmtTime(f.failed_at)),
        cell("failed_site", {}, f.failed_site_id ? siteName(f.failed_site_id) : w("other_site"))))
        : empty(8)))),
    listPager("flags_page", "rt-flags", page, more));
}

function testsCard(tests, page, more) {
  return h("section", { class: "card", "aria-labelledby": "rt-tests-h" },
    h("h2", { id: "rt-tests-h" }, w("tests")),
    h("div", { class: "table-wrap" }, h("table", { id: "rt-tests", class: "stack" },
      head("tested_at", "site_id", "product", "batch_no", "supplier_name", "item", "result", "value", "ticket", "photo"),
      h("tbody", {}, tests.length ? tests.map((r) => h("tr", { dataset: { result: r.result, siteId: r.site_id, sample: r.sample_no } },
        cell("tested_at", {}, fmtTime(r.tested_at)), cell("site_id", {}, siteName(r.site_id)), cell("product", {}, r.product),
        cell("batch_no", {}, r.batch_no || "—"), cell("supplier_name", {}, r.supplier_name || "—"), cell("item", {}, itemLabel(r.item)),
        cell("result", {}, h("span", {}, resultWord(r.result), r.flagged ? h("div", { class: "small muted" }, w("flagged", { n: r.flagged })) : null,
          r.result === "fail" && (r.supplier_licence || r.purchase_id)
            ? h("div", { class: "small" }, h("a", { href: traceHref(r.supplier_licence, r.purchase_id), "data-link": true, class: "trace" }, w("trace")))
            : null)),
        cell("value", { class: "num" }, r.value === null ? "—" : `${r.value}${r.limit === null ? "" : ` / ${r.limit}`} ${r.unit}`),
        cell("ticket", {}, r.ticket_id ? h("a", { href: `/console/tickets/${r.ticket_id}`, "data-link": true, class: "ticket-no" }, r.ticket_no || `#${r.ticket_id}`) : "—"),
        cell("photo", {}, r.photo_sha256 ? h("a", { href: `/api/v1/rapid-tests/${r.id}/photo`, target: "_blank", rel: "noopener" }, w("view_photo")) : "—")))
        : empty(10)))),
    listPager("page", "rt-tests", page, more));
}

const field = (id, input) => h("div", { class: "field" }, h("label", { for: `rt-${id}` }, w(id)), input);
const text = (id, attrs = {}) => field(id, h("input", { id: `rt-${id}`, name: id, ...attrs }));

function recordCard(sites) {
  const status = h("p", { id: "rt-record-status", role: "status", "data-keep": true });
  const form = h("form", { id: "rt-record", class: "filters", novalidate: true },
    field("site_id", h("select", { id: "rt-site_id", name: "site_id", required: true }, sites.map((s) => h("option", { value: s.id }, s.name)))),
    text("sample_no", { required: true, maxlength: 60 }),
    text("product", { required: true, maxlength: 100 }),
    text("supplier_name", { maxlength: 200 }),
    text("supplier_licence", { maxlength: 60 }),
    text("batch_no", { maxlength: 60 }),
    field("item", h("select", { id: "rt-item", name: "item" }, Object.keys(ITEMS).map((k) => h("option", { value: k }, itemLabel(k))))),
    text("method", { required: true, maxlength: 100, value: zh() ? "速测卡法" : "test strip" }),
    field("result", h("select", { id: "rt-result", name: "result" }, h("option", { value: "pass" }, w("pass")), h("option", { value: "fail" }, w("fail")))),
    text("value", { type: "number", step: "any", inputmode: "decimal" }),
    text("limit", { type: "number", step: "any", inputmode: "decimal" }),
    text("unit", { maxlength: 20 }),
    text("tester", { required: true, maxlength: 100, value: me().username }),
    text("tested_at", { type: "datetime-local", required: true, value: localNow() }),
    field("photo", h("input", { id: "rt-photo", name: "photo", type: "file", accept: "image/*", capture: "environment" })),
    h("button", { type: "submit", id: "rt-save" }, w("save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const opt = (k) => (String(d.get(k) || "").trim() ? String(d.get(k)).trim() : undefined);
    const num = (k) => (opt(k) === undefined ? undefined : Number(opt(k)));
    const at = String(d.get("tested_at") || "");
    const body = {
      site_id: d.get("site_id"), sample_no: opt("sample_no") || "", product: opt("product") || "",
      supplier_name: opt("supplier_name"), supplier_licence: opt("supplier_licence"), batch_no: opt("batch_no") || "",
      item: d.get("item"), method: opt("method") || "", result: d.get("result"), value: num("value"), limit: num("limit"),
      unit: opt("unit") || "", tester: opt("tester") || "", tested_at: localToIso(at),
    };
    status.className = "";
    try {
      const saved = await send("/rapid-tests", "POST", JSON.stringify(body), "application/json");
      let msg = w(saved.status === 200 ? "saved_again" : "saved", { sample: saved.sample_no });
      const photo = form.querySelector("#rt-photo").files[0];
      if (photo) {
        try {
          await send(`/rapid-tests/${saved.id}/photo`, "PUT", photo, photo.type || "application/octet-stream");
          msg += w("photo_saved");
        } catch (e) {
          msg += w("photo_failed", { msg: explain(e) });
        }
      }
      form.querySelector("#rt-photo").value = "";
      say(status, msg);
      status.className = "ok";
      await refresh();
    } catch (e) {
      say(status, explain(e));
      status.className = "error";
    }
  });
  return h("section", { class: "card", "aria-labelledby": "rt-record-h" }, h("h2", { id: "rt-record-h" }, w("record")), form, status);
}

function importCard() {
  const status = h("p", { id: "rt-import-status", role: "status", "data-keep": true });
  const errors = h("div", { id: "rt-import-errors" });
  const form = h("form", { id: "rt-import", class: "row", novalidate: true },
    h("label", { for: "rt-csv" }, w("csv_file")),
    h("input", { id: "rt-csv", name: "csv", type: "file", accept: ".csv,text/csv" }),
    h("button", { type: "submit", id: "rt-import-go" }, w("import_btn")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = form.querySelector("#rt-csv").files[0];
    mount(errors);
    if (!file) {
      say(status, w("choose_csv"));
      status.className = "error";
      return;
    }
    try {
      const out = await send("/rapid-tests/import", "POST", file, "text/csv");
      say(status, w("imported", out));
      status.className = out.failed ? "error" : "ok";
      form.querySelector("#rt-csv").value = "";
      if (out.errors.length) {
        mount(errors, h("div", { class: "table-wrap" }, h("table", { id: "rt-import-table" },
          head("row", "field", "reason"),
          h("tbody", {}, out.errors.map((e) => h("tr", { dataset: { row: String(e.row), field: e.field } },
            h("td", { class: "num" }, e.row), h("td", {}, WORDS["zh-CN"][e.field] ? w(e.field) : e.field), h("td", {}, e.reason)))))));
      }
      if (out.imported) await refresh();
    } catch (e) {
      say(status, explain(e));
      status.className = "error";
    }
  });
  return h("section", { class: "card", "aria-labelledby": "rt-import-h" },
    h("h2", { id: "rt-import-h" }, w("import")), form, status, errors);
}

/**
 * The rapid-test page: statistics, flags, the batches; the forms for those who may write.
 * The batches and the flags are newest first, paged by ?page=N and ?flags_page=N.
 */
export async function renderRapidTests(main, params = new URLSearchParams()) {
  const num = (k) => Math.max(1, Number(params.get(k)) || 1);
  const page = num("page"), flagsPage = num("flags_page");
  const [rows, flagRows, stats, sites] = await Promise.all([
    api(`/rapid-tests${qs({ limit: PAGE + 1, offset: (page - 1) * PAGE })}`),
    api(`/rapid-tests/flags${qs({ limit: PAGE + 1, offset: (flagsPage - 1) * PAGE })}`),
    api("/rapid-tests/stats"), api("/sites"),
  ]);
  const tests = rows.slice(0, PAGE), flags = flagRows.slice(0, PAGE); // one more than a page: older ones exist
  const u = me();
  const writer = !u.read_only && !["insurer", "inspector"].includes(u.role); // an inspector reads
  const keep = document.getElementById("rt-import-errors");
  const kept = keep ? [...keep.childNodes] : [];
  mount(main,
    h("h1", {}, w("title")),
    writer ? recordCard(sites.data) : null,
    writer ? importCard() : null,
    flagsCard(flags, flagsPage, flagRows.length > PAGE),
    testsCard(tests, page, rows.length > PAGE),
    statsCard(stats));
  const box = document.getElementById("rt-import-errors");
  if (box && kept.length) box.append(...kept); // a refresh after an import keeps its row errors
}
