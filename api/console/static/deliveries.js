// Deliveries (进货查验): the canteen officer records each delivery on a phone (supplier and
// licence number, product, batch, date, quantity, who received it, a photo if taken) and
// sees the recent ones; a failed rapid test or a supplier flag links here with the supplier
// (and the delivery) it traces to. Every refusal is said next to its field, in the reader's
// language, before anything is sent when the browser can tell, or from the API's answer.
import { api } from "./api.js";
import { me, siteName } from "./app.js";
import { cell, h, mount, pager, qs, say } from "./dom.js";
import { explain, fmtTime, getLang, getTimeZone, wordsOf } from "./i18n.js";

const UNITS = { kg: ["千克", "kg"], g: ["克", "g"], L: ["升", "L"], pcs: ["件", "pcs"], box: ["箱", "boxes"] };

const WORDS = {
  "zh-CN": {
    title: "进货查验", record: "登记进货", recent: "近期进货", none: "没有进货记录", save: "保存",
    site_id: "单位", supplier_name: "供应商", supplier_licence: "供应商许可证号", product: "品名",
    batch_no: "批次号", delivered_on: "进货日期", quantity: "数量", unit: "计量单位", received_by: "收货人",
    photo: "照片（随货单据、许可证或货品，可不拍）", view_photo: "照片", recorded_by: "录入人", recorded_at: "录入时间",
    of_supplier: "供应商 {name}（{licence}）的进货", show_all: "显示全部进货",
    flagged: "预警：同一供应商的样品快检不合格", failed_test: "快检不合格", traced: "快检追溯到的这批进货",
    saved: "已保存：{product} {batch}", photo_saved: "，照片已保存", photo_failed: "，但照片未保存：{msg}",
    fix_fields: "有 {n} 项需要修改，请看标红的栏目。",
    err_required: "请填写{label}。", err_too_long: "{label}最多 {max} 个字。",
    err_quantity: "数量要大于 0，最多三位小数。", err_quantity_big: "数量太大了。",
    err_date: "请选择进货日期。", err_future: "进货日期不能晚于今天。",
    err_conflict: "这批进货（同一供应商、品名、批次号和日期）已经登记过了。",
    err_site: "找不到这个单位，或您无权登记它的进货。", err_invalid: "{label}填写有误：{msg}",
    newer: "较新的记录", older: "更早的记录", pages: "第 {p} 页",
  },
  en: {
    title: "Deliveries", record: "Record a delivery", recent: "Recent deliveries", none: "No deliveries", save: "Save",
    site_id: "Site", supplier_name: "Supplier", supplier_licence: "Supplier licence no.", product: "Product",
    batch_no: "Batch no.", delivered_on: "Delivered on", quantity: "Quantity", unit: "Unit", received_by: "Received by",
    photo: "Photo (delivery note, licence or goods; optional)", view_photo: "Photo", recorded_by: "Recorded by",
    recorded_at: "Recorded at", of_supplier: "Deliveries from {name} ({licence})", show_all: "Show all deliveries",
    flagged: "Flagged: a sample from this supplier failed a rapid test", failed_test: "Failed rapid test",
    traced: "The delivery the rapid test traces to",
    saved: "Saved: {product} {batch}", photo_saved: ", photo saved", photo_failed: ", but the photo was not saved: {msg}",
    fix_fields: "{n} field(s) need changing: see the ones marked in red.",
    err_required: "Enter the {label}.", err_too_long: "The {label} is at most {max} characters.",
    err_quantity: "The quantity must be more than 0, with at most three decimals.", err_quantity_big: "The quantity is too large.",
    err_date: "Choose the delivery date.", err_future: "The delivery date cannot be after today.",
    err_conflict: "This delivery (same supplier, product, batch and date) is recorded already.",
    err_site: "This site is not found, or you may not record its deliveries.", err_invalid: "The {label} is not right: {msg}",
    newer: "Newer", older: "Older", pages: "Page {p}",
  },
};

const w = wordsOf(WORDS, { missing: "" });
const unitLabel = (u) => (UNITS[u] ? UNITS[u][getLang() === "en" ? 1 : 0] : u);
/** A field's name inside a sentence: "品名", "the product". */
const label = (f) => {
  const name = w(f).replace(/（.*$|\s*\(.*$/, "");
  return getLang() === "en" ? name.charAt(0).toLowerCase() + name.slice(1) : name;
};

/** The fields of the form, their input type and the API's limits. */
const FIELDS = {
  site_id: { required: true },
  supplier_name: { required: true, max: 200 },
  supplier_licence: { required: true, max: 60 },
  product: { required: true, max: 100 },
  batch_no: { required: true, max: 60 },
  delivered_on: { required: true },
  quantity: { required: true },
  unit: { required: true },
  received_by: { required: true, max: 100 },
};

/** Today as YYYY-MM-DD in the region's time zone. */
function localToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: getTimeZone(), year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date());
}

/** What is wrong with the form's values, field by field (empty when nothing is). */
export function checkDelivery(v) {
  const errors = {};
  for (const [f, rule] of Object.entries(FIELDS)) {
    const value = String(v[f] ?? "").trim();
    if (rule.required && !value) errors[f] = f === "delivered_on" ? w("err_date") : w("err_required", { label: label(f) });
    else if (rule.max && [...value].length > rule.max) errors[f] = w("err_too_long", { label: label(f), max: rule.max });
  }
  const q = String(v.quantity ?? "").trim();
  if (q && !errors.quantity) {
    if (!/^\d+(\.\d{1,3})?$/.test(q) || Number(q) <= 0) errors.quantity = w("err_quantity");
    else if (Number(q) > 999999999.999) errors.quantity = w("err_quantity_big");
  }
  const d = String(v.delivered_on ?? "");
  if (d && !errors.delivered_on) {
    if (!/^\d{4}-\d\d-\d\d$/.test(d)) errors.delivered_on = w("err_date");
    else if (d > localToday()) errors.delivered_on = w("err_future");
  }
  return errors;
}

/** The API's refusal as {field: sentence}; "" is the form as a whole. */
function refusalByField(e) {
  if (e.status === 409) return { batch_no: w("err_conflict") };
  if (e.status === 404) return { site_id: w("err_site") };
  if (e.status !== 422) return { "": explain(e) };
  const out = {};
  for (const part of String(e.message || "").split("; ")) {
    const m = part.match(/^(?:body\.)?([a-z_]+)(?:\.\d+)?: (.*)$/);
    if (m && FIELDS[m[1]]) out[m[1]] = w("err_invalid", { label: label(m[1]), msg: m[2] });
    else out[""] = explain(e);
  }
  return out;
}

/** Send a photo's bytes and answer JSON (api() words a refusal and a lost connection). */
const sendPhoto = (path, file) => api(path, { method: "PUT", raw: file, type: file.type });

function field(f, input) {
  input.setAttribute("aria-describedby", `dl-${f}-error`);
  return h("div", { class: "field", dataset: { field: f } },
    h("label", { for: `dl-${f}` }, w(f)), input,
    h("p", { id: `dl-${f}-error`, class: "field-error error small", "aria-live": "polite" }));
}

const text = (f, attrs = {}) => field(f, h("input", { id: `dl-${f}`, name: f, maxlength: FIELDS[f].max, ...attrs }));

/** Mark each field with its error (and clear the others); focus the first wrong one. */
function showErrors(form, errors) {
  let first = null;
  for (const f of Object.keys(FIELDS)) {
    const input = form.querySelector(`#dl-${f}`);
    const msg = errors[f] || "";
    form.querySelector(`#dl-${f}-error`).textContent = msg;
    if (msg) {
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    } else {
      input.removeAttribute("aria-invalid");
    }
  }
  if (first) first.focus();
}

function recordCard(sites, onSaved) {
  const status = h("p", { id: "dl-status", role: "status", "data-keep": true });
  const form = h("form", { id: "dl-form", class: "filters", novalidate: true },
    field("site_id", h("select", { id: "dl-site_id", name: "site_id" }, sites.map((s) => h("option", { value: s.id }, s.name)))),
    text("supplier_name", { autocomplete: "organization" }),
    text("supplier_licence", { autocapitalize: "characters", spellcheck: "false" }),
    text("product"),
    text("batch_no", { spellcheck: "false" }),
    text("delivered_on", { type: "date", value: localToday(), max: localToday() }),
    text("quantity", { inputmode: "decimal", autocomplete: "off" }),
    field("unit", h("select", { id: "dl-unit", name: "unit" }, Object.keys(UNITS).map((u) => h("option", { value: u }, unitLabel(u))))),
    text("received_by", { value: me().username, autocomplete: "name" }),
    h("div", { class: "field", dataset: { field: "photo" } },
      h("label", { for: "dl-photo" }, w("photo")),
      h("input", { id: "dl-photo", name: "photo", type: "file", accept: "image/jpeg,image/png", capture: "environment" })),
    h("button", { type: "submit", id: "dl-save" }, w("save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const v = Object.fromEntries(Object.keys(FIELDS).map((f) => [f, String(d.get(f) ?? "").trim()]));
    status.className = "";
    const errors = checkDelivery(v);
    showErrors(form, errors);
    if (Object.keys(errors).length) {
      say(status, w("fix_fields", { n: Object.keys(errors).length }));
      status.className = "error";
      return;
    }
    let saved;
    try {
      saved = await api("/purchases", { method: "POST", json: v });
    } catch (e) {
      const byField = refusalByField(e);
      showErrors(form, byField);
      const n = Object.keys(byField).filter((f) => f).length;
      say(status, byField[""] || w("fix_fields", { n }));
      status.className = "error";
      return;
    }
    let msg = w("saved", { product: saved.product, batch: saved.batch_no });
    const photoInput = form.querySelector("#dl-photo");
    const photo = photoInput.files[0];
    if (photo) {
      try {
        await sendPhoto(`/purchases/${saved.id}/photo`, photo);
        msg += w("photo_saved");
      } catch (e) {
        msg += w("photo_failed", { msg: explain(e) });
      }
    }
    photoInput.value = "";
    for (const f of ["product", "batch_no", "quantity"]) form.querySelector(`#dl-${f}`).value = "";
    say(status, msg);
    status.className = "ok";
    await onSaved(saved.id);
  });
  return h("section", { class: "card", "aria-labelledby": "dl-record-h" },
    h("h2", { id: "dl-record-h" }, w("record")), form, status);
}

function listCard(rows, { flagged, failed, traced, highlight, nav }) {
  const c = (key, ...content) => cell(w(key), {}, ...content);
  return h("section", { class: "card", "aria-labelledby": "dl-list-h" },
    h("h2", { id: "dl-list-h" }, w("recent")),
    h("div", { class: "table-wrap" }, h("table", { id: "dl-list", class: "stack" },
      h("thead", {}, h("tr", {}, ["product", "delivered_on", "site_id", "supplier_name", "supplier_licence", "batch_no",
        "quantity", "received_by", "recorded_at", "photo"].map((c) => h("th", { scope: "col" }, w(c === "photo" ? "view_photo" : c))))),
      h("tbody", {}, rows.length ? rows.map((p) => {
        const warn = flagged.has(p.id) ? w("flagged") : failed.has(p.id) ? w("failed_test") : "";
        return h("tr", {
          id: `delivery-${p.id}`,
          class: [warn ? "flagged" : "", highlight === p.id ? "highlight" : ""].filter(Boolean).join(" ") || null,
          dataset: { purchase: String(p.id), siteId: p.site_id, flagged: warn ? "true" : "false" },
        },
        h("td", {}, h("strong", {}, p.product), warn ? h("div", { class: "overdue-text small" }, warn) : null,
          highlight === p.id && traced ? h("div", { class: "small muted" }, w("traced")) : null),
        c("delivered_on", p.delivered_on), c("site_id", siteName(p.site_id)), c("supplier_name", p.supplier_name),
        c("supplier_licence", p.supplier_licence), c("batch_no", p.batch_no),
        c("quantity", `${p.quantity} ${unitLabel(p.unit)}`), c("received_by", p.received_by),
        c("recorded_at", fmtTime(p.created_at)),
        c("view_photo", p.photo_sha256
          ? h("a", { href: `/api/v1/purchases/${p.id}/photo`, target: "_blank", rel: "noopener" }, w("view_photo")) : "—"));
      }) : h("tr", {}, h("td", { colspan: 10 }, w("none")))))),
    nav);
}

const PAGE = 50;

/**
 * The deliveries page, newest first, paged by ?page=N: ?supplier=<licence> shows that
 * supplier's, ?purchase=<id> marks one (shown first when it is not on the page).
 */
export async function renderDeliveries(main, params) {
  const supplier = params.get("supplier") || "";
  const purchase = Number(params.get("purchase")) || null;
  const page = Math.max(1, Number(params.get("page")) || 1);
  const pageOf = () => api(`/purchases${qs({ supplier_licence: supplier, limit: PAGE + 1, offset: (page - 1) * PAGE })}`);
  const [rows, flags, failedTests, sites] = await Promise.all([
    pageOf(),
    api("/rapid-tests/flags?limit=500"),
    api("/rapid-tests?result=fail&limit=500"),
    api("/sites"),
  ]);
  const u = me();
  const writer = !u.read_only && !["insurer", "inspector"].includes(u.role); // an inspector reads
  const flagged = new Set(flags.map((f) => f.purchase_id));
  const failed = new Set(failedTests.map((t) => t.purchase_id).filter((id) => id));
  const listBox = h("div", { id: "dl-list-box" });
  const href = (p) => `/console/deliveries${qs({ supplier, page: p > 1 ? p : "" })}`; // paging leaves the mark
  const draw = async (fetched, highlight) => {
    let list = fetched.slice(0, PAGE); // one more than a page says there are older ones
    if (highlight && !list.some((p) => p.id === highlight)) { // the traced delivery, wherever it is
      const one = await api(`/purchases/${highlight}`).catch(() => null);
      if (one) list = [one, ...list];
    }
    const nav = pager({ id: "dl-pager", nextId: "dl-older", page, more: fetched.length > PAGE, href,
      prev: w("newer"), next: w("older"), label: w("pages", { p: page }) });
    mount(listBox, listCard(list, { flagged, failed, traced: failed.has(highlight), highlight, nav }));
  };
  await draw(rows, purchase);
  const reload = async (id) => draw(await pageOf(), id);
  const name = rows.length ? rows[0].supplier_name : supplier;
  mount(main,
    h("h1", {}, w("title")),
    supplier ? h("p", { id: "dl-filter", class: "notice" }, w("of_supplier", { name, licence: supplier }), " ",
      h("a", { href: "/console/deliveries", "data-link": true }, w("show_all"))) : null,
    writer ? recordCard(sites.data, reload) : null,
    listBox);
  if (purchase) {
    const row = document.getElementById(`delivery-${purchase}`);
    if (row) row.scrollIntoView({ block: "center" });
  }
}
