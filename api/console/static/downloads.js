// Downloads from the API (claim bundles, ledgers, datasets) fetched by the page, so that a refusal
// or a failure is said in words beside the link instead of a bare "Failed" in the browser's
// download bar, and so that a long export shows that it is being prepared.
import { ApiError } from "./api.js";
import { say } from "./dom.js";
import { explain, t } from "./i18n.js";

/** The file name the API gave (Content-Disposition, RFC 6266 / 5987), else `fallback`. */
function fileName(disposition, fallback) {
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition || "");
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

async function fetchAndSave(link, onUnauthorized) {
  const status = statusFor(link);
  const url = link.getAttribute("href");
  const fallback = link.getAttribute("download") || url.split("?")[0].split("/").pop();
  status.className = status.className.replace(/\b(ok|error)\b/g, "").trim();
  link.setAttribute("aria-busy", "true");
  say(status, t("download_preparing"));
  try {
    let r;
    try {
      r = await fetch(url, { credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, "", "network");
    }
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      if (r.status === 401) onUnauthorized();
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      throw new ApiError(r.status, detail, r.headers.get("X-BK-Reason") || "");
    }
    const name = fileName(r.headers.get("Content-Disposition"), fallback);
    const blob = await r.blob();
    const href = URL.createObjectURL(blob);
    const save = document.createElement("a");
    save.href = href; // a blob: link, which the click handler below leaves alone
    save.download = name;
    save.hidden = true;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    status.classList.add("ok");
    say(status, t("download_done", { name }));
  } catch (e) {
    status.classList.add("error");
    say(status, explain(e));
  } finally {
    link.removeAttribute("aria-busy");
  }
}

/** Take over every click on a download link to the API (`a[download]` whose href is below
 * /api/); `onUnauthorized` is called when the session has ended. */
export function installDownloads(onUnauthorized) {
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest && ev.target.closest("a[download]");
    if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    const href = link.getAttribute("href") || "";
    if (!href.startsWith("/api/")) return;
    ev.preventDefault();
    if (link.getAttribute("aria-busy") === "true") return; // one fetch of it at a time
    fetchAndSave(link, onUnauthorized);
  });
}
