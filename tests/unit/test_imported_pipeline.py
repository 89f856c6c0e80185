"""Reading a fitted ColumnTransformer into the service's features: what is accepted, in which order,
and each refusal's reason (no data file, no conversion: the translation alone)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.estimators.imported_pipeline import (
    UnservablePipelineError,
    category_text,
    starts_with_column_transformer,
    translate,
)

FRAME = pd.DataFrame(
    {
        "colour": ["red", "blue", "red", "green", "blue", "red"],
        "size": [1.0, 2.5, np.nan, 4.0, 3.0, 2.0],
        "weight": [10.0, 12.0, 9.0, 11.0, 15.0, 13.0],
    }
)
LABELS = np.array([0, 1, 0, 1, 1, 0])


def fitted(transformer: Any, *after: Any, frame: Any = FRAME) -> Any:
    return make_pipeline(transformer, *after, LogisticRegression()).fit(frame, LABELS)


def test_the_features_follow_the_column_transformers_output_order() -> None:
    transformer = ColumnTransformer(
        [
            ("size", make_pipeline(SimpleImputer(), StandardScaler()), ["size"]),
            ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ],
        remainder="passthrough",
        sparse_threshold=0,
    )
    translation = translate(fitted(transformer))
    assert translation.names == ["size", "colour", "weight"]
    size, colour, weight = translation.columns
    assert size.fill == pytest.approx(FRAME["size"].mean())
    assert (size.mean, size.scale) != (0.0, 1.0)
    assert (colour.encoding, colour.categories) == ("onehot", ["blue", "green", "red"])
    assert (weight.encoding, weight.fill, weight.mean, weight.scale) == (None, None, 0.0, 1.0)
    # the estimator after it: one scaler over the 5 encoded columns, then the model
    assert translation.estimator.steps[0][0] == "scaled_columns"
    assert translation.estimator.steps[0][1].mean_.shape == (5,)


def test_only_a_pipeline_that_starts_with_a_column_transformer_is_translated() -> None:
    transformer = ColumnTransformer([("weight", "passthrough", ["weight"])])
    assert starts_with_column_transformer(fitted(transformer))
    assert not starts_with_column_transformer(make_pipeline(StandardScaler(), LogisticRegression()))
    assert not starts_with_column_transformer(LogisticRegression())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: fitted(
                ColumnTransformer([("w", "passthrough", ["weight"])]),
                ColumnTransformer([("again", "passthrough", [0])]),
            ),
            "is a second ColumnTransformer",
        ),
        (
            lambda: fitted(
                ColumnTransformer(
                    [("w", "passthrough", ["weight"]), ("c", "drop", ["colour"])],
                    transformer_weights={"w": 2.0},
                )
            ),
            "weighs its parts (transformer_weights)",
        ),
        (
            lambda: fitted(
                ColumnTransformer([("w", StandardScaler(), [0])]), frame=FRAME[["weight"]].to_numpy()
            ),
            "fitted on an array without column names",
        ),
        (
            lambda: fitted(
                ColumnTransformer(
                    [("s", make_pipeline(SimpleImputer(), StandardScaler(), StandardScaler()), ["size"])]
                )
            ),
            "holds sklearn.preprocessing.StandardScaler where the service reproduces",
        ),
        (
            lambda: fitted(
                ColumnTransformer([("s", make_pipeline(StandardScaler(), SimpleImputer()), ["size"])])
            ),
            "put the SimpleImputer first",
        ),
        (
            lambda: fitted(
                ColumnTransformer([("w", SimpleImputer(missing_values=-1.0), ["weight"])]),
            ),
            "treats -1.0 as missing",
        ),
    ],
    ids=[
        "second-column-transformer",
        "weights",
        "no-names",
        "two-scalers",
        "imputer-not-first",
        "missing-values",
    ],
)
def test_a_structure_the_service_cannot_reproduce_is_refused(build: Any, message: str) -> None:
    with pytest.raises(UnservablePipelineError) as refused:
        translate(build())
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("red", "red"),
        (3, "3"),
        (np.int64(3), "3"),
        (2.0, "2"),
        (2.5, "2.5"),
        (True, "true"),
        (np.False_, "false"),
    ],
)
def test_a_category_is_served_as_the_text_a_client_sends(value: Any, text: str) -> None:
    assert category_text(value) == text
