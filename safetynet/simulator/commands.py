"""`safetynet simulate` and `simulate-visits`: thin CLI over `safetynet.simulator`.

The engine, the database and the worklists (numpy, pandas, pyarrow, SQLAlchemy: seconds) are
imported inside the commands, so that `safetynet --help` stays fast (docs/architecture.md,
"Start-up time").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from safetynet.config import get_settings
from safetynet.simulator.config import SimulationConfig


def simulate(
    households: int = typer.Option(None, help="Number of households (default 20000)."),
    months: int = typer.Option(None, help="Months in the window (default 36)."),
    start: str = typer.Option(None, help="First month, YYYY-MM (default 2023-01)."),
    seed: int = typer.Option(None, help="Random seed; same seed, same bytes (default 42)."),
    out: Path = typer.Option(None, help="Output directory (default $SAFETYNET_HOME/city)."),
    format: str = typer.Option("csv", "--format", help="csv (as departments deliver) or "
                               "parquet (same paths, .parquet)."),
    config: Path = typer.Option(None, "--config", help="TOML file of SimulationConfig fields "
                                "(rates, districts); see docs/simulator.md.", exists=True,
                                dir_okay=False),
    truth_replicates: int = typer.Option(None, help="Monte Carlo replicates per "
                                         "household-month of the truth (default 8)."),
    truth_every: int = typer.Option(None, help="Compute the truth probability every k-th "
                                    "month (default 1)."),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists (atomically)."),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
) -> None:
    """Simulate a synthetic city: six departments' messy extracts, plus the truth (evaluation
    only) in OUT/truth/ and a manifest."""
    from safetynet.simulator.engine import simulate as run

    try:
        cfg = SimulationConfig.from_toml(
            config, households=households, months=months, start=start, seed=seed,
            truth_replicates=truth_replicates, truth_every=truth_every)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    target = out or get_settings().data_dir
    try:
        manifest = run(cfg, target, fmt=format, overwrite=overwrite, progress=progress)
    except (FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    rows = sum(f["rows"] for f in manifest["files"])
    typer.echo(f"wrote {len(manifest['files'])} tables ({rows:,} rows) for "
               f"{manifest['households']:,} households / {manifest['persons']:,} persons "
               f"to {target}")


def simulate_visits(
    visit_date: str = typer.Option(..., "--visit-date", help="Date of the visits, YYYY-MM-DD."),
    out: Path = typer.Option(..., "--out", help="CSV of outcomes to write (then `safetynet "
                             "feedback import`)."),
    city: Path = typer.Option(None, "--city", help="Simulated city directory with truth/ "
                              "(default $SAFETYNET_HOME/city)."),
    as_of: str = typer.Option(None, "--as-of", help="Worklist of this monitoring run "
                              "(default: the latest)."),
    seed: int = typer.Option(0, help="Seed for who cannot be reached."),
) -> None:
    """Simulated data only: let the truth answer every visit on the worklist (stands in for
    caseworkers in the demo)."""
    from safetynet.db.engine import get_engine
    from safetynet.db.migrate import migrate_engine
    from safetynet.monitoring.worklists import load_worklist
    from safetynet.simulator.visits import answer_visits

    settings = get_settings()
    engine = get_engine()
    migrate_engine(engine)
    worklist = load_worklist(engine, dt.date.fromisoformat(as_of) if as_of else None)
    if worklist.empty:
        typer.echo("no worklist yet: run `safetynet monitor` first", err=True)
        raise typer.Exit(2)
    outcomes = answer_visits(worklist, (city or settings.data_dir) / "truth", settings.secret(),
                             dt.date.fromisoformat(visit_date), seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    outcomes.to_csv(out, index=False)
    counts = outcomes["outcome"].value_counts().to_dict()
    n_audit = int(outcomes["audit"].sum())
    typer.echo(f"wrote {len(outcomes)} simulated visit outcomes ({len(outcomes) - n_audit} listed,"
               f" {n_audit} audit) to {out}: {counts}")
