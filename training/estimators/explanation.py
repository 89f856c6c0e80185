"""The explanation artifact of a fitted model: what serving needs to explain its answers per row.

Serving computes path-dependent Tree SHAP, or exact linear contributions, from an
``ExplanationArtifact`` (lambda_app/explain/artifact.py states the format). This module reads the
fitted model exactly as it was compiled to ONNX (a bare estimator, or one behind a StandardScaler)
and writes its trees as root-to-leaf paths, or its coefficients, in the serving graph's input space.

Covered: IsolationForest; random forests, extra trees and decision trees; GradientBoosting,
HistGradientBoosting, XGBoost and LightGBM; logistic and least-squares linear models. Each tree's
cover (the share of training rows that follows a branch) is what shap's TreeExplainer uses for that
library, so the numbers agree with shap's: ``weighted_n_node_samples`` for scikit-learn's trees, the
node ``count`` for HistGradientBoosting, the hessian sum (``sum_hessian``, the "Cover" column) for
XGBoost and ``internal_count``/``leaf_count`` for LightGBM.

Nothing is taken on trust: the offset (an init score, a base margin) is the model's own output minus
the paths a row follows, the same on every row checked, and the whole artifact is then checked against
the model on a sample of the fitting rows (``verify_explanation``). Anything else (nearest neighbours,
kernels, networks, a transformed target...) raises NotExplainableError with a one-line reason; the
model is published without an explanation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lambda_app.explain.artifact import (
    ExplanationArtifact,
    ExplanationArtifactError,
    Linear,
    PathGroup,
    Space,
    Split,
    TreePaths,
    dump,
    validate,
)
from training.exceptions import TrainingError

log = logging.getLogger("training")

TOLERANCE = 1e-6
"""How far the artifact's output may be from the model's, times max(1, the output's size)."""
FLOAT32_TOLERANCE = 1e-5
"""The same for a library that sums its trees in float32 (XGBoost): its own rounding is ~1e-7 a tree."""
CHECKED_ROWS = 500
"""At most this many fitting rows are checked (fewer for a large ensemble: CHECKED_ELEMENTS)."""
CHECKED_ELEMENTS = 40_000_000
"""Rows x path columns the check evaluates at most; it checks at least MIN_CHECKED_ROWS rows."""
MIN_CHECKED_ROWS = 64
OFFSET_ROWS = 32
"""Fitting rows the offset is measured on (it must be the same on each)."""
CHUNK_ELEMENTS = 1 << 22
"""Rows are evaluated in chunks so that rows x path columns stays near this."""

COVERED = "explanations cover tree ensembles and linear models"
TASK_SPACES: dict[str, tuple[Space, ...]] = {
    "anomaly": ("path_length",),
    "classification": ("probability", "log_odds", "margin"),
    "regression": ("prediction",),
}

FOREST_CLASSIFIERS = {"RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier"}
FOREST_REGRESSORS = {"RandomForestRegressor", "ExtraTreesRegressor", "DecisionTreeRegressor"}
LINEAR_CLASSIFIERS = {"LogisticRegression", "LogisticRegressionCV"}
LINEAR_REGRESSORS = {
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
    "Lars",
    "LarsCV",
    "LassoLars",
    "LassoLarsCV",
    "LassoLarsIC",
    "BayesianRidge",
    "ARDRegression",
    "HuberRegressor",
    "SGDRegressor",
}
"""scikit-learn's linear models whose answer is ``intercept_ + coef_ @ x`` itself (no link function)."""
IDENTITY_LOSSES = {"squared_error", "absolute_error", "quantile"}
"""HistGradientBoostingRegressor losses whose prediction is the trees' sum (poisson, gamma: its exp)."""


class NotExplainableError(TrainingError):
    """The model has no exact explanation: the model is published without one."""


@dataclass(frozen=True)
class _Tree:
    """One tree in a common form: children (-1 at a leaf), the graph input column and threshold of each
    split, each node's cover, and each leaf's weighted value per output."""

    left: np.ndarray
    right: np.ndarray
    column: np.ndarray
    threshold: np.ndarray
    cover: np.ndarray
    value: np.ndarray  # (nodes, outputs)


@dataclass(frozen=True)
class _Family:
    """What explaining one kind of model takes: its raw output and how the served number follows from it.

    ``raw`` and ``served`` take the model's own input (after its scaler); ``trees`` or ``linear`` are
    read only when exporting. ``link`` says how ``served`` follows from ``raw``: "identity" (nothing to
    check), "sigmoid" (the second class's probability) or "softmax".
    """

    name: str
    space: Space
    outputs: int
    raw: Callable[[np.ndarray], np.ndarray]
    trees: Callable[[], list[_Tree]] | None = None
    linear: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    split: Split = "le"
    float32: bool = True
    normaliser: float | None = None
    served: Callable[[np.ndarray], np.ndarray] | None = None
    link: str = "identity"
    tolerance: float = TOLERANCE
    classes: list[Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Parts:
    """The model behind its optional scaler, and what the scaler does (shift, then divide)."""

    model: Any
    scaler: Any = None

    @property
    def shift_scale(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        scaler = self.scaler
        if scaler is None:
            return None, None
        width = int(scaler.n_features_in_)
        mean = getattr(scaler, "mean_", None)
        scale = getattr(scaler, "scale_", None)
        shift = (
            np.asarray(mean, dtype=np.float64)
            if getattr(scaler, "with_mean", True) and mean is not None
            else np.zeros(width)
        )
        divide = (
            np.asarray(scale, dtype=np.float64)
            if getattr(scaler, "with_std", True) and scale is not None
            else np.ones(width)
        )
        return shift, divide

    def model_input(self, x: np.ndarray) -> np.ndarray:
        return x if self.scaler is None else np.asarray(self.scaler.transform(x))


@dataclass(frozen=True)
class PublishedExplanation:
    """What publishing writes (the artifact's bytes, or None) and records in the evaluation."""

    data: bytes | None
    record: dict[str, Any]


def explanation_for_publishing(
    estimator: Any, task: str, x_fit: np.ndarray, classes: list[Any] | None
) -> PublishedExplanation:
    """The explanation artifact to publish beside the graph, or None with the reason, recorded either way.

    A model without an exact explanation is published without one (one info line says why); an
    unexpected failure of the export does not stop publishing either, and is logged as a warning.
    """
    try:
        artifact = export_explanation(estimator, task, x_fit, classes)
        data = dump(artifact)
    except NotExplainableError as exc:
        log.info("no explanation published: %s", exc)
        return PublishedExplanation(None, {"available": False, "reason": str(exc)})
    except Exception as exc:  # a model this export has never met: publish it, say why it is unexplained
        log.warning("no explanation published: the export failed (%r)", exc, exc_info=True)
        return PublishedExplanation(None, {"available": False, "reason": f"the export failed: {exc!r}"})
    model = artifact.model
    record: dict[str, Any] = {
        "available": True,
        "space": artifact.space,
        "kind": "linear" if isinstance(model, Linear) else "trees",
        "bytes": len(data),
        "max_difference": artifact.notes["max_difference"],
        "checked_rows": artifact.notes["checked_rows"],
    }
    if isinstance(model, TreePaths):
        record["paths"] = sum(len(group.column) for group in model.groups)
    log.info(
        "explanation: %s, %s, %d bytes, checked on %d rows (max difference %.2g)",
        record["kind"],
        artifact.space,
        len(data),
        record["checked_rows"],
        record["max_difference"],
    )
    return PublishedExplanation(data, record)


def export_explanation(
    estimator: Any, task: str, x_fit: np.ndarray, classes: list[Any] | None
) -> ExplanationArtifact:
    """The explanation artifact of ``estimator``, checked against it on a sample of ``x_fit``.

    Args:
        estimator: the fitted model as compiled to ONNX: it takes the graph input (float64, categories
            encoded, missing values filled); bare, or behind a StandardScaler.
        task: "anomaly", "classification" or "regression".
        x_fit: the rows it was fitted on, in the graph input space (the linear models' mean, the checks).
        classes: the classes in the manifest's order (classification), checked against the model's.

    Raises:
        NotExplainableError: the model is of a family without an exact explanation here, or the
            explanation disagrees with it.
    """
    x_fit = np.asarray(x_fit, dtype=np.float64)
    if x_fit.ndim != 2 or not len(x_fit):
        raise NotExplainableError("no fitting rows to check an explanation on")
    parts = _parts(estimator)
    family = _family(parts)
    if family.space not in TASK_SPACES.get(task, ()):
        raise NotExplainableError(f"{family.name} is not a {task} model: no explanation")
    _check_classes(family, classes)
    inputs = int(x_fit.shape[1])
    probe = x_fit[_spread(len(x_fit), OFFSET_ROWS)]
    _check_link(family, parts, probe)
    notes = {"family": family.name, **family.notes}
    if family.linear is not None:
        model: Linear | TreePaths = _linear(family, parts, x_fit)
    else:
        model = _tree_paths(family, parts, inputs, probe)
    artifact = ExplanationArtifact(
        space=family.space, inputs=inputs, model=model, normaliser=family.normaliser, notes=notes
    )
    rows = x_fit[_spread(len(x_fit), _checked_rows(artifact))]
    difference = _verify(artifact, family, parts, rows)
    notes.update(checked_rows=len(rows), max_difference=difference)
    try:
        validate(artifact)  # as serving will when it loads it
    except ExplanationArtifactError as exc:
        raise NotExplainableError(f"the explanation of {family.name} is not valid: {exc}") from exc
    return artifact


def verify_explanation(artifact: ExplanationArtifact, estimator: Any, x_rows: np.ndarray) -> float:
    """The largest difference between the raw output recomputed from the artifact alone and the model's
    own (decision function, probabilities, prediction, or an IsolationForest's mean path length).

    Raises:
        NotExplainableError: beyond the tolerance, TOLERANCE x max(1, the output's size).
    """
    parts = _parts(estimator)
    return _verify(artifact, _family(parts), parts, np.asarray(x_rows, dtype=np.float64))


def explained_output(artifact: ExplanationArtifact, x: np.ndarray) -> np.ndarray:
    """The raw output (rows, outputs) of graph input rows ``x``, from the artifact alone."""
    x = np.asarray(x, dtype=np.float64)
    model = artifact.model
    if isinstance(model, Linear):
        result: np.ndarray = model.intercept + x @ model.coef.T
        return result
    total: np.ndarray = model.offset + _paths_sum(model, x)
    return total


# The model behind its scaler --------------------------------------------------------------------------


def _parts(estimator: Any) -> _Parts:
    name = type(estimator).__name__
    if name == "TransformedTargetRegressor":
        raise NotExplainableError(
            "a model of a transformed target has no exact explanation: its trees or coefficients add up"
            " to the transformed value, not to the served prediction"
        )
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return _Parts(estimator)
    kept = [step for _, step in steps if step is not None and not (isinstance(step, str))]
    if len(kept) == 1:
        return _Parts(kept[0])
    scaler = kept[0] if len(kept) == 2 else None
    if scaler is None or type(scaler).__name__ not in ("StandardScaler", "Float32Scaled"):
        odd = next((type(s).__name__ for s in kept[:-1] if s is not scaler), type(kept[0]).__name__)
        raise NotExplainableError(
            f"a pipeline with {odd} before {type(kept[-1]).__name__} has no exact explanation in the"
            " served columns: only a StandardScaler may come before the model"
        )
    return _Parts(kept[-1], scaler)


def _family(parts: _Parts) -> _Family:
    """What explaining ``parts.model`` takes; NotExplainableError for a family without an exact one."""
    model = parts.model
    name = type(model).__name__
    libraries = {c.__module__.split(".")[0] for c in type(model).__mro__}
    if name == "IsolationForest":
        return _isolation_forest(model)
    if name in FOREST_CLASSIFIERS | FOREST_REGRESSORS:
        return _forest(model, name in FOREST_CLASSIFIERS)
    if name in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        return _gradient_boosting(model)
    if name in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        return _hist_gradient_boosting(model)
    if "xgboost" in libraries:
        return _xgboost(model)
    if "lightgbm" in libraries or type(model).__name__ in ("LightGBMFileClassifier", "LightGBMFileRegressor"):
        return _lightgbm(model)
    if name in LINEAR_CLASSIFIERS | LINEAR_REGRESSORS:
        if parts.scaler is not None and type(parts.scaler).__name__ != "StandardScaler":
            raise NotExplainableError(f"{name} behind a float32-rounding scaler has no exact explanation")
        return _linear_family(model, name in LINEAR_CLASSIFIERS)
    raise NotExplainableError(f"{name} has no exact explanation: {COVERED}")


def _check_classes(family: _Family, classes: list[Any] | None) -> None:
    if family.classes is None:
        return
    mine = [str(c) for c in family.classes]
    expected = len(mine) if family.space != "log_odds" else 1
    if len(mine) < 2 or family.outputs != expected:
        raise NotExplainableError(
            f"{family.name} answers {family.outputs} raw outputs for {len(mine)} classes:"
            " no exact explanation"
        )
    if classes is not None and [str(c) for c in classes] != mine:
        raise NotExplainableError(
            f"{family.name}'s classes {mine} are not the published classes {[str(c) for c in classes]}"
        )


def _check_link(family: _Family, parts: _Parts, probe: np.ndarray) -> None:
    """The served probabilities (or prediction) follow from the raw output as the space says."""
    if family.served is None:
        return
    z = parts.model_input(probe)
    raw, served = family.raw(z), np.asarray(family.served(z), dtype=np.float64)
    if family.link == "sigmoid":
        expected, served, what = 1.0 / (1.0 + np.exp(-raw[:, 0])), served[:, 1], "the sigmoid"
    elif family.link == "softmax":
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        expected, what = shifted / shifted.sum(axis=1, keepdims=True), "the softmax"
    else:
        expected, served, what = raw[:, 0], served.reshape(-1), "the sum"
    if not np.allclose(served, expected, rtol=1e-5, atol=family.tolerance):
        answered = "prediction" if family.link == "identity" else "probabilities"
        raise NotExplainableError(
            f"{family.name}'s {answered} are not {what} of its trees or coefficients (its objective or"
            " loss maps them otherwise): no exact explanation in the served units"
        )


# Families ---------------------------------------------------------------------------------------------


def _library(module: str) -> dict[str, str]:
    """The library that fitted the model, and its version (how the artifact was made)."""
    import importlib

    return {"library": f"{module} {importlib.import_module(module).__version__}"}


def _sklearn_tree(tree: Any, value: np.ndarray, features: np.ndarray | None = None) -> _Tree:
    """A scikit-learn tree, with the weighted sample counts as cover (as shap's TreeExplainer)."""
    column = tree.feature if features is None else np.asarray(features)[np.maximum(tree.feature, 0)]
    return _Tree(
        left=tree.children_left,
        right=tree.children_right,
        column=np.asarray(column, dtype=np.intp),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        cover=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
        value=value,
    )


def _isolation_forest(model: Any) -> _Family:
    from training.estimators.convert import average_path_length

    count = len(model.estimators_)
    normaliser = float(average_path_length(np.array([model.max_samples_]))[0])

    def trees() -> list[_Tree]:
        found = []
        for estimator, features in zip(model.estimators_, model.estimators_features_, strict=True):
            tree = estimator.tree_
            depth = _depths(tree.children_left, tree.children_right)
            value = (depth + average_path_length(tree.n_node_samples)) / count
            found.append(_sklearn_tree(tree, value[:, None], features))
        return found

    def raw(z: np.ndarray) -> np.ndarray:  # the mean path length, from the served score 2 ** (-l / c)
        length: np.ndarray = -normaliser * np.log2(-model.score_samples(z))
        return length[:, None]

    return _Family(
        name="IsolationForest",
        space="path_length",
        outputs=1,
        raw=raw,
        trees=trees,
        normaliser=normaliser,
        notes={"cover": "weighted_n_node_samples", **_library("sklearn")},
    )


def _forest(model: Any, classifier: bool) -> _Family:
    name = type(model).__name__
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise NotExplainableError(f"a multi-output {name} has no explanation here")
    estimators = list(getattr(model, "estimators_", [model]))
    count = len(estimators)

    def trees() -> list[_Tree]:
        found = []
        for estimator in estimators:
            tree = estimator.tree_
            value = np.asarray(tree.value[:, 0, :], dtype=np.float64)
            if classifier:  # class fractions per node, as predict_proba answers them
                value = value / value.sum(axis=1, keepdims=True)
            found.append(_sklearn_tree(tree, value / count))
        return found

    notes = {"cover": "weighted_n_node_samples", **_library("sklearn")}
    if classifier:
        classes = list(model.classes_)
        return _Family(
            name=name,
            space="probability",
            outputs=len(classes),
            raw=lambda z: np.asarray(model.predict_proba(z), dtype=np.float64),
            trees=trees,
            classes=classes,
            notes=notes,
        )
    return _Family(
        name=name,
        space="prediction",
        outputs=1,
        raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
        trees=trees,
        notes=notes,
    )


def _gradient_boosting(model: Any) -> _Family:
    name = type(model).__name__
    classifier = name == "GradientBoostingClassifier"
    if classifier and model.loss == "exponential":
        raise NotExplainableError(
            f"{name} with the exponential loss has no exact explanation: its raw output is not the log-odds"
        )
    stages = model.estimators_  # (iterations, outputs)
    outputs = int(stages.shape[1])
    rate = float(model.learning_rate)

    def trees() -> list[_Tree]:
        found = []
        for row in stages:
            for output, estimator in enumerate(row):
                tree = estimator.tree_
                value = np.zeros((tree.node_count, outputs))
                value[:, output] = tree.value[:, 0, 0] * rate
                found.append(_sklearn_tree(tree, value))
        return found

    notes = {"cover": "weighted_n_node_samples", **_library("sklearn")}
    if not classifier:
        return _Family(
            name=name,
            space="prediction",
            outputs=1,
            raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
            trees=trees,
            notes=notes,
        )
    classes = list(model.classes_)
    return _Family(
        name=name,
        space="log_odds" if outputs == 1 else "margin",
        outputs=outputs,
        raw=lambda z: np.asarray(model.decision_function(z), dtype=np.float64).reshape(len(z), -1),
        trees=trees,
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=classes,
        notes=notes,
    )


def _hist_gradient_boosting(model: Any) -> _Family:
    name = type(model).__name__
    classifier = name == "HistGradientBoostingClassifier"
    if getattr(model, "_preprocessor", None) is not None or any(
        bool(node["is_categorical"]) and not node["is_leaf"]
        for iteration in model._predictors
        for predictor in iteration
        for node in predictor.nodes
    ):
        raise NotExplainableError(f"{name} with its own categorical splits has no explanation here")
    if not classifier and model.loss not in IDENTITY_LOSSES:
        raise NotExplainableError(
            f"{name} with the {model.loss} loss has no exact explanation: its prediction is the"
            " exponential of its trees' sum"
        )
    outputs = len(model._predictors[0])

    def trees() -> list[_Tree]:
        found = []
        for iteration in model._predictors:
            for output, predictor in enumerate(iteration):
                nodes = predictor.nodes
                leaf = nodes["is_leaf"].astype(bool)
                value = np.zeros((len(nodes), outputs))
                value[:, output] = nodes["value"]
                found.append(
                    _Tree(
                        left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
                        right=np.where(leaf, -1, nodes["right"].astype(np.intp)),
                        column=nodes["feature_idx"].astype(np.intp),
                        threshold=nodes["num_threshold"].astype(np.float64),
                        cover=nodes["count"].astype(np.float64),
                        value=value,
                    )
                )
        return found

    notes = {"cover": "count", **_library("sklearn")}
    if not classifier:
        return _Family(
            name=name,
            space="prediction",
            outputs=1,
            raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
            trees=trees,
            float32=False,  # it compares its float64 input with float64 thresholds
            notes=notes,
        )
    classes = list(model.classes_)
    return _Family(
        name=name,
        space="log_odds" if outputs == 1 else "margin",
        outputs=outputs,
        raw=lambda z: np.asarray(model.decision_function(z), dtype=np.float64).reshape(len(z), -1),
        trees=trees,
        float32=False,
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=classes,
        notes=notes,
    )


def _xgboost(model: Any) -> _Family:
    import xgboost

    name = next(c.__name__ for c in type(model).__mro__ if c.__module__.startswith("xgboost"))
    booster = model.get_booster()
    learner = json.loads(booster.save_raw("json"))["learner"]
    boosting = learner["gradient_booster"]
    if boosting["name"] != "gbtree":
        raise NotExplainableError(f"{name} with booster={boosting['name']!r} has no explanation here")
    if int(learner["learner_model_param"].get("num_target", "1")) != 1:
        raise NotExplainableError(f"a multi-target {name} has no explanation here")
    classifier = isinstance(model, xgboost.XGBClassifier)
    outputs = max(1, int(learner["learner_model_param"].get("num_class", "0")))
    forest = boosting["model"]
    try:
        best = int(model.best_iteration)  # predict stops there after early stopping
    except AttributeError:
        best = None
    used = len(forest["trees"]) if best is None else int(forest["iteration_indptr"][best + 1])

    def trees() -> list[_Tree]:
        found = []
        for tree, group in zip(forest["trees"][:used], forest["tree_info"][:used], strict=True):
            if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1 or any(tree["split_type"]):
                raise NotExplainableError(
                    f"{name} with vector leaves or categorical splits has no explanation here"
                )
            left = np.asarray(tree["left_children"], dtype=np.intp)
            # XGBoost keeps a split's threshold and a leaf's value in one float32 field.
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
            value = np.zeros((len(left), outputs))
            value[:, int(group)] = np.where(left == -1, conditions, 0.0)
            found.append(
                _Tree(
                    left=left,
                    right=np.asarray(tree["right_children"], dtype=np.intp),
                    column=np.asarray(tree["split_indices"], dtype=np.intp),
                    threshold=conditions,
                    cover=np.asarray(tree["sum_hessian"], dtype=np.float64),
                    value=value,
                )
            )
        return found

    def raw(z: np.ndarray) -> np.ndarray:  # the base class's predict: a subclass may answer labels
        margin = xgboost.XGBModel.predict(model, z, output_margin=True)
        return np.asarray(margin, dtype=np.float64).reshape(len(z), -1)

    notes = {"cover": "sum_hessian", **_library("xgboost")}
    common: dict[str, Any] = {
        "name": name,
        "outputs": outputs,
        "raw": raw,
        "trees": trees,
        "split": "lt",  # x < threshold goes to the "yes" child, compared in float32
        "tolerance": FLOAT32_TOLERANCE,
        "notes": notes,
    }
    if not classifier:
        return _Family(space="prediction", served=model.predict, **common)
    classes = list(model.classes_)
    return _Family(
        space="log_odds" if outputs == 1 else "margin",
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=classes,
        **common,
    )


def _lightgbm(model: Any) -> _Family:
    booster = model.booster_
    described = booster.dump_model()
    name = "LGBMClassifier" if hasattr(model, "classes_") else "LGBMRegressor"
    outputs = int(described.get("num_tree_per_iteration", 1))
    infos = described["tree_info"]
    average = bool(described.get("average_output")) and infos
    weight = outputs / len(infos) if average else 1.0

    def trees() -> list[_Tree]:
        return [
            _lightgbm_tree(info, index % outputs, outputs, weight, name) for index, info in enumerate(infos)
        ]

    def raw(z: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(z, raw_score=True), dtype=np.float64).reshape(len(z), -1)

    notes = {"cover": "internal_count, leaf_count", **_library("lightgbm")}
    common: dict[str, Any] = {
        "name": name,
        "outputs": outputs,
        "raw": raw,
        "trees": trees,
        "float32": False,  # it compares float64 features with float64 thresholds
        "notes": notes,
    }
    if not hasattr(model, "classes_"):
        return _Family(space="prediction", served=model.predict, **common)
    return _Family(
        space="log_odds" if outputs == 1 else "margin",
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=list(model.classes_),
        **common,
    )


def _lightgbm_tree(info: dict[str, Any], output: int, outputs: int, weight: float, name: str) -> _Tree:
    """One tree of LightGBM's dump_model, its nodes numbered depth first."""
    left: list[int] = []
    right: list[int] = []
    column: list[int] = []
    threshold: list[float] = []
    cover: list[float] = []
    leaf: list[float] = []
    pending: list[tuple[dict[str, Any], int, bool]] = [(info["tree_structure"], -1, True)]
    while pending:
        node, parent, is_left = pending.pop()
        index = len(left)
        if parent >= 0:
            (left if is_left else right)[parent] = index
        left.append(-1)
        right.append(-1)
        if "split_index" not in node:
            if "leaf_coeff" in node:
                raise NotExplainableError(f"{name} with linear trees has no exact explanation here")
            column.append(0)
            threshold.append(0.0)
            cover.append(float(node.get("leaf_count", 0)))
            leaf.append(float(node["leaf_value"]) * weight)
            continue
        limit = node["threshold"]
        if node["decision_type"] != "<=" or not isinstance(limit, int | float):
            raise NotExplainableError(f"{name} with categorical splits has no explanation here")
        zero_left = float(limit) >= 0.0
        if node["missing_type"] == "Zero" and bool(node["default_left"]) != zero_left:
            raise NotExplainableError(
                f"{name} sends zeros down a tree's missing-value branch (zero_as_missing):"
                " no exact explanation"
            )
        column.append(int(node["split_feature"]))
        threshold.append(float(limit))
        cover.append(float(node["internal_count"]))
        leaf.append(0.0)
        pending.append((node["right_child"], index, False))
        pending.append((node["left_child"], index, True))
    value = np.zeros((len(left), outputs))
    value[:, output] = leaf
    return _Tree(
        left=np.asarray(left, dtype=np.intp),
        right=np.asarray(right, dtype=np.intp),
        column=np.asarray(column, dtype=np.intp),
        threshold=np.asarray(threshold, dtype=np.float64),
        cover=np.asarray(cover, dtype=np.float64),
        value=value,
    )


def _linear_family(model: Any, classifier: bool) -> _Family:
    name = type(model).__name__
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64)).reshape(-1)
    if len(intercept) == 1 and len(coef) > 1 and not classifier:
        raise NotExplainableError(f"a multi-target {name} has no explanation here")
    if len(intercept) != len(coef):
        intercept = np.broadcast_to(intercept, (len(coef),)).copy()
    notes = {**_library("sklearn")}
    if not classifier:
        if len(coef) != 1:
            raise NotExplainableError(f"a multi-target {name} has no explanation here")
        return _Family(
            name=name,
            space="prediction",
            outputs=1,
            raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
            linear=lambda: (coef, intercept),
            notes=notes,
        )
    outputs = len(coef)
    return _Family(
        name=name,
        space="log_odds" if outputs == 1 else "margin",
        outputs=outputs,
        raw=lambda z: np.asarray(model.decision_function(z), dtype=np.float64).reshape(len(z), -1),
        linear=lambda: (coef, intercept),
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=list(model.classes_),
        notes=notes,
    )


# Linear models ----------------------------------------------------------------------------------------


def _linear(family: _Family, parts: _Parts, x_fit: np.ndarray) -> Linear:
    """The coefficients in the graph input space: a scaler in front folded in."""
    assert family.linear is not None
    coef, intercept = family.linear()
    shift, scale = parts.shift_scale
    if shift is not None and scale is not None:
        coef = coef / scale
        intercept = intercept - coef @ shift
    return Linear(coef=coef, intercept=intercept, mean=x_fit.mean(axis=0))


# Trees as paths ---------------------------------------------------------------------------------------


def _tree_paths(family: _Family, parts: _Parts, inputs: int, probe: np.ndarray) -> TreePaths:
    """Every root-to-leaf path of every tree, grouped by width; the offset measured on ``probe``."""
    assert family.trees is not None
    found: dict[int, list[tuple[np.ndarray, ...]]] = {}
    for tree in family.trees():
        if tree.value.shape[1] != family.outputs:
            raise NotExplainableError(f"{family.name}'s trees answer {tree.value.shape[1]} outputs")
        for width, arrays in _paths_of(tree, family.name).items():
            found.setdefault(width, []).append(arrays)
    groups = []
    for width in sorted(found):
        column, lower, upper, zero, value = (np.concatenate(a) for a in zip(*found[width], strict=True))
        if column.size and (column.min() < 0 or column.max() >= inputs):
            raise NotExplainableError(f"{family.name} splits on a column the graph does not have")
        groups.append(
            PathGroup(column=column.astype(np.int32), lower=lower, upper=upper, zero=zero, value=value)
        )
    shift, scale = parts.shift_scale
    paths = TreePaths(
        groups=tuple(groups),
        offset=np.zeros(family.outputs),
        split=family.split,
        float32=family.float32,
        shift=shift,
        scale=None if scale is None else np.where(scale == 0, 1.0, scale),
    )
    # The offset (an init score, a base margin, single-leaf trees) is what the model answers beyond
    # the paths a row follows: the same on every row, or the paths are not the model's.
    rest = family.raw(parts.model_input(probe)) - _paths_sum(paths, probe)
    offset = rest.mean(axis=0)
    spread = float(np.abs(rest - offset).max())
    limit = family.tolerance * max(1.0, float(np.abs(rest).max()))
    if spread > limit:
        raise NotExplainableError(
            f"{family.name}'s trees do not add up to its output (off by up to {spread:.3g} from one row"
            " to another): no exact explanation"
        )
    return TreePaths(
        groups=paths.groups,
        offset=offset,
        split=paths.split,
        float32=paths.float32,
        shift=paths.shift,
        scale=paths.scale,
    )


def _paths_of(tree: _Tree, name: str) -> dict[int, tuple[np.ndarray, ...]]:
    """The paths of one tree by width: (column, lower, upper, zero, value) arrays.

    Walks the tree one level at a time, every node of a level at once: each node keeps, per column the
    tree splits on, the interval of values that reaches it and the product of the cover ratios of its
    splits on that column. A single-leaf tree has no path: its value is part of the offset.
    """
    left, right = tree.left, tree.right
    internal = left >= 0
    if not internal[0]:
        return {}
    columns, local = np.unique(tree.column[internal], return_inverse=True)
    position = np.zeros(len(left), dtype=np.intp)
    position[internal] = local
    nodes, width = len(left), len(columns)
    lower = np.full((nodes, width), -np.inf)
    upper = np.full((nodes, width), np.inf)
    zero = np.ones((nodes, width))
    used = np.zeros((nodes, width), dtype=bool)
    cover = tree.cover
    frontier = np.array([0], dtype=np.intp)
    while frontier.size:
        parents = frontier[internal[frontier]]
        if not parents.size:
            break
        at = position[parents]
        if (cover[parents] <= 0).any():
            raise NotExplainableError(f"{name} has a split no training row reached: no exact explanation")
        for children, goes_left in ((left[parents], True), (right[parents], False)):
            lower[children] = lower[parents]
            upper[children] = upper[parents]
            zero[children] = zero[parents]
            used[children] = used[parents]
            limit = tree.threshold[parents]
            if goes_left:
                upper[children, at] = np.minimum(upper[children, at], limit)
            else:
                lower[children, at] = np.maximum(lower[children, at], limit)
            zero[children, at] *= np.minimum(cover[children] / cover[parents], 1.0)
            used[children, at] = True
        frontier = np.concatenate([left[parents], right[parents]])
    leaves = np.flatnonzero(~internal)
    if (zero[leaves] <= 0).any():
        raise NotExplainableError(f"{name} has a leaf no training row reached: no exact explanation")
    counts = used[leaves].sum(axis=1)
    found: dict[int, tuple[np.ndarray, ...]] = {}
    for m in np.unique(counts):
        chosen = leaves[counts == m]
        rows, at = np.nonzero(used[chosen])  # row-major: each path's columns in increasing order
        take = (chosen[rows], at)
        shape = (len(chosen), int(m))
        found[int(m)] = (
            columns[at].reshape(shape),
            lower[take].reshape(shape),
            upper[take].reshape(shape),
            zero[take].reshape(shape),
            tree.value[chosen],
        )
    return found


def _depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each node's depth (the root's is 0)."""
    depth = np.zeros(len(left))
    frontier = np.array([0], dtype=np.intp)
    while frontier.size:
        parents = frontier[left[frontier] >= 0]
        children = np.concatenate([left[parents], right[parents]])
        depth[children] = np.concatenate([depth[parents], depth[parents]]) + 1
        frontier = children
    return depth


def _paths_sum(paths: TreePaths, x: np.ndarray) -> np.ndarray:
    """Sum of the values of the paths each row of graph input ``x`` follows (rows, outputs)."""
    if paths.shift is not None and paths.scale is not None:
        x = (x - paths.shift) / paths.scale
    if paths.float32:
        x = x.astype(np.float32).astype(np.float64)
    total = np.zeros((len(x), len(paths.offset)))
    for group in paths.groups:
        step = max(1, CHUNK_ELEMENTS // max(1, group.column.size))
        for start in range(0, len(x), step):
            values = x[start : start + step][:, group.column]  # (rows, paths, m)
            if paths.split == "le":
                follows = ((values > group.lower) & (values <= group.upper)).all(axis=2)
            else:
                follows = ((values >= group.lower) & (values < group.upper)).all(axis=2)
            total[start : start + step] += follows @ group.value
    return total


# Checks -----------------------------------------------------------------------------------------------


def _verify(artifact: ExplanationArtifact, family: _Family, parts: _Parts, x_rows: np.ndarray) -> float:
    expected = family.raw(parts.model_input(x_rows))
    ours = explained_output(artifact, x_rows)
    if ours.shape != expected.shape:
        raise NotExplainableError(
            f"the explanation of {family.name} answers {ours.shape[1]} outputs, the model {expected.shape[1]}"
        )
    difference = float(np.abs(ours - expected).max()) if ours.size else 0.0
    limit = family.tolerance * max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    if not difference <= limit:
        raise NotExplainableError(
            f"the explanation of {family.name} disagrees with the model by {difference:.3g}"
            f" (more than {limit:.3g}) on the rows checked"
        )
    return difference


def _checked_rows(artifact: ExplanationArtifact) -> int:
    model = artifact.model
    if isinstance(model, Linear):
        return CHECKED_ROWS
    elements = sum(group.column.size for group in model.groups)
    return int(np.clip(CHECKED_ELEMENTS // max(1, elements), MIN_CHECKED_ROWS, CHECKED_ROWS))


def _spread(rows: int, wanted: int) -> np.ndarray:
    """Up to ``wanted`` row indices spread evenly over ``rows`` (the first and the last included)."""
    return np.unique(np.linspace(0, rows - 1, num=min(rows, wanted)).round().astype(np.intp))
