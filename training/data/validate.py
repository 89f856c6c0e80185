"""Validate training data read from a file (training/data/read.py) and turn it into the arrays a
model is fitted on.

Validation fails on the first problem with one line naming the column and the row
(1-based data rows: the CSV header is not counted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from lambda_app.registry import FeatureSpec
from training.data.features import (
    BOOLEAN_WORDS,
    TYPE_SAMPLE_ROWS,
    choose_features,
    is_text_column,
    label_like_values,
    looks_like_datetimes,
    looks_like_target,
    missing_mask,
)
from training.exceptions import DataValidationError

log = logging.getLogger("training")


@dataclass(frozen=True)
class Dataset:
    """Validated training data: features in config order, the label if there is one.

    ``features`` is the served table (lambda_app/preprocess.py): one float64 column per feature,
    a category as its value's index in ``categories[name]``, NaN where a value is missing.
    """

    features: np.ndarray
    feature_names: list[str]
    feature_dtypes: list[str]
    labels: np.ndarray | None
    uri: str
    sha256: str
    categories: dict[str, list[str]] = field(default_factory=dict)
    # A file larger than [data] sample_rows is read in chunks into a seeded uniform sample of that many
    # rows (training/data/stream.py): these say how many rows the file had, and the sample's seed.
    file_rows: int | None = None
    sample_seed: int | None = None
    file_missing: dict[str, int] = field(default_factory=dict)  # missing values per feature, whole file

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def sampled(self) -> bool:
        return self.file_rows is not None and self.file_rows > self.rows


LabelParser = Callable[[pd.Series, str], np.ndarray]


def row_number(column: pd.Series, position: int) -> int:
    """The 1-based data row of ``column``'s ``position``: a chunk of a large file keeps its rows' place
    in the file (its index continues from the chunk before), so an error names the file's row."""
    index = column.index
    if isinstance(index, pd.RangeIndex):
        return int(index[position]) + 1
    return position + 1


def numeric_values(raw: pd.Series, column: str, *, allow_missing: bool = False) -> np.ndarray:
    """The column as float64 (NaN where missing, if allowed); DataValidationError names the first bad row."""
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype(str).str.strip()
        absent = missing_mask(raw)
        values = pd.to_numeric(text.where(~absent, None), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(values) & ~absent)
        if len(bad):
            row = int(bad[0])
            shown = text.iloc[row][:40]
            raise DataValidationError(
                f"column '{column}', row {row_number(raw, row)}: non-numeric value {shown!r}"
            )
    elif pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
        raise DataValidationError(f"column '{column}': non-numeric type {raw.dtype}")
    else:
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.flatnonzero(np.isnan(values))
    if len(missing) and not allow_missing:
        raise DataValidationError(
            f"column '{column}', row {row_number(raw, int(missing[0]))}: missing value (NaN);"
            ' [data] missing = "impute" fills it'
        )
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        raise DataValidationError(
            f"column '{column}', row {row_number(raw, int(infinite[0]))}: infinite value"
        )
    return np.asarray(values, dtype=np.float64)


def is_boolean(raw: pd.Series) -> bool:
    """A boolean column: Parquet/pandas bool, or text of true/false only (any case; blanks aside)."""
    if pd.api.types.is_bool_dtype(raw):
        return True
    if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_datetime64_any_dtype(raw):
        return False
    head = raw.head(TYPE_SAMPLE_ROWS)
    words = set(head[~missing_mask(head)].astype(str).str.strip().str.lower().unique()[:3])
    return bool(words) and words <= BOOLEAN_WORDS


def boolean_values(raw: pd.Series, column: str, *, allow_missing: bool = False) -> np.ndarray:
    """A boolean column as 1.0/0.0 (NaN where missing, if allowed), or DataValidationError naming the row."""
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return np.asarray(raw.to_numpy(dtype=np.float64), dtype=np.float64)
    absent = missing_mask(raw)
    text = raw.astype(str).str.strip().str.lower()
    bad = np.flatnonzero(~text.isin(BOOLEAN_WORDS).to_numpy(dtype=bool) & ~(absent & allow_missing))
    if len(bad):
        row = int(bad[0])
        cell = raw.iloc[row]
        what = "missing value" if absent[row] else f"not true or false: {str(cell)[:40]!r}"
        raise DataValidationError(f"column '{column}', row {row_number(raw, row)}: {what}")
    values = (text == "true").to_numpy(dtype=np.float64)
    values[absent] = np.nan
    return np.asarray(values, dtype=np.float64)


def category_values(
    raw: pd.Series, column: str, *, allow_missing: bool = False, max_categories: int = 1000
) -> tuple[np.ndarray, list[str]]:
    """A category column as each value's index in its sorted distinct values (NaN where missing), and
    those values; DataValidationError for a missing value that is not allowed, or too many values."""
    absent = missing_mask(raw, category=True)
    if absent.any() and not allow_missing:
        raise DataValidationError(
            f"column '{column}', row {row_number(raw, int(np.flatnonzero(absent)[0]))}: missing value;"
            ' [data] missing = "impute" fills it'
        )
    text = raw.astype(str).where(~absent, None)
    categories = sorted(text.dropna().unique().tolist())
    if len(categories) > max_categories:
        raise DataValidationError(
            f"column '{column}': {len(categories)} distinct values, more than [data] max_categories ="
            f" {max_categories}: free text or an id cannot be a category;"
            " derive features from it or raise the cap"
        )
    if not categories:
        raise DataValidationError(f"column '{column}': no values")
    codes = pd.Categorical(text, categories=categories).codes.astype(np.float64)
    codes[codes < 0] = np.nan
    return codes, categories


def served_column(raw: pd.Series, spec: FeatureSpec) -> FeatureColumn:
    """One column as a published model serves it: its categories (unseen: -1), NaN only where it fills."""
    nullable = spec.fill is not None
    if spec.dtype == "category":
        absent = missing_mask(raw, category=True)
        if absent.any() and not nullable:
            row = row_number(raw, int(np.flatnonzero(absent)[0]))
            raise DataValidationError(
                f"column '{spec.name}', row {row}: missing value (the model fills none)"
            )
        codes = pd.Index(spec.categories).get_indexer(raw.astype(str)).astype(np.float64)
        codes[absent] = np.nan  # the other -1 codes are unseen values
        return FeatureColumn(codes, "category", spec.categories)
    if spec.dtype == "boolean":
        return FeatureColumn(boolean_values(raw, spec.name, allow_missing=nullable), "boolean")
    return FeatureColumn(numeric_values(raw, spec.name, allow_missing=nullable), spec.dtype)


@dataclass(frozen=True)
class FeatureColumn:
    """One validated feature: its served-table values (lambda_app/preprocess.py), type and categories."""

    values: np.ndarray
    dtype: str
    categories: list[str] | None = None


def feature_column(
    raw: pd.Series, name: str, *, declared: str | None, allow_missing: bool, max_categories: int
) -> FeatureColumn:
    """One column as the model's feature: the declared type ([data] types) or the one its values show.

    What ``features = "auto"`` would skip is an error here, with what to do: datetimes and free text
    (more values than ``max_categories``); a constant column too, once every value is checked
    (``refuse_constant``).
    """
    text = declared is None and is_text_column(raw)
    head = raw.head(200)
    if pd.api.types.is_datetime64_any_dtype(raw) or (
        text and looks_like_datetimes(head[~missing_mask(head)])
    ):
        raise DataValidationError(
            f"column '{name}' holds datetimes: derive numeric features from it first (hour, day of week,"
            " age...) and list those instead"
        )
    return _typed_column(raw, name, "category" if text else declared, allow_missing, max_categories)


def _described(name: str, column: FeatureColumn) -> str:
    """``protocol category (3 values: icmp, tcp, udp), 1.2% missing``: for the training log."""
    text = f"{name} {column.dtype}"
    if column.categories:
        shown = ", ".join(column.categories[:EXAMPLE_CATEGORIES])
        more = ", ..." if len(column.categories) > EXAMPLE_CATEGORIES else ""
        text += f" ({len(column.categories)} values: {shown}{more})"
    missing = float(np.isnan(column.values).mean()) if len(column.values) else 0.0
    return text + (f", {100 * missing:.1f}% missing" if missing else "")


EXAMPLE_CATEGORIES = 5


def refuse_constant(column: FeatureColumn, name: str) -> None:
    """A listed feature with one value in every row is an error: it carries no information."""
    present = column.values[~np.isnan(column.values)]
    if len(present) > 1 and np.all(present == present[0]):
        shown = column.categories[int(present[0])] if column.categories else f"{present[0]:g}"
        raise DataValidationError(
            f"column '{name}' is constant ({shown} in every row): it carries no information;"
            " remove it from [data] features"
        )


def _typed_column(
    raw: pd.Series, name: str, declared: str | None, allow_missing: bool, max_categories: int
) -> FeatureColumn:
    if declared == "category":
        codes, categories = category_values(
            raw, name, allow_missing=allow_missing, max_categories=max_categories
        )
        return FeatureColumn(codes, "category", categories)
    if declared == "boolean" or (declared is None and is_boolean(raw)):
        return FeatureColumn(boolean_values(raw, name, allow_missing=allow_missing), "boolean")
    values = numeric_values(raw, name, allow_missing=allow_missing)
    if declared == "integer":
        fractional = np.flatnonzero(~np.isnan(values) & (values != np.round(values)))
        if len(fractional):
            row = int(fractional[0])
            raise DataValidationError(
                f"column '{name}', row {row_number(raw, row)}: {values[row]:g} is not an integer"
            )
    # A number is a number unless declared an integer: whole grams or whole ports in a file do not make
    # a measurement an integer, and /predict would then refuse 3750.5 with a 422.
    return FeatureColumn(values, declared or "number")


MISSING_LABEL = (
    "missing label: the label is never imputed, and a row without one can be neither trained nor"
    " evaluated on; drop such rows or fill their label"
)


def label_numbers(column: pd.Series, name: str) -> np.ndarray:
    """A numeric label column; a missing label is refused naming its row (never imputed)."""
    values = numeric_values(column, name, allow_missing=True)
    missing = np.flatnonzero(np.isnan(values))
    if len(missing):
        raise DataValidationError(
            f"column '{name}', row {row_number(column, int(missing[0]))}: {MISSING_LABEL}"
        )
    return values


def anomaly_labels(column: pd.Series, name: str) -> np.ndarray:
    """0/1 labels (1 = anomaly), or true/false (true = anomaly): the example task's, and the default."""
    if is_boolean(column):
        return boolean_values(column, name).astype(np.int64)
    values = label_numbers(column, name)
    bad = np.flatnonzero((values != 0) & (values != 1))
    if len(bad):
        row = int(bad[0])
        raise DataValidationError(
            f"column '{name}', row {row_number(column, row)}: label must be 0 or 1, got {values[row]:g}"
        )
    return values.astype(np.int64)


def validate(
    frame: pd.DataFrame,
    features: Sequence[str] | Literal["auto"],
    label: str | None,
    uri: str,
    sha256: str,
    labels_of: LabelParser = anomaly_labels,
    *,
    exclude: Sequence[str] = (),
    label_required: bool = False,
    min_rows: int = 1,
    missing: str = "impute",
    max_categories: int = 1000,
    types: dict[str, str] | None = None,
    specs: Sequence[FeatureSpec] | None = None,
    constant_ok: bool = False,
    log_types: bool = True,
) -> Dataset:
    """Check schema and values; return the arrays the model is fitted on.

    ``features="auto"`` chooses them (training/data/features.py) and says which and why. ``labels_of``
    validates and types the label column for the task (0/1, classes, numbers). A missing label
    column is an error when ``label_required``; otherwise the run is unlabelled, said loudly.
    ``missing``, ``max_categories`` and ``types`` are [data]'s (training/config.py). ``specs``: a
    published model's features (drift, promotion): its types, categories and fills, as served.
    ``constant_ok``: a constant feature is not an error (an imported model's sample).
    """
    types = types or {}
    if frame.empty or len(frame) == 0:
        raise DataValidationError(f"{uri}: no data rows")
    if len(frame) < min_rows:
        raise DataValidationError(f"{uri}: {len(frame)} rows; training needs at least {min_rows}")
    columns = [str(c) for c in frame.columns]
    if label is not None and label not in frame.columns:
        _missing_label(label, frame, uri, label_required)
        label = None
    if features == "auto":
        features = _auto_features(
            frame, label, exclude, uri, missing=missing, max_categories=max_categories, types=types
        )
    absent = [c for c in features if c not in frame.columns]
    if absent:
        raise DataValidationError(
            f"missing column(s) {', '.join(repr(c) for c in absent)}; found {', '.join(columns)}"
        )
    if specs is not None:
        checked = [served_column(frame[spec.name], spec) for spec in specs]
    else:
        checked = [
            feature_column(
                frame[c],
                c,
                declared=types.get(c),
                allow_missing=missing != "refuse",
                max_categories=max_categories,
            )
            for c in features
        ]
    labels = None if label is None else labels_of(frame[label], label)
    if specs is None and not constant_ok:
        for name, column in zip(features, checked, strict=True):
            refuse_constant(column, name)
    if specs is None and log_types:
        log.info(
            "feature types: %s", "; ".join(_described(n, c) for n, c in zip(features, checked, strict=True))
        )
    return Dataset(
        features=np.column_stack([c.values for c in checked]),
        feature_names=list(features),
        feature_dtypes=[c.dtype for c in checked],
        labels=labels,
        uri=uri,
        sha256=sha256,
        categories={name: c.categories for name, c in zip(features, checked, strict=True) if c.categories},
    )


def _missing_label(label: str, frame: pd.DataFrame, uri: str, required: bool) -> None:
    """An explicitly named label that is absent is an error; the default name, a loud warning that
    names the column most likely to be the label (by its values, and its name) and the command."""
    columns = [str(c) for c in frame.columns]
    found = ", ".join(columns)
    guesses = likely_labels(frame)
    column = guesses[0] if guesses else "<column>"
    hint = f" {column!r} looks like a label ({likely_label_evidence(frame[column])}):" if guesses else ""
    if required:
        raise DataValidationError(
            f"label column {label!r} is not in {uri}; found: {found}.{hint}"
            f" pass --label {column}, or set [data] label to the right column (an anomaly detector may"
            ' go without: label = "")'
        )
    log.warning(
        "NO LABEL: %s has no column %r (found: %s), so this model is trained UNLABELLED:"
        " no precision or recall, a quantile threshold.%s"
        " to train on it, pass --label %s (and --task if it holds 0/1), or set [data] label in the config",
        uri,
        label,
        found,
        hint,
        column,
    )


MINORITY_SHARE = 0.35
"""A two-valued column whose rarer value is at most this share looks like a label (churned, fraud)."""


def likely_labels(frame: pd.DataFrame) -> list[str]:
    """Columns whose values look like a label, the ones whose name says so first: a target-like name
    with a few distinct values, or two values with a small minority (a 0/1 flag like ``churned``)."""
    named, flagged = [], []
    for name in map(str, frame.columns):
        values = label_like_values(frame[name])
        if values is None:
            continue
        if looks_like_target(name):
            named.append(name)
        elif values == 2 and _minority_share(frame[name]) <= MINORITY_SHARE:
            flagged.append(name)
    return named + flagged


def _minority_share(column: pd.Series) -> float:
    counts = column.astype(str).str.strip().value_counts(normalize=True)
    return float(counts.min())


def likely_label_evidence(column: pd.Series) -> str:
    counts = column.astype(str).str.strip().value_counts(normalize=True)
    if len(counts) == 2:
        return f"2 values, {100 * counts.min():.0f}% {counts.idxmin()!r}"
    return f"{len(counts)} distinct values"


def _auto_features(
    frame: pd.DataFrame,
    label: str | None,
    exclude: Sequence[str],
    uri: str,
    *,
    missing: str,
    max_categories: int,
    types: dict[str, str],
) -> list[str]:
    choice = choose_features(
        frame, label, list(exclude), missing=missing, max_categories=max_categories, types=types
    )
    for name, reason in choice.skipped:
        log.warning("feature %r skipped: %s", name, reason)
    if not choice.names:
        raise DataValidationError(
            f'{uri}: features = "auto" found no usable column'
            + (f" ({'; '.join(f'{n}: {r}' for n, r in choice.skipped)})" if choice.skipped else "")
            + "; list the features in [data] features"
        )
    log.info('features = "auto": %s', ", ".join(choice.names))
    return choice.names
