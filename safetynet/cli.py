"""The `safetynet` command line. Thin: each command parses options and calls one function."""

from __future__ import annotations

import os
from pathlib import Path

import typer

# Before any OpenMP library loads (LightGBM, scikit-learn): OpenMP threads that busy-wait for
# each other starve on shared cores, 5-9x the wall time per boosting round at load 5-10
# (docs/training.md, "Search cost"). An explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(
    help="SafetyNet: early warning of household hardship from shared departmental data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Each subcommand reads settings from SAFETYNET_* variables (see docs/configuration.md)."""


@app.command()
def contracts(
    out: Path = typer.Option(Path("docs/contracts.md"), help="Where to write the contract."),
) -> None:
    """Write the department data contracts as a readable Markdown document."""
    from safetynet.contracts import render_markdown

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown() + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("config")
def show_config() -> None:
    """Print the effective runtime settings (secrets redacted) and the policy file in use."""
    from safetynet.config import Settings

    for name, value in Settings().model_dump().items():
        shown = "***" if name.endswith("secret") and value else value
        typer.echo(f"{name:22} {shown}")


# --- commands of each area (each module imports its heavy dependencies inside the command) ---
# Register one line per module here, e.g.:
#   from safetynet.simulator.commands import simulate; app.command()(simulate)
from safetynet.simulator.commands import simulate, simulate_visits  # noqa: E402

app.command()(simulate)
app.command("simulate-visits")(simulate_visits)
from safetynet.features.commands import ingest  # noqa: E402

app.command()(ingest)
from safetynet.features.commands import features_app, indicators  # noqa: E402

app.add_typer(features_app, name="features")
app.command()(indicators)
from safetynet.training.commands import promote, rollback, train  # noqa: E402

app.command()(train)
app.command()(promote)
app.command()(rollback)
from safetynet.monitoring.commands import feedback_app, monitor, report, worklists  # noqa: E402

app.command()(monitor)
app.command()(worklists)
app.add_typer(feedback_app, name="feedback")
app.command()(report)
from safetynet.serving.commands import keys_app, serve  # noqa: E402

app.command()(serve)
app.add_typer(keys_app, name="keys")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
