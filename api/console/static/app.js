// The console shell: sign-in, header (language, user, sign-out), navigation and the router.
import { api, ApiError, setUnauthorizedHandler } from "./api.js";
import { h, mount } from "./dom.js";
import { getLang, setLang, t } from "./i18n.js";
import { renderOverview, renderTickets } from "./views.js";
import { renderReviews, renderTicket } from "./ticket.js";
import { renderSite } from "./site.js";

const BASE = "/console";
const main = document.getElementById("main");
const top = document.getElementById("top");
const state = { me: null };

/** Go to a console path (pushState) and render it. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

/** Who is signed in ({username, role, read_only, ...}). */
export function me() {
  return state.me;
}

const ROUTES = [
  [/^\/?$/, () => renderOverview(main)],
  [/^\/tickets\/?$/, () => renderTickets(main, new URLSearchParams(location.search))],
  [/^\/tickets\/(\d+)$/, (m) => renderTicket(main, Number(m[1]))],
  [/^\/sites\/([^/]+)$/, (m) => renderSite(main, decodeURIComponent(m[1]))],
  [/^\/reviews\/?$/, () => renderReviews(main)],
];

function currentPath() {
  const p = location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length) : p;
}

function header() {
  const path = currentPath();
  const link = (href, key) => {
    const active = href === "/" ? path === "/" || path === "" : path.startsWith(href);
    return h("li", {}, h("a", { href: BASE + href, "data-link": true, "aria-current": active ? "page" : null }, t(key)));
  };
  const u = state.me;
  mount(
    top,
    h("span", { class: "brand" }, t("app_title")),
    h("nav", { "aria-label": t("nav") },
      h("ul", {}, link("/", "nav_overview"), link("/tickets", "nav_tickets"), u.read_only ? null : link("/reviews", "nav_reviews"))),
    h("div", { class: "who" },
      h("button", {
        type: "button", id: "lang-switch", class: "secondary", lang: getLang() === "en" ? "zh-CN" : "en",
        "aria-label": t("switch_lang_label"),
        onclick: () => { setLang(getLang() === "en" ? "zh-CN" : "en"); render(); },
      }, t("switch_lang")),
      h("span", { id: "user", title: t("signed_in_as") }, `${u.username} · `, h("span", { id: "user-role" }, t(`role_${u.role}`))),
      h("button", { type: "button", id: "logout", class: "secondary", onclick: logout }, t("signout"))),
  );
  top.hidden = false;
}

async function logout() {
  try {
    await api("/auth/logout", { method: "POST", quiet401: true });
  } catch (e) {
    // already signed out
  }
  state.me = null;
  history.replaceState(null, "", `${BASE}/`);
  renderLogin();
}

function renderLogin(message = "") {
  top.hidden = true;
  document.title = `${t("signin_title")} · ${t("app_title")}`;
  const err = h("p", { id: "login-error", class: "error", role: "alert" }, message);
  const form = h("form", { id: "login-form", class: "card login", novalidate: true },
    h("h1", {}, t("app_title")),
    h("h2", {}, t("signin_title")),
    h("label", { for: "username" }, t("username")),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    h("label", { for: "password" }, t("password")),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    err,
    h("div", { class: "row" },
      h("button", { type: "submit", id: "login-submit" }, t("signin")),
      h("button", { type: "button", class: "secondary", id: "lang-switch", onclick: () => { setLang(getLang() === "en" ? "zh-CN" : "en"); renderLogin(); } }, t("switch_lang"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      const out = await api("/auth/login", { method: "POST", json: { username: data.get("username"), password: data.get("password") }, quiet401: true });
      state.me = out.user;
      render();
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? t("signin_failed") : t("error", { msg: e.message });
    }
  });
  mount(main, form);
  form.querySelector("#username").focus();
}

/** Render the view of the current path (the sign-in page when nobody is signed in). */
export async function render() {
  document.documentElement.lang = getLang();
  document.getElementById("skip-link").textContent = t("skip");
  if (!state.me) {
    try {
      state.me = await api("/auth/me", { quiet401: true });
    } catch (e) {
      renderLogin();
      return;
    }
  }
  header();
  document.title = t("app_title");
  const path = currentPath();
  for (const [re, view] of ROUTES) {
    const m = path.match(re);
    if (m) {
      mount(main, h("p", { class: "loading", role: "status" }, t("loading")));
      try {
        await view(m);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return;
        const msg = e instanceof ApiError && e.status === 404 ? t("not_found") : t("error", { msg: e.message });
        mount(main, h("p", { class: "error", role: "alert" }, msg));
      }
      return;
    }
  }
  mount(main, h("p", { class: "error", role: "alert" }, t("not_found")));
}

setUnauthorizedHandler(() => {
  state.me = null;
  renderLogin();
});

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
  main.focus();
});
window.addEventListener("popstate", () => render());
render();
