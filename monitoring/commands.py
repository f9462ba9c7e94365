"""CLI: `safetynet monitor`, `worklists`, `feedback add|import` and `report`.

Heavy imports happen inside the commands so `safetynet --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

feedback_app = typer.Typer(
    help="Record caseworkers' visit outcomes (the feedback store).", no_args_is_help=True
)


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


def _engine():  # type: ignore[no-untyped-def]
    from safetynet.db.engine import get_engine
    from safetynet.db.migrate import migrate_engine

    engine = get_engine()
    migrate_engine(engine)
    return engine


def monitor(
    as_of: str = typer.Option(..., "--as-of", help="As-of date of the run (YYYY-MM-DD)."),
    features: Path | None = typer.Option(
        None, "--features", help="Feature table (Parquet); default: build from the offline store."
    ),
    alias: str | None = typer.Option(
        None, "--alias", help="Registry alias of the model to use (default: SAFETYNET_MODEL_ALIAS)."
    ),
    reference_as_of: str | None = typer.Option(
        None,
        "--reference-as-of",
        help="Training as-of dates (comma-separated) to build the drift reference from, if the "
        "model version has none yet; default: the first run becomes the reference.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the audit-slice sample."),
) -> None:
    """Rescore every household, store history and reasons, raise alerts, build worklists."""
    import json

    from safetynet.config import get_settings, load_policy
    from safetynet.monitoring import inputs
    from safetynet.monitoring.report import build_report
    from safetynet.monitoring.run import monitor_run

    settings, policy = get_settings(), load_policy()
    day = _date(as_of, "--as-of")
    ref_dates = [
        _date(d.strip(), "--reference-as-of")
        for d in (reference_as_of or "").split(",")
        if d.strip()
    ]
    try:
        frame = inputs.load_features(settings, day, features)
        bundle = inputs.load_champion(settings, alias)
    except (ValueError, LookupError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = _engine()
    reference = inputs.resolve_reference(settings, bundle, ref_dates)
    summary = monitor_run(
        engine,
        bundle,
        frame,
        day,
        policy,
        indicators=inputs.load_indicators(frame, policy.indicators),
        assistance=inputs.load_assistance(settings),
        reference=reference,
        reports_dir=settings.reports_dir,
        seed=seed,
        precision_drop=build_report(engine, policy.outreach)["precision_drop"],
    )
    d = summary.drift
    psi_score = "n/a" if d["psi_score"] is None else f"{d['psi_score']:.3f}"
    retrain = "YES - " + "; ".join(d["reasons"]) if d["recommend_retrain"] else "no"
    jac = "n/a (first run)" if summary.jaccard_prev is None else f"{summary.jaccard_prev:.3f}"
    typer.echo(
        f"run {summary.run_id} ({'replaced' if summary.replaced else 'new'}), model "
        f"{summary.model_name} v{summary.model_version}\n"
        f"  scored {summary.n_scored:,}  flagged {summary.n_flagged:,}  "
        f"suppressed {summary.n_suppressed:,}\n"
        f"  alerts {summary.n_alerts:,}: {json.dumps(summary.alerts_by_kind)}\n"
        f"  worklists {summary.n_worklist:,} visits + {summary.n_audit:,} audit\n"
        f"  list stability (Jaccard with {summary.prev_run_id or '-'}): {jac}\n"
        f"  drift: score PSI {psi_score},"
        f" {len(d['features_drifted'])} of {d['n_features']} features over the retrain line"
        f" ({d['reference_source']})\n"
        f"  retrain recommended: {retrain}\n"
        f"  timings (s): {json.dumps(summary.timings_s)}"
    )


def worklists(
    as_of: str | None = typer.Option(None, "--as-of", help="Run date (default: the latest run)."),
    district: str | None = typer.Option(None, "--district", help="Only this district."),
    street: str | None = typer.Option(None, "--street", help="Only this street."),
    out: Path | None = typer.Option(None, "--out", help="Also write the rows to this CSV file."),
) -> None:
    """Print the worklists of a run: per district by priority, audit visits marked."""
    from safetynet.monitoring.worklists import load_worklist

    engine = _engine()
    day = _date(as_of, "--as-of") if as_of else None
    items = load_worklist(engine, day, district=district, street=street)
    if items.empty:
        typer.echo("no worklist items (run `safetynet monitor --as-of DATE` first)", err=True)
        raise typer.Exit(1)
    cols = [
        "district",
        "street",
        "rank",
        "household_key",
        "tier",
        "score",
        "n_alerts",
        "audit",
        "reasons",
    ]
    show = items[[c for c in cols if c in items]].copy()
    show["score"] = show["score"].round(3)
    typer.echo(f"worklists of run {items['run_id'].iloc[0]}")
    typer.echo(show.to_string(index=False))
    if out is not None:
        items.to_csv(out, index=False)
        typer.echo(f"wrote {out}")


@feedback_app.command("add")
def feedback_add(
    household: str = typer.Option(..., "--household", help="Household key (pseudonym)."),
    visit_date: str = typer.Option(..., "--visit-date", help="Date of the visit (YYYY-MM-DD)."),
    caseworker: str = typer.Option(..., "--caseworker", help="Caseworker's API key id."),
    outcome: str = typer.Option(
        ..., "--outcome", help="hardship_confirmed, not_in_hardship, could_not_reach or moved."
    ),
    hardship_type: str | None = typer.Option(
        None, "--hardship-type", help="With hardship_confirmed: a contract programme or other."
    ),
    referred: str = typer.Option("", "--referred", help="Programmes referred to (comma list)."),
    enrolled: str = typer.Option("", "--enrolled", help="Programmes enrolled in (comma list)."),
    disagree: str | None = typer.Option(
        None, "--disagree", help="Reason code when the caseworker disagrees with the score."
    ),
    note: str | None = typer.Option(None, "--note", help="Free text about the disagreement."),
    item: str | None = typer.Option(None, "--item", help="Worklist item id of the visit."),
    submission_id: str | None = typer.Option(
        None, "--submission-id", help="Client id that makes resubmission idempotent."
    ),
) -> None:
    """Record one visit outcome (resubmitting the same visit stores nothing new)."""
    from safetynet.db.feedback import FeedbackError, record_outcome

    try:
        stored = record_outcome(
            _engine(),
            {
                "household_key": household,
                "visit_date": visit_date,
                "caseworker_key_id": caseworker,
                "outcome": outcome,
                "hardship_type": hardship_type,
                "programmes_referred": referred,
                "programmes_enrolled": enrolled,
                "disagrees_with_score": disagree is not None,
                "disagreement_code": disagree,
                "disagreement_text": note,
                "worklist_item_id": item,
                "submission_id": submission_id,
            },
        )
    except FeedbackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    what = "stored" if stored.created else "already stored"
    typer.echo(f"{what}: outcome #{stored.row['id']} ({stored.row['submission_id']})")


@feedback_app.command("import")
def feedback_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV of visit outcomes."),
) -> None:
    """Import outcomes from CSV (validated as a whole; known rows are skipped)."""
    from safetynet.db.feedback import FeedbackError, import_outcomes_csv

    try:
        result = import_outcomes_csv(_engine(), path)
    except FeedbackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"imported {result.inserted} outcome(s); {result.duplicates} already stored")


def report() -> None:
    """Need estimates (precision, exclusion, recall per group), time to visit, disagreement."""
    from safetynet.config import get_settings, load_policy
    from safetynet.monitoring.report import build_report, render_markdown, write_report

    r = build_report(_engine(), load_policy().outreach)
    md, js = write_report(r, get_settings().reports_dir)
    typer.echo(render_markdown(r))
    typer.echo(f"wrote {md} and {js}")
