"""How each model family is read for its explanation (training/estimators/explanation.py).

For every family: its trees in one common form (children, the graph input column and threshold of each
split, each node's cover, each leaf's weighted value per output) or its coefficients, its raw output
(what the trees or coefficients add up to) and how the served number follows from it. The cover is
what shap's TreeExplainer uses for the library, so the explanations agree with shap's:
``weighted_n_node_samples`` for scikit-learn's trees (an IsolationForest's too), the node ``count``
for HistGradientBoosting, the hessian sum (``sum_hessian``, the "Cover" column) for XGBoost and
``internal_count``/``leaf_count`` for LightGBM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lambda_app.explain.artifact import Space, Split
from training.exceptions import TrainingError

TOLERANCE = 1e-6
"""How far the artifact's output may be from the model's, times max(1, the output's size)."""
FLOAT32_TOLERANCE = 1e-5
"""The same for a library that sums its trees in float32 (XGBoost): its own rounding is ~1e-7 a tree."""
COVERED = "explanations cover tree ensembles and linear models"

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
class Tree:
    """One tree in a common form: children (-1 at a leaf), the graph input column and threshold of each
    split, each node's cover, and each leaf's weighted value per output."""

    left: np.ndarray
    right: np.ndarray
    column: np.ndarray
    threshold: np.ndarray
    cover: np.ndarray
    value: np.ndarray  # (nodes, outputs)


@dataclass(frozen=True)
class ExplainedModel:
    """What explaining one kind of model takes: its raw output and how the served number follows from it.

    ``raw`` and ``served`` take the model's own input (after its scaler); ``trees`` or ``linear`` are
    read only when exporting. ``link`` says how ``served`` follows from ``raw``: "identity" (nothing to
    check), "sigmoid" (the second class's probability) or "softmax".
    """

    name: str
    space: Space
    outputs: int
    raw: Callable[[np.ndarray], np.ndarray]
    trees: Callable[[], list[Tree]] | None = None
    linear: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    split: Split = "le"
    float32: bool = True
    normaliser: float | None = None
    served: Callable[[np.ndarray], np.ndarray] | None = None
    link: str = "identity"
    tolerance: float = TOLERANCE
    classes: list[Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


# The model behind its scaler --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelParts:
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


def model_parts(estimator: Any) -> ModelParts:
    """The model and the StandardScaler in front of it, if any; NotExplainableError for any other step
    (its output is not the served columns) or a transformed target."""
    name = type(estimator).__name__
    if name == "TransformedTargetRegressor":
        raise NotExplainableError(
            "a model of a transformed target has no exact explanation: its trees or coefficients add up"
            " to the transformed value, not to the served prediction"
        )
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return ModelParts(estimator)
    kept = [step for _, step in steps if step is not None and not isinstance(step, str)]
    if len(kept) == 1:
        return ModelParts(kept[0])
    scaler = kept[0] if len(kept) == 2 else None
    if scaler is None or type(scaler).__name__ not in ("StandardScaler", "Float32Scaled"):
        odd = next((type(s).__name__ for s in kept[:-1] if s is not scaler), type(kept[0]).__name__)
        raise NotExplainableError(
            f"a pipeline with {odd} before {type(kept[-1]).__name__} has no exact explanation in the"
            " served columns: only a StandardScaler may come before the model"
        )
    return ModelParts(kept[-1], scaler)


def explained_model(parts: ModelParts) -> ExplainedModel:
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
    if "lightgbm" in libraries or name in ("LightGBMFileClassifier", "LightGBMFileRegressor"):
        return _lightgbm(model)
    if name in LINEAR_CLASSIFIERS | LINEAR_REGRESSORS:
        if parts.scaler is not None and type(parts.scaler).__name__ != "StandardScaler":
            raise NotExplainableError(f"{name} behind a float32-rounding scaler has no exact explanation")
        return _linear_model(model, name in LINEAR_CLASSIFIERS)
    raise NotExplainableError(f"{name} has no exact explanation: {COVERED}")


# Families ---------------------------------------------------------------------------------------------


def _library(module: str) -> dict[str, str]:
    """The library that fitted the model, and its version (how the artifact was made)."""
    import importlib

    return {"library": f"{module} {importlib.import_module(module).__version__}"}


def _sklearn_tree(tree: Any, value: np.ndarray, features: np.ndarray | None = None) -> Tree:
    """A scikit-learn tree, with the weighted sample counts as cover (as shap's TreeExplainer)."""
    column = tree.feature if features is None else np.asarray(features)[np.maximum(tree.feature, 0)]
    return Tree(
        left=tree.children_left,
        right=tree.children_right,
        column=np.asarray(column, dtype=np.intp),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        cover=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
        value=value,
    )


def _isolation_forest(model: Any) -> ExplainedModel:
    from training.estimators.convert import average_path_length

    count = len(model.estimators_)
    normaliser = float(average_path_length(np.array([model.max_samples_]))[0])

    def trees() -> list[Tree]:
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

    return ExplainedModel(
        name="IsolationForest",
        space="path_length",
        outputs=1,
        raw=raw,
        trees=trees,
        normaliser=normaliser,
        notes={"cover": "weighted_n_node_samples", **_library("sklearn")},
    )


def _forest(model: Any, classifier: bool) -> ExplainedModel:
    name = type(model).__name__
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise NotExplainableError(f"a multi-output {name} has no explanation here")
    estimators = list(getattr(model, "estimators_", [model]))
    count = len(estimators)

    def trees() -> list[Tree]:
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
        return ExplainedModel(
            name=name,
            space="probability",
            outputs=len(classes),
            raw=lambda z: np.asarray(model.predict_proba(z), dtype=np.float64),
            trees=trees,
            classes=classes,
            notes=notes,
        )
    return ExplainedModel(
        name=name,
        space="prediction",
        outputs=1,
        raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
        trees=trees,
        notes=notes,
    )


def _gradient_boosting(model: Any) -> ExplainedModel:
    name = type(model).__name__
    classifier = name == "GradientBoostingClassifier"
    if classifier and model.loss == "exponential":
        raise NotExplainableError(
            f"{name} with the exponential loss has no exact explanation: its raw output is not the log-odds"
        )
    stages = model.estimators_  # (iterations, outputs)
    outputs = int(stages.shape[1])
    rate = float(model.learning_rate)

    def trees() -> list[Tree]:
        found = []
        for row in stages:
            for output, estimator in enumerate(row):
                tree = estimator.tree_
                value = np.zeros((tree.node_count, outputs))
                value[:, output] = tree.value[:, 0, 0] * rate
                found.append(_sklearn_tree(tree, value))
        return found

    notes = {"cover": "weighted_n_node_samples", **_library("sklearn")}
    return _sklearn_boosting(model, name, classifier, outputs, trees, notes)


def _hist_gradient_boosting(model: Any) -> ExplainedModel:
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

    def trees() -> list[Tree]:
        found = []
        for iteration in model._predictors:
            for output, predictor in enumerate(iteration):
                nodes = predictor.nodes
                leaf = nodes["is_leaf"].astype(bool)
                value = np.zeros((len(nodes), outputs))
                value[:, output] = nodes["value"]
                found.append(
                    Tree(
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
    # float32=False: it compares its float64 input with float64 thresholds
    return _sklearn_boosting(model, name, classifier, outputs, trees, notes, float32=False)


def _sklearn_boosting(
    model: Any,
    name: str,
    classifier: bool,
    outputs: int,
    trees: Callable[[], list[Tree]],
    notes: dict[str, Any],
    float32: bool = True,
) -> ExplainedModel:
    """scikit-learn's boosting (both kinds): the prediction, or the classes' decision function (log-odds
    or margins) whose sigmoid / softmax are the served probabilities."""
    if not classifier:
        return ExplainedModel(
            name=name,
            space="prediction",
            outputs=1,
            raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
            trees=trees,
            float32=float32,
            notes=notes,
        )
    return ExplainedModel(
        name=name,
        space="log_odds" if outputs == 1 else "margin",
        outputs=outputs,
        raw=lambda z: np.asarray(model.decision_function(z), dtype=np.float64).reshape(len(z), -1),
        trees=trees,
        float32=float32,
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=list(model.classes_),
        notes=notes,
    )


def _xgboost(model: Any) -> ExplainedModel:
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

    def trees() -> list[Tree]:
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
                Tree(
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
        return ExplainedModel(space="prediction", served=model.predict, **common)
    classes = list(model.classes_)
    return ExplainedModel(
        space="log_odds" if outputs == 1 else "margin",
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=classes,
        **common,
    )


def _lightgbm(model: Any) -> ExplainedModel:
    booster = model.booster_
    described = booster.dump_model()
    name = "LGBMClassifier" if hasattr(model, "classes_") else "LGBMRegressor"
    outputs = int(described.get("num_tree_per_iteration", 1))
    infos = described["tree_info"]
    average = bool(described.get("average_output")) and infos
    weight = outputs / len(infos) if average else 1.0

    def trees() -> list[Tree]:
        return [
            _lightgbm_tree(info, index % outputs, outputs, weight, name) for index, info in enumerate(infos)
        ]

    def raw(z: np.ndarray) -> np.ndarray:  # a random forest's raw score is its trees' sum, not their mean
        margin = np.asarray(booster.predict(z, raw_score=True), dtype=np.float64)
        return margin.reshape(len(z), -1) * weight

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
        return ExplainedModel(space="prediction", served=model.predict, **common)
    return ExplainedModel(
        space="log_odds" if outputs == 1 else "margin",
        served=model.predict_proba,
        link="sigmoid" if outputs == 1 else "softmax",
        classes=list(model.classes_),
        **common,
    )


def _lightgbm_tree(info: dict[str, Any], output: int, outputs: int, weight: float, name: str) -> Tree:
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
    return Tree(
        left=np.asarray(left, dtype=np.intp),
        right=np.asarray(right, dtype=np.intp),
        column=np.asarray(column, dtype=np.intp),
        threshold=np.asarray(threshold, dtype=np.float64),
        cover=np.asarray(cover, dtype=np.float64),
        value=value,
    )


def _linear_model(model: Any, classifier: bool) -> ExplainedModel:
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
        return ExplainedModel(
            name=name,
            space="prediction",
            outputs=1,
            raw=lambda z: np.asarray(model.predict(z), dtype=np.float64).reshape(len(z), 1),
            linear=lambda: (coef, intercept),
            notes=notes,
        )
    outputs = len(coef)
    return ExplainedModel(
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
