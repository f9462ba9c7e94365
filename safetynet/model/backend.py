"""Where MLflow tracking and the model registry live, and keeping a home relocatable.

By default both are one SQLite database under `$SAFETYNET_HOME` with artifacts in
`Settings.artifact_root`. MLflow stores *absolute* artifact URIs in that database
(`file:///old/home/mlartifacts/...`), so a moved or copied home would keep reading the old
place. `configure` therefore re-roots those URIs to the current home before MLflow
opens the database: everything under a home is found relative to it (docs/operations.md,
"Moving a home"). A tracking URI set explicitly (PostgreSQL, a remote server) is left alone:
its artifacts are not inside the home.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from safetynet.config import Settings

# (table, column) pairs of MLflow's schema that hold artifact URIs
ARTIFACT_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def configure(settings: Settings) -> str:
    """Point MLflow's tracking and registry at the configured backend; returns the URI.

    With the default SQLite backend under the home, artifact URIs recorded under an earlier
    location of the home are re-rooted first (`rehome_artifacts`).
    """
    import mlflow

    uri = settings.tracking_uri
    if settings.mlflow_tracking_uri is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        rehome_artifacts(settings.home / "mlflow.db", artifact_root_uri(settings))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def artifact_root_uri(settings: Settings) -> str:
    """`file://` URI of the home's artifact root (where experiments keep their artifacts)."""
    return settings.artifact_root.resolve().as_uri()


def rehome_artifacts(database: Path, root_uri: str) -> int:
    """Rewrite artifact URIs recorded under another root with the same folder name to `root_uri`.

    An old root is an experiment's `artifact_location` that ends in `/<root folder name>` and
    differs from `root_uri`; every URI equal to it or under it is rewritten in one transaction,
    so a concurrent reader sees all old or all new. Idempotent. Returns the rows changed
    (0 when the database does not exist yet or nothing moved).
    """
    if not database.exists():
        return 0
    name = root_uri.rstrip("/").rsplit("/", 1)[-1]
    with closing(sqlite3.connect(database, timeout=30)) as con, con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "experiments" not in tables:
            return 0
        old_roots = [
            r[0] for r in con.execute(
                "SELECT DISTINCT artifact_location FROM experiments "
                "WHERE artifact_location LIKE ? AND artifact_location != ?",
                (f"file://%/{name}", root_uri),
            )
        ]
        changed = 0
        for old in old_roots:
            for table, column in ARTIFACT_URI_COLUMNS:
                if table not in tables:
                    continue
                cur = con.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (root_uri, len(old) + 1, old, len(old) + 1, old + "/"),
                )
                changed += cur.rowcount
        return changed
