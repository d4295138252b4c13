// The regulator's complaint queue (百姓点检): complaints from the public canteen pages waiting
// for a decision, with their photos; confirm (a ticket opens on the canteen) or dismiss with a
// reply the complainant reads. Complaints are not camera captures: they have their own queue.
import { api } from "./api.js";
import { refresh, siteName } from "./app.js";
import { cell, h, mount, pager, say } from "./dom.js";
import { explain, fmtTime, wordsOf } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "群众投诉", queue: "待处理投诉", decided: "已处理投诉", none: "没有待处理的投诉", none_decided: "没有记录",
    received: "已受理，待核实", confirmed: "已立案", dismissed: "不予立案", code: "投诉编号", at: "投诉时间",
    contact: "联系方式", no_contact: "未留联系方式", reply: "给投诉人的答复", reply_hint: "不予立案时必须填写答复",
    confirm: "立案，开整改单", dismiss: "不予立案", ticket: "整改单", rating: "评价", satisfied: "满意",
    unsatisfied: "不满意", unrated: "未评价", photo: "投诉照片 {n}", confirmed_ok: "已立案，整改单已开",
    dismissed_ok: "已答复，不予立案", site: "单位", status: "状态", newer: "较新的记录", older: "更早的记录",
    queue_prev: "先收到的", queue_next: "后收到的",
  },
  en: {
    title: "Public complaints", queue: "Waiting for a decision", decided: "Decided", none: "No complaints waiting",
    none_decided: "No records", received: "received, to verify", confirmed: "confirmed", dismissed: "dismissed",
    code: "Tracking code", at: "Received", contact: "Contact", no_contact: "no contact given",
    reply: "Reply to the complainant", reply_hint: "A reply is needed to dismiss", confirm: "Confirm: open a ticket",
    dismiss: "Dismiss", ticket: "Ticket", rating: "Rating", satisfied: "satisfied", unsatisfied: "not satisfied",
    unrated: "not rated", photo: "complaint photo {n}", confirmed_ok: "Confirmed: a ticket is open",
    dismissed_ok: "Dismissed with your reply", site: "Site", status: "Status", newer: "Newer", older: "Older",
    queue_prev: "Received earlier", queue_next: "Received later",
  },
};

const w = wordsOf(WORDS, { missing: "" });

/** One complaint waiting for a decision: text, photos, contact, the reply and the two actions. */
function pending(c) {
  const status = h("p", { id: `cp-status-${c.id}`, role: "status", "data-keep": true });
  const reply = h("textarea", { id: `cp-reply-${c.id}`, rows: 2, maxlength: 1000 });
  const decide = (action) => async () => {
    status.className = "";
    try {
      await api(`/complaints/${c.id}/${action}`, { method: "POST", json: { reply: reply.value.trim() } });
      say(status, w(action === "confirm" ? "confirmed_ok" : "dismissed_ok"));
      status.className = "ok";
      await refresh();
    } catch (e) {
      say(status, explain(e));
      status.className = "error";
    }
  };
  return h("li", { class: "card", dataset: { complaint: String(c.id), site: c.site_id } },
    h("h3", {}, siteName(c.site_id)),
    h("p", { class: "small muted" }, `${w("code")} ${c.tracking_code} · ${w("at")} ${fmtTime(c.created_at)} · `,
      c.contact ? `${w("contact")} ${c.contact}` : w("no_contact")),
    h("p", { class: "complaint-body" }, c.body),
    c.photos.length ? h("div", { class: "gallery" }, c.photos.map((sha, i) =>
      h("a", { href: `/api/v1/complaints/${c.id}/photos/${sha}`, target: "_blank", rel: "noopener" },
        h("img", { class: "evidence-img", src: `/api/v1/complaints/${c.id}/photos/${sha}`, alt: w("photo", { n: i + 1 }) })))) : null,
    h("label", { for: `cp-reply-${c.id}` }, w("reply")),
    reply,
    h("p", { class: "small muted" }, w("reply_hint")),
    h("div", { class: "row" },
      h("button", { type: "button", id: `cp-confirm-${c.id}`, onclick: decide("confirm") }, w("confirm")),
      h("button", { type: "button", id: `cp-dismiss-${c.id}`, class: "secondary", onclick: decide("dismiss") }, w("dismiss"))),
    status);
}

const PAGE = 50;

/** The queue page (admins and regulators; the API refuses everyone else with 403). */
export async function renderComplaints(main, params = new URLSearchParams()) {
  const page = Math.max(1, Number(params.get("page")) || 1);
  const qpage = Math.max(1, Number(params.get("queue_page")) || 1); // the queue, oldest first
  const [waiting, decided] = await Promise.all([
    api(`/complaints?status=received&limit=${PAGE + 1}&offset=${(qpage - 1) * PAGE}`),
    api(`/complaints?status=decided&limit=${PAGE + 1}&offset=${(page - 1) * PAGE}`)]);
  const queue = waiting.slice(0, PAGE);
  const queueCount = `${(qpage - 1) * PAGE + queue.length}${waiting.length > PAGE ? "+" : ""}`;
  const done = decided.slice(0, PAGE); // newest first; one more than a page says there are older ones
  const link = (p, q) => {
    const query = new URLSearchParams();
    if (p > 1) query.set("page", String(p));
    if (q > 1) query.set("queue_page", String(q));
    const text = query.toString();
    return `/console/complaints${text ? `?${text}` : ""}`;
  };
  const go = (p) => link(p, qpage);
  const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((k) => h("th", { scope: "col" }, w(k)))));
  mount(main,
    h("h1", {}, w("title")),
    h("section", { "aria-labelledby": "cp-queue-h" },
      h("h2", { id: "cp-queue-h" }, `${w("queue")} (${queueCount})`),
      queue.length ? h("ul", { id: "cp-queue", class: "reviews" }, queue.map(pending)) : h("p", { id: "cp-queue-empty", class: "card" }, w("none")),
      pager({ id: "cp-queue-pager", nextId: "cp-queue-next", page: qpage, more: waiting.length > PAGE,
        href: (q) => link(page, q), prev: w("queue_prev"), next: w("queue_next"), label: w("queue") })),
    h("section", { class: "card", "aria-labelledby": "cp-done-h" },
      h("h2", { id: "cp-done-h" }, w("decided")),
      h("div", { class: "table-wrap" }, h("table", { id: "cp-done", class: "stack" },
        head("at", "site", "code", "status", "reply", "ticket", "rating"),
        h("tbody", {}, done.length ? done.map((c) => h("tr", { dataset: { complaint: String(c.id), status: c.status } },
          cell(w("at"), {}, fmtTime(c.created_at)), cell(w("site"), {}, siteName(c.site_id)), cell(w("code"), {}, c.tracking_code),
          cell(w("status"), {}, w(c.status)), cell(w("reply"), {}, c.reply || "—"),
          cell(w("ticket"), {}, c.ticket_id ? h("a", { href: `/console/tickets/${c.ticket_id}`, "data-link": true }, c.ticket_no || `#${c.ticket_id}`) : "—"),
          cell(w("rating"), {}, c.rating ? w(c.rating) : w("unrated"))))
          : h("tr", {}, h("td", { colspan: 7 }, w("none_decided")))))),
      h("nav", { class: "pager", id: "cp-pager" },
        page > 1 ? h("a", { href: go(page - 1), "data-link": true, rel: "prev" }, w("newer")) : null,
        decided.length > PAGE ? h("a", { href: go(page + 1), "data-link": true, rel: "next", id: "cp-older" }, w("older")) : null)));
}
