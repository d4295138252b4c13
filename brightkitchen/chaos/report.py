"""The chaos report: one table row per fault with its reconciliation, then the totals.

Markdown for people (and docs/chaos.md), JSON for machines; both from the same result.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from brightkitchen.chaos.run import ChaosResult


def _ids(ids: list[str], limit: int = 8) -> str:
    if not ids:
        return "-"
    more = f" (+{len(ids) - limit})" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def to_markdown(res: ChaosResult, command: str) -> str:
    """A human report: faults, per-fault reconciliation, totals, downstream checks, fuzz."""
    lines = [
        f"chaos run {res.started}: **{'PASS' if res.ok else 'FAIL'}**",
        "",
        f"command: `{command}`"
        + (
            f"; wall {res.wall_s:.0f} s (faults), drain after the last fault {res.drained_s:.1f} s"
            if res.faults
            else ""
        ),
        "",
    ]
    if res.faults:
        lines += [
            "| # | fault (at s, took s) | what happened | readings sent / acked by broker / "
            "stored / dup / missing | events sent / stored / dup / missing | missing ids |",
            "|---|---|---|---|---|---|",
        ]
    for i, f in enumerate(res.faults):
        t = f.tally
        if t is None:
            lines.append(f"| {i} | {f.name} ({f.at_s:.0f}, {f.took_s:.1f}) | {f.note} | | | |")
            continue
        lines.append(
            f"| {i} | {f.name} ({f.at_s:.0f}, {f.took_s:.1f}) | {f.note or '-'} | "
            f"{t.readings_sent} / {t.readings_acked} / {t.readings_stored} / "
            f"{t.readings_duplicated} / {len(t.readings_missing)} | "
            f"{t.events_sent} / {t.events_stored} / {t.events_duplicated} / "
            f"{len(t.events_missing)} | {_ids(t.readings_missing + t.events_missing)} |"
        )
    t = res.total
    d = res.downstream
    lines.append("")
    if t is not None:
        lines += [
            f"- readings: {t.readings_sent} sent, {t.readings_acked} acknowledged by the broker, "
            f"{t.readings_stored} stored, **{len(t.readings_missing)} lost** "
            f"({t.readings_missing_acked} of them after the broker's PUBACK), "
            f"**{t.readings_duplicated} duplicated**",
            f"- edge events: {t.events_sent} put in the outbox, {t.events_stored} stored, "
            f"**{len(t.events_missing)} lost**, **{t.events_duplicated} duplicated**",
        ]
    if d is not None:
        if d.rollup_checked:
            lines.append(
                f"- 5-minute rollup counts {d.rollup_count} readings of the run "
                f"({'equal to' if t and d.rollup_count == t.readings_stored else 'NOT equal to'}"
                " the rows stored)"
            )
        lines.append(
            f"- findings: {d.findings} for the run's violations, {d.findings_duplicated} "
            f"duplicated, {d.findings_unprocessed} unprocessed, {d.findings_applied_twice} "
            f"applied twice, {d.findings_not_applied} processed without a ticket event"
        )
        lines.append(
            f"- evidence: {d.events_with_evidence} violations with their JPEG stored, "
            f"{d.events_hash_only} with the hash only (evidence pruned on the box or too big)"
        )
        lines.append(
            f"- dead letters on the run's topics: {d.dead_letters}"
            + (f" ({'; '.join(d.dead_letter_reasons)})" if d.dead_letter_reasons else "")
        )
        for p in d.problems:
            lines.append(f"- PROBLEM: {p}")
    if res.sensor_stats:
        s = res.sensor_stats
        lines.append(
            f"- sensors: {s.get('publishes', 0)} publishes, {s.get('resends', 0)} re-sent "
            f"after no PUBACK, {s.get('disconnects', 0)} disconnects"
        )
    if res.edge_state:
        edge = res.edge_state
        lines.append(
            f"- edge outbox at the end: depth {edge.get('depth')}, events dropped in total "
            f"{edge.get('dropped_total')}, evidence pruned in total "
            f"{edge.get('evidence_pruned_total')}"
        )
    for crash in res.crashes:
        lines.append(f"- CRASH: {crash}")
    for err in res.errors:
        lines.append(f"- ERROR: {err}")
    if res.fuzz:
        lines += [
            "",
            "| payload type | cases | stored | ignored | dead-lettered | dead letters with a "
            "reason | crashes | seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in res.fuzz:
            lines.append(
                f"| {row['kind']} | {row['cases']} | {row['stored']} | {row['ignored']} | "
                f"{row['dead_lettered']} "
                f"({row['refused_by_db']} by the writer) | {row['with_reason']} | "
                f"{row['crashes']} | {row['seconds']:.0f} |"
            )
        lines.append("")
        for row in res.fuzz:
            for ex in row.get("examples", []):
                lines.append(f"- {row['kind']}: {ex}")
            for why, n in row.get("db_reasons", {}).items():
                lines.append(f"- {row['kind']}: refused by the writer {n}x: {why}")
    return "\n".join(lines) + "\n"


def to_json(res: ChaosResult, command: str) -> str:
    """The same result as JSON."""
    data: dict[str, Any] = {
        "ok": res.ok,
        "command": command,
        "started": res.started,
        "wall_s": round(res.wall_s, 1),
        "drained_s": round(res.drained_s, 1),
        "options": asdict(res.options),
        "faults": [
            {
                "name": f.name,
                "at_s": round(f.at_s, 1),
                "took_s": round(f.took_s, 1),
                "note": f.note,
                "reconciliation": f.tally.as_dict() if f.tally else None,
            }
            for f in res.faults
        ],
        "total": res.total.as_dict() if res.total else None,
        "downstream": asdict(res.downstream) if res.downstream else None,
        "sensors": res.sensor_stats,
        "edge": res.edge_state,
        "crashes": res.crashes,
        "errors": res.errors,
        "fuzz": res.fuzz,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
