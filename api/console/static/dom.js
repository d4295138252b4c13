// Small DOM helpers: elements are built with textContent only (never innerHTML with data).

/** Create an element: h("a", {href: "/x", class: "c"}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "path", "polyline", "line", "rect", "text", "g", "title", "circle", "polygon"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "" && v !== false) p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Put a status message in `el` and note when: a live redraw keeps it for a few seconds only. */
export function say(el, text) {
  el.textContent = text;
  el.dataset.at = String(Date.now());
}

/** A table cell labelled with its column: in a `table.stack` a phone shows each row as a card,
 * every value beside its column's name (console.css). */
export function cell(label, attrs = {}, ...content) {
  return h("td", { "data-label": label, ...attrs }, ...content);
}

/**
 * A list's previous / next pager (`<nav class="pager">`), or nothing on a lone first page.
 * `href(p)` is page p's URL (?page=p: back, forward and reload keep it); `more` says that a
 * further page exists (the list fetched one row more than a page, or counts them); `info`, if
 * given, is said between the two links ("page 2 of 5").
 */
export function pager({ id, nextId, page, more, href, prev, next, label, info }) {
  if (page <= 1 && !more) return null;
  return h("nav", { class: "pager", id, "aria-label": label },
    page > 1 ? h("a", { href: href(page - 1), "data-link": true, rel: "prev" }, prev) : null,
    info ? h("span", {}, info) : null,
    more ? h("a", { href: href(page + 1), "data-link": true, rel: "next", id: nextId }, next) : null);
}
