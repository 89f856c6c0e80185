"""``[data] features = "auto"``: which columns become features, and why the others do not.

Every column but the label and ``exclude`` is a candidate: numbers, booleans (true/false text or a
bool column: JSON true/false when served, 1/0 to the model) and categories (text with at most
``max_categories`` distinct values). Missing values are allowed unless ``[data] missing = "refuse"``.
The rest are skipped, each with a reason that says what to do: with no label in the data, a column
whose name and values both say it is a target (``is_anomaly`` with values 0/1) is never silently a
feature (once a label is set, names decide nothing); datetimes, free text (too many distinct
values), empty, constant and infinite columns, and row ids cannot be used as they are.
The choice is printed by the training job and recorded in the manifest (its feature list).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lambda_app.preprocess import MISSING_WORDS

TARGET_NAMES = frozenset(
    {
        "label",
        "labels",
        "target",
        "targets",
        "class",
        "y",
        "anomaly",
        "is_anomaly",
        "anomalous",
        "outlier",
        "is_outlier",
        "fraud",
        "is_fraud",
        "outcome",
        "ground_truth",
    }
)
BOOLEAN_WORDS = frozenset({"true", "false"})
EXAMPLES_SHOWN = 3


@dataclass
class FeatureChoice:
    """The columns chosen, in file order, and each skipped column with its reason."""

    names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def looks_like_target(name: str) -> bool:
    return name.strip().lower().replace("-", "_").replace(" ", "_") in TARGET_NAMES


MAX_LABEL_VALUES = 10
"""A column with at most this many distinct values may hold classes or a 0/1 flag."""


def label_like_values(column: pd.Series) -> int | None:
    """The number of distinct values when a column's values look like labels (2..MAX_LABEL_VALUES)."""
    present = column[~missing_mask(column, category=True)]
    distinct = int(present.astype(str).str.strip().nunique())
    return distinct if 2 <= distinct <= MAX_LABEL_VALUES else None


def choose_features(
    frame: pd.DataFrame,
    label: str | None,
    exclude: list[str],
    *,
    missing: str = "impute",
    max_categories: int = 1000,
    types: dict[str, str] | None = None,
) -> FeatureChoice:
    """Every usable column of ``frame`` but ``label`` and ``exclude``; a reason for each other one."""
    choice = FeatureChoice()
    excluded = set(exclude)
    types = types or {}
    # Once the label is there, every other column is a candidate whatever its name (a passenger's
    # `class`, a stone's width `y`); without one, a column is set aside as a likely label only when its
    # name and its values both say so (a few distinct values, like classes or 0/1 flags).
    label_present = label is not None and label in set(map(str, frame.columns))
    for name in map(str, frame.columns):
        if name == label:
            continue
        if name in excluded:
            choice.skipped.append((name, "listed in [data] exclude"))
            continue
        values = None if label_present or not looks_like_target(name) else label_like_values(frame[name])
        if values is not None:
            choice.skipped.append(
                (
                    name,
                    f"its name and its {values} distinct values say it is probably the label; set [data]"
                    f" label = {name!r} (or --label {name}), or list it in features to use it",
                )
            )
            continue
        reason = unusable(
            frame[name], missing=missing, max_categories=max_categories, declared=types.get(name)
        )
        if reason:
            choice.skipped.append((name, reason))
        else:
            choice.names.append(name)
    return choice


def missing_mask(column: pd.Series, *, category: bool = False) -> np.ndarray:
    """Where a column has no value: NaN/None, an empty cell, or (not in a category) NA, nan, null..."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return np.asarray(column.isna().to_numpy(dtype=bool))
    text = column.astype(str).str.strip()
    words = {""} if category else MISSING_WORDS
    return np.asarray((column.isna() | text.str.lower().isin(words)).to_numpy(dtype=bool))


TYPE_SAMPLE_ROWS = 10_000
"""Types are read from a column's first rows (every value is still validated against the type)."""


def is_text_column(column: pd.Series) -> bool:
    """Mostly text that is neither numbers nor true/false: a category (or free text, or datetimes).

    A mostly-numeric column with a few bad cells is numeric: validation names the first bad row,
    rather than the column silently turning into categories. Decided on the first TYPE_SAMPLE_ROWS.
    """
    if (
        pd.api.types.is_numeric_dtype(column)
        or pd.api.types.is_bool_dtype(column)
        or pd.api.types.is_datetime64_any_dtype(column)
    ):
        return False
    column = column.head(TYPE_SAMPLE_ROWS)
    missing = missing_mask(column)
    text = column.astype(str).str.strip()[~missing]
    if text.empty or text.str.lower().isin(BOOLEAN_WORDS).all():
        return False
    numbers = pd.to_numeric(text, errors="coerce")
    return bool(numbers.isna().sum() > len(text) / 2)


def unusable(
    column: pd.Series, *, missing: str = "impute", max_categories: int = 1000, declared: str | None = None
) -> str | None:
    """Why a column cannot be a feature as it is, or None when it can (numbers, true/false, categories)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetimes: derive numeric features from them first (hour, day of week, age...)"
    category = declared == "category" or (declared is None and is_text_column(column))
    absent = missing_mask(column, category=category)
    if absent.all():
        return "empty: no values"
    if absent.any() and missing == "refuse":
        share = 100 * absent.mean()
        return (
            f'{int(absent.sum())} missing values ({share:.1f}%) and [data] missing = "refuse";'
            ' fill or drop them, or set missing = "impute"'
        )
    if category:
        return _unusable_category(column[~absent], max_categories)
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("float64")  # served as JSON true/false, fed to the model as 1/0
    present = column[~absent]
    if pd.api.types.is_numeric_dtype(present):
        values = present.to_numpy(dtype=np.float64)
    else:
        text = present.astype(str).str.strip()
        lowered = text.str.lower()
        if lowered.isin(BOOLEAN_WORDS).all():  # true/false: a boolean
            text = (lowered == "true").astype("float64").astype(str)
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), 0.0, values)  # a few bad cells: validation names them
    if not np.isfinite(values).all():
        return "infinite values"
    if np.all(values == values[0]):
        return "constant: it carries no information"
    if not absent.any() and _row_id(values):
        return "increasing whole numbers, one per row: a row id; list it in features to use it"
    return None


def looks_like_datetimes(present: pd.Series) -> bool:
    """Text whose first 200 values all parse as dates or times."""
    sample = present.astype(str).head(200)
    return bool(len(sample)) and bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().all())


MIN_ROWS_FOR_TEXT_ID = 50
"""Text with a different value on each of at least this many rows is an id (a customer number), not a
category: a category repeats. Fewer rows are too few to tell."""


def _unusable_category(present: pd.Series, max_categories: int) -> str | None:
    text = present.astype(str)
    if looks_like_datetimes(text):
        return "datetimes: derive numeric features from them first (hour, day of week, age...)"
    distinct = text.nunique()
    if distinct == 1:
        return "constant: it carries no information"
    if distinct == len(text) >= MIN_ROWS_FOR_TEXT_ID:
        examples = ", ".join(repr(v) for v in pd.unique(text)[:EXAMPLES_SHOWN])
        return (
            f"text with a different value on every row (e.g. {examples}): an id, not a category (every"
            " request would have to send one, and each new one is a value the model never saw); list it in"
            " features to use it"
        )
    if distinct > max_categories:
        examples = ", ".join(repr(v) for v in pd.unique(text)[:EXAMPLES_SHOWN])
        return (
            f"text with {distinct} distinct values (e.g. {examples}), more than [data] max_categories ="
            f" {max_categories}: free text or an id; derive features from it, or raise the cap"
        )
    return None


def _row_id(values: np.ndarray) -> bool:
    """Distinct whole numbers in increasing order: a row counter or id."""
    return bool(len(values) > 1 and np.all(values == np.round(values)) and np.all(np.diff(values) > 0))
