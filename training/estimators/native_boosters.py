"""XGBoost (``.json``, ``.ubj``) and LightGBM (``.txt``) model files, as estimators the import can check,
evaluate and convert like a scikit-learn one.

These files are data, not code: reading them runs nothing, so they need no ``--allow-pickle``. The
task is ``--task`` when given, else the objective the file records (binary or multi-class -> a
classifier, a regression objective -> a regressor); any other objective (ranking, survival...) is
refused. The features are the names the file records, else the sample's columns besides the label,
in order. Conversion goes through onnxmltools' converters, registered with skl2onnx by
``training.estimators.boosted_trees`` where that module exists, else here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from training.exceptions import TrainingError

NATIVE_SUFFIXES = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm"}
CLASSIFYING = ("binary", "multi")
REGRESSING = ("reg", "regression")


class NativeModelError(TrainingError):
    """The file is not a model this import can serve."""


@dataclass(frozen=True)
class NativeModel:
    """A native model file as an estimator, and the feature names it records (if any)."""

    estimator: Any
    feature_names: list[str] | None


def load_native(path: Path, task: str | None, classes: list[Any] | None = None) -> NativeModel:
    """The model in ``path`` (a suffix of NATIVE_SUFFIXES) for ``task`` or its own objective.

    ``classes``: a classifier file's classes 0..n-1 by name, in that order (``--classes``), which the
    model then answers, the ONNX graph included; the file itself records only their count."""
    library = NATIVE_SUFFIXES[path.suffix.lower()]
    register_converters()
    native = _xgboost(path, task, classes) if library == "xgboost" else _lightgbm(path, task, classes)
    if classes is not None and not isinstance(native.estimator, ClassifierMixin):
        raise NativeModelError(f"{path}: --classes names a classifier's classes; this model is a regressor")
    return native


def _named(classes: list[Any] | None, count: int, path: Path) -> np.ndarray | None:
    """``classes`` as the model's class labels, when their count is the file's."""
    if classes is None:
        return None
    if len(classes) != count or len(set(classes)) != len(classes):
        raise NativeModelError(
            f"{path} has {count} classes (0..{count - 1}); --classes names {len(classes)}"
            f"{' with repeats' if len(set(classes)) != len(classes) else ''}: name each once, in that order"
        )
    return np.array(classes, dtype=object if any(isinstance(c, str) for c in classes) else np.int64)


def _task_of(objective: str, task: str | None, path: Path) -> str:
    if task in ("classification", "regression"):
        return task
    if task is not None:
        raise NativeModelError(f"{path}: a {task} model cannot come from a boosted-trees file")
    head = objective.replace(":", "_").split("_")[0]
    if head in CLASSIFYING or objective.startswith("multiclass"):
        return "classification"
    if head in REGRESSING:
        return "regression"
    raise NativeModelError(
        f"{path}: objective {objective!r} is neither classification nor regression; pass --task if it is one"
    )


def _xgboost(path: Path, task: str | None, classes: list[Any] | None = None) -> NativeModel:
    import xgboost

    from training.estimators.xgboost_labels import XGBClassifier

    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        raise NativeModelError(f"{path} is not an XGBoost model file: {str(exc).splitlines()[0]}") from exc
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    kind = _task_of(objective, task, path)
    model = XGBClassifier() if kind == "classification" else xgboost.XGBRegressor()
    model.load_model(str(path))
    if kind == "classification":
        model.labels_ = _named(classes, int(model.n_classes_), path)  # None: 0..n-1
    names = model.get_booster().feature_names
    # onnxmltools reads features by position (f0, f1...): the names are kept here, not in the booster.
    model.get_booster().feature_names = None
    return NativeModel(model, list(names) if names else None)


def _lightgbm(path: Path, task: str | None, classes: list[Any] | None = None) -> NativeModel:
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise NativeModelError(f"{path} is not a LightGBM model file: {str(exc).splitlines()[0]}") from exc
    objective = str(booster.dump_model(num_iteration=0).get("objective", "")).split(" ")[0]
    kind = _task_of(objective, task, path)
    names = [str(n) for n in booster.feature_name()]
    automatic = names == [f"Column_{i}" for i in range(len(names))]
    if kind == "classification":
        count = max(int(booster.dump_model(num_iteration=0).get("num_class", 1)), 2)
        model: Any = LightGBMFileClassifier.of(booster, count)
        named = _named(classes, count, path)
        if named is not None:
            model.classes_ = named
    else:
        model = LightGBMFileRegressor.of(booster)
    return NativeModel(model, None if automatic else names)


class _LightGBMFile(BaseEstimator):  # type: ignore[misc]
    """A LightGBM Booster read from its file, with what onnxmltools' converter reads."""

    boosting_type = "gbdt"

    def __init__(self) -> None:
        pass

    def _setup(self, booster: Any) -> None:
        self.booster_ = booster
        self.n_features_in_ = int(booster.num_feature())
        if booster.params.get("average_output") or "average_output" in booster.model_to_string()[:2000]:
            self.boosting_type = "rf"

    def fit(self, x: Any, y: Any = None) -> _LightGBMFile:
        raise NativeModelError("a model read from a LightGBM file is fitted already")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")


class LightGBMFileClassifier(ClassifierMixin, _LightGBMFile):  # type: ignore[misc]
    """A binary or multi-class LightGBM model file: classes 0..n-1, as LightGBM numbers them."""

    @classmethod
    def of(cls, booster: Any, classes: int) -> LightGBMFileClassifier:
        model = cls()
        model._setup(booster)
        model.classes_ = np.arange(classes)
        return model

    def predict_proba(self, x: Any) -> np.ndarray:
        raw = np.asarray(self.booster_.predict(np.asarray(x, dtype=np.float64)))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, x: Any) -> np.ndarray:
        labels: np.ndarray = self.classes_[np.argmax(self.predict_proba(x), axis=1)]
        return labels


class LightGBMFileRegressor(RegressorMixin, _LightGBMFile):  # type: ignore[misc]
    """A regression LightGBM model file."""

    @classmethod
    def of(cls, booster: Any) -> LightGBMFileRegressor:
        model = cls()
        model._setup(booster)
        return model

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self.booster_.predict(np.asarray(x, dtype=np.float64)))


def prepared(estimator: Any) -> Any:
    """An imported estimator ready for conversion: for an XGBoost or LightGBM model (alone or at the
    end of a pipeline) the converters are registered, and an XGBoost booster's feature names are
    dropped (onnxmltools reads features by position; the import keeps the names itself)."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    library = type(final).__module__.split(".")[0]
    if library not in ("xgboost", "lightgbm"):
        return estimator
    register_converters()
    if library == "xgboost" and final.get_booster().feature_names:
        final.get_booster().feature_names = None
    return estimator


def described(estimator: Any) -> str | None:
    """How the manifest names a model read from a LightGBM file (its wrapper here is no library's)."""
    if isinstance(estimator, LightGBMFileClassifier | LightGBMFileRegressor):
        return "lightgbm.Booster"
    return None


_REGISTERED = False


def register_converters() -> None:
    """XGBoost's and this module's LightGBM converters, registered with skl2onnx once."""
    global _REGISTERED
    if _REGISTERED:
        return
    # onnxmltools ships no type information: its converters are looked up, not imported statically
    convert_lightgbm = importlib.import_module(
        "onnxmltools.convert.lightgbm.operator_converters.LightGbm"
    ).convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from training.estimators import boosted_trees

    boosted_trees.register()  # XGBoost's and LightGBM's scikit-learn classes
    update_registered_converter(
        LightGBMFileClassifier,
        "ImportedLightGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LightGBMFileRegressor,
        "ImportedLightGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
    )
    _REGISTERED = True
