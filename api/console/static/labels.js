// Words instead of codes: rule, equipment, tier, source and state labels in the current
// language. Rule, equipment and tier names come from the server (/console/api/config, the
// same table ticket titles and the XLSX ledger use); the rest lives in i18n.js.
import { getLang, t, tOr } from "./i18n.js";

const config = { rules: {}, profiles: {}, tiers: {} };

/** Keep the server's labels (app.js loads them once after sign-in). */
export function setConfig(c) {
  Object.assign(config, c);
}

function pick(pair, fallback) {
  if (!pair) return fallback;
  return getLang() === "en" ? pair[1] : pair[0];
}

/** "冷藏温度超标" for ("temp_high", "fridge"); an unknown rule reads as its id. */
export function ruleLabel(rule, profile = null) {
  const base = pick(config.rules[rule], rule);
  if ((rule === "temp_high" || rule === "temp_low") && config.profiles[profile]) {
    const p = pick(config.profiles[profile], profile);
    return getLang() === "en" ? `${p} ${base}` : p + base;
  }
  return base;
}

/** "冷藏" for "fridge". */
export function profileLabel(profile) {
  return pick(config.profiles[profile], profile);
}

/** "1 级 · 立即预警" for 1. */
export function tierLabel(tier) {
  const words = pick(config.tiers[String(tier)], "");
  return words ? `${t("tier_n", { n: tier })} · ${words}` : t("tier_n", { n: tier });
}

/** Where a ticket came from: 报警 / 视频违规 / 检查 / 人工. */
export function sourceLabel(source) {
  return tOr(`source_${source}`, source);
}

/** What to do now about `rule`, in plain words (the kitchen display and alerts). */
export function adviceFor(rule) {
  return tOr(`advice_${rule}`, t("advice_default"));
}

/** Every rule the server knows, as [id, label] sorted by label (filters). */
export function ruleOptions() {
  return Object.keys(config.rules)
    .map((r) => [r, ruleLabel(r)])
    .sort((a, b) => a[1].localeCompare(b[1], getLang()));
}
