// The kitchen page (后厨看板) of one canteen: what is wrong now in plain words, what to do,
// a sound and a spoken line once armed, the recent alerts, and an acknowledge button.
// Live: a new alarm or violation of this canteen shows within moments, without reload.
import { bellIcon } from "./icons.js";
import { api, ApiError } from "./api.js";
import { me, refresh, siteName } from "./app.js";
import { h, mount, qs, say } from "./dom.js";
import { explain, fmtClock, fmtTime, getLang, t } from "./i18n.js";
import { adviceFor, ruleLabel } from "./labels.js";
import { onLiveView } from "./live.js";

const BASE = "/console";
const RECENT = 8;
const VIOLATION_FRESH_MS = 2 * 3600e3;
const sound = { ctx: null, armed: false, spoken: new Set() };
let clockTimer = null;

/** Arm the alert sound (browsers allow audio only after a click on the page). */
function arm() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (Ctx && !sound.ctx) sound.ctx = new Ctx();
  if (sound.ctx && sound.ctx.state === "suspended") sound.ctx.resume();
  sound.armed = true;
  beep(0.15);
}

/** Three short tones (or one quiet one when testing the arming). */
function beep(gain = 0.4) {
  if (!sound.armed || !sound.ctx) return;
  const now = sound.ctx.currentTime;
  for (let i = 0; i < (gain < 0.2 ? 1 : 3); i++) {
    const o = sound.ctx.createOscillator();
    const g = sound.ctx.createGain();
    o.frequency.value = 880;
    g.gain.value = gain;
    o.connect(g).connect(sound.ctx.destination);
    o.start(now + i * 0.35);
    o.stop(now + i * 0.35 + 0.2);
  }
  window.bkKitchenBeeps = (window.bkKitchenBeeps || 0) + 1;
}

/** Say `text` with the browser's speech synthesis, where there is one. */
function speak(text) {
  if (!sound.armed || !("speechSynthesis" in window)) return;
  const u = new SpeechSynthesisUtterance(text);
  u.lang = getLang() === "en" ? "en-US" : "zh-CN";
  window.speechSynthesis.speak(u);
}

function subjectName(alarm, names) {
  const id = alarm.sensor_id || alarm.camera_id;
  return names[id] || t("device");
}

async function pickSite(main, sites) {
  mount(main,
    h("h1", {}, t("kitchen_title")),
    h("p", {}, t("kitchen_pick")),
    h("ul", { id: "kitchen-sites" }, sites.map((s) => h("li", {},
      h("a", { href: `${BASE}/kitchen${qs({ site: s.id })}`, "data-link": true }, s.name)))));
}

export async function renderKitchen(main, params) {
  const sites = (await api("/sites")).data;
  const siteId = params.get("site") || (sites.length === 1 ? sites[0].id : "");
  if (!siteId) return pickSite(main, sites);
  const site = sites.find((s) => s.id === siteId);
  if (!site) throw new ApiError(404, "site");
  const [active, recentAlarms, sensors, cameras, openTickets] = await Promise.all([
    api(`/alarms${qs({ site_id: siteId, status: "active", limit: 20 })}`),
    api(`/alarms${qs({ site_id: siteId, limit: RECENT })}`),
    api(`/console/api/sites/${encodeURIComponent(siteId)}/sensors`),
    api(`/console/api/sites/${encodeURIComponent(siteId)}/cameras`),
    api(`/tickets${qs({ site_id: siteId, status: "open", limit: 50 })}`),
  ]);
  const names = Object.fromEntries([...sensors, ...cameras].map((d) => [d.id, d.name || t("device")]));
  const profiles = Object.fromEntries(sensors.map((s) => [s.id, s.profile]));
  const label = (a) => ruleLabel(a.rule, profiles[a.sensor_id]);
  // camera violations (no mask, mixed boards…) become tickets: the fresh open ones are alerts too
  const since = Date.now() - VIOLATION_FRESH_MS;
  const violations = openTickets.data
    .filter((x) => x.source === "violation" && new Date(x.last_occurrence_at).getTime() >= since)
    .map((x) => ({ id: `t${x.id}`, ticketId: x.id, rule: x.rule, camera_id: x.subject, sensor_id: null, status: "active",
      raised_at: x.last_occurrence_at, acknowledged_at: null, peak_temp_c: null }));
  const alerts = [...active.data.filter((a) => !a.acknowledged_at), ...violations, ...active.data.filter((a) => a.acknowledged_at)];
  alerts.sort((a, b) => Number(Boolean(a.acknowledged_at)) - Number(Boolean(b.acknowledged_at))
    || new Date(b.raised_at) - new Date(a.raised_at));
  const recent = { data: [...recentAlarms.data, ...violations].sort((a, b) => new Date(b.raised_at) - new Date(a.raised_at)).slice(0, RECENT) };
  const now = alerts[0] || null;
  const msg = h("p", { id: "kitchen-message", role: "status", "aria-live": "polite", "data-keep": true });
  const canAck = !me().read_only && me().role !== "inspector"; // inspections only

  async function acknowledge(alarm) {
    try {
      if (alarm.ticketId) await api(`/tickets/${alarm.ticketId}/acknowledge`, { method: "POST", json: { note: t("kitchen_ack_note") } });
      else await api(`/alarms/${alarm.id}/acknowledge`, { method: "POST", json: { note: t("kitchen_ack_note") } });
      await refresh();
      const after = document.getElementById("kitchen-message");
      if (after) say(after, t("kitchen_acked"));
    } catch (e) {
      msg.className = "error";
      say(msg, e instanceof ApiError && e.status === 409 ? t("kitchen_already_cleared") : explain(e));
    }
  }

  const clock = h("span", { id: "kitchen-clock" }, fmtClock());
  clearInterval(clockTimer);
  clockTimer = setInterval(() => {
    if (!document.body.contains(clock)) clearInterval(clockTimer);
    else clock.textContent = fmtClock();
  }, 1000);

  const alertBox = now
    ? h("section", { id: "kitchen-alert", class: "kitchen-alert", role: "alert", dataset: { alarmId: now.id, rule: now.rule } },
      h("p", { class: "k-what" }, `${label(now)} · ${subjectName(now, names)}`),
      h("p", { class: "k-do" }, h("strong", {}, t("kitchen_do_now")), " ", adviceFor(now.rule, t("kitchen_advice_default"))),
      h("p", { class: "k-when" }, t("kitchen_since", { at: fmtTime(now.raised_at) }),
        now.peak_temp_c !== null ? ` · ${t("kitchen_peak", { v: now.peak_temp_c.toFixed(1) })}` : "",
        now.acknowledged_at ? ` · ${t("kitchen_acked_by", { at: fmtTime(now.acknowledged_at) })}` : ""),
      canAck && !now.acknowledged_at ? h("button", { type: "button", id: "kitchen-ack", class: "k-ack", onclick: () => acknowledge(now) }, t("kitchen_ack")) : null,
      alerts.length > 1 ? h("p", { class: "k-more" }, t("kitchen_more", { n: alerts.length - 1 })) : null)
    : h("section", { id: "kitchen-alert", class: "kitchen-ok", role: "status" }, h("p", { class: "k-what" }, t("kitchen_all_clear")));

  const armText = h("span", {}, sound.armed ? t("kitchen_armed") : t("kitchen_arm"));
  const armButton = h("button", {
    type: "button", id: "kitchen-arm", class: sound.armed ? "secondary" : null, "aria-pressed": sound.armed ? "true" : "false",
    onclick: () => { arm(); armText.textContent = t("kitchen_armed"); armButton.setAttribute("aria-pressed", "true"); armButton.className = "secondary"; },
  }, bellIcon(), " ", armText);

  document.title = `${t("kitchen_title")} · ${site.name}`;
  mount(main,
    h("div", { class: "kitchen", id: "kitchen", dataset: { siteId } },
      h("div", { class: "k-bar" },
        h("h1", {}, `${t("kitchen_title")} · ${site.name}`),
        clock,
        armButton),
      alertBox,
      msg,
      h("section", { class: "k-recent", "aria-labelledby": "k-recent-h" },
        h("h2", { id: "k-recent-h" }, t("kitchen_recent")),
        recent.data.length
          ? h("ol", { id: "kitchen-recent" }, recent.data.map((a) => h("li", { dataset: { status: a.status } },
            h("time", { datetime: a.raised_at }, fmtTime(a.raised_at)), " ",
            h("strong", {}, label(a)), ` · ${subjectName(a, names)} · `, t(`alarm_${a.status}`))))
          : h("p", {}, t("kitchen_no_recent")))));

  if (now && !sound.spoken.has(now.id)) {
    sound.spoken.add(now.id);
    beep();
    speak(`${label(now)}，${subjectName(now, names)}。${adviceFor(now.rule, t("kitchen_advice_default"))}`);
  }
  onLiveView((ev) => ev.site_id === siteId && ["alarm", "violation", "ticket"].includes(ev.kind), refresh);
  return siteName(siteId);
}
