// One ticket (facts, escalation, actions, evidence, timeline with comments) and the capture
// review queue.
import { api, ApiError } from "./api.js";
import { me, refresh, render } from "./app.js";
import { h, mount, qs, say } from "./dom.js";
import { explain, fmtTime, getLang, localNow, localToIso, t, tOr } from "./i18n.js";
import { adviceFor, escalationLabel, ruleLabel, sourceLabel, ticketTitle, tierLabel } from "./labels.js";
import { onLiveAt, onLiveView } from "./live.js";
import { capturePhotos } from "./notice.js";
import { statusBadge } from "./views.js";
import { alarmPeriods, cabinetChart, tempChart } from "./charts.js";

const HOUR = 3600e3;

/** For a cold-chain ticket: the sensor's curve from 12 h before opening to 12 h after. */
async function temperatureCurve(ticket) {
  if (ticket.source !== "alarm" || !["temp_high", "temp_low"].includes(ticket.rule)) return null;
  const opened = new Date(ticket.opened_at).getTime();
  const from = opened - 12 * HOUR;
  const to = Math.min(Date.now(), opened + 12 * HOUR);
  const sensors = await api(`/console/api/sites/${encodeURIComponent(ticket.site_id)}/sensors`);
  const sensor = sensors.find((x) => x.id === ticket.subject);
  // a sensor since taken off the site has no readings to ask for (the request would 404)
  const [readings, alarms] = sensor ? await Promise.all([
    api(`/sensors/${encodeURIComponent(ticket.subject)}/readings${qs({ resolution: "5m", from: new Date(from).toISOString(), to: new Date(to).toISOString(), limit: 400 })}`),
    api(`/alarms${qs({ site_id: ticket.site_id, limit: 200 })}`),
  ]) : [{ points: [] }, { data: [] }];
  const points = readings.points.map((p) => ({ x: new Date(p.ts).getTime(), y: p.temp_c, lo: p.temp_min_c, hi: p.temp_max_c }));
  return h("section", { class: "card", "aria-labelledby": "curve-h", id: "ticket-curve" },
    h("h2", { id: "curve-h" }, t("ticket_curve")),
    points.length
      ? tempChart({ points, low: sensor ? sensor.params.low_c : null, high: sensor ? sensor.params.high_c : null,
        alarms: alarmPeriods(alarms.data, ticket.subject, to), from, to, label: t("ticket_curve") })
      : h("p", { class: "muted no-readings" }, t("no_readings")),
    h("p", { class: "muted small" }, t("chart_hint")));
}

/** For a disinfection ticket: the cabinet's temperature and (with a plug) power over the
 * checked window, from the evidence the ticket was opened with. */
function cabinetCurve(ticket) {
  if (!["disinfection_missed", "disinfection_failed"].includes(ticket.rule)) return null;
  const d = (ticket.details && (ticket.details.payload || ticket.details)) || {};
  const temps = Array.isArray(d.curve) ? d.curve : [];
  const power = Array.isArray(d.power_curve) ? d.power_curve : [];
  const from = Date.parse(d.meal_end || "") || undefined;
  const to = Date.parse(d.window_end || "") || undefined;
  const first = [temps[0], power[0]].filter(Boolean).map((p) => Date.parse(p[0]));
  return h("section", { class: "card", "aria-labelledby": "cabinet-curve-h", id: "ticket-cabinet-curve" },
    h("h2", { id: "cabinet-curve-h" }, t("cabinet_curve")),
    temps.length || power.length
      ? cabinetChart({ temps, power, minTemp: d.min_temp_c ?? null, from: first.length ? Math.min(from ?? Infinity, ...first) : from, to, label: t("cabinet_curve") })
      : h("p", { class: "muted no-readings" }, t("cabinet_no_data")),
    h("p", { class: "muted small", id: "cabinet-curve-hint" }, getLang() === "en"
      ? "Red: the cabinet's temperature (left axis), the dashed line the temperature a valid cycle needs; blue steps: what its plug draws (right axis). Hover for values, drag to zoom, double-click to zoom out."
      : "红线为消毒柜温度(左轴)，虚线为合格消毒所需温度；蓝色阶梯线为插座功率(右轴)。悬停看数值，拖动放大，双击还原。"));
}

const BASE = "/console";
const NEEDS_NOTE = new Set(["reject", "reopen", "close", "rectify"]);
function cardsOf(ticket) {
  const kinds = new Set(ticket.events.map((e) => e.kind));
  const cards = [];
  if (kinds.has("escalation_yellow_card") || ticket.escalation_level >= 5) cards.push("yellow");
  if (kinds.has("escalation_red_card") || ticket.escalation_level >= 6) cards.push("red");
  return cards;
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** For a missed duty: which meal or which day it was (the first; later ones are occurrences). */
function dutyFact(ticket) {
  const d = (ticket.details && ticket.details.payload) || {};
  if (ticket.rule === "food_sample_missed" && d.meal_date) {
    return fact(t("missed_meal"), h("span", { id: "ticket-missed" }, `${tOr(`meal_${d.meal}`, d.meal)} · ${d.meal_date}`));
  }
  if (ticket.rule === "daily_check_missed" && d.check_date) {
    return fact(t("missed_check"), h("span", { id: "ticket-missed" }, d.check_date));
  }
  return null;
}

export async function renderTicket(main, id) {
  const [ticket, actions, evidence, sites] = await Promise.all([
    api(`/tickets/${id}`), api(`/tickets/${id}/actions`), api(`/tickets/${id}/evidence`), api("/sites"),
  ]);
  const site = sites.data.find((s) => s.id === ticket.site_id);
  const cards = cardsOf(ticket);
  const curve = (await temperatureCurve(ticket)) || cabinetCurve(ticket);
  const images = [
    ...evidence.map((e) => ({ url: e.url, caption: `${e.filename || e.sha256.slice(0, 12)} · ${t("uploaded_by", { who: e.uploaded_by })} · ${fmtTime(e.at)}` })),
    ...capturePhotos(ticket.details).filter((s) => !evidence.some((e) => e.sha256 === s))
      .map((s) => ({ url: `/api/v1/evidence/${s}`, caption: t("capture") })),
  ];
  document.title = `${ticket.ticket_no} · ${t("app_title")}`;
  const shown = [ticket.status, ticket.escalation_level, ticket.occurrences];
  const seen = new Set(ticket.events.map((e) => e.id));
  onLiveView((ev) => (ev.kind === "ticket" && Number(ev.id) === ticket.id
    && [ev.status, ev.escalation_level, ev.occurrences].some((v, i) => v !== shown[i]))
    || (ev.kind === "ticket_event" && Number(ev.ticket_id) === ticket.id && !seen.has(Number(ev.id))), refresh);
  if (ticket.close_confirmable_at) onLiveAt(new Date(ticket.close_confirmable_at), refresh); // the button appears then
  mount(main,
    h("p", {}, h("a", { href: `${BASE}/tickets`, "data-link": true }, `← ${t("back_to_ledger")}`)),
    h("h1", {}, `${t("ticket")} ${ticket.ticket_no} `, statusBadge(ticket.status), ticket.overdue ? h("span", { class: "badge st-overdue" }, t("overdue_badge")) : null),
    h("p", { class: "lead", id: "ticket-title" }, ticketTitle(ticket)),
    me().role === "insurer" ? null // a notice is the regulator's paper to the canteen
      : h("p", { class: "no-print" }, h("a", { href: `${BASE}/tickets/${ticket.id}/notice`, "data-link": true, id: "notice-link" }, t("notice_print"))),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "facts-h" },
        h("h2", { id: "facts-h" }, t("facts")),
        h("dl", { class: "facts", id: "ticket-facts" },
          fact(t("site"), h("a", { href: `${BASE}/sites/${encodeURIComponent(ticket.site_id)}`, "data-link": true }, site ? site.name : ticket.site_id)),
          fact(t("rule"), ruleLabel(ticket.rule, ticket.details && ticket.details.profile)),
          fact(t("subject"), ticket.details && ticket.details.subject_name ? ticket.details.subject_name : t("device")),
          dutyFact(ticket),
          ticket.status === "closed" ? null
            : fact(t("notice_requirement"), h("span", { id: "ticket-advice" }, adviceFor(ticket.rule))),
          fact(t("tier"), tierLabel(ticket.tier)),
          fact(t("status"), h("span", { id: "ticket-status", dataset: { status: ticket.status } }, t(`status_${ticket.status}`))),
          fact(t("source"), sourceLabel(ticket.source)),
          fact(t("ticket_policy"), h("span", { id: "ticket-policy" }, ticket.policy
            ? `${ticket.policy.insurer} · ${ticket.policy.policy_no} (${ticket.policy.starts_on} – ${ticket.policy.ends_on})`
            : t("ticket_uninsured"))),
          fact(t("opened_at"), fmtTime(ticket.opened_at)),
          fact(t("due_at"), h("span", { class: ticket.overdue ? "overdue-text" : null }, fmtTime(ticket.due_at))),
          fact(t("acknowledged_at"), fmtTime(ticket.acknowledged_at)),
          fact(t("closed_at"), fmtTime(ticket.closed_at)),
          ticket.close_proposed_at ? fact(t("close_proposed_at"), h("span", { id: "close-proposed" }, fmtTime(ticket.close_proposed_at),
            ticket.close_confirmable_at ? ` · ${new Date(ticket.close_confirmable_at) > new Date()
              ? t("close_confirmable_from", { at: fmtTime(ticket.close_confirmable_at) }) : t("close_confirmable_now")}` : "")) : null,
          fact(t("occurrences"), `${ticket.occurrences} · ${t("last_occurrence_at")} ${fmtTime(ticket.last_occurrence_at)}`),
          fact(t("escalation"), h("span", { id: "escalation-level", dataset: { level: String(ticket.escalation_level) } }, escalationLabel(ticket.escalation_level))),
          fact(t("cards"), cards.length ? cards.map((c) => h("span", { class: `card-chip card-${c}` }, t(`card_${c}`))) : t("no_card")))),
      actionsSection(ticket, actions)),
    curve,
    h("section", { class: "card", "aria-labelledby": "evidence-h" },
      h("h2", { id: "evidence-h" }, t("evidence")),
      images.length ? h("div", { class: "gallery", id: "evidence" }, images.map((im) => h("figure", {},
        h("a", { href: im.url, target: "_blank", rel: "noopener" }, h("img", { src: im.url, alt: im.caption, loading: "lazy", class: "evidence-img" })),
        h("figcaption", {}, im.caption)))) : h("p", { id: "evidence" }, t("no_evidence"))),
    h("section", { class: "card", "aria-labelledby": "timeline-h" },
      h("h2", { id: "timeline-h" }, t("timeline")),
      h("ol", { class: "timeline", id: "timeline" }, ticket.events.map((e) => h("li", { dataset: { kind: e.kind } },
        h("time", { datetime: e.at }, fmtTime(e.at)), " ",
        h("strong", {}, tOr(`ev_${e.kind}`, e.kind)), " · ", h("span", { class: "actor", title: e.actor }, e.actor === "system" ? t("actor_system") : (e.actor_name || e.actor)),
        e.note ? h("p", { class: "note" }, e.note) : null))),
      me().read_only ? null : commentBox(ticket)));
}

/** The comment box under the timeline: a remark that changes nothing but the timeline. */
function commentBox(ticket) {
  const text = h("textarea", { id: "comment-text", rows: 2, maxlength: 2000 });
  const msg = h("p", { id: "comment-message", role: "status", "aria-live": "polite", "data-keep": true });
  async function send() {
    msg.className = "";
    if (!text.value.trim()) {
      msg.className = "error";
      say(msg, t("comment_empty"));
      text.focus();
      return;
    }
    try {
      await api(`/tickets/${ticket.id}/comments`, { method: "POST", json: { text: text.value.trim() } });
      await render();
      const after = document.getElementById("comment-message");
      if (after) say(after, t("comment_done"));
    } catch (e) {
      msg.className = "error";
      say(msg, explain(e));
    }
  }
  return h("div", { class: "comment-box", id: "comment-box" },
    h("label", { for: "comment-text" }, t("comment")), text,
    h("div", { class: "row" }, h("button", { type: "button", id: "comment-send", onclick: send }, t("comment_add"))),
    msg);
}

function actionsSection(ticket, actions) {
  const msg = h("p", { id: "action-message", role: "status", "aria-live": "polite", "data-keep": true });
  if (!actions.length) {
    return h("section", { class: "card", "aria-labelledby": "actions-h" }, h("h2", { id: "actions-h" }, t("actions")), h("p", {}, t("no_actions")));
  }
  const note = h("textarea", { id: "action-note", rows: 3, maxlength: 4000 });
  const photos = actions.includes("rectify") ? h("input", { id: "action-photos", type: "file", accept: "image/jpeg,image/png", multiple: true }) : null;
  async function act(action) {
    msg.className = "";
    const text = note.value.trim();
    if (NEEDS_NOTE.has(action) && !text) {
      msg.className = "error";
      say(msg, t("needs_note"));
      note.focus();
      return;
    }
    try {
      if (action === "rectify") {
        if (!photos.files.length) {
          msg.className = "error";
          say(msg, t("needs_photo"));
          return;
        }
        const form = new FormData();
        form.set("note", text);
        for (const f of photos.files) form.append("photos", f);
        await api(`/tickets/${ticket.id}/rectify`, { method: "POST", form });
      } else {
        await api(`/tickets/${ticket.id}/${action.replace("_", "-")}`, { method: "POST", json: { note: text } });
      }
      await render();
      const after = document.getElementById("action-message");
      if (after) say(after, t("action_done", { a: t(`act_${action}`) }));
    } catch (e) {
      msg.className = "error";
      say(msg, explain(e));
    }
  }
  return h("section", { class: "card", "aria-labelledby": "actions-h" },
    h("h2", { id: "actions-h" }, t("actions")),
    h("label", { for: "action-note" }, t("note")), note,
    photos ? [h("label", { for: "action-photos" }, t("photos")), photos] : null,
    h("div", { class: "row", id: "action-buttons" }, actions.map((a) => h("button", {
      type: "button", id: `act-${a}`, class: a === "reject" || a === "close" ? "danger" : null, onclick: () => act(a),
    }, t(`act_${a}`)))),
    msg);
}

let keysBound = false;

/** Review with the keyboard: J / K move, C confirms, D dismisses, R types the reason. */
function bindReviewKeys() {
  if (keysBound) return;
  keysBound = true;
  document.addEventListener("keydown", (ev) => {
    const list = document.getElementById("reviews");
    if (!list || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const typing = ev.target.matches && ev.target.matches("input, textarea, select");
    if (typing && ev.key !== "Escape" && ev.key !== "Enter") return;
    const items = [...list.querySelectorAll("li[data-review-id]")];
    if (!items.length) return;
    const at = Math.max(0, items.findIndex((li) => li.classList.contains("selected")));
    const current = items[at];
    const id = current.dataset.reviewId;
    const select = (i) => {
      items.forEach((li) => li.classList.remove("selected"));
      const li = items[Math.min(items.length - 1, Math.max(0, i))];
      li.classList.add("selected");
      li.focus();
    };
    const key = ev.key.toLowerCase();
    if (typing && ev.key === "Enter") { ev.preventDefault(); document.getElementById(`dismiss-${id}`).click(); return; }
    if (typing) { ev.target.blur(); return; }
    if (key === "j") select(at + 1);
    else if (key === "k") select(at - 1);
    else if (key === "c") document.getElementById(`confirm-${id}`)?.click();
    else if (key === "d") document.getElementById(`dismiss-${id}`)?.click();
    else if (key === "r") document.getElementById(`reason-${id}`)?.focus();
    else return;
    ev.preventDefault();
  });
}

function rateTable(id, caption, rows, label) {
  return h("table", { class: "compact", id },
    h("caption", {}, caption),
    h("tbody", {}, rows.length ? rows.map((r) => {
      const n = r.confirmed + r.dismissed;
      const rate = r.false_alarm_rate === null ? "—" : `${(r.false_alarm_rate * 100).toFixed(0)}%`;
      return h("tr", {}, h("th", { scope: "row" }, label(r.key)), h("td", {}, t("reviews_rate", { rate, n })));
    }) : h("tr", {}, h("td", { class: "muted" }, t("reviews_none_decided")))));
}

const REVIEWS_PAGE = 50;

/** The review queue, oldest first (the longest waiting is the most urgent), paged by ?page=N. */
export async function renderReviews(main, params = new URLSearchParams()) {
  const user = me();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [reviews, sites, stats, cameras] = await Promise.all([
    api(`/reviews${qs({ status: "pending", limit: REVIEWS_PAGE, offset: (page - 1) * REVIEWS_PAGE })}`), api("/sites"), api("/reviews/stats"),
    api("/console/api/cameras")]);
  const pages = Math.max(1, Math.ceil(reviews.count / REVIEWS_PAGE));
  const go = (p) => `/console/reviews${qs({ page: p > 1 ? p : "" })}`;
  const names = Object.fromEntries(sites.data.map((s) => [s.id, s.name]));
  // every camera in scope by name, in one read: a regulator's hundreds of canteens included
  const cameraNames = Object.fromEntries(cameras.map((c) => [c.id, c.name]));
  const cameraSites = Object.fromEntries(cameras.map((c) => [c.id, c.site_id]));
  // the same name ("凉菜专间") hangs in many canteens: a rate names the canteen too
  const cameraLabel = (k) => (cameraNames[k] ? `${names[cameraSites[k]] || t("site")} · ${cameraNames[k]}` : t("device"));
  const msg = h("p", { id: "review-message", role: "status", "aria-live": "polite", "data-keep": true });
  function row(r, index) {
    const reason = h("input", { id: `reason-${r.id}`, maxlength: 2000, "aria-label": t("reason"), placeholder: t("reason") });
    const act = async (kind) => {
      msg.className = "";
      if (kind === "dismiss" && !reason.value.trim()) {
        msg.className = "error";
        say(msg, t("needs_reason"));
        reason.focus();
        return;
      }
      try {
        await api(`/reviews/${r.id}/${kind}`, { method: "POST", json: kind === "dismiss" ? { reason: reason.value.trim() } : undefined });
        await render();
        const after = document.getElementById("review-message");
        if (after) say(after, t("action_done", { a: t(kind) }));
        const next = document.querySelector("#reviews li[data-review-id]");
        if (next) { next.classList.add("selected"); next.focus(); }
      } catch (e) {
        msg.className = "error";
        say(msg, explain(e));
      }
    };
    return h("li", { class: `card review${index === 0 ? " selected" : ""}`, tabindex: -1, dataset: { reviewId: r.id } },
      r.evidence_sha256 ? h("img", { src: `/api/v1/evidence/${r.evidence_sha256}`, alt: `${t("capture")} ${cameraNames[r.camera_id] || ""}`, class: "evidence-img" }) : null,
      h("dl", { class: "facts" },
        fact(t("site"), names[r.site_id] || r.site_id), fact(t("camera"), cameraNames[r.camera_id] || t("device")),
        fact(t("rule"), ruleLabel(r.rule)), fact(t("model_version"), r.model_version || "—"),
        fact(t("created_at"), fmtTime(r.created_at))),
      user.read_only ? null : h("div", { class: "row" },
        h("button", { type: "button", id: `confirm-${r.id}`, onclick: () => act("confirm"), "aria-keyshortcuts": "C" }, t("confirm")),
        reason,
        h("button", { type: "button", class: "danger", id: `dismiss-${r.id}`, onclick: () => act("dismiss"), "aria-keyshortcuts": "D" }, t("dismiss"))));
  }
  onLiveView((ev) => ev.kind === "review", refresh);
  if (!user.read_only) bindReviewKeys();
  mount(main,
    h("h1", {}, t("reviews_title")),
    user.read_only ? h("p", {}, t("reviews_read_only")) : h("p", { class: "muted keyboard-only", id: "review-keys" }, t("reviews_keys")),
    msg,
    reviews.count ? h("p", { class: "muted", id: "reviews-count" }, t("reviews_waiting", { n: reviews.count })) : null,
    reviews.data.length ? h("ul", { class: "reviews", id: "reviews" }, reviews.data.map(row)) : h("p", { id: "reviews" }, t("no_reviews")),
    pages > 1 || page > 1 ? h("nav", { class: "pager", id: "reviews-pager", "aria-label": t("page_of", { p: page, n: pages }) },
      page > 1 ? h("a", { href: go(Math.min(page - 1, pages)), "data-link": true, rel: "prev" }, t("prev")) : null,
      h("span", {}, t("page_of", { p: page, n: pages })),
      page < pages ? h("a", { href: go(page + 1), "data-link": true, rel: "next", id: "reviews-next" }, t("next")) : null) : null,
    h("section", { class: "card", "aria-labelledby": "stats-h" },
      h("h2", { id: "stats-h" }, t("reviews_stats")),
      h("div", { class: "grid2" },
        rateTable("stats-camera", t("reviews_by_camera"), stats.by_camera, cameraLabel),
        rateTable("stats-rule", t("reviews_by_rule"), stats.by_rule, (k) => ruleLabel(k)),
        rateTable("stats-model", t("reviews_by_model"), stats.by_model_version, (k) => k || t("model_unknown")))),
    user.read_only ? null : exportForm());
}

/** The reviewed captures of the days chosen (the region's dates, the last one whole) as the
 * API's Pascal VOC zip (GET /reviews/export.zip?from=&to=, by when each was reviewed). */
function exportForm() {
  const today = localNow().slice(0, 10);
  const monthAgo = new Date(Date.parse(`${today}T00:00:00Z`) - 30 * 86400000).toISOString().slice(0, 10);
  // the API takes days of 2000-2099 in UTC: the region's first and last such day are not whole
  const day = (id, name, value) => h("input", { id, name, type: "date", required: true, value, min: "2000-01-02", max: "2099-12-30" });
  const status = h("p", { id: "export-status", role: "status", "data-keep": true });
  const link = h("a", { id: "export-link", hidden: true, download: "", dataset: { status: "export-status" } });
  const form = h("form", { id: "export-form", class: "filters", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "export-from" }, t("reviews_export_from")), day("export-from", "from", monthAgo)),
    h("div", { class: "field" }, h("label", { for: "export-to" }, t("reviews_export_to")), day("export-to", "to", today)),
    h("button", { type: "submit", id: "export-go" }, t("reviews_export_go")), link);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const from = form.elements.from.value;
    const to = form.elements.to.value;
    if (to < from) {
      status.className = "error";
      say(status, t("reviews_export_order"));
      form.elements.to.focus();
      return;
    }
    const end = localToIso(`${to}T23:59`); // through the last moment of the last day
    link.href = `/api/v1/reviews/export.zip${qs({ from: localToIso(`${from}T00:00`), to: `${to}T23:59:59.999${end.slice(19)}` })}`;
    link.click(); // the download handler says "preparing", then the file's name or the refusal
  });
  return h("section", { class: "card", "aria-labelledby": "export-h" },
    h("h2", { id: "export-h" }, t("reviews_export")), h("p", { class: "muted" }, t("reviews_export_hint")), form, status);
}
