"""The naive path the benchmark compares against: a straightforward way to serve the model.

An async FastAPI route with a pydantic model per record, a pandas DataFrame per request,
scikit-learn's score_samples on a joblib-loaded IsolationForest, pandas and scikit-learn
imported at cold start, and Mangum with its default lifespan handling. Not used by the product.

Environment: NAIVE_MODEL_PATH (the model.joblib to load), NAIVE_THRESHOLD (the decision threshold).
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

model = joblib.load(os.environ["NAIVE_MODEL_PATH"])
threshold = float(os.environ["NAIVE_THRESHOLD"])

app = FastAPI()


class Record(BaseModel):
    one: int
    two: float
    three: float


@app.post("/predict")
async def predict(records: list[Record] | Record) -> dict[str, object]:
    rows = records if isinstance(records, list) else [records]
    frame = pd.DataFrame([r.model_dump() for r in rows])
    scores = -model.score_samples(frame[["one", "two", "three"]].to_numpy(dtype=float))
    return {
        "predictions": [int(s >= threshold) for s in scores],
        "scores": scores.tolist(),
        "version": "naive",
        "errors": None,
    }


handler = Mangum(app, lifespan="off")
