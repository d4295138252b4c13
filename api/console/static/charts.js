// Temperature charts drawn with uPlot (vendored: static/vendor/README.md, global `uPlot`):
// a time axis in the region's time zone, a value axis with its unit, the allowed band
// shaded green with dashed limits, alarm periods shaded red, values on hover, and
// drag-to-zoom on the time axis (double-click zooms out again).
import { h } from "./dom.js";
import { getLang, getTimeZone, t } from "./i18n.js";

const BAND = "rgba(23, 102, 58, 0.10)";
const ALARM = "rgba(180, 35, 24, 0.16)";
const LIMIT = "#b42318";

function yRange(values, limits) {
  const all = values.filter((v) => v !== null && v !== undefined).concat(limits.filter((v) => v !== null && v !== undefined));
  if (!all.length) return [0, 10];
  let lo = Math.min(...all), hi = Math.max(...all);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.1;
  return [lo - pad, hi + pad];
}

/** Tick labels in the current language and the region's zone: 14:00, or 12/3 over days. */
function timeTicks(tz) {
  const lang = getLang();
  const hm = new Intl.DateTimeFormat(lang, { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const md = new Intl.DateTimeFormat(lang, { timeZone: tz, month: "numeric", day: "numeric" });
  return (u, splits) => {
    const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    return splits.map((ts) => (span > 2 * 86400 ? md : hm).format(new Date(ts * 1000)));
  };
}

/** Shade the allowed band, the limits and the alarm periods under the series. */
function underlay(low, high, alarms) {
  return (u) => {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    if (low !== null && high !== null && low !== undefined && high !== undefined) {
      const y0 = u.valToPos(high, "y", true), y1 = u.valToPos(low, "y", true);
      ctx.fillStyle = BAND;
      ctx.fillRect(left, y0, width, y1 - y0);
    }
    for (const a of alarms) {
      const x0 = u.valToPos(a.from / 1000, "x", true), x1 = u.valToPos(a.to / 1000, "x", true);
      ctx.fillStyle = ALARM;
      ctx.fillRect(Math.max(left, x0), top, Math.min(left + width, x1) - Math.max(left, x0), height);
    }
    ctx.strokeStyle = LIMIT;
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1;
    for (const v of [low, high]) {
      if (v === null || v === undefined) continue;
      const y = Math.round(u.valToPos(v, "y", true)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
    }
    ctx.restore();
  };
}

/**
 * Draw the chart of `opts` and `data` into `box` (kept as `box.chart`) and keep it as wide as
 * the box, at least 240 px, when the window is resized or a phone turns; returns the box.
 */
function mountChart(box, opts, data) {
  const { height } = opts;
  const chart = new window.uPlot(opts, data, box);
  box.chart = chart;
  const fit = () => {
    const w = Math.max(240, Math.floor(box.clientWidth));
    if (w && Math.abs(w - chart.width) > 2) chart.setSize({ width: w, height });
  };
  new ResizeObserver(fit).observe(box);
  requestAnimationFrame(fit);
  return box;
}

/**
 * A temperature chart: `points` [{x: ms, y, lo, hi}] (lo/hi: bucket min/max, may be absent),
 * `low`/`high` the allowed range, `alarms` [{from: ms, to: ms}] shaded, `from`/`to` the window.
 */
export function tempChart({ points, low = null, high = null, alarms = [], from, to, label, unit = "°C", height = 200 }) {
  const box = h("div", { class: "uchart", role: "img", "aria-label": label, dataset: { points: points.length, alarms: alarms.length } });
  if (typeof window.uPlot !== "function") {
    box.textContent = t("chart_unavailable");
    return box;
  }
  const xs = points.map((p) => p.x / 1000);
  const ys = points.map((p) => p.y);
  const los = points.map((p) => (p.lo ?? null));
  const his = points.map((p) => (p.hi ?? null));
  const tz = getTimeZone();
  const fmt = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)} ${unit}`);
  const [ylo, yhi] = yRange(ys.concat(los, his), [low, high]);
  const opts = {
    width: 300,
    height,
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), tz),
    scales: {
      x: { time: true, range: (u, min, max) => [from !== undefined ? from / 1000 : min, to !== undefined ? to / 1000 : max] },
      y: { range: () => [ylo, yhi] },
    },
    axes: [
      { stroke: "#57606a", grid: { stroke: "#eef1f4" }, values: timeTicks(tz), size: 40 },
      { stroke: "#57606a", grid: { stroke: "#eef1f4" }, label: unit, labelSize: 18, size: 48, values: (u, vals) => vals.map((v) => v.toFixed(Math.abs(yhi - ylo) < 5 ? 1 : 0)) },
    ],
    series: [
      { label: t("chart_time") },
      { label: t("chart_avg"), stroke: "#1f5f8b", width: 2, value: (u, v) => fmt(v), spanGaps: false },
      { label: t("min"), stroke: "#7aa3c4", width: 1, dash: [3, 3], value: (u, v) => fmt(v) },
      { label: t("max"), stroke: "#c47a7a", width: 1, dash: [3, 3], value: (u, v) => fmt(v) },
    ],
    cursor: { drag: { x: true, y: false } },
    hooks: { drawClear: [underlay(low, high, alarms)] },
  };
  return mountChart(box, opts, [xs, ys, los, his]);
}

/** Alarm periods of `sensorId` from an alarm list, as [{from, to}] in ms (open ones end now). */
export function alarmPeriods(alarms, sensorId, now = Date.now()) {
  return alarms
    .filter((a) => a.sensor_id === sensorId && (a.rule === "temp_high" || a.rule === "temp_low"))
    .map((a) => ({ from: new Date(a.started_at).getTime(), to: a.cleared_at ? new Date(a.cleared_at).getTime() : now }));
}

/**
 * A disinfection cabinet's window: temperature (°C, left axis) and, where the cabinet has a
 * smart plug, its power (W, right axis; current in A when the plug reports no power).
 * `temps` [[iso, °C]], `power` [[iso, W|null, A|null]] as a ticket's evidence holds them;
 * `minTemp` is drawn as a dashed line. The two series share one time axis (union of times).
 */
export function cabinetChart({ temps = [], power = [], minTemp = null, from, to, label, height = 220 }) {
  const box = h("div", { class: "uchart cabinet-chart", role: "img", "aria-label": label,
    dataset: { temps: temps.length, power: power.length } });
  if (typeof window.uPlot !== "function") {
    box.textContent = t("chart_unavailable");
    return box;
  }
  const watts = power.some((p) => p[1] !== null && p[1] !== undefined);
  const unit2 = watts ? "W" : "A";
  const times = [...new Set([...temps.map((p) => Date.parse(p[0])), ...power.map((p) => Date.parse(p[0]))])].sort((a, b) => a - b);
  const at = (rows, col) => {
    const m = new Map(rows.map((p) => [Date.parse(p[0]), p[col] ?? null]));
    return times.map((x) => (m.has(x) ? m.get(x) : null));
  };
  const xs = times.map((x) => x / 1000);
  const ys = at(temps, 1);
  const ps = at(power, watts ? 1 : 2);
  const tz = getTimeZone();
  const [ylo, yhi] = yRange(ys, [minTemp]);
  const pmax = Math.max(1, ...ps.filter((v) => v !== null));
  const fmt = (unit, digits) => (u, v) => (v === null || v === undefined ? "—" : `${v.toFixed(digits)} ${unit}`);
  const series = [
    { label: t("chart_time") },
    { label: `${t("chart_temp")} (°C)`, stroke: "#b42318", width: 2, scale: "y", value: fmt("°C", 1), spanGaps: true },
  ];
  const axes = [
    { stroke: "#57606a", grid: { stroke: "#eef1f4" }, values: timeTicks(tz), size: 40 },
    { stroke: "#b42318", grid: { stroke: "#eef1f4" }, scale: "y", label: "°C", labelSize: 18, size: 44, values: (u, vals) => vals.map((v) => v.toFixed(0)) },
  ];
  const data = [xs, ys];
  if (power.length) {
    series.push({ label: `${t(watts ? "chart_power" : "chart_current")} (${unit2})`, stroke: "#1f5f8b", width: 2, scale: "p",
      paths: window.uPlot.paths && window.uPlot.paths.stepped ? window.uPlot.paths.stepped({ align: 1 }) : undefined,
      value: fmt(unit2, watts ? 0 : 2), spanGaps: true });
    axes.push({ stroke: "#1f5f8b", side: 1, scale: "p", grid: { show: false }, label: unit2, labelSize: 18, size: 52, values: (u, vals) => vals.map((v) => v.toFixed(watts ? 0 : 1)) });
    data.push(ps);
  }
  const opts = {
    width: 300,
    height,
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), tz),
    scales: {
      x: { time: true, range: (u, min, max) => [from !== undefined ? from / 1000 : min, to !== undefined ? to / 1000 : max] },
      y: { range: () => [ylo, yhi] },
      p: { range: () => [0, pmax * 1.15] },
    },
    axes,
    series,
    cursor: { drag: { x: true, y: false } },
    hooks: { drawClear: [underlay(null, minTemp, [])] },
  };
  return mountChart(box, opts, data);
}
