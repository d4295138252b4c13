// Publication (阳光公示): what a region's public canteen pages show (nothing by default), and
// a printable sheet with a canteen's QR code for its door (the API draws the QR code).
import { api, ApiError } from "./api.js";
import { me, refresh } from "./app.js";
import { h, mount, say } from "./dom.js";
import { explain, fmtTime, wordsOf } from "./i18n.js";

const FLAGS = ["enabled", "show_inspection", "show_rectification", "show_cold_chain", "show_disinfection", "show_rapid_tests", "accept_complaints"];

const WORDS = {
  "zh-CN": {
    title: "阳光公示设置", region: "区域", own_region: "本辖区", save: "保存",
    enabled: "公开本区域食堂的公示页", show_inspection: "最近一次监督检查结果", show_rectification: "整改情况汇总",
    show_cold_chain: "冷链温控达标情况（30 天）", show_disinfection: "餐具消毒达标情况（30 天）",
    show_rapid_tests: "采购食材快检结果（30 天）",
    accept_complaints: "接受群众投诉", state_default: "当前：未设置，公示页不公开任何内容（默认）。",
    state_set: "当前设置来自{region}，{by} 于 {at} 修改。", saved: "已保存", canteens: "食堂二维码",
    print_qr: "打印二维码", public_page: "公示页", qr_title: "食品安全阳光公示",
    qr_scan: "微信或手机相机扫码，查看本食堂的检查结果、整改情况、冷链、餐具消毒与快检记录，也可以投诉和建议。",
    qr_alt: "{name} 公示页二维码", print: "打印", back: "返回",
    nothing_personal: "公示页不显示任何个人信息。",
  },
  en: {
    title: "Public pages", region: "Region", own_region: "your region", save: "Save",
    enabled: "Publish this region's canteen pages", show_inspection: "Latest inspection result",
    show_rectification: "Rectification summary", show_cold_chain: "Cold-chain compliance (30 days)",
    show_disinfection: "Tableware disinfection compliance (30 days)",
    show_rapid_tests: "Rapid tests of purchases (30 days)", accept_complaints: "Accept complaints from the public",
    state_default: "Now: nothing set, the public pages show nothing (the default).",
    state_set: "Now: set on {region} by {by} at {at}.", saved: "Saved", canteens: "Canteen QR codes",
    print_qr: "Print QR code", public_page: "Public page", qr_title: "Food safety, in the open",
    qr_scan: "Scan with your phone to see this canteen's inspection result, rectifications, cold chain, tableware disinfection and rapid tests, and to send a complaint or suggestion.",
    qr_alt: "QR code of the public page of {name}", print: "Print", back: "Back",
    nothing_personal: "The public page shows nothing personal.",
  },
};

const w = wordsOf(WORDS, { missing: "" });

/** The setting that applies to `region` (null: nothing set anywhere above it, the default). */
async function setting(region) {
  return api(`/console/api/publication/${encodeURIComponent(region)}`);
}

/** The settings page (admins and regulators): one region at a time, and each canteen's QR sheet. */
export async function renderPublication(main, params) {
  const overview = await api("/console/api/overview");
  const names = overview.regions;
  const u = me();
  const regions = [...new Set([u.region_id, ...Object.keys(names)].filter(Boolean))];
  const region = regions.includes(params.get("region")) ? params.get("region") : regions[0];
  const label = (r) => names[r] || (r === u.region_id ? w("own_region") : r);
  const current = region ? await setting(region) : null;
  const status = h("p", { id: "pub-status", role: "status", "data-keep": true });
  const form = h("form", { id: "pub-form", class: "card", novalidate: true },
    h("div", { class: "row" },
      h("label", { for: "pub-region" }, w("region")),
      h("select", {
        id: "pub-region", name: "region",
        onchange: (ev) => { history.replaceState(null, "", `/console/publication?region=${encodeURIComponent(ev.target.value)}`); refresh(); },
      }, regions.map((r) => h("option", { value: r, selected: r === region }, label(r))))),
    h("p", { id: "pub-state", class: "small muted" }, current
      ? w("state_set", { region: label(current.region_id), by: current.updated_by, at: fmtTime(current.updated_at) })
      : w("state_default")),
    FLAGS.map((f) => h("div", { class: "row" },
      h("input", { type: "checkbox", id: `pub-${f}`, name: f, checked: current ? current[f] : false }),
      h("label", { for: `pub-${f}` }, w(f)))),
    h("p", { class: "small muted" }, w("nothing_personal")),
    h("div", { class: "row" }, h("button", { type: "submit", id: "pub-save" }, w("save"))),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(FLAGS.map((f) => [f, form.querySelector(`#pub-${f}`).checked]));
    status.className = "";
    try {
      await api(`/publication/${encodeURIComponent(region)}`, { method: "PUT", json: body });
      say(status, w("saved"));
      status.className = "ok";
      await refresh();
    } catch (e) {
      say(status, explain(e));
      status.className = "error";
    }
  });
  const sites = overview.data.filter((s) => regions.includes(s.region_id));
  mount(main,
    h("h1", {}, w("title")),
    form,
    h("section", { class: "card", "aria-labelledby": "pub-sites-h" },
      h("h2", { id: "pub-sites-h" }, w("canteens")),
      h("ul", { id: "pub-sites" }, sites.map((s) => h("li", { dataset: { siteId: s.id } },
        `${s.name} · `,
        h("a", { href: `/console/sites/${encodeURIComponent(s.id)}/qr`, "data-link": true }, w("print_qr")), " · ",
        h("a", { href: `/public/canteens/${encodeURIComponent(s.id)}`, target: "_blank", rel: "noopener" }, w("public_page")))))));
}

/** A sheet for a canteen's door: its name, the QR code of its public page, what scanning shows. */
export async function renderQrSheet(main, siteId) {
  const sites = await api("/sites");
  const site = sites.data.find((s) => s.id === siteId);
  if (!site) throw new ApiError(404, siteId);
  document.title = `${site.name} · ${w("qr_title")}`;
  mount(main,
    h("div", { class: "row no-print" },
      h("button", { type: "button", id: "qr-print", onclick: () => window.print() }, w("print")),
      h("a", { href: `/console/sites/${encodeURIComponent(siteId)}`, "data-link": true }, w("back"))),
    h("article", { id: "qr-sheet", class: "notice-sheet" },
      h("h1", {}, w("qr_title")),
      h("h2", { id: "qr-site" }, site.name),
      site.address ? h("p", {}, site.address) : null,
      h("img", {
        id: "qr-img", src: `/public/canteens/${encodeURIComponent(siteId)}/qr.svg`, width: 320, height: 320,
        alt: w("qr_alt", { name: site.name }),
      }),
      h("p", { class: "lead" }, w("qr_scan"))));
}
