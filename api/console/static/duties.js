// The officer's day on a phone (日管控): the daily checklist, where each "no" needs a photo
// from the phone's camera; the morning health check of the staff (晨检); and a meal's food
// samples (留样). Everything goes through the duties API; its refusals are shown as sentences.
import { api } from "./api.js";
import { me, render } from "./app.js";
import { h, mount, qs, say } from "./dom.js";
import { explain, fmtClock, fmtTime, getLang, getTimeZone, wordsOf } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    title: "今日食安职责", site: "单位", check: "每日检查（日管控）", due: "截止时间 {t}",
    yes: "是", no: "否", note: "说明", photo: "拍照（“否”必须拍照）", submit_check: "提交检查",
    done_by: "{who} 于 {t} 完成，{n} 项不合格已生成整改单", done_ok: "{who} 于 {t} 完成，全部合格", need_photo: "第 {n} 项选“否”，请先拍照。",
    need_answer: "第 {n} 项还没有选择“是”或“否”。", uploading: "正在上传照片…", saved: "已保存。",
    no_duties: "该单位尚未设置每日食安职责，请联系食品安全总监或监管人员设置。",
    health: "晨检", staff: "姓名", temp: "体温(℃)", symptoms: "症状", add_staff: "再加一人",
    submit_health: "提交晨检", on_duty: "上岗", off_duty: "今日离岗", no_health: "今天还没有晨检记录",
    samples: "留样", meal: "餐次", stored_at: "留样时间", dish: "菜品", weight: "重量(克)",
    add_dish: "再加一道菜", submit_samples: "提交留样", no_samples: "今天还没有留样记录",
    keep_until: "保存至", read_only: "您的角色只能查看。", none: "无",
    meals_due: "今日餐次", meal_sampled: "{meal} {from}–{to} · 已留样 {n} 道菜",
    meal_pending: "{meal} {from}–{to} · 请于 {t} 前留样", meal_overdue: "{meal} {from}–{to} · {t} 前未留样，将生成整改单",
    breakfast: "早餐", lunch: "午餐", dinner: "晚餐", other: "其他",
    fever: "发热", diarrhoea: "腹泻", vomiting: "呕吐", jaundice: "黄疸", sore_throat: "咽部炎症",
    skin_infection: "皮肤化脓性感染", hand_wound: "手部外伤",
  },
  en: {
    title: "Today's food-safety duties", site: "Site", check: "Daily check", due: "Due by {t}",
    yes: "Yes", no: "No", note: "Note", photo: "Photo (required for “No”)", submit_check: "Submit the check",
    done_by: "Done by {who} at {t}; {n} “no” answers opened tickets", done_ok: "Done by {who} at {t}; every item passed", need_photo: "Item {n} is “No”: take a photo first.",
    need_answer: "Item {n} has no answer yet.", uploading: "Uploading photos…", saved: "Saved.",
    no_duties: "This site keeps no daily duties yet; ask its director or the regulator to set them.",
    health: "Morning health check", staff: "Name", temp: "Temp (°C)", symptoms: "Symptoms", add_staff: "Add a person",
    submit_health: "Submit the health check", on_duty: "on duty", off_duty: "off duty today", no_health: "No health check yet today",
    samples: "Food samples", meal: "Meal", stored_at: "Stored at", dish: "Dish", weight: "Weight (g)",
    add_dish: "Add a dish", submit_samples: "Submit the samples", no_samples: "No food samples yet today",
    keep_until: "Keep until", read_only: "Your role only reads.", none: "none",
    meals_due: "Today's meals", meal_sampled: "{meal} {from}–{to} · {n} dishes sampled",
    meal_pending: "{meal} {from}–{to} · samples due by {t}", meal_overdue: "{meal} {from}–{to} · no sample by {t}: a ticket opens",
    breakfast: "breakfast", lunch: "lunch", dinner: "dinner", other: "other",
    fever: "fever", diarrhoea: "diarrhoea", vomiting: "vomiting", jaundice: "jaundice", sore_throat: "sore throat",
    skin_infection: "skin infection", hand_wound: "hand wound",
  },
};

const SYMPTOMS = ["fever", "diarrhoea", "vomiting", "jaundice", "sore_throat", "skin_infection", "hand_wound"];
const MEALS = ["breakfast", "lunch", "dinner", "other"];

const w = wordsOf(WORDS, { missing: "" });

/** YYYY-MM-DD today in the region's zone (the duties' dates are China dates). */
function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: getTimeZone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

const itemLabel = (item) => (getLang() === "en" ? item.en : item.zh);

/** The duties page; `params` may hold site_id (default: the first site in scope). */
export async function renderDuties(main, params) {
  const sites = (await api("/sites")).data;
  const siteId = params.get("site_id") || (sites[0] && sites[0].id) || "";
  const picker = h("form", { id: "duty-site-form", class: "card row", method: "get", action: "/console/duties" },
    h("label", { for: "duty-site" }, w("site")),
    h("select", { id: "duty-site", name: "site_id", onchange: (ev) => ev.target.form.requestSubmit() },
      sites.map((s) => h("option", { value: s.id, selected: s.id === siteId }, s.name))));
  const keeping = new Set((await api("/duties/today")).map((d) => d.site_id)); // sites with duties
  if (!keeping.has(siteId)) {
    mount(main, h("h1", {}, w("title")), picker, h("p", { id: "duty-none", class: "card notice" }, w("no_duties")));
    return;
  }
  const duty = await api(`/sites/${encodeURIComponent(siteId)}/duties`);
  const base = `/sites/${encodeURIComponent(siteId)}`;
  const day = today();
  const [checks, health, meals] = await Promise.all([
    api(`${base}/daily-checks${qs({ since: day, limit: 1 })}`),
    api(`${base}/health-checks${qs({ day })}`),
    api(`${base}/meals`), // today in the schedule's zone; each meal carries its date
  ]);
  // samples are kept under the meal's date in its schedule's zone (China's today in China)
  const mealDay = meals.length ? meals[0].meal_date : day;
  const samples = await api(`${base}/food-samples${qs({ day: mealDay })}`);
  const writer = !me().read_only;
  const done = checks.find((c) => c.check_date === day);
  mount(main,
    h("h1", {}, w("title")), picker,
    writer ? null : h("p", { class: "muted" }, w("read_only")),
    checkSection(base, duty, done, writer),
    healthSection(base, health, writer),
    samplesSection(base, samples, meals, writer, mealDay));
}

/** "Saved" or the API's refusal as a sentence, in the section's status line. */
async function submitting(status, work) {
  try {
    await work();
    return true;
  } catch (e) {
    status.className = "error";
    say(status, explain(e));
    return false;
  }
}

function checkSection(base, duty, done, writer) {
  const head = [h("h2", { id: "duty-check-h" }, w("check")), h("p", { class: "muted" }, w("due", { t: duty.deadline_local }))];
  if (done) {
    // the stored label holds both languages; the checklist words it in the reader's
    const byKey = new Map((duty.checklist?.items ?? []).map((item) => [item.key, item]));
    const label = (a) => (byKey.has(a.item) ? itemLabel(byKey.get(a.item)) : a.label);
    return h("section", { class: "card", id: "duty-check", "aria-labelledby": "duty-check-h", dataset: { done: "yes" } }, head,
      h("p", { id: "duty-check-done" }, w(done.findings ? "done_by" : "done_ok", { who: done.completed_by_name || done.completed_by, t: fmtClock(done.completed_at), n: done.findings })),
      h("ul", { id: "duty-answers" }, done.answers.map((a) => h("li", { dataset: { item: a.item, ok: String(a.ok) } },
        `${a.ok ? "✓" : "✗"} ${label(a)}${a.note ? ` — ${a.note}` : ""}`))));
  }
  const status = h("p", { id: "duty-check-status", role: "status", "data-keep": true });
  const items = duty.checklist.items.map((item, i) => {
    const name = `ans-${item.key}`;
    const extra = h("div", { class: "duty-no", hidden: true },
      h("label", { for: `note-${item.key}` }, w("note")),
      h("input", { id: `note-${item.key}`, maxlength: 500 }),
      h("label", { for: `photo-${item.key}` }, w("photo")),
      h("input", { id: `photo-${item.key}`, type: "file", accept: "image/*", capture: "environment" }));
    const radio = (ok) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value: ok ? "yes" : "no", id: `${name}-${ok ? "yes" : "no"}`,
        onchange: () => { extra.hidden = ok; } }), ` ${w(ok ? "yes" : "no")}`);
    return h("div", { class: "duty-item", dataset: { item: item.key } },
      h("fieldset", {}, h("legend", {}, `${i + 1}. ${itemLabel(item)}`), h("div", { class: "row" }, radio(true), radio(false)), extra));
  });
  const form = h("form", { id: "duty-check-form", novalidate: true },
    h("div", { class: "duty-items" }, items), status,
    h("button", { type: "submit", id: "duty-check-submit" }, w("submit_check")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    const answers = [];
    for (const [i, item] of duty.checklist.items.entries()) {
      const picked = form.querySelector(`input[name="ans-${item.key}"]:checked`);
      if (!picked) return say(status, w("need_answer", { n: i + 1 }));
      const ok = picked.value === "yes";
      const file = form.querySelector(`#photo-${item.key}`).files[0];
      if (!ok && !file) {
        status.className = "error";
        return say(status, w("need_photo", { n: i + 1 }));
      }
      answers.push({ item: item.key, ok, note: ok ? "" : form.querySelector(`#note-${item.key}`).value, file: ok ? null : file });
    }
    say(status, w("uploading"));
    const saved = await submitting(status, async () => {
      for (const a of answers) {
        if (a.file) a.photo_sha256 = (await api(`${base}/duty-photos`, { method: "POST", form: a.file })).sha256;
        delete a.file;
      }
      await api(`${base}/daily-checks`, { method: "POST", json: { answers } });
    });
    if (saved) render({ quiet: true });
  });
  return h("section", { class: "card", id: "duty-check", "aria-labelledby": "duty-check-h", dataset: { done: "no" } }, head,
    writer ? form : null);
}

function staffRow(n) {
  return h("fieldset", { class: "staff-row" },
    h("label", { for: `staff-name-${n}` }, w("staff")), h("input", { id: `staff-name-${n}`, class: "staff-name", maxlength: 100 }),
    h("label", { for: `staff-temp-${n}` }, w("temp")),
    h("input", { id: `staff-temp-${n}`, class: "staff-temp", type: "number", step: "0.1", min: 34, max: 43, inputmode: "decimal" }),
    h("div", { class: "row symptoms", role: "group", "aria-label": w("symptoms") },
      SYMPTOMS.map((s) => h("label", { class: "choice" }, h("input", { type: "checkbox", value: s, class: "symptom" }), ` ${w(s)}`))));
}

function healthSection(base, health, writer) {
  const list = h("ul", { id: "health-list" }, health.length ? health.map((c) => h("li", { dataset: { onDuty: String(c.on_duty) }, class: c.on_duty ? "" : "overdue" },
    `${c.staff_name} · ${c.temperature_c ?? "—"} ℃ · ${c.symptoms.length ? c.symptoms.map((s) => w(s)).join("、") : w("none")} · ${w(c.on_duty ? "on_duty" : "off_duty")}`))
    : h("li", { class: "muted" }, w("no_health")));
  const status = h("p", { id: "health-status", role: "status", "data-keep": true });
  const rows = h("div", { id: "staff-rows" }, staffRow(0));
  const form = h("form", { id: "health-form", novalidate: true }, rows,
    h("button", { type: "button", class: "secondary", id: "add-staff", onclick: () => rows.append(staffRow(rows.children.length)) }, w("add_staff")),
    status, h("button", { type: "submit", id: "health-submit" }, w("submit_health")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const staff = [...rows.children].map((r) => ({
      staff_name: r.querySelector(".staff-name").value.trim(),
      temperature_c: r.querySelector(".staff-temp").value === "" ? null : r.querySelector(".staff-temp").value,
      symptoms: [...r.querySelectorAll(".symptom:checked")].map((c) => c.value),
    })).filter((s) => s.staff_name || s.temperature_c || s.symptoms.length);
    if (await submitting(status, () => api(`${base}/health-checks`, { method: "POST", json: { staff } }))) {
      render({ quiet: true });
    }
  });
  return h("section", { class: "card", id: "health", "aria-labelledby": "health-h" },
    h("h2", { id: "health-h" }, w("health")), list, writer ? form : null);
}

function dishRow(n) {
  return h("div", { class: "row dish-row" },
    h("label", { for: `dish-${n}` }, w("dish")), h("input", { id: `dish-${n}`, class: "dish-name", maxlength: 100 }),
    h("label", { for: `dish-g-${n}` }, w("weight")),
    h("input", { id: `dish-g-${n}`, class: "dish-weight", type: "number", min: 125, step: "1", inputmode: "numeric" }));
}

/** HH:MM in the region's time zone. */
function hhmm(iso) {
  return new Intl.DateTimeFormat(getLang(), { timeZone: getTimeZone(), hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

/** The day's scheduled meals (the site's meal schedule), each sampled, still due, or overdue:
 * an overdue meal becomes a 未按规定留样 ticket, so the officer sees it coming. */
function mealsDue(meals) {
  if (!meals.length) return null;
  return h("ul", { id: "meal-due", "aria-label": w("meals_due") }, meals.map((m) => {
    const vars = { meal: w(m.meal), from: hhmm(m.start), to: hhmm(m.end), t: hhmm(m.samples_due_at), n: m.dishes_sampled };
    const state = m.sampled ? "sampled" : m.overdue ? "overdue" : "pending";
    return h("li", { dataset: { meal: m.meal, state }, class: state === "overdue" ? "error" : state === "sampled" ? "muted" : "" },
      w(`meal_${state}`, vars));
  }));
}

/** The 留样 section of the meal day `day` (the schedule's today): its meals, samples and form. */
function samplesSection(base, samples, meals, writer, day) {
  const list = h("ul", { id: "sample-list" }, samples.length ? samples.map((s) => h("li", { dataset: { meal: s.meal } },
    `${w(s.meal)} · ${s.dish} · ${s.weight_g} g · ${w("keep_until")} ${fmtTime(s.keep_until)}`))
    : h("li", { class: "muted" }, w("no_samples")));
  const status = h("p", { id: "samples-status", role: "status", "data-keep": true });
  const nextMeal = (meals.find((m) => !m.sampled) || {}).meal; // the form starts on it
  const rows = h("div", { id: "dish-rows" }, dishRow(0), dishRow(1));
  const form = h("form", { id: "samples-form", novalidate: true },
    h("div", { class: "row" },
      h("label", { for: "sample-meal" }, w("meal")),
      h("select", { id: "sample-meal" }, MEALS.map((m) => h("option", { value: m, selected: m === nextMeal }, w(m))))),
    rows,
    h("button", { type: "button", class: "secondary", id: "add-dish", onclick: () => rows.append(dishRow(rows.children.length)) }, w("add_dish")),
    status, h("button", { type: "submit", id: "samples-submit" }, w("submit_samples")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const dishes = [...rows.children].map((r) => ({ dish: r.querySelector(".dish-name").value.trim(), weight_g: r.querySelector(".dish-weight").value }))
      .filter((d) => d.dish || d.weight_g);
    const body = { meal_date: day, meal: form.querySelector("#sample-meal").value, stored_at: new Date().toISOString(), dishes };
    if (await submitting(status, () => api(`${base}/food-samples`, { method: "POST", json: body }))) {
      render({ quiet: true });
    }
  });
  return h("section", { class: "card", id: "samples", "aria-labelledby": "samples-h" },
    h("h2", { id: "samples-h" }, w("samples")), mealsDue(meals), list, writer ? form : null);
}
