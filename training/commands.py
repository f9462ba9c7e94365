"""CLI commands of the training area: train, promote, rollback. Heavy imports stay inside."""

from __future__ import annotations

from pathlib import Path

import typer


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def train(
    table: Path = typer.Option(None, "--table", help="Bring your own table: a Parquet file with "
                               "one row per entity (and time), a 0/1 label and numeric features."),
    label: str = typer.Option(None, "--label", help="Label column of --table (0/1)."),
    entity: str = typer.Option(None, "--entity", help="Entity column of --table (grouping key)."),
    time: str = typer.Option(None, "--time", help="Time column of --table (dates or integer "
                             "periods): temporal folds; without it, grouped folds by entity."),
    group: str = typer.Option(None, "--group", help="Group column of --table: fairness audit "
                              "and a fixed visit count per group."),
    audit: str = typer.Option(None, "--audit", help="More audited attribute columns of --table "
                              "(comma-separated); never used as features."),
    exclude: str = typer.Option(None, "--exclude", help="Columns that must not be features "
                                "(comma-separated)."),
    horizon: int = typer.Option(None, "--horizon", help="Label horizon in time units (default: "
                                "policy [label] horizon_months)."),
    features: Path = typer.Option(None, "--features", help="Household feature table (Parquet "
                                  "from `safetynet features build`)."),
    as_of: str = typer.Option(None, "--as-of", help="Build household features at these dates "
                              "(YYYY-MM-DD, comma-separated) instead of --features."),
    truth: Path = typer.Option(None, "--truth", help="Simulated data only: the simulator's "
                               "output DIR (DIR/truth/) for need metrics (households in unmet "
                               "need the list reaches) and oracle diagnostics."),
    model_name: str = typer.Option(None, "--model-name", help="Registered model name (default: "
                                   "SAFETYNET_MODEL_NAME)."),
    trials: int = typer.Option(None, "--trials", help="Optuna trials (default: policy)."),
    unconstrained: bool = typer.Option(True, "--compare-unconstrained/--no-compare-unconstrained",
                                       help="Also run an unconstrained search to price the "
                                       "explanation budget."),
    promote_after: bool = typer.Option(False, "--promote/--no-promote", help="Run the promotion "
                                       "gate right after registering the challenger."),
) -> None:
    """Train, evaluate against baselines, audit, log to MLflow and register a challenger."""
    from safetynet.config import get_settings, load_policy
    from safetynet.training.pipeline import TableSpec, config_from_policy
    from safetynet.training.train import file_checksum, train_and_log

    settings = get_settings()
    policy = load_policy()
    overrides: dict = {"compare_unconstrained": unconstrained}
    if trials:
        overrides["n_trials"] = trials
    try:
        if table is not None:
            import pandas as pd

            if not (label and entity):
                raise typer.BadParameter("--table needs --label and --entity")
            if not table.exists():
                raise typer.BadParameter(f"{table} does not exist")
            frame = pd.read_parquet(table)
            spec = TableSpec(label=label, entity=entity, time=time, group=group,
                             audit=_split(audit), exclude=_split(exclude))
            if horizon is not None:
                overrides["horizon"] = horizon
            elif not time:
                overrides["horizon"] = 0
            cfg = config_from_policy(policy, **overrides)
            if not group:
                cfg.k_per_group = None
            kwargs = dict(description=table.name, snapshot_id=file_checksum(table),
                          feature_set_version="table", label_config={"column": label},
                          not_allowed=_split(exclude))
        else:
            from safetynet.features.build import parse_dates
            from safetynet.training import household

            data = household.load(settings, policy, features,
                                  parse_dates(as_of) if as_of else None, truth)
            frame, spec = data.frame, data.spec
            cfg = config_from_policy(policy, **overrides)
            kwargs = dict(description=data.description, snapshot_id=data.snapshot_id,
                          feature_set_version=data.feature_set_version,
                          label_config=data.label.model_dump(mode="json"),
                          not_allowed=data.not_allowed, visits=data.visits)
        outcome = train_and_log(frame, spec, cfg, settings=settings, promotion=policy.promotion,
                                model_name=model_name, promote_after=promote_after,
                                gate_min_audit_visits=policy.outreach.min_estimate_visits,
                                **kwargs)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        typer.echo(f"train failed, nothing registered: {exc}", err=True)
        raise typer.Exit(2) from exc
    m = outcome.result.metrics
    cap = "5pct"
    typer.echo(f"registered {outcome.model_name} v{outcome.version} as challenger "
               f"(run {outcome.run_id}, {settings.tracking_uri})")
    need_model = outcome.result.need_model
    if need_model:
        if need_model.get("need_model_refit_cold_start", True):
            typer.echo("  need model: entry model alone (cold start: "
                       f"{need_model.get('need_model_refit_cold_start_reason', 'no visits')})")
        else:
            typer.echo(f"  need model: entry model + {need_model['need_model_refit_visits']} "
                       f"visit outcomes ({need_model['need_model_refit_audit_visits']} audits)")
    need = [f"{who}need_{what}" for who in ("test_", "test_entry_", "test_baseline_best_")
            for what in (f"precision_at_{cap}", f"recall_at_{cap}")]
    need += sorted(k for k in m if k.startswith("test_need_recall_ratio_min_"))
    for key in (*need, f"test_precision_at_{cap}", f"test_recall_at_{cap}", "test_roc_auc",
                "test_average_precision", "test_brier", f"test_baseline_best_precision_at_{cap}",
                f"test_oracle_precision_at_{cap}", f"test_efficiency_at_{cap}",
                "explain_ms_per_row", f"test_unconstrained_precision_at_{cap}",
                "fairness_groups_failing"):
        if key in m:
            typer.echo(f"  {key:42s} {m[key]:.4f}")
    if outcome.decision is not None:
        typer.echo(outcome.decision.summary())


def _registry(model_name: str | None):  # type: ignore[no-untyped-def]
    """An MLflow client on the configured registry and the model name; exit 2 if absent."""
    from mlflow import MlflowClient

    from safetynet.config import get_settings
    from safetynet.model import configure

    settings = get_settings()
    configure(settings)
    name = model_name or settings.model_name
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except Exception as exc:
        typer.echo(f"no registered model {name!r} at {settings.tracking_uri}", err=True)
        raise typer.Exit(2) from exc
    return client, name


def promote(
    model_name: str = typer.Option(None, "--model-name", help="Registered model name (default: "
                                   "SAFETYNET_MODEL_NAME)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the decision, change nothing."),
    override: str = typer.Option(None, "--override", help="Promote even if the gate fails, "
                                 "with this written reason (kept on the model version)."),
) -> None:
    """Move alias challenger -> champion if it beats the champion and passes fairness."""
    from safetynet.config import load_policy
    from safetynet.training import promote as P

    client, name = _registry(model_name)
    policy = load_policy()
    promotion = policy.promotion
    decision = (P.decide(client, name, promotion, policy.fairness) if dry_run
                else P.promote(client, name, promotion, override=override,
                               fairness=policy.fairness))
    if dry_run and decision.promoted:
        typer.echo("dry run: the gate passes; nothing changed")
        typer.echo("\n".join(f"  - {r}" for r in decision.reasons))
        return
    typer.echo(decision.summary())
    if not decision.promoted:
        raise typer.Exit(1)


def rollback(
    model_name: str = typer.Option(None, "--model-name", help="Registered model name (default: "
                                   "SAFETYNET_MODEL_NAME)."),
) -> None:
    """Restore the previous champion (from the registered model's champion history)."""
    from safetynet.training import promote as P

    client, name = _registry(model_name)
    decision = P.rollback(client, name)
    typer.echo("\n".join(decision.reasons))
    if not decision.promoted:
        raise typer.Exit(1)
