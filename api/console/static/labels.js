// Words instead of codes: rule, equipment, tier, source and state labels in the current
// language. Rule, equipment, tier and source names come from the server (/console/api/config,
// the same tables ticket titles and the XLSX ledger use); the rest lives in i18n.js.
import { getLang, t, tOr } from "./i18n.js";

const config = {
  rules: {}, former_rules: {}, inspection_rule: ["inspection_", ["{code}", "{code}"]], profiles: {}, tiers: {}, sources: {},
  advice: {}, advice_inspection: null, advice_default: null, incident_kinds: {},
};

/** Keep the server's labels (app.js loads them once after sign-in). */
export function setConfig(c) {
  Object.assign(config, c);
}

function pick(pair, fallback) {
  if (!pair) return fallback;
  return getLang() === "en" ? pair[1] : pair[0];
}

/** "冷藏温度超标" for ("temp_high", "fridge"); an unknown rule reads as its id. */
/** The words of a checklist item's own rule (`inspection_<code>`), from the server's table. */
function inspectionPair(rule) {
  const [prefix, words] = config.inspection_rule;
  if (config.rules[rule] || !String(rule).startsWith(prefix)) return null;
  const code = rule.slice(prefix.length).toUpperCase(); // the rule is lower case
  return words.map((w) => w.replace("{code}", code));
}

export function ruleLabel(rule, profile = null) {
  const base = pick(config.rules[rule] || inspectionPair(rule), rule);
  if ((rule === "temp_high" || rule === "temp_low") && config.profiles[profile]) {
    const p = pick(config.profiles[profile], profile);
    return getLang() === "en" ? `${p} ${base}` : p + base;
  }
  return base;
}

/** The (zh, en) pair of `rule` as the server words it, with the equipment for temperature rules. */
function rulePair(rule, profile) {
  const [zh, en] = config.rules[rule] || inspectionPair(rule) || [rule, rule.replace(/_/g, " ")];
  const p = config.profiles[profile];
  return (rule === "temp_high" || rule === "temp_low") && p ? [p[0] + zh, `${p[1]} ${en}`] : [zh, en];
}

/**
 * A ticket's title in the reader's language: the stored "冷藏温度超标 fridge over temperature
 * limit: 冷藏柜 1" reads "冷藏温度超标: 冷藏柜 1" (or the English half); a title typed by a
 * person stays as typed. The XLSX ledger splits the same way (api/services/labels.py title_in).
 */
export function ticketTitle(ticket) {
  const title = ticket.title || "";
  const profiles = ticket.rule === "temp_high" || ticket.rule === "temp_low" ? [null, ...Object.keys(config.profiles)] : [null];
  for (const profile of profiles) {
    const [zh, en] = rulePair(ticket.rule, profile);
    const words = getLang() === "en" ? en : zh;
    // today's words, then those the rule had before (a title stored then reads in today's)
    for (const [fzh, fen] of [[zh, en], ...(config.former_rules[ticket.rule] || [])]) {
      if (title === `${fzh} ${fen}`) return words; // a duty: no device named
      const prefix = `${fzh} ${fen}: `;
      if (title.startsWith(prefix)) return `${words}: ${title.slice(prefix.length)}`;
    }
  }
  return title;
}

/** "冷藏" for "fridge". */
export function profileLabel(profile) {
  return pick(config.profiles[profile], profile);
}

const LADDER = ["", "reminder", "warning", "director", "regulator", "yellow_card", "red_card"];

/** A ticket's escalation level in words: "未升级" for 0, "第 4 级 · 升级至监管" for 4 (the
 * ladder of api/services/escalation.py STEPS, the same words as its timeline entries). */
export function escalationLabel(level) {
  if (!level) return t("not_escalated");
  const step = LADDER[level];
  return step ? `${t("level_n", { n: level })} · ${t(`ev_escalation_${step}`)}` : t("level_n", { n: level });
}

/** "1 级 · 立即预警" for 1. */
export function tierLabel(tier) {
  const words = pick(config.tiers[String(tier)], "");
  return words ? `${t("tier_n", { n: tier })} · ${words}` : t("tier_n", { n: tier });
}

/** Where a ticket came from: 设备报警 / 视频违规 / 现场检查 / 人工开单 ... */
export function sourceLabel(source) {
  return pick(config.sources[source], source);
}

/** [source, its words] of every ticket source, for a filter. */
export function sourceOptions() {
  return Object.keys(config.sources).map((s) => [s, sourceLabel(s)]);
}

/** What to do now about `rule`, in plain words (the kitchen display and alerts). */
export function adviceFor(rule, fallback = null) {
  if (config.advice[rule]) return pick(config.advice[rule]);
  if (String(rule).startsWith(config.inspection_rule[0]) && config.advice_inspection) return pick(config.advice_inspection);
  return fallback ?? pick(config.advice_default, "");
}

/** Every rule the server knows, as [id, label] sorted by label (filters). */
export function ruleOptions() {
  return Object.keys(config.rules)
    .map((r) => [r, ruleLabel(r)])
    .sort((a, b) => a[1].localeCompare(b[1], getLang()));
}

/** The words of an incident's kind ("疑似食源性疾病"); a kind typed over the API reads as typed. */
export function incidentKindLabel(kind) {
  return pick(config.incident_kinds[kind], kind);
}

/** [kind, its words] of every kind the console offers. */
export function incidentKindOptions() {
  return Object.keys(config.incident_kinds).map((k) => [k, incidentKindLabel(k)]);
}
