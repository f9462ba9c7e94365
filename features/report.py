"""The ingest report as a readable text table (the same figures as report.json)."""

from __future__ import annotations


def render(report: dict) -> str:
    """Per table and department: read / accepted / rejected by reason, legacy IDs, linkage."""
    # counts up to 999,999,999 (11 characters) keep a space between columns
    head = (f"{'table':<24}{'read':>12}{'accepted':>12}{'rejected':>12}{'legacy':>12}"
            f"{'unmatched':>12}{'match':>8}  rejected by reason")
    lines = [f"delivery {report['delivery_id']} (delivery date {report['delivery_date']})",
             "", head, "-" * len(head)]
    for dept in report["departments"]:
        for t in (t for t in report["tables"] if t["department"] == dept["department"]):
            lines.append(_row("  " + t["table"], t))
        lines.append(_row(dept["department"], dept) + "  (department)")
    lines += ["", "Cross-department match rate: share of each department's distinct persons "
                  "found in the person registry."]
    return "\n".join(lines)


def _row(label: str, d: dict) -> str:
    rate = d.get("match_rate")
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(d.get("rejected_by_reason", {}).items()))
    return (f"{label:<24}{d['rows_read']:>12,}{d['accepted']:>12,}{d['rejected']:>12,}"
            f"{d['legacy_ids_converted']:>12,}{d['unmatched']:>12,}"
            f"{'' if rate is None else f'{rate:.1%}':>8}  {reasons}")
