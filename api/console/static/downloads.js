// Downloads from the API (claim bundles, ledgers, datasets) fetched by the page, so that a refusal
// or a failure is said in words beside the link instead of a bare "Failed" in the browser's
// download bar, and so that a long export shows that it is being prepared.
import { ApiError } from "./api.js";
import { say } from "./dom.js";
import { explain, t } from "./i18n.js";

/** The file name the API gave (Content-Disposition, RFC 6266 / 5987), else `fallback`. */
function fileName(disposition, fallback) {
  const star = /filename\*\s*=\s*utf-8'[^']*'([^;]+)/i.exec(disposition || ""); // charset'lang'name
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch (e) {
      // a malformed escape: fall through to the plain name
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/.exec(disposition || "");
  return plain ? plain[1].trim() : fallback;
}

/** Where the link's progress and errors are said: the element its `data-status` names, else a
 * status line of its own placed right after it. */
function statusFor(link) {
  const named = link.dataset.status && document.getElementById(link.dataset.status);
  if (named) return named;
  const next = link.nextElementSibling;
  if (next && next.classList.contains("download-status")) return next;
  const made = document.createElement("span");
  made.className = "download-status small";
  made.setAttribute("role", "status");
  link.after(made);
  return made;
}

const inFlight = new Set(); // the URLs being fetched: one fetch of each at a time

/** Say `text` (class `kind`: "", "ok" or "error") beside the link to `url` as the page is now:
 * a live page may have redrawn the link (and its status line) while the file was prepared. */
function sayFor(link, url, text, kind) {
  let here = link;
  if (!here.isConnected) {
    here = [...document.querySelectorAll("a[download]")].find((a) => a.getAttribute("href") === url);
    if (!here) return; // the page moved on: nothing to say it beside
  }
  const status = statusFor(here);
  status.classList.remove("ok", "error");
  if (kind) status.classList.add(kind);
  say(status, text);
  if (inFlight.has(url)) here.setAttribute("aria-busy", "true");
  else here.removeAttribute("aria-busy");
}

async function fetchAndSave(link, url, onUnauthorized) {
  const fallback = link.getAttribute("download") || url.split("?")[0].split("/").pop();
  inFlight.add(url);
  sayFor(link, url, t("download_preparing"), "");
  try {
    let r;
    let blob;
    try {
      r = await fetch(url, { credentials: "same-origin" });
      blob = r.ok ? await r.blob() : null; // the whole file, or the refusal's JSON below
    } catch (e) {
      throw new ApiError(0, "", "network"); // offline, or the connection dropped mid-file
    }
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      if (r.status === 401) onUnauthorized();
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      throw new ApiError(r.status, detail, r.headers.get("X-BK-Reason") || "");
    }
    const name = fileName(r.headers.get("Content-Disposition"), fallback);
    const href = URL.createObjectURL(blob);
    const save = document.createElement("a");
    save.href = href; // a blob: link, which the click handler below leaves alone
    save.download = name;
    save.hidden = true;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    inFlight.delete(url);
    sayFor(link, url, t("download_done", { name }), "ok");
  } catch (e) {
    inFlight.delete(url);
    sayFor(link, url, explain(e), "error");
  }
}

/** Take over every click on a download link to the API (`a[download]` whose href is below
 * /api/); `onUnauthorized` is called when the session has ended. The file is held by the
 * page until it is whole (Chrome keeps a large one on disk), then saved under its name. */
export function installDownloads(onUnauthorized) {
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest && ev.target.closest("a[download]");
    if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    const url = link.getAttribute("href") || "";
    if (!url.startsWith("/api/")) return;
    ev.preventDefault();
    if (inFlight.has(url)) return; // already being prepared (a double tap, a redrawn link)
    fetchAndSave(link, url, onUnauthorized);
  });
}
