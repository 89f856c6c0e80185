"""Bring your own model: publish a scikit-learn estimator or Pipeline fitted elsewhere.

``python -m training import --model FILE --data SAMPLE --model-uri URI [--alias A] [--task T]
[--label COL]``. The feature schema is inferred from the sample (the estimator's own
``feature_names_in_`` when it has them), the model is converted and parity-checked on the sample
and on random rows beyond it, evaluated when the sample has labels (beside the task's baseline,
fitted on the sample itself), and published like a trained model.

Loading runs code, so it is never implicit:
- ``.skops`` files load with skops and an explicit list of trusted types: the types the file needs
  beyond skops' defaults are printed, and loading goes on only when ``--trust`` names every one.
- ``.joblib`` / ``.pkl`` / ``.pickle`` files load only with ``--allow-pickle`` (a pickle can run
  anything on load: use it for files you made yourself).
- XGBoost ``.json`` / ``.ubj`` and LightGBM ``.txt`` model files are data and load as they are
  (training/estimators/native_boosters.py).

A Pipeline whose first step is a ColumnTransformer keeps its preprocessing: its imputers and
encoders become the features' fills and categories (training/estimators/imported_pipeline.py), the
rest is converted; any other model is served numbers and true/false only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lambda_app.registry import FeatureSpec, Provenance, open_storage
from training.config import (
    DEFAULT_NAMES,
    LAMBDA_MEMORY_MB,
    DataConfig,
    ModelConfig,
    ThresholdConfig,
    TrainingConfig,
)
from training.data.read import read_columns
from training.data.stream import load_dataset
from training.data.validate import Dataset
from training.estimators.convert import CompileError, compile_model, converter_reason
from training.estimators.explanation import explanation_for_publishing
from training.estimators.families import estimator_name
from training.estimators.footprint import measure, refuse_if_too_big
from training.estimators.imported_pipeline import (
    PipelineTranslation,
    UnservablePipelineError,
    starts_with_column_transformer,
    translate,
)
from training.estimators.native_boosters import (
    NATIVE_SUFFIXES,
    NativeModelError,
    described,
    load_native,
    prepared,
)
from training.estimators.preprocess import routes_missing
from training.estimators.scaled_trees import needs_float64, scaled_trees
from training.exceptions import DataValidationError, TrainingError
from training.publish import Published, code_revision, library_versions, publish
from training.tasks import Splits, gate_on_baseline, parity_probe, task_kind
from training.tasks.base import PARITY_PROBE_ROWS, compile_with_parity

log = logging.getLogger("training")

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class ImportRefusedError(TrainingError):
    """The model file cannot be published as it is (unsafe to load, unfitted, unconvertible...)."""


@dataclass(frozen=True)
class LoadedFile:
    estimator: Any
    name: str
    data: bytes
    feature_names: list[str] | None = None  # recorded by the file itself (XGBoost, LightGBM)


def load_model_file(
    path: str,
    *,
    trust: list[str],
    allow_pickle: bool,
    task: str | None = None,
    classes: list[Any] | None = None,
) -> LoadedFile:
    """Load a fitted estimator from ``path`` under the rules in the module docstring."""
    file = Path(path)
    if not file.is_file():
        raise ImportRefusedError(f"model file {path} does not exist")
    data = file.read_bytes()
    suffix = file.suffix.lower()
    if suffix in NATIVE_SUFFIXES:
        try:
            native = load_native(file, task, classes)
        except NativeModelError as exc:
            raise ImportRefusedError(str(exc)) from exc
        return LoadedFile(native.estimator, f"model{suffix}", data, native.feature_names)
    if classes is not None:
        raise ImportRefusedError(
            "--classes names the classes of an XGBoost or LightGBM model file (numbered 0..n-1 there);"
            f" a scikit-learn estimator keeps its own: drop --classes for {path}"
        )
    if suffix in SKOPS_SUFFIXES:
        import skops.io

        needed = skops.io.get_untrusted_types(data=data)
        missing = [name for name in needed if name not in trust]
        if missing:
            raise ImportRefusedError(
                f"{path} needs types skops does not trust by default: {', '.join(missing)}."
                f" Check them, then confirm with: {' '.join(f'--trust {name}' for name in missing)}"
            )
        if needed:
            log.info("loading %s trusting %s", path, ", ".join(needed))
        return LoadedFile(skops.io.loads(data, trusted=needed), f"model{suffix}", data)
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ImportRefusedError(
                f"{path} is a pickle: loading it runs whatever code it holds. Save the model with skops"
                " (skops.io.dump) instead, or pass --allow-pickle for a file you made yourself"
            )
        import joblib

        return LoadedFile(joblib.load(file), f"model{suffix}", data)
    raise ImportRefusedError(
        f"{path}: unknown model format; use .skops, .joblib/.pkl with --allow-pickle, an XGBoost"
        " .json/.ubj or a LightGBM .txt model file"
    )


def infer_task(estimator: Any) -> str:
    from sklearn.base import is_classifier, is_outlier_detector, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    if is_outlier_detector(estimator):
        return "anomaly"
    raise ImportRefusedError(
        f"{type(estimator).__name__} is not a classifier, regressor or outlier detector: pass --task"
    )


def feature_names(
    estimator: Any, columns: list[str], label: str | None, source: str, recorded: list[str] | None = None
) -> list[str]:
    """The model's features: its own recorded names, else every sample column but the label."""
    known = recorded if recorded is not None else getattr(estimator, "feature_names_in_", None)
    if known is not None:
        names = [_sample_name(str(n), columns) for n in known]
        lacking = [n for n in names if n not in columns]
        if lacking:
            raise ImportRefusedError(
                f"the sample {source} lacks feature(s) the model was fitted on: {', '.join(lacking)}"
            )
        return names
    names = [c for c in columns if c != label]
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and len(names) != int(expected):
        raise ImportRefusedError(
            f"the model takes {expected} features (fitted without names); the sample {source} has"
            f" {len(names)} columns besides the label: keep only the model's, in its order"
        )
    return names


def import_model(
    model_path: str,
    data_uri: str,
    model_uri: str,
    *,
    alias: str | None = "production",
    task: str | None = None,
    label: str | None = None,
    name: str | None = None,
    trust: list[str] | None = None,
    allow_pickle: bool = False,
    allow_worse_than_baseline: bool = False,
    s3_client: Any = None,
    classes: list[Any] | None = None,
) -> Published:
    """Publish a model fitted elsewhere: load, check, convert, parity-check, evaluate, publish."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    loaded = load_model_file(
        model_path, trust=trust or [], allow_pickle=allow_pickle, task=task, classes=classes
    )
    estimator = loaded.estimator
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise ImportRefusedError(
            f"{model_path} holds a {type(estimator).__name__}, not a scikit-learn estimator"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise ImportRefusedError(f"{model_path}: the {type(estimator).__name__} in it is not fitted") from exc
    task = task or infer_task(estimator)
    kind = task_kind(task)
    columns = read_columns(data_uri, s3_client=s3_client)
    if label is not None and label not in columns:
        raise ImportRefusedError(f"the sample {data_uri} has no label column {label!r}")
    inputs = (
        _pipeline_inputs(estimator, columns, label, data_uri, kind.labels, s3_client)
        if starts_with_column_transformer(estimator)
        else _numeric_inputs(
            estimator, columns, label, data_uri, kind.labels, s3_client, loaded.feature_names
        )
    )
    names, dataset, served = inputs.names, inputs.dataset, prepared(inputs.estimator)
    if label is None:
        others = [c for c in columns if c not in names]
        log.warning(
            "no --label: the model is published without holdout metrics.%s",
            f" The sample's column(s) {', '.join(others)} are not features of the model: to evaluate it"
            f" on the sample, pass --label {others[0]}"
            if others
            else " To evaluate it on the sample, pass --label with its label column",
        )
    labels = kind.usable(dataset.labels, data_uri) if dataset.labels is not None else None
    if labels is not None and kind.name == "classification":
        refuse_labels_outside_classes(served, labels, label)
    # A record of what was imported, not a recipe to build from: constructed, not validated as one
    # (its estimator may be a Pipeline, which no config can build).
    config = TrainingConfig.model_construct(
        name=name or DEFAULT_NAMES[kind.name],
        data=DataConfig(features=names, label=label),
        model=ModelConfig.model_construct(
            task=kind.name,
            estimator=described(estimator) or f"{type(estimator).__module__}.{type(estimator).__name__}",
            params={},
            scale=None,
        ),
        threshold=ThresholdConfig(strategy="estimator"),
    )
    compile_model(served, kind.name, inputs.width)  # an unconvertible model is refused first
    table = inputs.table
    x = inputs.encode(table)
    everything = np.arange(dataset.rows)
    # Fitted elsewhere: every sample row is both the reference and the evaluation set.
    splits = Splits(
        x,
        labels,
        everything,
        everything,
        everything,
        names,
        table=None if x is table else table,
        categories={s.name: list(s.categories) for s in inputs.specs if s.categories},
    )
    try:
        outcome = kind.outcome(served, splits, config)
    except ValueError as exc:  # scikit-learn refusing the rows: wrong width, wrong values
        raise ImportRefusedError(
            f"the model cannot score the sample's {len(names)} feature columns: {converter_reason(exc)}"
        ) from exc
    gate_on_baseline(
        kind,
        config,
        outcome.metrics,
        outcome.baseline_metrics,
        outcome.baseline_name,
        allow_worse_than_baseline,
    )
    checks = {"sample": x, "random": parity_probe(x, PARITY_PROBE_ROWS, seed=0)}
    translation = inputs.translation
    if translation is not None:
        # The gate sees the sample as the service encodes it with missing and unseen values, too.
        checks["sample_with_missing_and_unseen"] = x_probe = translation.encode(
            translation.with_missing_and_unseen(table, seed=0)
        )
        log.info("parity rows with missing and unseen values: %d", len(x_probe))
    serving, converter, parity = _compiled(kind, served, outcome, checks)
    if translation is not None:
        parity["preprocessing"] = translation.check(table, seed=0)
    footprint = measure(serving, x.shape[1], LAMBDA_MEMORY_MB)
    refuse_if_too_big(footprint)
    converter = {**converter, **footprint.as_converter_entries()}
    evaluation = {
        "task": task,
        "imported_from": model_path,
        "split": {"sample": dataset.rows},
        "metrics": outcome.metrics,
        "baseline": {
            "name": f"{outcome.baseline_name}, fitted on the sample",
            "metrics": outcome.baseline_metrics,
        },
        "parity": parity,
        "converter": converter,
        "footprint": footprint.as_dict(),
        **outcome.evaluation,
    }
    if translation is not None:
        evaluation["preprocessing"] = translation.description()
    # Fitted elsewhere: the sample stands for the fitting rows (the linear models' mean, the checks).
    native = [spec.name for spec in inputs.specs if spec.missing == "native"]
    explanation = explanation_for_publishing(served, kind.name, x, outcome.classes, native)
    evaluation["explanation"] = explanation.record
    return publish(
        open_storage(model_uri, s3_client=s3_client),
        name=config.name,
        task=kind.name,
        estimator=estimator,
        serving_model=serving,
        converter=converter,
        estimator_name=described(estimator) or estimator_name(estimator),
        features=inputs.specs,
        label=label if labels is not None else None,
        outcome=outcome,
        evaluation=evaluation,
        provenance=_provenance(estimator, dataset, model_path, config),
        alias=alias,
        model_file=(loaded.name, loaded.data),
        explanation=explanation.data,
    )


def _compiled(
    kind: Any, served: Any, outcome: Any, checks: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    """compile_with_parity, in float64 from the start for a scaler in front of trees (its only exact
    graph); should ONNX Runtime refuse a float64 graph, float32 and the gate decide, and a refusal says
    what to change."""
    if not needs_float64(served):
        return compile_with_parity(kind, served, outcome, checks)
    try:
        return compile_with_parity(kind, served, outcome, checks, "double")
    except CompileError:
        raise
    except Exception as exc:  # ONNX Runtime refusing the float64 graph itself
        log.warning("no float64 graph runs (%s); trying float32", converter_reason(exc))
    try:
        return compile_with_parity(kind, served, outcome, checks)
    except CompileError as exc:
        raise ImportRefusedError(
            f"{exc}. A tree model needs no StandardScaler in front of it: fit it without one"
        ) from exc


@dataclass(frozen=True)
class ServedInputs:
    """The sample as the service serves it, and the estimator that takes its encoding."""

    names: list[str]
    dataset: Dataset
    table: np.ndarray  # the served table (lambda_app/preprocess.py)
    specs: list[FeatureSpec]
    estimator: Any  # what is converted and parity-checked
    translation: PipelineTranslation | None = None

    @property
    def width(self) -> int:
        return sum(spec.width for spec in self.specs)

    def encode(self, table: np.ndarray) -> np.ndarray:
        return table if self.translation is None else self.translation.encode(table)


def _numeric_inputs(
    estimator: Any,
    columns: list[str],
    label: str | None,
    data_uri: str,
    labels_of: Any,
    s3_client: Any,
    recorded: list[str] | None = None,
) -> ServedInputs:
    """A model fitted on numbers: the sample must be numbers (or true/false), complete unless the model
    is gradient-boosted trees, which take missing values as they are (their trees learned where they go)."""
    names = feature_names(estimator, columns, label, data_uri, recorded)
    native = routes_missing(estimator)
    try:
        dataset = load_dataset(
            data_uri,
            names,
            label,
            s3_client=s3_client,
            labels_of=labels_of,
            missing="native" if native else "refuse",
            constant_ok=True,
        )
    except DataValidationError as exc:
        where, _, _ = str(exc).partition(";")
        if "missing value" not in where:
            raise
        raise ImportRefusedError(
            f"{where}: this model fills no missing values; import a Pipeline whose ColumnTransformer has a"
            " SimpleImputer for the column, or complete the sample"
        ) from exc
    if dataset.categories:
        raise ImportRefusedError(
            f"the sample's column(s) {', '.join(map(repr, dataset.categories))} hold text: an imported model"
            " is served numbers and true/false only, unless it is a Pipeline whose ColumnTransformer"
            " encodes them (OneHotEncoder, OrdinalEncoder); or train it here (python -m training)"
        )
    missing = np.isnan(dataset.features).any(axis=0)
    specs = [
        FeatureSpec(name=n, dtype=d, missing="native" if missing[i] or n in dataset.file_missing else None)
        for i, (n, d) in enumerate(zip(names, dataset.feature_dtypes, strict=True))
    ]
    # Same answers; a scaler in front of trees compiles exactly only this way.
    return ServedInputs(names, dataset, dataset.features, specs, scaled_trees(estimator))


def refuse_labels_outside_classes(estimator: Any, labels: np.ndarray, label: str | None) -> None:
    """A classifier evaluated on a sample labelled in other terms than its classes would be scored as
    wrong on every row: refused, naming both. A model file numbers its classes 0..n-1."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return
    known = {_class_key(c) for c in np.asarray(classes).tolist()}
    found = sorted({str(v) for v in np.asarray(labels).tolist()})
    if {_class_key(v) for v in found} <= known:
        return
    shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    model = ", ".join(str(c) for c in np.asarray(classes).tolist()[:10])
    raise DataValidationError(
        f"the sample's labels in '{label}' ({shown}) are not the model's classes ({model}): a model"
        " file numbers its classes 0..n-1 in the order it was trained with, so name them in that order"
        " with --classes (e.g. --classes a,b,c), recode the label column, or import the fitted"
        " scikit-learn estimator, which keeps the names"
    )


def _class_key(value: Any) -> str:
    """A class label compared as written: 1, 1.0 and "1" alike; true and True alike."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).lower()
    return str(int(number)) if number.is_integer() else str(number)


def _pipeline_inputs(
    estimator: Any, columns: list[str], label: str | None, data_uri: str, labels_of: Any, s3_client: Any
) -> ServedInputs:
    """A Pipeline starting with a ColumnTransformer: its preprocessing translated into the features'
    fills, categories and encodings (training/estimators/imported_pipeline.py)."""
    try:
        translation = translate(estimator)
    except UnservablePipelineError as exc:
        raise ImportRefusedError(f"the pipeline cannot be served exactly: {exc}") from exc
    names = translation.names
    lacking = [n for n in names if n not in columns]
    if lacking:
        raise ImportRefusedError(
            f"the sample {data_uri} lacks feature(s) the model was fitted on: {', '.join(lacking)}"
        )
    if label is not None and label in names:
        raise ImportRefusedError(f"the label {label!r} is one of the pipeline's features")
    dataset = load_dataset(
        data_uri,
        names,
        label,
        s3_client=s3_client,
        labels_of=labels_of,
        missing="impute",  # allowed to be read; refused below where the pipeline fills none
        types=dict.fromkeys(translation.category_names, "category"),
        max_categories=MAX_SAMPLE_CATEGORIES,
        constant_ok=True,
    )
    try:
        translation = translation.with_specs(dataset)
    except UnservablePipelineError as exc:
        raise ImportRefusedError(f"the pipeline cannot be served exactly: {exc}") from exc
    log.info("the pipeline's preprocessing, as served: %s", translation.description())
    return ServedInputs(
        names,
        dataset,
        translation.served_table(dataset),
        translation.specs,
        translation.estimator,
        translation,
    )


MAX_SAMPLE_CATEGORIES = 1_000_000
"""The encoder's categories are the model's; the sample's distinct values only need reading."""


def _sample_name(name: str, columns: list[str]) -> str:
    """The sample's column for a recorded feature name: LightGBM records "mean radius" as
    "mean_radius" (no spaces), so a name the sample lacks is matched with its spaces as underscores."""
    if name in columns:
        return name
    matches = [c for c in columns if re.sub(r"\s", "_", c) == name]
    return matches[0] if len(matches) == 1 else name


def _provenance(estimator: Any, dataset: Dataset, model_path: str, config: TrainingConfig) -> Provenance:

    params = {key: _plain(value) for key, value in estimator.get_params(deep=False).items()}
    return Provenance(
        data_uri=dataset.uri,
        data_sha256=dataset.sha256,
        rows=dataset.rows,
        params={"estimator": described(estimator) or estimator_name(estimator), **params},
        library_versions=library_versions(),
        code_revision=code_revision(),
        config={"source": "import", "model_file": model_path, **config.model_dump(mode="json")},
    )


def _plain(value: Any) -> Any:
    """A parameter as JSON can hold it (nested estimators and callables by their repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)[:500]
