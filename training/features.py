"""``[data] features = "auto"``: which columns become features, and why the others do not.

Every column but the label and ``exclude`` is a candidate. A column is used when every value is a
finite number and it is not constant. The rest are skipped, each with a reason that says what to do:
a name that says it is a target (``is_anomaly``, ``target``...) is never silently a feature; missing
values, text (categories), datetimes and constant columns cannot be used as they are (yet). Booleans
(true/false text, or a bool column) are features: JSON true/false when served, 1/0 to the model.
The choice is printed by the training job and recorded in the manifest (its feature list).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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
MISSING_WORDS = frozenset({"", "nan", "na", "n/a", "null", "none"})
EXAMPLES_SHOWN = 3


@dataclass
class FeatureChoice:
    """The columns chosen, in file order, and each skipped column with its reason."""

    names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def looks_like_target(name: str) -> bool:
    return name.strip().lower().replace("-", "_").replace(" ", "_") in TARGET_NAMES


def choose_features(frame: pd.DataFrame, label: str | None, exclude: list[str]) -> FeatureChoice:
    """Every usable column of ``frame`` but ``label`` and ``exclude``; a reason for each other one."""
    choice = FeatureChoice()
    excluded = set(exclude)
    for name in map(str, frame.columns):
        if name == label:
            continue
        if name in excluded:
            choice.skipped.append((name, "listed in [data] exclude"))
            continue
        if looks_like_target(name):
            choice.skipped.append(
                (
                    name,
                    f"its name says it is a target; set [data] label = {name!r},"
                    " or list it in features to use it",
                )
            )
            continue
        reason = unusable(frame[name])
        if reason:
            choice.skipped.append((name, reason))
        else:
            choice.names.append(name)
    return choice


def unusable(column: pd.Series) -> str | None:
    """Why a column cannot be a feature (numbers, or true/false) as it is, or None when it can."""
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("float64")  # served as JSON true/false, fed to the model as 1/0
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetimes: derive numeric features from them first (hour, day of week, age...)"
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
    else:
        text = column.astype(str).str.strip()
        missing = (text.isna() | text.str.lower().isin(MISSING_WORDS)).to_numpy(dtype=bool)
        lowered = text.str.lower()
        if (~missing).any() and lowered[~missing].isin(BOOLEAN_WORDS).all():  # true/false: a boolean
            text = (lowered == "true").astype("float64").astype(str).where(~missing, "")
        values = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
        not_numbers = np.isnan(values) & ~missing
        # Mostly numbers with a few bad cells is a numeric column with errors: kept, so that validation
        # names the first bad row, rather than skipped as text (a silent loss of a feature).
        if not_numbers.sum() > (~missing).sum() / 2:
            return _why_not_numbers(text[not_numbers])
        values = np.where(not_numbers, 0.0, values)
    if missing.all():
        return "empty: no values"
    if missing.any():
        share = 100 * missing.mean()
        return (
            f"{int(missing.sum())} missing values ({share:.1f}%): missing values are not supported yet;"
            " fill or drop them to use it"
        )
    if not np.isfinite(values).all():
        return "infinite values"
    if np.all(values == values[0]):
        return "constant: it carries no information"
    if _row_id(values):
        return "increasing whole numbers, one per row: a row id; list it in features to use it"
    return None


def _row_id(values: np.ndarray) -> bool:
    """Distinct whole numbers in increasing order: a row counter or id."""
    return bool(len(values) > 1 and np.all(values == np.round(values)) and np.all(np.diff(values) > 0))


def _why_not_numbers(cells: pd.Series) -> str:
    sample = cells.head(200)
    if pd.to_datetime(sample, errors="coerce", format="mixed").notna().all():
        return "datetimes: derive numeric features from them first (hour, day of week, age...)"
    examples = ", ".join(repr(v) for v in pd.unique(cells)[:EXAMPLES_SHOWN])
    return (
        f"text ({cells.nunique()} distinct values, e.g. {examples}):"
        " categorical features are not supported yet; encode it as numbers to use it"
    )
