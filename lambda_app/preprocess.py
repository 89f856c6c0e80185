"""The served table -> the serving graph's input: missing values filled, categories encoded.

Validation (``/predict``, batch) turns records into a *served table*: one float64 column per
feature, in the manifest's order: numbers as they are, booleans as 1/0, a category as the index
of its value in the feature's known categories (-1 when unseen), a missing value as NaN (only
where the manifest has a fill for it). Drift is measured on that table (shares of categories,
unseen and missing values); the graph gets this module's encoding of it, which training proves
equal to scikit-learn's fitted preprocessing (SimpleImputer, OrdinalEncoder, OneHotEncoder) on the
same raw rows before it publishes (training/preprocess.py).

Why here and not inside the ONNX graph: the graph keeps one float input (the contract every task
and the compact IsolationForest graph share), strings never enter ONNX Runtime, and this is a
few numpy operations per column (measured in the README).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lambda_app.registry import FeatureSpec

MISSING_WORDS = frozenset({"", "nan", "na", "n/a", "null", "none"})
"""Text that means "no value" in a number or boolean column (any case): training and batch scoring
agree on it. A category's only missing value is an empty cell ("none" may well be a category)."""

UNSEEN = -1.0
"""A category value the model never saw in training: ordinal index -1, all-zero one-hot columns."""


def needs_encoding(features: Sequence[FeatureSpec]) -> bool:
    """False when the served table is already the graph's input (numbers and booleans, no fills)."""
    return any(spec.dtype == "category" or spec.fill is not None for spec in features)


def fill_value(spec: FeatureSpec) -> float:
    """The served-table value a missing one becomes (a category's index, a boolean's 1/0)."""
    if spec.fill is None:
        raise ValueError(f"feature {spec.name!r} has no fill value")
    if spec.dtype == "category":
        assert spec.categories is not None
        return float(spec.categories.index(str(spec.fill)))
    return float(spec.fill)


def model_input(table: np.ndarray, features: Sequence[FeatureSpec]) -> np.ndarray:
    """The graph's input for a served table (rows, n_features) -> (rows, input width)."""
    if not needs_encoding(features):
        return table
    columns = []
    for index, spec in enumerate(features):
        column = table[:, index]
        if spec.fill is not None:
            column = np.where(np.isnan(column), fill_value(spec), column)
        if spec.encoding == "onehot":
            assert spec.categories is not None
            known = np.arange(len(spec.categories), dtype=np.float64)
            columns.append((column[:, None] == known).astype(np.float64))
        else:
            columns.append(column[:, None])
    return np.hstack(columns)


_INDEXES: dict[int, tuple[FeatureSpec, dict[str, float]]] = {}


def category_index(spec: FeatureSpec) -> dict[str, float]:
    """Value -> its index in the served table, for one category feature (built once per spec)."""
    cached = _INDEXES.get(id(spec))
    if cached is None or cached[0] is not spec:
        assert spec.categories is not None
        cached = (spec, {value: float(i) for i, value in enumerate(spec.categories)})
        if len(_INDEXES) > 256:  # specs of models no longer loaded
            _INDEXES.clear()
        _INDEXES[id(spec)] = cached
    return cached[1]
