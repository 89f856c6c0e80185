"""The served table -> the serving graph's input: missing values filled, categories encoded.

Validation (``/predict``, batch) turns records into a *served table*: one float64 column per
feature, in the manifest's order: numbers as they are, booleans as 1/0, a category as the index
of its value in the feature's known categories (-1 when unseen), a missing value as NaN (only
where the manifest has a fill for it). Drift is measured on that table (shares of categories,
unseen and missing values); the graph gets this module's encoding of it, which training proves
equal to scikit-learn's fitted preprocessing (SimpleImputer, OrdinalEncoder, OneHotEncoder) on the
same raw rows before it publishes (training/estimators/preprocess.py).

Why here and not inside the ONNX graph: the graph keeps one float input (the contract every task
and the compact IsolationForest graph share), strings never enter ONNX Runtime, and this is a
few numpy operations per column (measured in docs/training.md).
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


class Encoder:
    """The served table -> the graph's input, for one model's features (built once per loaded model)."""

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.needed = needs_encoding(features)
        self.width = sum(spec.width for spec in features)
        # per feature: (served column, first input column, fill or None, known indices when one-hot)
        self._plan: list[tuple[int, int, float | None, np.ndarray | None]] = []
        start = 0
        for index, spec in enumerate(features):
            fill = fill_value(spec) if spec.fill is not None else None
            known = np.arange(spec.width, dtype=np.float64) if spec.encoding == "onehot" else None
            self._plan.append((index, start, fill, known))
            start += spec.width

    def __call__(self, table: np.ndarray) -> np.ndarray:
        if not self.needed:
            return table
        encoded = np.empty((table.shape[0], self.width), dtype=np.float64)
        for index, start, fill, known in self._plan:
            column = table[:, index]
            if fill is not None:
                missing = np.isnan(column)
                if missing.any():
                    column = np.where(missing, fill, column)
            if known is None:
                encoded[:, start] = column
            else:
                encoded[:, start : start + len(known)] = column[:, None] == known
        return encoded


def model_input(table: np.ndarray, features: Sequence[FeatureSpec]) -> np.ndarray:
    """The graph's input for a served table (rows, n_features) -> (rows, input width)."""
    return Encoder(features)(table)


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


def category_columns(features: Sequence[FeatureSpec]) -> list[int]:
    """The served-table columns of the category features."""
    return [index for index, spec in enumerate(features) if spec.dtype == "category"]


def unseen_by_row(table: np.ndarray, features: Sequence[FeatureSpec]) -> list[tuple[int, list[str]]]:
    """``[(row, [fields...]), ...]``: the rows holding a category value the model never saw (scored as
    its learned "other"), and in which fields; empty when every value was known."""
    columns = category_columns(features)
    if not columns:
        return []
    unseen = table[:, columns] == UNSEEN
    names = [features[index].name for index in columns]
    return [
        (int(row), [name for name, hit in zip(names, unseen[row], strict=True) if hit])
        for row in np.flatnonzero(unseen.any(axis=1)).tolist()
    ]
