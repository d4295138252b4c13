// Users and roles on the settings page: an admin manages every user; a regulator the users of
// its region (officers and directors of its canteens, regulators of its region and below),
// granting only what the API offers it (GET /users/options). The API refuses anything else
// anyway; its reason code (X-BK-Reason) is worded here in the reader's language.
import { api } from "./api.js";
import { me, refresh } from "./app.js";
import { h, say } from "./dom.js";
import { explain, getLang, t } from "./i18n.js";

const WORDS = {
  "zh-CN": {
    hint_admin: "全部用户。新建账号、修改角色和负责的食堂、停用或重置密码。",
    hint_regulator: "您辖区内的用户：本辖区食堂的食品安全员和总监，本辖区及下级区域的监管人员。其他区域的用户不在这里。",
    col_scope: "负责范围", col_actions: "操作", new_user: "新建用户", create: "创建", edit: "修改", save: "保存修改",
    cancel: "取消", disable: "停用", enable: "启用", reset: "重置密码", new_password: "新密码（至少 8 位）",
    region: "区域", canteens: "负责的食堂", insurer: "保险公司", created: "已创建：{name}", saved: "已保存：{name}",
    disabled: "已停用：{name}（登录已失效）", enabled: "已启用：{name}", reset_done: "已重置 {name} 的密码，原有登录已全部失效。",
    editing: "修改用户：{name}", none: "没有可管理的用户。", all_sites: "全部食堂",
    confirm_disable: "停用 {name}？停用后立即无法登录。",
    users_grant_admin: "只有管理员能授予管理员角色。",
    users_grant_role: "您不能授予这个角色；保险机构和设备账号由管理员创建。",
    users_other_region: "只能设置本辖区或下级区域的监管人员或执法检查人员。",
    users_site_outside: "所选食堂不在您的辖区内。",
    users_person_outside: "这位人员负责的食堂不全在您的辖区内。",
    users_self: "不能修改或停用您自己的账号。",
    users_role: "您的角色不能管理用户。",
  },
  en: {
    hint_admin: "Every user. Create accounts, change roles and canteens, disable, reset passwords.",
    hint_regulator: "The users of your region: officers and directors of its canteens, regulators of your region and the regions below. Users of other regions are not here.",
    col_scope: "Scope", col_actions: "Actions", new_user: "New user", create: "Create", edit: "Edit", save: "Save changes",
    cancel: "Cancel", disable: "Disable", enable: "Enable", reset: "Reset password", new_password: "New password (8 characters or more)",
    region: "Region", canteens: "Canteens", insurer: "Insurer", created: "Created: {name}", saved: "Saved: {name}",
    disabled: "Disabled: {name} (signed out)", enabled: "Enabled: {name}", reset_done: "The password of {name} is reset; every session of it has ended.",
    editing: "Edit user: {name}", none: "No users to manage.", all_sites: "all canteens",
    confirm_disable: "Disable {name}? It can no longer sign in.",
    users_grant_admin: "Only an administrator can grant the administrator role.",
    users_grant_role: "You may not grant this role; insurer and device accounts are created by an administrator.",
    users_other_region: "You may appoint regulators and inspectors of your own region or the regions below it only.",
    users_site_outside: "A chosen canteen is outside your region.",
    users_person_outside: "This person's canteens are not all in your region.",
    users_self: "You may not change or disable your own account.",
    users_role: "Your role may not manage users.",
  },
};

const w = (key, vars = {}) =>
  String((WORDS[getLang()] || WORDS["zh-CN"])[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));

/** A refusal in words: the API's reason when it gives one, else the console's general words. */
function refusal(e) {
  const words = WORDS[getLang()] || WORDS["zh-CN"];
  return e && e.reason && words[e.reason] ? words[e.reason] : explain(e);
}

/** The role, region, canteen (and insurer) fields of a form, filled from `user` when editing. */
function grantFields(prefix, options, user) {
  const role = h("select", { id: `${prefix}-role`, name: "role", required: true },
    options.roles.map((r) => h("option", { value: r, selected: user && user.role === r }, t(`role_${r}`))));
  const region = h("select", { id: `${prefix}-region`, name: "region_id" },
    options.regions.map((r) => h("option", { value: r.id, selected: user && user.region_id === r.id }, r.name)));
  const insurer = h("input", { id: `${prefix}-insurer`, name: "insurer", value: (user && user.insurer) || "" });
  const granted = new Set((user && user.site_ids) || []);
  const sites = h("fieldset", { class: "checks", id: `${prefix}-sites` },
    h("legend", {}, w("canteens")),
    options.sites.map((s) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "site_ids", value: s.id, checked: granted.has(s.id) }), " ", s.name)));
  const regionField = h("div", { class: "field" }, h("label", { for: `${prefix}-region` }, w("region")), region);
  const insurerField = h("div", { class: "field" }, h("label", { for: `${prefix}-insurer` }, w("insurer")), insurer);
  const show = () => {
    regionField.hidden = !["regulator", "inspector"].includes(role.value);
    insurerField.hidden = role.value !== "insurer";
  };
  role.addEventListener("change", show);
  show();
  return {
    nodes: [h("div", { class: "field" }, h("label", { for: `${prefix}-role` }, t("set_role")), role), regionField, insurerField, sites],
    value: () => ({
      role: role.value,
      region_id: ["regulator", "inspector"].includes(role.value) ? region.value : null,
      insurer: role.value === "insurer" ? insurer.value.trim() : null,
      site_ids: [...sites.querySelectorAll("input:checked")].map((i) => i.value),
    }),
  };
}

function scopeText(u, names, regions) {
  const parts = [];
  if (u.region_id) parts.push(regions[u.region_id] || w("region"));
  const sites = [...new Set([...(u.person_site_ids || []), ...(u.site_ids || [])])];
  parts.push(...sites.map((id) => names[id] || id));
  if (u.role === "admin") parts.push(w("all_sites"));
  return parts.join("、") || "—";
}

/** The users section: the table of users one may manage, a form to edit one, one to create. */
export async function usersSection() {
  const [users, options] = await Promise.all([api("/users"), api("/users/options")]);
  const names = Object.fromEntries(options.sites.map((s) => [s.id, s.name]));
  const regions = Object.fromEntries(options.regions.map((r) => [r.id, r.name]));
  const msg = h("p", { id: "user-message", role: "status", "aria-live": "polite", "data-keep": true });
  const fail = (e) => { msg.className = "error"; say(msg, refusal(e)); };
  const editor = h("div", { id: "user-edit" });
  const self = me().username;

  // the page is redrawn with the change first, then the message says it is done
  const act = async (fn, done) => {
    try {
      await fn();
    } catch (e) {
      fail(e);
      return;
    }
    await refresh();
    const shown = document.getElementById("user-message") || msg;
    shown.className = "ok";
    say(shown, done);
  };

  const openEditor = (u) => {
    const fields = grantFields("edit", options, u);
    const password = h("input", { id: "edit-password", type: "password", autocomplete: "new-password", minlength: 8 });
    const form = h("form", { id: "user-edit-form", class: "card", dataset: { username: u.username } },
      h("h3", {}, w("editing", { name: u.username })),
      ...fields.nodes,
      h("div", { class: "row" },
        h("button", { type: "submit", id: "edit-save" }, w("save")),
        h("button", { type: "button", class: "secondary", onclick: () => editor.replaceChildren() }, w("cancel"))),
      h("div", { class: "field" }, h("label", { for: "edit-password" }, w("new_password")), password),
      h("button", { type: "button", id: "edit-reset", class: "secondary", onclick: () => act(
        () => api(`/users/${encodeURIComponent(u.username)}/password`, { method: "POST", json: { password: password.value } }),
        w("reset_done", { name: u.username })) }, w("reset")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = fields.value();
      const body = { role: v.role, site_ids: v.site_ids };
      if (["regulator", "inspector"].includes(v.role)) body.region_id = v.region_id;
      if (v.role === "insurer") body.insurer = v.insurer;
      act(() => api(`/users/${encodeURIComponent(u.username)}`, { method: "PATCH", json: body }), w("saved", { name: u.username }));
    });
    editor.replaceChildren(form);
    form.querySelector("select").focus();
  };

  const rows = users.data.filter((u) => u.role !== "device").map((u) => {
    const mine = u.username === self;
    return h("tr", { dataset: { username: u.username, role: u.role, active: String(u.active) } },
      h("td", { "data-label": t("username") }, u.username),
      h("td", { "data-label": t("set_role") }, t(`role_${u.role}`)),
      h("td", { "data-label": w("col_scope") }, scopeText(u, names, regions)),
      h("td", { "data-label": t("state") }, u.active ? t("set_active") : t("set_disabled")),
      h("td", { "data-label": w("col_actions") }, mine ? "—" : h("span", { class: "actions" },
        h("button", { type: "button", class: "secondary", dataset: { action: "edit" }, onclick: () => openEditor(u) }, w("edit")), " ",
        u.active
          ? h("button", { type: "button", class: "secondary", dataset: { action: "disable" }, onclick: () => {
            if (!window.confirm(w("confirm_disable", { name: u.username }))) return;
            act(() => api(`/users/${encodeURIComponent(u.username)}/disable`, { method: "POST" }), w("disabled", { name: u.username }));
          } }, w("disable"))
          : h("button", { type: "button", class: "secondary", dataset: { action: "enable" }, onclick: () =>
            act(() => api(`/users/${encodeURIComponent(u.username)}/enable`, { method: "POST" }), w("enabled", { name: u.username })) }, w("enable")))));
  });

  const fields = grantFields("new", options, { role: options.roles.includes("officer") ? "officer" : options.roles[0] });
  const create = h("form", { id: "user-new", class: "card", novalidate: true },
    h("h3", {}, w("new_user")),
    h("div", { class: "field" }, h("label", { for: "new-username" }, t("username")),
      h("input", { id: "new-username", name: "username", autocomplete: "off", required: true })),
    h("div", { class: "field" }, h("label", { for: "new-password" }, t("password")),
      h("input", { id: "new-password", name: "password", type: "password", autocomplete: "new-password", required: true })),
    ...fields.nodes,
    h("button", { type: "submit", id: "new-submit" }, w("create")));
  create.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = fields.value();
    const body = { username: create.querySelector("#new-username").value.trim(), password: create.querySelector("#new-password").value, role: v.role, site_ids: v.site_ids };
    if (v.region_id) body.region_id = v.region_id;
    if (v.insurer) body.insurer = v.insurer;
    act(async () => {
      await api("/users", { method: "POST", json: body });
      create.reset();
    }, w("created", { name: body.username }));
  });

  return h("section", { class: "card", id: "users" },
    h("h2", {}, t("set_users")),
    h("p", { class: "muted" }, w(me().role === "admin" ? "hint_admin" : "hint_regulator")),
    msg,
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact stack", id: "users-table" },
      h("thead", {}, h("tr", {}, [t("username"), t("set_role"), w("col_scope"), t("state"), w("col_actions")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows))) : h("p", { id: "users-table" }, w("none")),
    editor,
    create);
}
