// Live updates: one EventSource per tab on /console/api/events, a visible connection state,
// and the views that want to hear about a change. The browser reconnects by itself and
// sends the last event id; the server replays what was missed or says "resync".
import { h } from "./dom.js";
import { t } from "./i18n.js";

const KINDS = ["alarm", "ticket", "ticket_event", "review", "violation", "resync"];
const DEBOUNCE_MS = 250; // a burst of events (one ticket opened with its findings) is one redraw
const MIN_GAP_MS = 1000; // then at most one live redraw a second ...
const COST_FACTOR = 4; // ... no closer than 4× the last one took (≤ 1/5 of the time redrawing)
const MAX_GAP_MS = 1500; // ... and still within the promise: a change shows within 2 s
const RETRY_MS = 3000;

let source = null;
let state = "connecting";
let fresh = false; // a new EventSource after one was closed: no Last-Event-ID, so nothing is replayed
let retryTimer = null;
let downTimer = null; // the badge says "connecting" only when a reconnection takes a while
const SLOW_RECONNECT_MS = 4000; // the server ends each stream after 60 s; the browser is back in 2 s
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
  if (collecting && held.length < 500) held.push(ev);
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
    clearTimeout(downTimer);
    downTimer = null;
    setState("open");
    // A stream the browser reopened itself sent Last-Event-ID: the server replays what was
    // missed or sends "resync" itself. Only a new EventSource (after CLOSED) may have missed
    // something nobody can replay.
    if (fresh) dispatch({ kind: "resync" });
    fresh = false;
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
      fresh = true;
      clearTimeout(downTimer);
      downTimer = null;
      setState("down");
      retryTimer = setTimeout(startLive, RETRY_MS);
    } else if (!downTimer) {
      // the browser is reconnecting (every minute the server ends the stream on purpose)
      downTimer = setTimeout(() => { downTimer = null; if (source && source.readyState !== EventSource.OPEN) setState("connecting"); }, SLOW_RECONNECT_MS);
    }
  };
}

// A page left for another keeps no stream open (the browser allows few connections per
// server, and a page kept in the back/forward cache would hold one); coming back reopens it.
window.addEventListener("pagehide", () => {
  if (!source) return;
  source.close();
  source = null;
  fresh = true;
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
  clearTimeout(downTimer);
  downTimer = null;
  if (source) source.close();
  source = null;
  fresh = false;
  setState("down");
}

/** Hear every event while the tab is open (toasts). */
export function onLiveGlobal(fn) {
  globalListeners.add(fn);
  return () => globalListeners.delete(fn);
}

/**
 * Re-run `refresh` when an event for which `wants(ev)` is true arrives, until the next view is
 * shown. A resync always counts. Events are merged, not queued: one redraw reads every change
 * up to its start. The first redraw comes 250 ms after a quiet spell; under a stream of
 * events (a district's thousand canteens) they come at most once a second, spaced by four
 * times what the last one took (at most 1.5 s), so a 5,000-row overview keeps its page
 * responsive, and a stream that never pauses still shows its changes (a plain debounce would
 * wait for a gap that never comes).
 */
export function onLiveView(wants, refresh) {
  const listener = (ev) => {
    if (ev.kind !== "resync" && !wants(ev)) return;
    schedule(refresh);
  };
  // what arrived while the view was reading its data may have come after the read
  for (const ev of held) listener(ev);
  viewListeners.add(listener);
}

/**
 * Also re-run `refresh` every `ms` while the view is shown: for what changes with time alone
 * (a deadline passing turns a ticket overdue; nothing in the database changes then).
 */
export function onLiveTick(ms, refresh) {
  tickTimers.push(setInterval(() => {
    if (document.hidden) tickMissed = refresh; // a tab in the background: catch up on return
    else schedule(refresh);
  }, ms));
}

let tickMissed = null;
document.addEventListener("visibilitychange", () => {
  if (document.hidden || !tickMissed) return;
  const refresh = tickMissed;
  tickMissed = null;
  schedule(refresh);
});

/** Re-run `refresh` once at `when` (a Date) while the view is shown: a moment that changes
 * what may be done (a proposed close becoming confirmable) and that no event announces. */
export function onLiveAt(when, refresh) {
  const ms = when.getTime() - Date.now();
  if (ms > 0 && ms < 2 ** 31 - 1) tickTimers.push(setTimeout(() => schedule(refresh), ms + 500));
}

let pending = null;
let held = []; // the events since the current view started rendering ...
let collecting = false; // ... until it has rendered
let lastDone = 0;
let lastCost = 0;
let tickTimers = [];

function schedule(refresh) {
  if (pending) return; // a redraw is planned: it will read this change too
  const now = performance.now();
  const gap = Math.min(MAX_GAP_MS, Math.max(MIN_GAP_MS, COST_FACTOR * lastCost));
  const earliest = lastDone ? lastDone + gap : 0;
  pending = setTimeout(async () => {
    pending = null;
    const start = performance.now();
    try {
      await refresh();
    } finally {
      lastDone = performance.now();
      lastCost = lastDone - start;
    }
  }, Math.max(DEBOUNCE_MS, earliest - now));
}

/**
 * Forget the listeners of the previous view and any refresh they planned: the router calls
 * this as a render starts, and that render reads the data after every change seen so far.
 */
export function clearLiveViews() {
  viewListeners.clear();
  held = [];
  collecting = true;
  clearTimeout(pending);
  pending = null;
  for (const id of tickTimers) clearInterval(id); // interval and timeout ids share one pool
  tickTimers = [];
  tickMissed = null;
}

/** The view has rendered and registered its listeners: stop holding events for it. */
export function liveViewsReady() {
  collecting = false;
  held = [];
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
