"""The naive path for a classifier, as the benchmark's baseline: the straightforward way, for predict_proba.

An async FastAPI route with a pydantic model per record, a pandas DataFrame per request and
scikit-learn's predict and predict_proba on a joblib-loaded model; Mangum with lifespan off.
Not used by the product.

Environment: NAIVE_CLASSIFIER_PATH (the model.joblib to load).
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

model = joblib.load(os.environ["NAIVE_CLASSIFIER_PATH"])
classes = [str(c) for c in model.classes_]

app = FastAPI()


class Record(BaseModel):
    one: int
    two: float
    three: float


@app.post("/predict")
async def predict(records: list[Record] | Record) -> dict[str, object]:
    rows = records if isinstance(records, list) else [records]
    frame = pd.DataFrame([r.model_dump() for r in rows])
    matrix = frame[["one", "two", "three"]].to_numpy(dtype=float)
    probabilities = model.predict_proba(matrix)
    return {
        "predictions": model.predict(matrix).tolist(),
        "probabilities": [dict(zip(classes, row, strict=True)) for row in probabilities.tolist()],
        "version": "naive",
        "errors": None,
    }


handler = Mangum(app, lifespan="off")
