"""Estimator construction from the training config: no code edits to change the model.

``[model] estimator`` is a short name of one of the five anomaly detectors, or the import path of
any scikit-learn estimator (``sklearn.ensemble.RandomForestClassifier``). Parameters are checked
against the estimator's own before anything is fitted, with a one-line error naming the bad key.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from training.config import ModelConfig
from training.exceptions import ConfigError

ANOMALY_DETECTORS = {
    "isolation_forest": "sklearn.ensemble.IsolationForest",
    "local_outlier_factor": "sklearn.neighbors.LocalOutlierFactor",
    "one_class_svm": "sklearn.svm.OneClassSVM",
    "elliptic_envelope": "sklearn.covariance.EllipticEnvelope",
    "robust_z_score": "training.estimators.robust_z.RobustZScore",
}
SUPPORTED_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "anomaly": tuple(ANOMALY_DETECTORS),
    "classification": (
        "sklearn.linear_model.LogisticRegression",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.GradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "xgboost.XGBClassifier",
        "lightgbm.LGBMClassifier",
        "sklearn.tree.DecisionTreeClassifier",
        "sklearn.neighbors.KNeighborsClassifier",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.neural_network.MLPClassifier",
    ),
    "regression": (
        "sklearn.linear_model.LinearRegression",
        "sklearn.linear_model.Ridge",
        "sklearn.linear_model.Lasso",
        "sklearn.linear_model.ElasticNet",
        "sklearn.ensemble.RandomForestRegressor",
        "sklearn.ensemble.ExtraTreesRegressor",
        "sklearn.ensemble.GradientBoostingRegressor",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "xgboost.XGBRegressor",
        "lightgbm.LGBMRegressor",
        "sklearn.tree.DecisionTreeRegressor",
        "sklearn.neighbors.KNeighborsRegressor",
        "sklearn.svm.SVR",
        "sklearn.neural_network.MLPRegressor",
    ),
}
"""Estimators proven to train, convert, pass parity and serve (tests/integration/test_supported_estimators).

Others may work: training converts a copy first and refuses, before the real fit, any the converter
cannot handle. Not supported: SVC (its probability option is deprecated in scikit-learn 1.9)."""

QUIET_PARAMS = {"LGBMClassifier": {"verbose": -1}, "LGBMRegressor": {"verbose": -1}}
"""Defaults set unless the config sets them: LightGBM otherwise prints a warning per fit to stdout."""

AUTO = "auto"
"""``[model] estimator = "auto"``: the best of the task's families below, chosen by cross-validation."""


@dataclass(frozen=True)
class Family:
    """One candidate of ``estimator = "auto"``: an estimator, its starting parameters, whether a scaler
    goes in front, and the space the winner is tuned over."""

    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    space: dict[str, list[Any]] = field(default_factory=dict)
    scale: bool | None = None
    max_rows: int | None = None  # tried on at most this many fitting rows, with the reason (skip_reason)
    skip_reason: str = ""


BOOSTING_SPACE: dict[str, list[Any]] = {
    "learning_rate": [0.03, 0.1, 0.3],
    "max_leaf_nodes": [15, 31, 63],
    "l2_regularization": [0.0, 1.0],
}
"""HistGradientBoosting's space under ``auto``, for classes and numbers alike."""

AUTO_FAMILIES: dict[str, tuple[Family, ...]] = {
    "anomaly": (  # ranked on labels (PR-AUC by default): each detector is still fitted without them
        Family(
            "isolation_forest",
            params={"n_estimators": 200},
            space={
                "n_estimators": [100, 200, 300],
                "max_samples": [256, 512, 1024],
                "max_features": [0.67, 1.0],
            },
        ),
        Family("robust_z_score"),
        Family("elliptic_envelope"),
        Family(
            "local_outlier_factor",
            space={"n_neighbors": [10, 20, 50]},
            max_rows=10_000,
            skip_reason="its served graph holds every training row and measures each answer against all"
            " of them: name local_outlier_factor to serve it on more",
        ),
    ),
    "classification": (
        Family(
            "sklearn.ensemble.HistGradientBoostingClassifier",
            space=BOOSTING_SPACE,
        ),
        Family(
            "sklearn.ensemble.RandomForestClassifier",
            params={"n_estimators": 200},
            space={"max_features": ["sqrt", 0.5], "min_samples_leaf": [1, 3, 10]},
        ),
        Family(
            "sklearn.linear_model.LogisticRegression",
            params={"max_iter": 5000},
            space={"C": [0.01, 0.1, 1.0, 10.0]},
            scale=True,
        ),
    ),
    "regression": (
        Family(
            "sklearn.ensemble.HistGradientBoostingRegressor",
            space=BOOSTING_SPACE,
        ),
        Family(
            "sklearn.ensemble.RandomForestRegressor",
            params={"n_estimators": 200},
            space={"max_features": [1.0, 0.5, "sqrt"], "min_samples_leaf": [1, 3, 10]},
        ),
        Family("sklearn.linear_model.Ridge", space={"alpha": [0.1, 1.0, 10.0, 100.0]}, scale=True),
    ),
}
"""What ``estimator = "auto"`` cross-validates, in this order (a tie goes to the earlier): gradient-boosted
trees (the strongest default on tables), a random forest (robust with little tuning), a regularised linear
model (the best on small or linear data, and the fastest to serve). Each starts from scikit-learn's defaults
(a 200-tree forest) and the winner is tuned over its space. XGBoost and LightGBM are not in the list:
HistGradientBoosting is the same kind of model without another library; name them to use them.
Anomaly detection ranks detectors on labelled data only (fitted without the labels, scored on held-out
labelled rows); the one-class SVM is left out (its fit grows with the square of the rows)."""

UNLABELLED_DEFAULT = Family("isolation_forest")
"""``estimator = "auto"`` for anomaly detection without labels to rank detectors by: an IsolationForest
with scikit-learn's defaults, untuned, as when no estimator is named."""

HIST_GRADIENT_BOOSTING = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}

DISTANCE_BASED = {"LocalOutlierFactor", "OneClassSVM", "EllipticEnvelope"}
"""Detectors that measure distances, so a scaler goes in front of them unless the config says not."""


def family_model(config: ModelConfig, family: Family) -> ModelConfig:
    """``config`` (task, target transform) with ``family``'s estimator, parameters and scaling."""
    return config.model_copy(
        update={"estimator": family.estimator, "params": dict(family.params), "scale": family.scale}
    )


def check_auto(config: ModelConfig) -> None:
    """``estimator = "auto"`` chooses the estimator and its parameters: refuse what would be ignored."""
    if config.params:
        raise ConfigError(
            'model.params: estimator = "auto" chooses the estimator and tunes its parameters; name an'
            f" estimator to set them ({', '.join(f.estimator for f in AUTO_FAMILIES[config.task])}...)"
        )
    if config.scale is not None:
        raise ConfigError(
            'model.scale: estimator = "auto" scales in front of the linear model only; leave it out'
        )


def estimator_class(config: ModelConfig) -> type:
    """The estimator's class, from a short name or an import path; ConfigError names what is wrong."""
    if config.estimator == AUTO:
        raise ConfigError('model.estimator "auto" is resolved to an estimator before one is built')
    path = ANOMALY_DETECTORS.get(config.estimator, config.estimator)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ConfigError(
            f"model.estimator {config.estimator!r}: use {', '.join(ANOMALY_DETECTORS)}"
            " or an import path such as sklearn.ensemble.RandomForestClassifier"
        )
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model.estimator {config.estimator!r} cannot be imported: {exc}") from exc
    if not isinstance(cls, type) or not hasattr(cls, "get_params") or not hasattr(cls, "fit"):
        raise ConfigError(f"model.estimator {config.estimator!r} is not a scikit-learn estimator")
    return cls


def check_params(cls: type, params: dict[str, Any], where: str) -> None:
    """Refuse any key the estimator does not take, naming it and what it does take."""
    known = param_names(cls)
    for key in params:
        if key not in known:
            raise ConfigError(
                f"{where}: {cls.__name__} has no parameter {key!r} (it takes {', '.join(sorted(known))})"
            )


def param_names(cls: type) -> set[str]:
    """The parameters an estimator takes. XGBoost and LightGBM take theirs through ``**kwargs``, which
    scikit-learn's ``_get_param_names`` does not list; their ``get_params`` does, for a default instance."""
    names = set(cls._get_param_names())  # type: ignore[attr-defined]  # scikit-learn's own list
    if cls.__module__.split(".")[0] in {"xgboost", "lightgbm"}:
        names |= set(cls().get_params())
    return names


def seeded_params(config: ModelConfig, seed: int, searched: Iterable[str] = ()) -> dict[str, Any]:
    """The configured parameters with ``random_state = seed`` where the estimator takes one and
    neither the parameters nor the search space set it: one recorded seed makes the run repeatable."""
    params = dict(config.params)
    known = param_names(estimator_class(config))
    if "random_state" in known and "random_state" not in params and "random_state" not in set(searched):
        params["random_state"] = seed
    return params


def build_estimator(config: ModelConfig, params: dict[str, Any] | None = None) -> Any:
    """An unfitted estimator for ``config`` (with ``params`` instead of config.params when given)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cls = estimator_class(config)
    params = dict(config.params if params is None else params)
    check_params(cls, params, "model.params")
    if cls.__name__ == "LocalOutlierFactor":
        params.setdefault("novelty", True)  # serving scores new rows: novelty mode
    for key, value in QUIET_PARAMS.get(cls.__name__, {}).items():
        params.setdefault(key, value)
    if cls.__name__ in HIST_GRADIENT_BOOSTING and params.get("categorical_features", "from_dtype") not in (
        None,
        "from_dtype",
    ):
        raise ConfigError(
            f"model.params.categorical_features: {cls.__name__}'s own categorical splits do not convert"
            " to ONNX exactly (skl2onnx answers them wrongly); leave it out: the job encodes categories in"
            " front of the model itself ([data] types marks a column as a category)"
        )
    if cls.__module__.startswith("xgboost") and cls.__name__ == "XGBClassifier":
        from training.estimators.xgboost_labels import XGBClassifier as Labelled

        cls = Labelled  # the data's classes, not only 0..n-1
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.params for {cls.__name__}: {exc}") from exc
    check_task(estimator, config.task)
    scale = config.scale if config.scale is not None else cls.__name__ in DISTANCE_BASED
    built = make_pipeline(StandardScaler(), estimator) if scale else estimator
    if config.target_transform == "log":
        import numpy as np
        from sklearn.compose import TransformedTargetRegressor

        built = TransformedTargetRegressor(
            regressor=built, func=np.log1p, inverse_func=np.expm1, check_inverse=False
        )
    return built


def check_task(estimator: Any, task: str) -> None:
    """The estimator must be of the configured task's kind (a regressor cannot be a classifier)."""
    from sklearn.base import is_classifier, is_outlier_detector, is_regressor

    check = {"anomaly": is_outlier_detector, "classification": is_classifier, "regression": is_regressor}
    if not check[task](estimator):
        raise ConfigError(
            f"model.estimator {type(estimator).__name__} is not a {task} estimator (model.task = {task!r})"
        )
    if task == "classification" and not hasattr(estimator, "predict_proba"):
        raise ConfigError(
            f"{type(estimator).__name__} has no predict_proba (as configured): the service answers class"
            " probabilities; choose a classifier that has them"
        )


def final_estimator(estimator: Any) -> Any:
    """The model itself: inside a target transform (fitted or not) and at the end of a pipeline."""
    if type(estimator).__name__ == "TransformedTargetRegressor":
        estimator = getattr(estimator, "regressor_", estimator.regressor)
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def estimator_name(estimator: Any) -> str:
    """The import path users write: ``sklearn.ensemble.RandomForestClassifier``, ``xgboost.XGBClassifier``
    (the shortest public module that exports the class)."""
    final = type(final_estimator(estimator))
    if f"{final.__module__}.{final.__name__}" in ANOMALY_DETECTORS.values():  # this project's own detector
        return f"{final.__module__}.{final.__name__}"
    cls = next(c for c in final.__mro__ if not c.__module__.startswith("training."))
    module = cls.__module__.split("._")[0]
    top = module.split(".")[0]
    if top != "sklearn" and getattr(importlib.import_module(top), cls.__name__, None) is cls:
        module = top
    return f"{module}.{cls.__name__}"
