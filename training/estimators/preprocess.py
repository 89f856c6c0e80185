"""Preprocessing for tables with categories and missing values: fitted with scikit-learn, served by
lambda_app/preprocess.py, and proven equal before a version is published.

scikit-learn fits it on the training split: ``SimpleImputer`` (median for numbers, most frequent value
for booleans and categories) for the features with missing values, then ``OrdinalEncoder`` (unseen: -1)
for tree ensembles, which split on an index as well as on one column per value and keep their compact,
fast graphs, or ``OneHotEncoder`` (unseen: all 0) for every other estimator. What it learned (fills,
categories, encoding) goes into the manifest's feature specs; the service reproduces it with numpy.
``check`` compares the two exactly on held-out rows, with missing and unseen values added, and the
version is not published unless they are equal. The published ``model.joblib`` is then scikit-learn's
whole pipeline (this preprocessing, then the model), which takes the raw table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lambda_app.preprocess import UNSEEN, model_input
from lambda_app.registry import FeatureSpec
from lambda_app.registry.manifest import Encoding
from training.data.validate import Dataset
from training.estimators.convert import CompileError
from training.estimators.families import estimator_name
from training.exceptions import TrainingError

log = logging.getLogger("training")

ORDINAL_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")
NATIVE_MISSING = (
    "sklearn.ensemble.HistGradientBoosting",
    "xgboost.",
    "lightgbm.",
)
OTHER_SHARE = 0.02
MIN_OTHER_ROWS = 20
"""Each category feature shows this share of the fitting rows (at least this many) as "other"."""
UNSEEN_TEXT = "\x00unseen"
"""A category value no training row has, to probe the unseen path."""


@dataclass(frozen=True)
class Preprocessing:
    """The manifest's feature specs and, when the served table needs encoding, scikit-learn's transformer."""

    specs: list[FeatureSpec]
    transformer: Any | None = None

    @property
    def native_missing(self) -> list[str]:
        """The features whose missing values reach the model as they are (``[data] missing = "native"``)."""
        return [spec.name for spec in self.specs if spec.missing == "native"]

    def encode(self, table: np.ndarray) -> np.ndarray:
        """The model's input for a served table: the service's own encoding."""
        return model_input(table, self.specs)

    def pipeline(self, estimator: Any) -> Any:
        """scikit-learn's whole pipeline (raw table in), or the estimator when there is nothing to do."""
        if self.transformer is None:
            return estimator
        from sklearn.pipeline import Pipeline

        return Pipeline([("preprocess", self.transformer), ("model", estimator)])

    def with_other(self, x: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
        """The model input with, among ``rows``, OTHER_SHARE (at least MIN_OTHER_ROWS) of each category
        feature's values shown as a value the model never saw (ordinal -1, one-hot all zeros).

        So the model learns what "other" means from real rows (their other features, their labels),
        and a value unseen in training is answered as that learned "other", not as whichever known
        value happens to sit on the same side of a split (ordinal -1 beside index 0; one-hot zeros
        beside the value a tree split off). The holdout is never touched.
        """
        categories = [(index, spec) for index, spec in enumerate(self.specs) if spec.dtype == "category"]
        if not categories or not len(rows):
            return x
        starts = np.cumsum([0, *(spec.width for spec in self.specs)])
        shown = x.copy()
        rng = np.random.default_rng(seed)
        count = min(len(rows), max(MIN_OTHER_ROWS, round(OTHER_SHARE * len(rows))))
        for index, spec in categories:
            chosen = rng.choice(rows, size=count, replace=False)
            start = int(starts[index])
            if spec.encoding == "onehot":
                shown[chosen, start : start + spec.width] = 0.0
            else:
                shown[chosen, start] = UNSEEN
        return shown

    def check(self, table: np.ndarray, seed: int) -> dict[str, Any]:
        """The service's encoding against scikit-learn's on ``table``'s rows, then on the same rows with
        missing and unseen values added; CompileError unless they are exactly equal."""
        if self.transformer is None:
            return {"rows": 0, "note": "no preprocessing: the served table is the model's input"}
        probe = _with_missing_and_unseen(table, self.specs, seed)
        checked = 0
        for rows in (table, probe):
            expected = np.asarray(self.transformer.transform(raw_frame(rows, self.specs)), dtype=np.float64)
            refuse_unless_equal(self.encode(rows), expected, "scikit-learn's")
            checked += len(rows)
        return {"rows": checked, "exactly_equal": True, "with_missing_and_unseen": len(probe)}


def refuse_unless_equal(served: np.ndarray, expected: np.ndarray, whose: str) -> None:
    """CompileError, naming the first differing cell, unless the service's encoding of some rows is
    exactly ``expected`` (``whose`` transformer's output for the same rows)."""
    if expected.shape == served.shape and np.array_equal(expected, served, equal_nan=True):
        return  # a missing value left to the model is NaN on both sides
    same = (expected == served) | (np.isnan(expected) & np.isnan(served))
    differ = np.argwhere(~same) if expected.shape == served.shape else [[0, 0]]
    row, column = (int(v) for v in differ[0])
    raise CompileError(
        f"the service's preprocessing differs from {whose}: shape {served.shape} vs {expected.shape},"
        f" first difference at row {row}, input column {column}"
    )


def encoding_for(estimator: Any) -> Encoding:
    """Ordinal for tree models (IsolationForest, forests, boosting, trees), one-hot for the rest."""
    return "ordinal" if estimator_name(estimator).startswith(ORDINAL_MODULES) else "onehot"


def routes_missing(estimator: Any) -> bool:
    """True for the estimators whose trees learn a branch for missing values, and whose ONNX graphs
    follow it (HistGradientBoosting, XGBoost, LightGBM): ``[data] missing = "native"`` leaves their
    missing values to them. The parity gate checks the graph on rows with missing values either way."""
    return estimator_name(estimator).startswith(NATIVE_MISSING)


def fit_preprocessing(
    dataset: Dataset, rows: np.ndarray, estimator: Any, missing: str = "impute"
) -> Preprocessing:
    """Fit the preprocessing on ``rows`` (the training split) of the served table.

    ``missing = "native"``: an estimator that ``routes_missing`` gets a number's or a boolean's missing
    values as they are (NaN); a category's are still filled (scikit-learn's encoder would turn them into
    its unseen value, the service into NaN), and so is every feature of the other estimators.
    """
    table = dataset.features
    # Missing anywhere in the file (a sample may hold none of a rare feature's missing values).
    nullable = np.isnan(table).any(axis=0) | np.array(
        [n in dataset.file_missing for n in dataset.feature_names]
    )
    native_ok = missing == "native" and routes_missing(estimator)
    native = nullable & np.array([native_ok and dtype != "category" for dtype in dataset.feature_dtypes])
    encoding = encoding_for(estimator)
    drafts = [
        FeatureSpec.model_validate(
            {"name": name, "dtype": dtype}
            if dtype != "category"
            else {"name": name, "dtype": dtype, "categories": dataset.categories[name], "encoding": encoding}
        )
        for name, dtype in zip(dataset.feature_names, dataset.feature_dtypes, strict=True)
    ]
    for column in np.flatnonzero(native).tolist():
        drafts[column] = drafts[column].model_copy(update={"missing": "native"})
        share = float(np.isnan(table[:, column]).mean())
        log.info(
            "feature %r: %.1f%% missing, left to the model (its trees learned where missing values go)",
            drafts[column].name,
            100 * share,
        )
    nullable = nullable & ~native
    if not dataset.categories and not nullable.any():
        return Preprocessing([FeatureSpec.model_validate(s.model_dump()) for s in drafts])
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    steps = []
    for index, spec in enumerate(drafts):
        parts: list[Any] = []
        if nullable[index]:
            strategy = "median" if spec.dtype in ("number", "integer") else "most_frequent"
            parts.append(SimpleImputer(strategy=strategy))
        if spec.dtype == "category":
            known = [list(spec.categories or ())]
            parts.append(
                OrdinalEncoder(
                    categories=known,
                    handle_unknown="use_encoded_value",
                    unknown_value=int(UNSEEN),
                    dtype=np.float64,
                )
                if encoding == "ordinal"
                else OneHotEncoder(
                    categories=known, handle_unknown="ignore", sparse_output=False, dtype=np.float64
                )
            )
        steps.append((spec.name, make_pipeline(*parts) if parts else "passthrough", [spec.name]))
    transformer = ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False)
    train = table[rows]
    for column in np.flatnonzero(nullable).tolist():
        if np.isnan(train[:, column]).all():
            raise TrainingError(f"feature '{drafts[column].name}' has no values in the training split")
    transformer.fit(raw_frame(train, drafts))
    specs = []
    for index, spec in enumerate(drafts):
        if not nullable[index]:
            specs.append(spec)
            continue
        imputer = transformer.named_transformers_[spec.name].steps[0][1]
        statistic = imputer.statistics_[0]
        fill: bool | float | str = (
            str(statistic)
            if spec.dtype == "category"
            else bool(statistic)
            if spec.dtype == "boolean"
            else float(statistic)
        )
        share = float(np.isnan(table[:, index]).mean())
        log.info(
            "feature %r: %.1f%% missing, served as %r (the training %s)",
            spec.name,
            100 * share,
            fill,
            "median" if spec.dtype in ("number", "integer") else "most frequent value",
        )
        specs.append(spec.model_copy(update={"fill": fill}))
    return Preprocessing([FeatureSpec.model_validate(s.model_dump()) for s in specs], transformer)


def raw_frame(table: np.ndarray, specs: list[FeatureSpec]) -> pd.DataFrame:
    """Served-table rows as the user's raw table: categories as their text (NaN when missing, a value
    no row has when unseen), booleans as 1/0, numbers as they are: scikit-learn's pipeline input."""
    columns: dict[str, Any] = {}
    for index, spec in enumerate(specs):
        values = table[:, index]
        if spec.dtype == "category":
            known = np.array([*(spec.categories or ()), UNSEEN_TEXT], dtype=object)
            text = known[np.where(np.isnan(values), 0, values).astype(np.int64)]  # -1: UNSEEN_TEXT
            text[np.isnan(values)] = np.nan
            columns[spec.name] = text
        else:
            columns[spec.name] = values
    return pd.DataFrame(columns)


def _with_missing_and_unseen(table: np.ndarray, specs: list[FeatureSpec], seed: int) -> np.ndarray:
    """Up to 2,000 of the rows, a fifth of the cells the model fills made missing, a tenth of the
    category cells unseen."""
    rng = np.random.default_rng(seed)
    probe = table[: min(len(table), 2000)].copy()
    for index, spec in enumerate(specs):
        if spec.takes_missing:
            probe[rng.random(len(probe)) < 0.2, index] = np.nan
        if spec.dtype == "category":
            probe[rng.random(len(probe)) < 0.1, index] = UNSEEN
    return probe
