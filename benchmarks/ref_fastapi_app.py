"""Reference for the serving benchmark: a bare FastAPI + uvicorn app that reads the same
household row from the same online store and returns probability plus `pred_contrib` for the
same model. No auth, audit, reasons, indicators or programmes: the floor to compare with.

    REF_MODEL=/path/model.txt REF_FEATURES=/path/features.json SAFETYNET_HOME=... \
        uvicorn ref_fastapi_app:app --port 8001
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from safetynet.config import get_settings
from safetynet.features.online import open_online_store

booster = lgb.Booster(model_file=os.environ["REF_MODEL"])
features: list[str] = json.loads(Path(os.environ["REF_FEATURES"]).read_text())
store = open_online_store(get_settings())
app = FastAPI()


class Req(BaseModel):
    household_ids: list[str]


@app.post("/score")
async def score(req: Req) -> dict:
    rows = store.get_many(req.household_ids)
    X = np.array([[r.get(f) for f in features] for r in rows], dtype=float)
    contrib = booster.predict(X, pred_contrib=True, num_threads=1 if len(X) <= 64 else 0)
    prob = 1 / (1 + np.exp(-contrib.sum(axis=1)))
    return {"results": [{"household_id": h, "risk_score": float(p), "contributions": c.tolist()}
                        for h, p, c in zip(req.household_ids, prob, contrib, strict=True)]}
