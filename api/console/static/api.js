// Calls to the REST API (/api/v1) with the HttpOnly session cookie (same origin).

export class ApiError extends Error {
  constructor(status, detail, reason = "") {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.reason = reason; // the API's X-BK-Reason code of a refusal, for a page to word
  }
}

let onUnauthorized = () => {};

/** Who is told when a call answers 401 (the app shows the sign-in page). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function detailOf(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  return `HTTP ${status}`;
}

/** Fetch JSON from `path` (below /api/v1, or absolute when it starts with /console/).
 * `raw` sends bytes as they are (a photo, CSV text) with `type` as their Content-Type;
 * `withStatus` adds the answer's HTTP status to the object returned (201 or 200). */
export async function api(path, { method = "GET", json, form, raw, type, quiet401 = false, withStatus = false } = {}) {
  const url = path.startsWith("/console/") ? path : `/api/v1${path}`;
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (json !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(json);
  } else if (form !== undefined) {
    opts.body = form;
  } else if (raw !== undefined) {
    opts.headers["Content-Type"] = type || "application/octet-stream";
    opts.body = raw;
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (e) {
    throw new ApiError(0, "", "network"); // offline, or the API is not answering
  }
  if (r.status === 204) return null;
  const body = await r.json().catch(() => null);
  if (r.status === 401 && !quiet401) onUnauthorized();
  if (!r.ok) throw new ApiError(r.status, detailOf(body, r.status), r.headers.get("X-BK-Reason") || "");
  return withStatus ? { ...body, status: r.status } : body;
}
