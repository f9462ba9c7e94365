"""CLI commands of the feature-store area.

Ingest, the store, the build and the indicators (duckdb, pandas, pandera: seconds) are
imported inside the commands, so that `safetynet --help` stays fast (docs/architecture.md,
"Start-up time").
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from safetynet.config import get_settings, load_policy

from .report import render

# --- ingest -------------------------------------------------------------------------------


def ingest(
    directory: Path = typer.Argument(..., help="Delivery directory (DIR/<department>/<table>"
                                               ".csv|.parquet and manifest.json)."),
    format: str = typer.Option("auto", "--format",
                               help="File format to read: auto, csv or parquet."),
    delivery_date: str = typer.Option(
        None, "--delivery-date",
        help="Date the delivery was extracted (YYYY-MM-DD); event and knowledge dates after it "
             "are rejected as future_date. Default: manifest.json's delivery_date, else today."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print progress."),
) -> None:
    """Validate, link and pseudonymize one departmental delivery into the offline store."""
    from .ingest import ingest as run
    from .reading import DeliveryError

    if format not in ("auto", "csv", "parquet"):
        raise typer.BadParameter("--format must be auto, csv or parquet")
    try:
        day = dt.date.fromisoformat(delivery_date) if delivery_date else None
    except ValueError as exc:
        raise typer.BadParameter(f"--delivery-date {delivery_date!r} is not YYYY-MM-DD") from exc
    say = None if quiet else (lambda msg: typer.echo(f"  {msg}", err=True))
    try:
        result = run(directory, get_settings(), fmt=format, delivery_date=day, progress=say)
    except DeliveryError as exc:
        typer.echo(f"ingest failed, nothing written: {exc}", err=True)
        raise typer.Exit(2) from exc
    except RuntimeError as exc:  # e.g. production mode without a pseudonymization secret
        typer.echo(f"ingest failed, nothing written: {exc}", err=True)
        raise typer.Exit(2) from exc
    if result.status == "already_ingested":
        typer.echo(f"delivery {result.delivery_id} was already ingested (same checksums): "
                   "nothing changed")
        return
    typer.echo(render(result.report))
    typer.echo(f"committed delivery {result.delivery_id} to {result.path}")


# --- features, online store and indicators (features/build.py, online.py, indicators.py) ----

features_app = typer.Typer(help="Build household features, materialize the online store, "
                                "write the feature catalogue.", no_args_is_help=True)

_AS_OF_HELP = "As-of date(s), YYYY-MM-DD, comma-separated."


def _store_or_exit():
    """The configured `FeatureStore`; exit 2 when nothing was ingested yet."""
    from .feature_store import FeatureStore

    store = FeatureStore()
    if not store.offline.deliveries_dir.is_dir():
        typer.echo(f"no offline store at {store.offline.root}: run `safetynet ingest DIR` first",
                   err=True)
        raise typer.Exit(2)
    return store


def _dates_or_exit(text: str) -> list[dt.date]:
    from .build import parse_dates

    try:
        return parse_dates(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--as-of") from exc


@features_app.command("build")
def features_build(
    as_of: str = typer.Option(..., "--as-of", help=_AS_OF_HELP),
    out: Path = typer.Option(..., "--out", help="Feature Parquet file to write (atomically)."),
    threads: int = typer.Option(0, help="DuckDB threads (0 = all cores)."),
    memory_limit: str = typer.Option("", help="DuckDB memory limit, e.g. 8GB (default: "
                                              "the features_memory_limit setting)."),
) -> None:
    """Build one row per household and as-of date from the offline store (one set-based query
    per bucket of households; see docs/features.md, "Building at scale")."""
    dates = _dates_or_exit(as_of)
    store = _store_or_exit()
    con = store.connect(threads=threads or None, memory_limit=memory_limit or None)
    start = time.perf_counter()
    rows = store.write_historical(dates, out, con=con)
    typer.echo(f"wrote {rows:,} rows ({len(dates)} as-of date(s)) to {out} in "
               f"{time.perf_counter() - start:.1f} s")


@features_app.command("materialize")
def features_materialize(
    as_of: str = typer.Option("", "--as-of", help="As-of date, YYYY-MM-DD (default: the "
                                                  "latest delivery date in the store)."),
    features: Path = typer.Option(None, "--features", help="Materialize this feature Parquet "
                                                           "instead of building."),
) -> None:
    """Write the latest features per household to the online store (SQLite, or Redis when
    SAFETYNET_ONLINE_STORE=redis)."""
    from .feature_store import FeatureStore

    if features is not None:
        if not features.exists():
            typer.echo(f"no such feature file: {features}", err=True)
            raise typer.Exit(2)
        store = FeatureStore()
        n = store.materialize(source=features)
    else:
        store = _store_or_exit()
        n = store.materialize(_dates_or_exit(as_of)[-1] if as_of else None)
    typer.echo(f"materialized {n:,} households to the {store.settings.online_store} "
               "online store")


@features_app.command("catalogue")
def features_catalogue(
    out: Path = typer.Option(Path("docs/features.md"), help="Where to write the catalogue."),
) -> None:
    """Write the feature and indicator catalogue as Markdown."""
    from .catalogue import FEAST_RESULT, render_markdown

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(FEAST_RESULT) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}")


def indicators(
    as_of: str = typer.Option(..., "--as-of", help=_AS_OF_HELP),
    out: Path = typer.Option(None, "--out", help="Write all raised indicators here "
                                                 "(.parquet or .csv)."),
    sample: int = typer.Option(10, help="How many raised indicators to print."),
) -> None:
    """List the policy's early-warning indicators raised at the as-of date(s)."""
    from .indicators import compute_indicators, summarize

    dates = _dates_or_exit(as_of)
    frame = _store_or_exit().historical(dates)
    raised = compute_indicators(frame, load_policy().indicators)
    typer.echo(f"{len(frame):,} household rows; {raised['household_key'].nunique():,} "
               "households with at least one indicator")
    typer.echo(summarize(raised).to_string(index=False))
    if sample and len(raised):
        typer.echo("\nsample:")
        typer.echo(raised.sample(min(sample, len(raised)), random_state=0)
                   .sort_values(["as_of_date", "indicator_id"]).to_string(index=False))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".csv":
            raised.to_csv(out, index=False)
        else:
            raised.to_parquet(out, index=False)
        typer.echo(f"wrote {len(raised):,} rows to {out}")
