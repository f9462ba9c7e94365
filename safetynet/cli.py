"""The `safetynet` command line. Thin: each command parses options and calls one function."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from safetynet.config import Settings, load_policy
from safetynet.policy import PolicyError

# Before any OpenMP library loads (LightGBM, scikit-learn): OpenMP threads that busy-wait for
# each other starve on shared cores, 5-9x the wall time per boosting round at load 5-10
# (docs/training.md, "Search cost"). An explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _SafetyNetGroup(TyperGroup):
    """The root command group: a bad policy file stops any command with exit code 2 and one
    line on stderr (`error: policy.toml [tiers] red: input should be a number`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PolicyError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_SafetyNetGroup,
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
    from safetynet.contracts import render_markdown  # pandera: seconds, not for --help

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown() + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("config")
def show_config() -> None:
    """Print the effective runtime settings (secrets redacted) and the validated policy;
    exit 2 if the policy file does not validate."""
    settings = Settings()
    for name, value in settings.model_dump().items():
        shown = "***" if name.endswith("secret") and value else value
        typer.echo(f"{name:22} {shown}")
    policy = load_policy(settings.policy_file)
    typer.echo(f"\n# policy ({settings.policy_file}): valid")
    for line in _policy_lines(policy.model_dump(mode="json")):
        typer.echo(line)


def _policy_lines(policy: dict[str, Any]) -> list[str]:
    """The policy as TOML-like lines: one `[section]` header per table, `key = value` below."""
    lines: list[str] = []
    for section, body in policy.items():
        tables = {section: body} if section != "programmes" else {
            f"programmes.{pid}": rule for pid, rule in body.items()}
        for name, table in tables.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}"
                      for k, v in table.items() if v is not None]
    return lines


# --- commands of each area (each module imports its heavy dependencies inside the command, ---
# --- so that `safetynet --help` stays fast: docs/architecture.md, "Start-up time") ----------
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
