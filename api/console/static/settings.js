// Users and settings: the canteens, sensors and cameras in your scope with their profiles
// and limits; deadlines and capture triage (admins and regulators); alert channels with a
// test send (everyone but insurers); users (admins: all; regulators: their region's, users.js).
import { api } from "./api.js";
import { me, siteName } from "./app.js";
import { cell, h, mount, say } from "./dom.js";
import { explain, fmtHours, fmtNum, fmtTime, t } from "./i18n.js";
import { profileLabel, ruleLabel, tierLabel } from "./labels.js";
import { usersSection } from "./users.js";

const BASE = "/console";

function deviceTable(site, sensors, cameras) {
  return h("section", { class: "card", dataset: { siteId: site.id } },
    h("h2", {}, h("a", { href: `${BASE}/sites/${encodeURIComponent(site.id)}`, "data-link": true }, site.name)),
    sensors.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact stack" },
      h("caption", {}, t("sensors")),
      h("thead", {}, h("tr", {}, [t("name"), t("set_profile"), t("limits"), t("set_last_heard")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, sensors.map((s) => h("tr", {},
        h("th", { scope: "row" }, s.name || profileLabel(s.profile)), cell(t("set_profile"), {}, profileLabel(s.profile)),
        cell(t("limits"), {}, `${fmtNum(s.params.low_c)} … ${fmtNum(s.params.high_c)} °C`),
        cell(t("set_last_heard"), {}, fmtTime(s.last_received_at))))))) : null,
    cameras.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact stack" },
      h("caption", {}, t("cameras")),
      h("thead", {}, h("tr", {}, [t("name"), t("state"), t("set_last_heard")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, cameras.map((c) => h("tr", {},
        h("th", { scope: "row" }, c.name || t("device")), cell(t("state"), {}, h("span", { class: `cam cam-${c.state}` }, t(`cam_${c.state}`))),
        cell(t("set_last_heard"), {}, fmtTime(c.status_at))))))) : null);
}

async function deadlinesSection() {
  const [d, cal] = await Promise.all([api("/settings/deadlines"), api("/settings/calendar")]);
  const length = (r) => (r.working_days ? t("working_days_n", { n: r.working_days }) : fmtHours(r.hours));
  return h("section", { class: "card", id: "deadlines" },
    h("h2", {}, t("set_deadlines")),
    h("ul", {}, Object.entries(d.defaults_h).map(([tier, hours]) => h("li", {}, `${tierLabel(tier)}: ${fmtHours(hours)}`))),
    d.rules.length ? h("ul", { id: "deadline-rules" }, d.rules.map((r) => h("li", { dataset: { rule: r.rule || "", region: r.region_id || "" } },
      `${r.rule ? ruleLabel(r.rule) : tierLabel(r.tier)}${r.region_name ? ` · ${r.region_name}` : ""}: ${length(r)}`,
      r.editable ? "" : ` (${t("set_read_only")})`))) : null,
    // the days working-day deadlines skip or count beyond Monday-Friday, for the next year
    h("h3", {}, t("set_calendar")),
    cal.days.length ? h("ul", { id: "calendar-days" }, cal.days.map((c) => h("li", { dataset: { day: c.day, working: String(c.working) } },
      `${c.day} ${t(c.working ? "cal_working" : "cal_off")}${c.note ? ` · ${c.note}` : ""}`)))
      : h("p", { id: "calendar-days", class: "muted" }, t("cal_none")));
}

/** The alert channels of the people of your canteens, each with a "send test" button. */
async function channelsSection() {
  const list = (await api("/alerts/channels")).data;
  const row = (c) => {
    const key = `${c.person_id}-${c.index}`;
    const result = h("span", { id: `ch-result-${key}`, role: "status", "aria-live": "polite" });
    const button = h("button", { type: "button", id: `ch-test-${key}`, dataset: { person: c.person_id, index: c.index } }, t("ch_send_test"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.className = "";
      result.dataset.outcome = "";
      say(result, t("ch_sending"));
      try {
        const r = await api(`/alerts/channels/${encodeURIComponent(c.person_id)}/${c.index}/test`, { method: "POST" });
        result.className = r.delivered ? "ok" : "error";
        result.dataset.outcome = r.delivered ? "delivered" : "failed";
        say(result, r.delivered ? t("ch_delivered", { ms: Math.round(r.duration_ms) }) : t("ch_failed", { detail: r.detail }));
      } catch (e) {
        result.className = "error";
        result.dataset.outcome = "failed";
        say(result, explain(e));
      } finally {
        button.disabled = false;
      }
    });
    return h("tr", { dataset: { person: c.person_id, kind: c.kind } },
      h("th", { scope: "row" }, c.person_name), cell(t("ch_kind"), {}, t(`kind_${c.kind}`)),
      cell(t("ch_address"), { class: "address" }, h("code", { title: c.address_masked }, c.address_masked)),
      cell(t("ch_sites"), {}, h("span", {}, ...c.sites.flatMap((s, i) => [i ? h("br") : null,
        h("span", { class: "ch-site", dataset: { siteId: s.site_id } }, `${siteName(s.site_id)} · ${t(`role_${s.role}`)}`)]))),
      cell(t("ch_result"), {}, h("span", {}, button, " ", result)));
  };
  return h("section", { class: "card", id: "channels" },
    h("h2", {}, t("set_channels")),
    h("p", { class: "muted" }, t("set_channels_hint")),
    list.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact stack", id: "channels-table" },
      h("thead", {}, h("tr", {}, [t("ch_person"), t("ch_kind"), t("ch_address"), t("ch_sites"), t("ch_result")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, list.map(row)))) : h("p", { id: "channels-table" }, t("ch_none")));
}

export async function renderSettings(main) {
  const user = me();
  const sites = (await api("/sites")).data;
  const devices = await Promise.all(sites.map((s) => Promise.all([
    api(`/console/api/sites/${encodeURIComponent(s.id)}/sensors`),
    api(`/console/api/sites/${encodeURIComponent(s.id)}/cameras`),
  ])));
  const extra = [];
  if (user.role === "admin" || user.role === "regulator") {
    extra.push(await deadlinesSection().catch((e) => h("p", { class: "error" }, explain(e))));
  }
  if (!user.read_only && user.role !== "inspector") extra.push(await channelsSection().catch((e) => h("p", { class: "error" }, explain(e))));
  if (["admin", "regulator"].includes(user.role)) extra.push(await usersSection().catch((e) => h("p", { class: "error" }, explain(e))));
  else extra.push(h("p", { class: "muted", id: "users-note" }, t("set_users_admin_only")));
  mount(main,
    h("h1", {}, t("nav_settings")),
    h("p", { class: "muted" }, t("set_hint")),
    ...extra,
    h("h2", {}, t("set_registry")),
    sites.map((s, i) => deviceTable(s, devices[i][0], devices[i][1])));
}
