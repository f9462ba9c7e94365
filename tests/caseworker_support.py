"""A real home for the caseworker page tests, built from the other areas' test helpers:
the serving world (a tiny LightGBM champion in a real MLflow registry, the online store, the
migrated service database), two monitoring runs so worklists and a score history exist, API
keys, and an identity store with names and addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from monitoring_support import POLICY
from serving_fixtures import (
    ServingWorld,
    build_world,
    household_rows,
    model_features,
    train_booster,
    write_online_store,
)

from safetynet.config import get_settings

RUNS = (date(2026, 9, 30), date(2026, 10, 31))


@dataclass
class CaseworkerWorld:
    serving: ServingWorld
    home: Path
    keys: dict[str, tuple[int, str]]  # name -> (key id, token)
    names: dict[str, str]  # household_key -> a person's name (identity store)
    bundle: object  # the champion the monitoring runs used

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.serving.settings


def _frame(rows: dict[str, dict], as_of: date) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("household_key")
    frame = frame.reset_index()
    frame["as_of_date"] = pd.Timestamp(as_of)
    frame["street"] = frame["district"] + "-s" + (frame.index % 2).astype(str)
    return frame


def write_identity(path: Path, rows: dict[str, dict]) -> dict[str, str]:
    """Names and addresses in the identity vault's schema (safetynet/db/identity.py)."""
    from safetynet.db.identity import connect

    names = {}
    with connect(path) as con:
        for i, (key, row) in enumerate(rows.items()):
            name = f"Resident {i:03d}"
            names[key] = name
            con.execute("INSERT INTO households VALUES (?, ?, ?, ?, ?, ?)",
                        (key, f"{i} Garden Road", row["district"], f"{row['district']}-s{i % 2}",
                         "Riverside", "2026-01-01"))
            con.execute("INSERT INTO persons VALUES (?, ?, ?, ?)",
                        (f"P{i:05d}", key, name, "2026-01-01"))
    con.close()
    return names


def build_caseworker_world(
    home: Path, n_households: int = 120, registry: bool = True
) -> CaseworkerWorld:
    """Everything under `home` (SAFETYNET_HOME must point there).

    `registry=False` skips MLflow (the slow part: tens of seconds on a busy machine) and
    wraps the same real booster in `safetynet.model.Bundle` directly; the browser test
    uses the registry, as the service does.
    """
    from safetynet.db.engine import get_engine
    from safetynet.db.migrate import migrate
    from safetynet.model import Bundle, Calibrator
    from safetynet.monitoring.run import monitor_run
    from safetynet.serving.keys import create_key
    from safetynet.serving.model import load_model

    if registry:
        world = build_world(home, n_households)
        settings = get_settings()
        bundle = load_model(settings=settings)
    else:
        get_settings.cache_clear()
        settings = get_settings()
        features = model_features()
        booster = train_booster(features)
        rows = household_rows(features, n_households)
        write_online_store(settings, rows)
        migrate(settings)
        world = ServingWorld(home, settings, features, booster, "1", rows)
        bundle = Bundle(
            booster=booster, features=features,
            calibrator=Calibrator.from_dict({"method": "platt", "a": 1.1, "b": -0.2}),
            name=settings.model_name, version="1", alias="champion",
        )
    engine = get_engine(settings)
    earlier = household_rows(world.features, n_households, seed=7)  # last month's values
    for rows, as_of in ((earlier, RUNS[0]), (world.rows, RUNS[1])):
        for key, row in rows.items():
            row["district"] = world.rows[key]["district"]
        monitor_run(engine, bundle, _frame(rows, as_of), as_of, POLICY)
    keys = {
        "wuchang": create_key(engine, "caseworker", ["wuchang"], "cw wuchang"),
        "hongshan": create_key(engine, "caseworker", ["hongshan"], "cw hongshan"),
        "platform": create_key(engine, "platform", None, "platform"),
        "admin": create_key(engine, "admin", None, "admin"),
    }
    names = write_identity(settings.identity_path, world.rows)
    return CaseworkerWorld(world, home, keys, names, bundle)
