// The rectification notice (整改通知书) of one ticket, laid out for A4 paper. A notice states
// the problem, the evidence, the deadline and who answers for the fix: the evidence is written
// out from what the ticket was opened with (the reading, the capture, the test result), so the
// paper stands on its own when it is handed over or filed.
import { api } from "./api.js";
import { h, mount } from "./dom.js";
import { fmtTime, getLang, t, tOr, wordsOf } from "./i18n.js";
import { adviceFor, sourceLabel, ticketTitle, tierLabel } from "./labels.js";

const BASE = "/console";
const SHA_RE = /^[0-9a-f]{64}$/;
const MAX_PHOTOS = 2; // a notice is one sheet: the first capture or two, the rest are online

const WORDS = {
  "zh-CN": {
    evidence: "证据", responsible: "责任人", address: "地址", colon: "：",
    officer: "食品安全员", director: "食品安全总监", regulator: "包保干部", nobody: "（未登记，请食堂填写）",
    temp_high: "{subject}：{from} 起温度高于限值 {limit} ℃ 持续 {held} 分钟以上，最高 {peak} ℃。",
    temp_low: "{subject}：{from} 起温度低于限值 {limit} ℃ 持续 {held} 分钟以上，最低 {peak} ℃。",
    capture: "{camera} {at} 的 AI 抓拍（置信度 {conf}%）。", camera: "摄像头",
    sensor_silent: "{subject}：{from} 起未再上报数据。",
    box_silent: "{subject}：所在边缘盒 {from} 起失联，画面未被监看。",
    camera_dark: "{subject}：{from} 起没有视频画面。",
    rapid: "{product}（批次 {batch}，样品 {sample}）{item}：{value} {unit}，限值 {limit} {unit}（{method}）。",
    disinf_missed: "{subject}：{day} {meal}后至 {until} 没有合格的消毒记录（要求 ≥ {temp} ℃ 保持 {min} 分钟）。",
    disinf_failed: "{subject}：{day} {meal}后的消毒最高 {peak} ℃、达标保持 {held} 分钟，{verdict}（要求 ≥ {temp} ℃ 保持 {min} 分钟）。",
    too_cool: "温度不足", too_short: "时间不足",
    check_missed: "{day} 的日管控检查截至 {due} 未完成。",
    check_no: "{day} 的日管控检查中“{item}”答“否”。",
    sample_missed: "{day} {meal}没有留样记录（截至 {due}）。",
    supervision: "包保督导（{who}）发现：{item}。",
    inspection: "{kind}（{who}）：“{item}”不合格。",
    complaint: "群众投诉：{text}",
    note: "备注：{note}",
    occurrences: "共发生 {n} 次，最近一次 {at}。",
    online: "全部证据和处理记录见平台整改单 {no}。",
  },
  en: {
    evidence: "Evidence", responsible: "Responsible", address: "Address", colon: ": ",
    officer: "food-safety officer", director: "food-safety director", regulator: "assigned cadre", nobody: "(none on record: the canteen fills this in)",
    temp_high: "{subject}: above its limit of {limit} °C from {from} for more than {held} min, highest {peak} °C.",
    temp_low: "{subject}: below its limit of {limit} °C from {from} for more than {held} min, lowest {peak} °C.",
    capture: "AI capture by {camera} at {at} (confidence {conf}%).", camera: "a camera",
    sensor_silent: "{subject}: nothing reported since {from}.",
    box_silent: "{subject}: its edge box has not been heard from since {from}; nothing is watching the picture.",
    camera_dark: "{subject}: no video since {from}.",
    rapid: "{product} (batch {batch}, sample {sample}) {item}: {value} {unit}, limit {limit} {unit} ({method}).",
    disinf_missed: "{subject}: no valid disinfection after {meal} on {day} until {until} (needs ≥ {temp} °C for {min} min).",
    disinf_failed: "{subject}: the disinfection after {meal} on {day} peaked at {peak} °C and held {held} min, {verdict} (needs ≥ {temp} °C for {min} min).",
    too_cool: "too cool", too_short: "too short",
    check_missed: "The daily control check of {day} was not done by {due}.",
    check_no: "The daily control check of {day} answered “no” to “{item}”.",
    sample_missed: "No food sample on record for {meal} on {day} (due by {due}).",
    supervision: "Supervision visit ({who}) found: {item}.",
    inspection: "{kind} ({who}): “{item}” failed.",
    complaint: "Public complaint: {text}",
    note: "Note: {note}",
    occurrences: "{n} occurrences, the last at {at}.",
    online: "All the evidence and every step taken are in the platform, ticket {no}.",
  },
};

const w = wordsOf(WORDS, { missing: "—" });

const num = (x, d = 1) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : null);
const minutes = (s) => (typeof s === "number" && Number.isFinite(s) ? String(Math.round(s / 60)) : null);
const meal = (m) => (m ? tOr(`meal_${m}`, m) : null);
const pickLang = (zh, en) => (getLang() === "en" ? en || zh : zh || en);

/** The capture photos a ticket was opened with (the evidence; a canteen's fix photos are not). */
export function capturePhotos(details) {
  const out = new Set();
  (function walk(obj) {
    if (!obj || typeof obj !== "object") return;
    for (const [k, v] of Object.entries(obj)) {
      if (typeof v === "string" && /sha256/.test(k) && SHA_RE.test(v)) out.add(v);
      else if (k === "photos" && Array.isArray(v)) v.filter((x) => typeof x === "string" && SHA_RE.test(x)).forEach((x) => out.add(x));
      else walk(v);
    }
  })(details);
  return [...out];
}

/** The evidence of a ticket in words, from the finding it was opened with. */
export function evidenceLines(ticket, cameraNames = {}) {
  const details = ticket.details || {};
  const p = details.payload || {};
  const subject = details.subject_name || ticket.subject;
  const lines = [];
  switch (ticket.rule) {
    case "temp_high":
    case "temp_low":
      lines.push(w(ticket.rule, { subject, from: fmtTime(p.started_at), limit: num(p.limit_c), held: minutes(p.held_s), peak: num(p.peak_temp_c ?? p.temp_c) }));
      break;
    case "rapid_test_failed":
      lines.push(w("rapid", { product: p.product, batch: p.batch_no, sample: p.sample_no, item: pickLang(p.item_zh, p.item_en) || p.item, value: p.value, unit: p.unit || "", limit: p.limit, method: p.method }));
      break;
    case "disinfection_missed":
    case "disinfection_failed": {
      const cycle = p.cycle || {};
      const vars = { subject, day: p.service_date, meal: meal(p.meal), until: fmtTime(p.window_end), temp: num(p.min_temp_c, 0), min: minutes(p.min_hold_s) };
      lines.push(ticket.rule === "disinfection_missed" ? w("disinf_missed", vars)
        : w("disinf_failed", { ...vars, peak: num(cycle.peak_c), held: minutes(cycle.held_s), verdict: ["too_cool", "too_short"].includes(p.reason) ? w(p.reason) : p.reason }));
      break;
    }
    case "daily_check_missed":
      lines.push(w("check_missed", { day: p.check_date, due: fmtTime(p.due_at) }));
      break;
    case "daily_check_no":
      lines.push(w("check_no", { day: p.check_date, item: pickLang(p.item_zh, p.item_en) || p.item }));
      break;
    case "food_sample_missed":
      lines.push(w("sample_missed", { day: p.meal_date, meal: meal(p.meal), due: fmtTime(p.due_at) }));
      break;
    case "supervision_finding":
      lines.push(w("supervision", { who: p.visited_by, item: p.item }));
      break;
    case "public_complaint":
      if (p.text) lines.push(w("complaint", { text: String(p.text).slice(0, 300) }));
      break;
    case "sensor_offline":
      lines.push(w("sensor_silent", { subject, from: fmtTime(p.started_at) }));
      break;
    case "camera_offline":
      if (ticket.source === "alarm") {
        lines.push(w(p.reason === "box_silent" ? "box_silent" : "camera_dark", { subject, from: fmtTime(p.started_at) }));
        break;
      }
    // falls through: the box's own camera_offline capture reads as any capture
    default:
      if (ticket.source === "inspection" && (p.text_zh || p.text_en)) {
        lines.push(w("inspection", { kind: tOr(`insp_${p.inspection_kind}`, t("inspection")), who: (p.inspectors || []).join("、") || "—", item: pickLang(p.text_zh, p.text_en) }));
      } else if (ticket.source === "violation" && p.started_at) {
        const conf = typeof p.confidence === "number" ? Math.round(p.confidence * 100) : null;
        lines.push(w("capture", { camera: cameraNames[p.camera_id] || w("camera"), at: fmtTime(p.started_at), conf }));
      }
  }
  if (p.note) lines.push(w("note", { note: p.note }));
  if (ticket.occurrences > 1) lines.push(w("occurrences", { n: ticket.occurrences, at: fmtTime(ticket.last_occurrence_at) }));
  lines.push(w("online", { no: ticket.ticket_no }));
  return lines;
}

/** "食品安全员 张三、食品安全总监 李四" from the canteen's people. */
function responsibleText(people) {
  if (!people.length) return w("nobody");
  const byRole = new Map();
  for (const p of people) byRole.set(p.role, [...(byRole.get(p.role) || []), p.name]);
  const sep = getLang() === "en" ? "; " : "；";
  return [...byRole].map(([role, names]) => `${w(role)} ${names.join(getLang() === "en" ? ", " : "、")}`).join(sep);
}

export async function renderTicketNotice(main, id) {
  const [ticket, context] = await Promise.all([api(`/tickets/${id}`), api(`/console/api/tickets/${id}/notice`)]);
  const cameraNames = {};
  if (ticket.source === "violation") {
    const cameras = await api(`/console/api/sites/${encodeURIComponent(ticket.site_id)}/cameras`);
    for (const c of cameras) cameraNames[c.id] = c.name;
  }
  const photos = capturePhotos(ticket.details).slice(0, MAX_PHOTOS);
  const line = (label, value, rowId = null) => h("tr", { id: rowId }, h("th", { scope: "row" }, label), h("td", {}, value));
  const colon = w("colon");
  document.title = `${t("notice_title")} ${ticket.ticket_no}`;
  mount(main,
    h("p", { class: "no-print row" },
      h("a", { href: `${BASE}/tickets/${id}`, "data-link": true }, `← ${ticket.ticket_no}`),
      h("button", { type: "button", id: "notice-print", onclick: () => window.print() }, t("print"))),
    h("article", { class: "notice-sheet", id: "notice" },
      h("h1", {}, t("notice_title")),
      h("p", { class: "notice-no" }, ticket.ticket_no),
      h("p", {}, t("notice_to", { site: context.site_name })),
      h("p", {}, t("notice_body")),
      h("table", { class: "notice-table" }, h("tbody", {},
        context.site_address ? line(w("address"), context.site_address) : null,
        line(t("notice_problem"), ticketTitle(ticket)),
        line(w("evidence"), h("div", { id: "notice-evidence" },
          evidenceLines(ticket, cameraNames).map((text) => h("p", {}, text)),
          photos.length ? h("div", { class: "notice-photos" }, photos.map((sha) =>
            h("img", { src: `/api/v1/evidence/${sha}`, alt: t("capture"), class: "notice-photo" }))) : null), "notice-evidence-row"),
        line(t("tier"), tierLabel(ticket.tier)),
        line(t("source"), sourceLabel(ticket.source)),
        line(t("notice_found"), fmtTime(ticket.opened_at)),
        line(t("notice_deadline"), fmtTime(ticket.due_at)),
        line(w("responsible"), h("span", { id: "notice-responsible" }, responsibleText(context.responsible))),
        line(t("notice_requirement"), h("span", { id: "notice-requirement" }, adviceFor(ticket.rule))))),
      h("div", { class: "notice-sign" },
        h("p", {}, `${t("notice_issuer")}${colon}`, h("span", { class: "blank" })),
        h("p", {}, `${t("notice_receiver")}${colon}`, h("span", { class: "blank" })),
        h("p", {}, `${t("notice_date")}${colon}`, h("span", { class: "blank" })))));
}
