"""The explanation artifact training exports (training/estimators/explanation.py) is the model's own.

Each supported family is fitted on a small scikit-learn table and its artifact is checked three ways:
it survives the file format, it recomputes the model's raw output, and the SHAP values a plain
reference computes from it (exact Shapley values of each path's game, by enumerating subsets) are
shap's TreeExplainer's (or LinearExplainer's) for the model itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import combinations
from math import factorial
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn import datasets, ensemble, linear_model, tree
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lambda_app.explain.artifact import ExplanationArtifact, Linear, TreePaths, dump, load
from lambda_app.explain.tree_shap import TreeShap
from training.estimators.explanation import (
    NotExplainableError,
    explained_output,
    export_explanation,
    verify_explanation,
)

ROWS = 300


def table(name: str) -> tuple[np.ndarray, np.ndarray]:
    loader = {"cancer": datasets.load_breast_cancer, "iris": datasets.load_iris}
    x, y = loader.get(name, datasets.load_diabetes)(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:ROWS]
    return np.asarray(x[order], dtype=np.float64), y[order]


def xgboost_model(classifier: bool) -> Any:
    import xgboost

    cls = xgboost.XGBClassifier if classifier else xgboost.XGBRegressor
    return cls(n_estimators=8, max_depth=3, learning_rate=0.3)


def labelled_xgboost() -> Any:
    from training.estimators.xgboost_labels import XGBClassifier

    return XGBClassifier(n_estimators=8, max_depth=3)


def lightgbm_model(classifier: bool) -> Any:
    import lightgbm

    cls = lightgbm.LGBMClassifier if classifier else lightgbm.LGBMRegressor
    return cls(n_estimators=8, num_leaves=6, min_child_samples=5, verbose=-1)


# (id, task, table, model, expected space)
TREE_CASES: list[tuple[str, str, str, Callable[[], Any], str]] = [
    (
        "isolation-forest",
        "anomaly",
        "cancer",
        lambda: ensemble.IsolationForest(n_estimators=8, max_samples=32, max_features=0.5, random_state=0),
        "path_length",
    ),
    (
        "random-forest-binary",
        "classification",
        "cancer",
        lambda: ensemble.RandomForestClassifier(8, max_depth=4, random_state=0),
        "probability",
    ),
    (
        "extra-trees-multiclass",
        "classification",
        "iris",
        lambda: ensemble.ExtraTreesClassifier(8, max_depth=4, random_state=0),
        "probability",
    ),
    (
        "decision-tree-classifier",
        "classification",
        "iris",
        lambda: tree.DecisionTreeClassifier(max_depth=4, random_state=0),
        "probability",
    ),
    (
        "random-forest-regressor",
        "regression",
        "diabetes",
        lambda: ensemble.RandomForestRegressor(8, max_depth=4, random_state=0),
        "prediction",
    ),
    (
        "extra-trees-regressor",
        "regression",
        "diabetes",
        lambda: ensemble.ExtraTreesRegressor(8, max_depth=4, random_state=0),
        "prediction",
    ),
    (
        "gradient-boosting-binary",
        "classification",
        "cancer",
        lambda: ensemble.GradientBoostingClassifier(
            n_estimators=8, max_depth=3, subsample=0.8, random_state=0
        ),
        "log_odds",
    ),
    (
        "gradient-boosting-regressor",
        "regression",
        "diabetes",
        lambda: ensemble.GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=0),
        "prediction",
    ),
    (
        "hist-gradient-boosting-binary",
        "classification",
        "cancer",
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=8, random_state=0),
        "log_odds",
    ),
    (
        "hist-gradient-boosting-multiclass",
        "classification",
        "iris",
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=6, random_state=0),
        "margin",
    ),
    (
        "hist-gradient-boosting-regressor",
        "regression",
        "diabetes",
        lambda: ensemble.HistGradientBoostingRegressor(max_iter=8, max_leaf_nodes=8, random_state=0),
        "prediction",
    ),
    ("xgboost-binary", "classification", "cancer", lambda: xgboost_model(True), "log_odds"),
    ("xgboost-multiclass-labelled", "classification", "iris", labelled_xgboost, "margin"),
    ("xgboost-regressor", "regression", "diabetes", lambda: xgboost_model(False), "prediction"),
    ("lightgbm-binary", "classification", "cancer", lambda: lightgbm_model(True), "log_odds"),
    ("lightgbm-multiclass", "classification", "iris", lambda: lightgbm_model(True), "margin"),
    ("lightgbm-regressor", "regression", "diabetes", lambda: lightgbm_model(False), "prediction"),
    (
        "scaled-random-forest",
        "classification",
        "cancer",
        lambda: make_pipeline(
            StandardScaler(), ensemble.RandomForestClassifier(8, max_depth=4, random_state=0)
        ),
        "probability",
    ),
]

LINEAR_CASES: list[tuple[str, str, str, Callable[[], Any], str]] = [
    (
        "logistic-binary-scaled",
        "classification",
        "cancer",
        lambda: make_pipeline(StandardScaler(), linear_model.LogisticRegression(max_iter=5000)),
        "log_odds",
    ),
    (
        "logistic-multiclass",
        "classification",
        "iris",
        lambda: linear_model.LogisticRegression(max_iter=5000),
        "margin",
    ),
    ("ridge", "regression", "diabetes", lambda: linear_model.Ridge(alpha=0.5), "prediction"),
    (
        "lasso-scaled",
        "regression",
        "diabetes",
        lambda: make_pipeline(StandardScaler(), linear_model.Lasso(alpha=0.5)),
        "prediction",
    ),
    ("linear-regression", "regression", "diabetes", lambda: linear_model.LinearRegression(), "prediction"),
    ("elastic-net", "regression", "diabetes", lambda: linear_model.ElasticNet(alpha=0.01), "prediction"),
]


def fitted(task: str, name: str, build: Callable[[], Any]) -> tuple[Any, np.ndarray]:
    x, y = table(name)
    model = build()
    if task == "anomaly":
        model.fit(x)
    else:
        model.fit(x, y)
    return model, x


@contextmanager
def quiet_shap() -> Iterator[ModuleType]:
    """shap, imported and run with its own deprecation warnings silenced (the suite fails on warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

        yield shap


def model_input(model: Any, x: np.ndarray) -> tuple[Any, np.ndarray]:
    """The final estimator and what it reads (a scaler in front applied)."""
    if hasattr(model, "steps"):
        return model.steps[-1][1], np.asarray(model[:-1].transform(x))
    return model, x


def shap_tree_values(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """shap's TreeExplainer (path-dependent, the training cover): values (rows, inputs, outputs), base."""
    final, z = model_input(model, x)
    with quiet_shap() as shap:
        explainer = shap.TreeExplainer(final)
        values = np.asarray(explainer.shap_values(z), dtype=np.float64)
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    return values.reshape(len(x), x.shape[1], -1), base


def reference_tree_values(artifact: ExplanationArtifact, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values of the path-dependent game, by enumeration.

    The game of one path is ``v * prod_{j in S} o_j * prod_{j not in S} z_j`` (the expectation of its
    leaf given the columns in S, Lundberg et al. 2020), and the ensemble's game is the sum of its paths'
    games, so each path's Shapley values are computed over the subsets of its own columns and summed.
    """
    paths = artifact.model
    assert isinstance(paths, TreePaths)
    z = x if paths.shift is None else (x - paths.shift) / paths.scale
    if paths.float32:
        z = z.astype(np.float32).astype(np.float64)
    rows, outputs = len(x), artifact.outputs
    values = np.zeros((rows, artifact.inputs, outputs))
    base = paths.offset.copy()
    for group in paths.groups:
        m = group.width
        seen = z[:, group.column]  # (rows, paths, m)
        if paths.split == "le":
            one = ((seen > group.lower) & (seen <= group.upper)).astype(np.float64)
        else:
            one = ((seen >= group.lower) & (seen < group.upper)).astype(np.float64)

        def game(
            subset: tuple[int, ...], one: np.ndarray = one, group: Any = group, m: int = m
        ) -> np.ndarray:
            factors = [one[:, :, j] if j in subset else group.zero[:, j] for j in range(m)]
            return np.prod(np.broadcast_arrays(*factors), axis=0)

        base = base + np.prod(group.zero, axis=1) @ group.value
        for j in range(m):
            others = [i for i in range(m) if i != j]
            share = np.zeros((rows, len(group.column)))
            for size in range(m):
                weight = factorial(size) * factorial(m - size - 1) / factorial(m)
                for subset in combinations(others, size):
                    share += weight * (game((*subset, j)) - game(subset))
            columns = np.eye(artifact.inputs)[group.column[:, j]]  # (paths, inputs)
            values += np.einsum("rp,pi,po->rio", share, columns, group.value)
    return values, base


@pytest.mark.parametrize(
    ("task", "data", "build", "space"),
    [case[1:] for case in TREE_CASES],
    ids=[case[0] for case in TREE_CASES],
)
def test_a_tree_model_is_explained_as_shap_explains_it(
    task: str, data: str, build: Callable[[], Any], space: str
) -> None:
    # GIVEN a small fitted tree model
    model, x = fitted(task, data, build)
    # WHEN its explanation is exported and read back
    artifact = load(dump(export_explanation(model, task, x, None)))
    # THEN it is the model's: same raw output, and shap's attributions from the reference game
    assert artifact.space == space
    assert verify_explanation(artifact, model, x) <= 1e-5 * max(
        1.0, float(np.abs(explained_output(artifact, x)).max())
    )
    ours, base = reference_tree_values(artifact, x)
    theirs, shap_base = shap_tree_values(model, x)
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(base, shap_base, rtol=0, atol=1e-5 * max(1.0, float(np.abs(shap_base).max())))
    raw = explained_output(artifact, x)
    np.testing.assert_allclose(base + ours.sum(axis=1), raw, rtol=0, atol=1e-9 * scale)


def test_a_multiclass_gradient_boosting_model_is_explained_per_class() -> None:
    """shap's TreeExplainer refuses a multiclass GradientBoostingClassifier: each class's trees are
    handed to it as a model of their own (its dictionary form), and compared class by class."""
    model, x = fitted(
        "classification",
        "iris",
        lambda: ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=3, random_state=0),
    )
    artifact = load(dump(export_explanation(model, "classification", x, [0, 1, 2])))
    assert artifact.space == "margin"
    verify_explanation(artifact, model, x)
    ours, _ = reference_tree_values(artifact, x)
    z = x.astype(np.float32)
    with quiet_shap() as shap:
        for output in range(3):
            trees = [
                {
                    "children_left": t.tree_.children_left,
                    "children_right": t.tree_.children_right,
                    "children_default": t.tree_.children_left,
                    "features": t.tree_.feature,
                    "thresholds": t.tree_.threshold,
                    "values": t.tree_.value[:, 0, :] * model.learning_rate,
                    "node_sample_weight": t.tree_.weighted_n_node_samples,
                }
                for t in model.estimators_[:, output]
            ]
            explainer = shap.TreeExplainer({"trees": trees, "base_offset": 0.0, "input_dtype": np.float32})
            theirs = np.asarray(explainer.shap_values(z))
            np.testing.assert_allclose(ours[:, :, output], theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("task", "data", "build", "space"),
    [case[1:] for case in LINEAR_CASES],
    ids=[case[0] for case in LINEAR_CASES],
)
def test_a_linear_model_is_explained_as_shap_explains_it(
    task: str, data: str, build: Callable[[], Any], space: str
) -> None:
    model, x = fitted(task, data, build)
    artifact = load(dump(export_explanation(model, task, x, None)))
    assert artifact.space == space
    linear = artifact.model
    assert isinstance(linear, Linear)
    verify_explanation(artifact, model, x)
    ours = (x - linear.mean)[:, :, None] * linear.coef.T[None, :, :]
    final, z = model_input(model, x)
    with quiet_shap() as shap:
        background = shap.maskers.Independent(z, max_samples=len(z))  # every row: the training mean
        theirs = np.asarray(shap.LinearExplainer(final, background).shap_values(z), dtype=np.float64)
    theirs = theirs.reshape(len(x), x.shape[1], -1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


def test_serving_explains_the_exported_trees_as_the_reference_does() -> None:
    model, x = fitted(
        "classification", "iris", lambda: ensemble.HistGradientBoostingClassifier(max_iter=6, random_state=0)
    )
    artifact = load(dump(export_explanation(model, "classification", x, [0, 1, 2])))
    assert isinstance(artifact.model, TreePaths)
    served = TreeShap(artifact.model, artifact.inputs)
    ours, base = reference_tree_values(artifact, x)
    np.testing.assert_allclose(served.shap_values(x), ours, rtol=0, atol=1e-9)
    np.testing.assert_allclose(served.base, base, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("task", "build", "reason"),
    [
        (
            "classification",
            lambda: __import__("sklearn.neighbors").neighbors.KNeighborsClassifier(),
            "^KNeighborsClassifier has no exact explanation: explanations cover tree ensembles and linear"
            " models$",
        ),
        ("regression", lambda: __import__("sklearn.svm").svm.SVR(), "SVR has no exact explanation"),
        (
            "anomaly",
            lambda: __import__("sklearn.neighbors").neighbors.LocalOutlierFactor(novelty=True),
            "LocalOutlierFactor has no exact explanation",
        ),
        (
            "regression",
            lambda: __import__("sklearn.compose").compose.TransformedTargetRegressor(
                regressor=linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1
            ),
            "a model of a transformed target has no exact explanation",
        ),
        (
            "regression",
            lambda: make_pipeline(
                __import__("sklearn.decomposition").decomposition.PCA(3), linear_model.Ridge()
            ),
            "a pipeline with PCA before Ridge has no exact explanation",
        ),
        (
            "classification",
            lambda: ensemble.GradientBoostingClassifier(n_estimators=3, loss="exponential"),
            "with the exponential loss has no exact explanation",
        ),
        (
            "regression",
            lambda: ensemble.HistGradientBoostingRegressor(max_iter=3, loss="poisson"),
            "with the poisson loss has no exact explanation",
        ),
        (
            "regression",
            lambda: ensemble.GradientBoostingRegressor(n_estimators=3, init=linear_model.LinearRegression()),
            "trees do not add up to its output",  # the offset differs from row to row
        ),
    ],
    ids=[
        "knn",
        "svr",
        "lof",
        "log-target",
        "pca-pipeline",
        "exponential-loss",
        "poisson-loss",
        "row-dependent-init",
    ],
)
def test_a_model_without_an_exact_explanation_is_refused_with_its_reason(
    task: str, build: Callable[[], Any], reason: str
) -> None:
    x, y = table("cancer" if task != "regression" else "diabetes")
    model = build()
    if task == "anomaly":
        model.fit(x)
    else:
        model.fit(x, y)
    with pytest.raises(NotExplainableError, match=reason):
        export_explanation(model, task, x, None)


def test_a_wrong_decomposition_is_caught_by_the_check() -> None:
    model, x = fitted(
        "regression", "diabetes", lambda: ensemble.RandomForestRegressor(5, max_depth=3, random_state=0)
    )
    artifact = export_explanation(model, "regression", x, None)
    assert isinstance(artifact.model, TreePaths)
    group = artifact.model.groups[-1]
    group.value[0] += 1.0  # one leaf off
    with pytest.raises(NotExplainableError, match="disagrees with the model by"):
        verify_explanation(artifact, model, x)


def test_classes_in_another_order_than_published_are_refused() -> None:
    model, x = fitted("classification", "iris", lambda: tree.DecisionTreeClassifier(max_depth=2))
    with pytest.raises(NotExplainableError, match="are not the published classes"):
        export_explanation(model, "classification", x, [2, 1, 0])


def test_a_lightgbm_random_forest_is_explained_as_the_mean_of_its_trees() -> None:
    model, x = fitted(
        "classification",
        "cancer",
        lambda: __import__("lightgbm").LGBMClassifier(
            boosting_type="rf", n_estimators=5, subsample=0.7, subsample_freq=1, verbose=-1
        ),
    )
    artifact = export_explanation(model, "classification", x, [0, 1])
    probabilities = 1.0 / (1.0 + np.exp(-explained_output(artifact, x)[:, 0]))
    np.testing.assert_allclose(probabilities, model.predict_proba(x)[:, 1], rtol=0, atol=1e-9)


def test_an_export_that_fails_unexpectedly_publishes_the_model_without_an_explanation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from training.estimators import explanation

    def broken(*args: Any) -> None:
        raise RuntimeError("a tree of a kind never seen")

    monkeypatch.setattr(explanation, "export_explanation", broken)
    published = explanation.explanation_for_publishing(object(), "regression", np.zeros((3, 2)), None)
    assert published.data is None
    assert published.record == {
        "available": False,
        "reason": "the export failed: RuntimeError('a tree of a kind never seen')",
    }
    assert "no explanation published" in caplog.text
