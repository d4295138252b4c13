// Live updates: one EventSource per tab on /console/api/events, a visible connection state,
// and the views that want to hear about a change. The browser reconnects by itself and
// sends the last event id; the server replays what was missed or says "resync".
import { h } from "./dom.js";
import { t } from "./i18n.js";

const KINDS = ["alarm", "ticket", "ticket_event", "review", "violation", "resync"];
const DEBOUNCE_MS = 250;
const RETRY_MS = 3000;

let source = null;
let state = "connecting";
let seenHello = false;
let retryTimer = null;
const viewListeners = new Set();
const globalListeners = new Set();
const stateListeners = new Set();

/** The connection state: "connecting", "open" or "down". */
export function liveState() {
  return state;
}

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(next);
}

/** Call `fn(state)` whenever the connection state changes; returns the unsubscribe. */
export function onLiveState(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}

function dispatch(ev) {
  for (const fn of [...globalListeners, ...viewListeners]) {
    try {
      fn(ev);
    } catch (e) {
      console.warn("live listener failed", e);
    }
  }
}

/** Open the stream (once); later calls do nothing while it is open or reconnecting. */
export function startLive() {
  if (source) return;
  clearTimeout(retryTimer);
  setState("connecting");
  source = new EventSource("/console/api/events");
  source.addEventListener("hello", () => {
    setState("open");
    if (seenHello) dispatch({ kind: "resync" }); // a new stream: anything may have changed
    seenHello = true;
  });
  for (const kind of KINDS) {
    source.addEventListener(kind, (msg) => {
      let data = {};
      try {
        data = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      dispatch({ ...data, kind });
    });
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // refused (signed out, server down): try again later ourselves
      source = null;
      setState("down");
      retryTimer = setTimeout(startLive, RETRY_MS);
    } else {
      setState("connecting"); // the browser is reconnecting
    }
  };
}

// A page left for another keeps no stream open (the browser allows few connections per
// server, and a page kept in the back/forward cache would hold one); coming back reopens it.
window.addEventListener("pagehide", () => {
  if (!source) return;
  source.close();
  source = null;
  resumeOnShow = true;
});
let resumeOnShow = false;
window.addEventListener("pageshow", () => {
  if (resumeOnShow) {
    resumeOnShow = false;
    startLive();
  }
});

/** Close the stream (sign-out). */
export function stopLive() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  seenHello = false;
  setState("down");
}

/** Hear every event while the tab is open (toasts). */
export function onLiveGlobal(fn) {
  globalListeners.add(fn);
  return () => globalListeners.delete(fn);
}

/**
 * Re-run `refresh` (debounced) when an event for which `wants(ev)` is true arrives, until the
 * next view is shown. A resync always counts.
 */
export function onLiveView(wants, refresh) {
  viewListeners.add((ev) => {
    if (ev.kind !== "resync" && !wants(ev)) return;
    clearTimeout(pending);
    pending = setTimeout(refresh, DEBOUNCE_MS);
  });
}

let pending = null;

/**
 * Forget the listeners of the previous view and any refresh they planned: the router calls
 * this as a render starts, and that render reads the data after every change seen so far.
 */
export function clearLiveViews() {
  viewListeners.clear();
  clearTimeout(pending);
  pending = null;
}

let badge = null;

function drawBadge(s) {
  badge.dataset.state = s;
  badge.textContent = t(`live_${s}`);
  badge.title = t(`live_${s}_hint`);
}

/** The header's badge (one element, kept across renders): the connection state in words. */
export function liveBadge() {
  if (!badge) {
    badge = h("span", { id: "live-state", class: "live", role: "status" });
    onLiveState(drawBadge);
  }
  drawBadge(state);
  return badge;
}
