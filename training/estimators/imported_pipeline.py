"""A fitted Pipeline that starts with a ColumnTransformer, translated into what the service serves.

The service never runs scikit-learn: it fills and encodes the served table with numpy
(lambda_app/preprocess.py) and runs one ONNX graph on the result. So a user's fitted preprocessing is
read column by column into the manifest's feature specs, and only the numeric rest is converted:

- ``SimpleImputer`` -> the feature's ``fill`` (its fitted ``statistics_``: median, mean, most frequent
  or constant);
- ``OrdinalEncoder`` -> a category feature, ``encoding = "ordinal"``, its fitted ``categories_``
  (unseen values must be encoded as -1, as the service does);
- ``OneHotEncoder`` -> a category feature, ``encoding = "onehot"``, its fitted ``categories_``
  (unseen values must be ignored, nothing dropped: the service's all-zero row);
- ``StandardScaler`` -> kept, as one scaler over the encoded columns (mean 0 and scale 1 where a
  column is not scaled: exactly the identity), in front of the rest of the pipeline, and converted
  with it;
- ``"passthrough"`` -> the feature as it is; ``"drop"`` -> not a feature at all.

The features are listed in the ColumnTransformer's output order, so the service's encoding produces
the columns the estimator was fitted on, in its order. Why translate rather than convert the whole
pipeline: strings never enter ONNX Runtime (the graph keeps one float input, as every served model
does), categories and fills become visible in the manifest, ``/model`` and drift, and unseen values
are flagged per row like a trained model's. ``check`` proves the translation equal, bit for bit, to
the fitted ColumnTransformer on the sample and on the sample with missing and unseen values added.
Anything else (a ``FunctionTransformer``, a custom class, sparse output...) is refused naming the
step and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lambda_app.preprocess import UNSEEN, model_input
from lambda_app.registry import FeatureSpec
from lambda_app.registry.manifest import Encoding
from training.data.validate import Dataset
from training.estimators.convert import CompileError
from training.estimators.preprocess import refuse_unless_equal, routes_missing
from training.exceptions import TrainingError

ACCEPTED = "SimpleImputer, OneHotEncoder, OrdinalEncoder, StandardScaler, 'passthrough' or 'drop'"
PROBE_ROWS = 2000
"""Rows of the sample the translation is also checked on with missing and unseen values added."""


class UnservablePipelineError(TrainingError):
    """The pipeline's preprocessing is not something the service can reproduce exactly."""


@dataclass(frozen=True)
class ColumnPlan:
    """One input column as the pipeline prepares it: what the service must reproduce."""

    name: str
    part: str  # the ColumnTransformer part it goes through (for messages)
    encoding: Encoding | None = None
    categories: list[Any] | None = None  # the encoder's fitted categories_, as fitted (str, int...)
    fill: Any = None  # the imputer's fitted statistic, as fitted
    mean: float = 0.0  # the scaler's, or the identity
    scale: float = 1.0

    @property
    def texts(self) -> list[str] | None:
        """The categories as the service receives them: JSON strings."""
        return None if self.categories is None else [category_text(c) for c in self.categories]

    @property
    def width(self) -> int:
        return len(self.categories or ()) if self.encoding == "onehot" else 1


@dataclass(frozen=True)
class PipelineTranslation:
    """The served features of an imported pipeline, and the estimator that takes their encoding."""

    pipeline: Any
    columns: list[ColumnPlan]
    estimator: Any  # the scaler (if any) then the pipeline's steps after its ColumnTransformer
    specs: list[FeatureSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def category_names(self) -> list[str]:
        return [column.name for column in self.columns if column.encoding is not None]

    def with_specs(self, dataset: Dataset) -> PipelineTranslation:
        """The feature specs, typed from the sample read with ``category_names`` as categories.

        Raises:
            UnservablePipelineError: a column the pipeline does not encode holds text; a column with
                missing values has no imputer; an imputer fills a value the encoder never saw.
        """
        specs = []
        for index, column in enumerate(self.columns):
            dtype = dataset.feature_dtypes[index]
            values = dataset.features[:, index]
            if column.encoding is None and dtype == "category":
                raise UnservablePipelineError(
                    f"column {column.name!r} holds text, and the pipeline's {column.part!r} part passes it"
                    " on unencoded: encode it with a OneHotEncoder or an OrdinalEncoder"
                )
            spec: dict[str, Any] = {"name": column.name, "dtype": "category" if column.encoding else dtype}
            if column.fill is None and (np.isnan(values).any() or column.name in dataset.file_missing):
                if column.encoding is not None or not routes_missing(self.pipeline):
                    raise UnservablePipelineError(
                        f"column {column.name!r} has missing values in the sample, and the pipeline's"
                        f" {column.part!r} part fills none: put a SimpleImputer in front of it (the"
                        " service answers a missing value with the fill the pipeline learned, or leaves it"
                        " to gradient-boosted trees: HistGradientBoosting, XGBoost, LightGBM)"
                    )
                spec["missing"] = "native"  # the trees learned where missing values go
            if column.encoding is not None:
                spec.update(categories=column.texts, encoding=column.encoding)
            if column.fill is not None:
                spec["fill"] = self._fill(column, dtype)
            specs.append(FeatureSpec.model_validate(spec))
        return PipelineTranslation(self.pipeline, self.columns, self.estimator, specs)

    @staticmethod
    def _fill(column: ColumnPlan, dtype: str) -> bool | float | str:
        if column.encoding is not None:
            text = category_text(column.fill)
            if text not in (column.texts or ()):
                raise UnservablePipelineError(
                    f"column {column.name!r}: the imputer fills {column.fill!r}, a value its encoder"
                    " never saw, so a missing value would be answered as an unseen one: impute with"
                    " strategy='most_frequent', or a constant the encoder was fitted on"
                )
            return text
        value = float(column.fill)
        if dtype == "boolean":
            if value not in (0.0, 1.0):
                raise UnservablePipelineError(
                    f"column {column.name!r} is true/false but the imputer fills {value:g}:"
                    " use strategy='most_frequent' for it"
                )
            return bool(value)
        return value

    def served_table(self, dataset: Dataset) -> np.ndarray:
        """The sample as the service's served table: a category as its index in the encoder's
        categories (the sample's own categories are the values it happens to hold), -1 when unseen."""
        table = dataset.features.copy()
        for index, column in enumerate(self.columns):
            if column.encoding is None:
                continue
            known = {text: float(i) for i, text in enumerate(column.texts or ())}
            categories = column.categories or []
            remap = np.array(
                [known.get(_as_category_text(t, categories), UNSEEN) for t in dataset.categories[column.name]]
                or [UNSEEN]
            )
            present = ~np.isnan(table[:, index])
            table[present, index] = remap[table[present, index].astype(np.int64)]
            if present.any() and (table[present, index] == UNSEEN).all():
                shown = ", ".join(repr(t) for t in dataset.categories[column.name][:5])
                raise UnservablePipelineError(
                    f"none of the sample's values of {column.name!r} ({shown}) is among the categories its"
                    f" encoder learned ({', '.join(map(repr, (column.texts or [])[:5]))}): is it the"
                    " sample of this model?"
                )
        return table

    def encode(self, table: np.ndarray) -> np.ndarray:
        """The estimator's input for served-table rows: the service's own encoding."""
        return model_input(table, self.specs)

    def raw_frame(self, table: np.ndarray) -> pd.DataFrame:
        """Served-table rows as the user's raw table: categories as fitted (their own type), a value
        the encoder never saw where unseen, NaN where missing; the pipeline's own input."""
        frame: dict[str, Any] = {}
        for index, column in enumerate(self.columns):
            values = table[:, index]
            if column.categories is None:
                frame[column.name] = values
                continue
            known = np.array([*column.categories, _unseen_value(column.categories)], dtype=object)
            raw = known[np.where(np.isnan(values), 0, values).astype(np.int64)]  # -1: the unseen value
            raw[np.isnan(values)] = np.nan
            frame[column.name] = raw
        return pd.DataFrame(frame)

    def check(self, table: np.ndarray, seed: int) -> dict[str, Any]:
        """The service's encoding (and scaling) against the fitted ColumnTransformer on ``table`` and
        on its rows with missing and unseen values added: exactly equal, else CompileError. The
        pipeline's answers are compared with the translated estimator's too."""
        transformer = self.pipeline.steps[0][1]
        probe = self.with_missing_and_unseen(table, seed)
        for rows in (table, probe):
            raw = self.raw_frame(rows)
            expected = transformer.transform(raw)
            expected = np.asarray(
                expected.toarray() if hasattr(expected, "toarray") else expected, dtype=np.float64
            )
            encoded = self.encode(rows)
            refuse_unless_equal(self.scaled(encoded), expected, "the pipeline's ColumnTransformer")
            ours, theirs = self.estimator.predict(encoded), self.pipeline.predict(raw)
            ours, theirs = np.asarray(ours), np.asarray(theirs)
            if not np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"):
                raise CompileError("the translated pipeline answers differently from the imported one")
        return {"rows": len(table) + len(probe), "exactly_equal": True, "with_missing_and_unseen": len(probe)}

    def scaled(self, encoded: np.ndarray) -> np.ndarray:
        """What the ColumnTransformer hands the estimator: the encoding, then its scalers (float64)."""
        means, scales = column_scaling(self.columns)
        return encoded if means is None else (encoded - means) / scales

    def with_missing_and_unseen(self, table: np.ndarray, seed: int) -> np.ndarray:
        """Up to PROBE_ROWS rows, a fifth of the cells the pipeline fills made missing, a tenth of the
        category cells unseen."""
        rng = np.random.default_rng(seed)
        probe = table[: min(len(table), PROBE_ROWS)].copy()
        for index, spec in enumerate(self.specs):
            if spec.takes_missing:
                probe[rng.random(len(probe)) < 0.2, index] = np.nan
            if spec.dtype == "category":
                probe[rng.random(len(probe)) < 0.1, index] = UNSEEN
        return probe

    def description(self) -> list[dict[str, Any]]:
        """How each feature is served, for the evaluation record."""
        described = []
        for column in self.columns:
            entry: dict[str, Any] = {"feature": column.name, "part": column.part}
            if column.encoding is not None:
                entry.update(encoding=column.encoding, categories=len(column.categories or ()))
            if column.fill is not None:
                entry["fill"] = category_text(column.fill) if column.encoding else float(column.fill)
            if (column.mean, column.scale) != (0.0, 1.0):
                entry["scaled"] = {"mean": column.mean, "scale": column.scale}
            described.append(entry)
        return described


SCALER_STEP = "scaled_columns"
"""The name of the kept StandardScaler step in front of the estimator."""


def starts_with_column_transformer(estimator: Any) -> bool:
    """True for a Pipeline whose first step is a ColumnTransformer: the pipelines translated here."""
    steps: Any = getattr(estimator, "steps", None)
    return bool(steps) and type(steps[0][1]).__name__ == "ColumnTransformer"


def translate(pipeline: Any) -> PipelineTranslation:
    """The pipeline's ColumnTransformer read column by column (see the module docstring).

    Raises:
        UnservablePipelineError: naming the part and step the service cannot reproduce, and what to
            change.
    """
    from sklearn.compose import ColumnTransformer

    transformer = pipeline.steps[0][1]
    for name, step in pipeline.steps[1:]:
        if isinstance(step, ColumnTransformer):
            raise UnservablePipelineError(
                f"the pipeline's step {name!r} is a second ColumnTransformer: only its first step may be one"
            )
    if getattr(transformer, "sparse_output_", False):
        raise UnservablePipelineError(
            "the ColumnTransformer's output is sparse: set sparse_threshold=0 on it (or"
            " sparse_output=False on its OneHotEncoder) and fit again"
        )
    if transformer.transformer_weights:
        raise UnservablePipelineError(
            "the ColumnTransformer weighs its parts (transformer_weights): remove the weights and fit again"
        )
    if getattr(transformer, "feature_names_in_", None) is None:
        raise UnservablePipelineError(
            "the ColumnTransformer was fitted on an array without column names: fit the pipeline on a"
            " DataFrame, so its columns (the service's fields) have names"
        )
    columns: list[ColumnPlan] = []
    for part, step, selected in transformer.transformers_:
        if step == "drop":
            continue
        names = _selected_names(selected, list(transformer.feature_names_in_))
        if not names:
            continue
        columns.extend(_plan_part(str(part), step, names))
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise UnservablePipelineError(
                f"column {column.name!r} goes through two parts of the ColumnTransformer: the service"
                " takes each field once; copy the column under another name before the pipeline"
            )
        seen.add(column.name)
    if not columns:
        raise UnservablePipelineError("the ColumnTransformer drops every column")
    return PipelineTranslation(pipeline, columns, _estimator_after(pipeline, columns))


def _selected_names(selected: Any, names_in: list[str]) -> list[str]:
    """A part's columns by name, however the ColumnTransformer was told them."""
    if isinstance(selected, str):
        return [selected]
    values = np.arange(len(names_in))[selected] if not _all_text(selected) else selected
    return [str(v) if isinstance(v, str) else names_in[int(v)] for v in np.atleast_1d(values)]


def _all_text(selected: Any) -> bool:
    try:
        return len(selected) > 0 and all(isinstance(v, str) for v in selected)
    except TypeError:
        return False


def _plan_part(part: str, step: Any, names: list[str]) -> list[ColumnPlan]:
    """The columns of one ColumnTransformer part: an optional imputer, then at most one of an
    encoder or a scaler (or nothing: passthrough)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    steps = [s for s in _flattened(step) if not _is_identity(s, part)]
    imputer = steps.pop(0) if steps and isinstance(steps[0], SimpleImputer) else None
    last = steps.pop(0) if steps else None
    odd = steps[0] if steps else None
    if last is not None and not isinstance(last, OneHotEncoder | OrdinalEncoder | StandardScaler):
        odd = last
    if odd is not None:
        raise UnservablePipelineError(
            f"the ColumnTransformer's {part!r} part ({', '.join(names)}) holds {_qualified(odd)} where"
            " the service reproduces an optional SimpleImputer, then one of OneHotEncoder,"
            f" OrdinalEncoder or StandardScaler (or nothing): {_advice(odd)}"
        )
    fills: list[Any] = [None] * len(names)
    if imputer is not None:
        fills = _imputer_fills(imputer, part, names)
    plans = []
    for index, (name, fill) in enumerate(zip(names, fills, strict=True)):
        plan = ColumnPlan(name=name, part=part, fill=fill)
        if isinstance(last, OneHotEncoder):
            plan = _onehot(last, index, plan)
        elif isinstance(last, OrdinalEncoder):
            plan = _ordinal(last, index, plan)
        elif isinstance(last, StandardScaler):
            mean = float(last.mean_[index]) if last.with_mean else 0.0
            scale = float(last.scale_[index]) if last.with_std else 1.0
            plan = ColumnPlan(name=name, part=part, fill=fill, mean=mean, scale=scale)
        plans.append(plan)
    return plans


def _flattened(step: Any) -> list[Any]:
    """A part's transformers in order (a Pipeline's steps, nested ones too)."""
    if isinstance(step, str):
        return [] if step == "passthrough" else [step]
    inner = getattr(step, "steps", None)
    if inner is not None:
        return [t for _, s in inner for t in _flattened(s)]
    return [step]


def _is_identity(step: Any, part: str) -> bool:
    """'passthrough' as the ColumnTransformer stores it once fitted: a FunctionTransformer with no
    function. One with a function is refused."""
    if step is None or step == "passthrough":
        return True
    if type(step).__name__ != "FunctionTransformer":
        return False
    if step.func is None and step.inverse_func is None:
        return True
    raise UnservablePipelineError(
        f"the ColumnTransformer's {part!r} part holds a FunctionTransformer"
        f" ({getattr(step.func, '__name__', repr(step.func))}): its Python function cannot run in the"
        " service or be checked there; compute that column in the data before the pipeline, or use"
        " 'passthrough'"
    )


def _qualified(step: Any) -> str:
    cls = type(step)
    return f"{cls.__module__.split('._')[0]}.{cls.__name__}" if not isinstance(step, str) else repr(step)


def _advice(step: Any) -> str:
    from sklearn.impute import SimpleImputer

    if isinstance(step, SimpleImputer):
        return "put the SimpleImputer first, and only one"
    return "move other transformations into the data before the pipeline, or after the ColumnTransformer"


def _imputer_fills(imputer: Any, part: str, names: list[str]) -> list[Any]:
    missing_values = imputer.missing_values
    if not (isinstance(missing_values, float) and math.isnan(missing_values)):
        raise UnservablePipelineError(
            f"the SimpleImputer of the ColumnTransformer's {part!r} part treats {missing_values!r} as"
            " missing: the service's missing value is a null or an empty cell; set missing_values=np.nan"
        )
    if imputer.add_indicator:
        raise UnservablePipelineError(
            f"the SimpleImputer of the ColumnTransformer's {part!r} part adds indicator columns: set"
            " add_indicator=False (or add the indicator as a column of the data)"
        )
    statistics = list(imputer.statistics_)
    if len(statistics) != len(names) or any(_is_nan(s) for s in statistics):
        raise UnservablePipelineError(
            f"the SimpleImputer of the ColumnTransformer's {part!r} part learned no value for some of"
            f" {', '.join(names)} (no values when fitted): drop those columns"
        )
    return statistics


def _onehot(encoder: Any, index: int, plan: ColumnPlan) -> ColumnPlan:
    where = f"the OneHotEncoder of the ColumnTransformer's {plan.part!r} part"
    if encoder.drop is not None:
        raise UnservablePipelineError(
            f"{where} drops a category (drop={encoder.drop!r}): the service answers an unseen value as"
            " all zeros, which would then mean the dropped category; set drop=None and fit again"
        )
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if infrequent is not None and any(group is not None for group in infrequent):
        raise UnservablePipelineError(
            f"{where} groups infrequent categories: set min_frequency=None, max_categories=None"
        )
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise UnservablePipelineError(
            f"{where} has handle_unknown={encoder.handle_unknown!r}: the service answers a value it never"
            " saw (as all zeros, flagged per row) instead of failing; set handle_unknown='ignore'"
        )
    return _with_categories(plan, list(encoder.categories_[index]), "onehot", where)


def _ordinal(encoder: Any, index: int, plan: ColumnPlan) -> ColumnPlan:
    where = f"the OrdinalEncoder of the ColumnTransformer's {plan.part!r} part"
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if infrequent is not None and any(group is not None for group in infrequent):
        raise UnservablePipelineError(
            f"{where} groups infrequent categories: set min_frequency=None, max_categories=None"
        )
    if encoder.handle_unknown != "use_encoded_value" or encoder.unknown_value != UNSEEN:
        raise UnservablePipelineError(
            f"{where} has handle_unknown={encoder.handle_unknown!r}, unknown_value={encoder.unknown_value!r}:"
            " the service answers a value it never saw as -1 (flagged per row); set"
            " handle_unknown='use_encoded_value', unknown_value=-1"
        )
    return _with_categories(plan, list(encoder.categories_[index]), "ordinal", where)


def _with_categories(plan: ColumnPlan, categories: list[Any], encoding: Encoding, where: str) -> ColumnPlan:
    if any(_is_nan(c) for c in categories):
        raise UnservablePipelineError(
            f"{where} learned a missing value as a category of {plan.name!r}: put a SimpleImputer in front"
            " of it, so a missing value is served as the value it fills"
        )
    texts = [category_text(c) for c in categories]
    if "" in texts or len(set(texts)) != len(texts):
        raise UnservablePipelineError(
            f"{where}: the categories of {plan.name!r} are not distinct non-empty texts: {texts[:10]}"
        )
    return ColumnPlan(
        name=plan.name, part=plan.part, encoding=encoding, categories=categories, fill=plan.fill
    )


def column_scaling(columns: Sequence[ColumnPlan]) -> tuple[np.ndarray | None, np.ndarray]:
    """The scalers' means and scales over the encoded columns (0 and 1 where a column is not scaled:
    x - 0 and x / 1 are exactly x); None when nothing is scaled."""
    scales = np.concatenate([np.full(c.width, c.scale) for c in columns])
    if all((c.mean, c.scale) == (0.0, 1.0) for c in columns):
        return None, scales
    return np.concatenate([np.full(c.width, c.mean) for c in columns]), scales


def _estimator_after(pipeline: Any, columns: list[ColumnPlan]) -> Any:
    """The pipeline's steps after the ColumnTransformer, behind one scaler over the encoded columns
    when any column was scaled: a StandardScaler, or for a tree model the float32-rounding one that
    compiles exactly (training/estimators/scaled_trees.py)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rest = [(name, step) for name, step in pipeline.steps[1:] if step not in (None, "passthrough")]
    means, scales = column_scaling(columns)
    if means is None:
        return rest[0][1] if len(rest) == 1 else Pipeline(rest)
    from training.estimators.scaled_trees import Float32Scaled, reads_float32

    if len(rest) == 1 and reads_float32(rest[0][1]):
        return Pipeline([(SCALER_STEP, Float32Scaled.of(means, scales)), *rest])
    scaler = StandardScaler()
    scaler.mean_ = means
    scaler.scale_ = scales
    scaler.var_ = scales**2
    scaler.n_features_in_ = len(means)
    scaler.n_samples_seen_ = 1
    return Pipeline([(SCALER_STEP, scaler), *rest])


def category_text(value: Any) -> str:
    """A category as the service receives it (a JSON string): text as it is, a whole number without
    its decimals (2.0 -> "2"), other numbers as Python writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _numeric(categories: Sequence[Any]) -> bool:
    return bool(categories) and all(
        isinstance(c, int | float | np.integer | np.floating) and not isinstance(c, bool | np.bool_)
        for c in categories
    )


def _as_category_text(text: str, categories: Sequence[Any]) -> str:
    """A sample cell's text as the category text it matches: "2.0" is the category 2 of a numeric
    encoder, as scikit-learn compares numbers; "True" is the category true of a boolean one."""
    if categories and all(isinstance(c, bool | np.bool_) for c in categories):
        return text.strip().lower()
    if not _numeric(categories):
        return text
    try:
        return category_text(float(text))
    except ValueError:
        return text


def _unseen_value(categories: Sequence[Any]) -> Any:
    """A value of the categories' own type that none of them is."""
    if _numeric(categories):
        return max(float(c) for c in categories) + 1.0
    if all(isinstance(c, bool | np.bool_) for c in categories):
        return 2.0  # neither true nor false
    return "\x00unseen"


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))
