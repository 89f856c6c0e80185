"""The serving side's Tree SHAP against Shapley values computed by brute force.

Path-dependent Tree SHAP is the Shapley value of the game v(S) = sum over paths of the leaf value times,
per column j of the path, o_j (the row's value lies in the path's interval) when j is in S, else z_j (the
share of cover that follows the path). For a handful of columns every subset can be enumerated, so the
vectorised code is checked against the definition itself, on random path sets of every width.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest

from lambda_app.explain.artifact import (
    ExplanationArtifact,
    ExplanationArtifactError,
    Linear,
    PathGroup,
    TreePaths,
    dump,
    load,
)
from lambda_app.explain.tree_shap import TreeShap

COLUMNS = 5


def random_paths(
    rng: np.random.Generator, outputs: int = 2, split: str = "le", float32: bool = False
) -> TreePaths:
    groups = []
    for width in range(1, 5):
        paths = 7
        column = np.array([rng.choice(COLUMNS, size=width, replace=False) for _ in range(paths)])
        lower = rng.normal(size=(paths, width)) - 0.6
        upper = lower + rng.uniform(0.2, 2.0, size=(paths, width))
        lower[rng.random((paths, width)) < 0.3] = -np.inf
        upper[rng.random((paths, width)) < 0.3] = np.inf
        zero = rng.uniform(0.05, 1.0, size=(paths, width))
        value = rng.normal(size=(paths, outputs))
        groups.append(PathGroup(column, lower, upper, zero, value))
    return TreePaths(tuple(groups), rng.normal(size=outputs), split, float32)  # type: ignore[arg-type]


def game(paths: TreePaths, row: np.ndarray, present: set[int]) -> np.ndarray:
    """v(S): each path's value times o_j for its columns in S and z_j for the others."""
    total = paths.offset.copy()
    for group in paths.groups:
        for p in range(len(group.column)):
            weight = 1.0
            for j, column in enumerate(group.column[p]):
                if column in present:
                    x = row[column]
                    inside = (
                        group.lower[p, j] < x <= group.upper[p, j]
                        if paths.split == "le"
                        else group.lower[p, j] <= x < group.upper[p, j]
                    )
                    weight *= float(inside)
                else:
                    weight *= group.zero[p, j]
            total = total + weight * group.value[p]
    return total


def brute_force(paths: TreePaths, row: np.ndarray) -> np.ndarray:
    phi = np.zeros((COLUMNS, len(paths.offset)))
    others = range(COLUMNS)
    for i in range(COLUMNS):
        rest = [c for c in others if c != i]
        for size in range(COLUMNS):
            weight = factorial(size) * factorial(COLUMNS - size - 1) / factorial(COLUMNS)
            for subset in combinations(rest, size):
                s = set(subset)
                phi[i] += weight * (game(paths, row, s | {i}) - game(paths, row, s))
    return phi


@pytest.mark.parametrize("split", ["le", "lt"])
def test_tree_shap_equals_the_shapley_values_of_the_path_game(split: str) -> None:
    rng = np.random.default_rng(3)
    paths = random_paths(rng, split=split)
    rows = rng.normal(size=(6, COLUMNS))
    rows[0, 1] = paths.groups[0].upper[0, 0]  # a value on a threshold: the split rule decides
    explained = TreeShap(paths, COLUMNS)
    phi = explained.shap_values(rows)
    for r, row in enumerate(rows):
        np.testing.assert_allclose(phi[r], brute_force(paths, row), atol=1e-12)
        np.testing.assert_allclose(explained.base, game(paths, row, set()), atol=1e-12)
    # additivity: base + contributions is the ensemble's output on the row
    np.testing.assert_allclose(explained.base + phi.sum(axis=1), explained.raw(rows), atol=1e-12)


def test_rows_are_explained_in_chunks_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    paths = random_paths(rng, outputs=1)
    rows = rng.normal(size=(40, COLUMNS))
    whole = TreeShap(paths, COLUMNS).shap_values(rows)
    monkeypatch.setattr("lambda_app.explain.tree_shap.CHUNK_ELEMENTS", 1)  # one row per chunk
    np.testing.assert_array_equal(TreeShap(paths, COLUMNS).shap_values(rows), whole)


def test_float32_models_compare_rounded_values() -> None:
    # x rounds (float32) down to f; the threshold lies between f and x: only float32 follows the path
    f = float(np.float32(0.1))
    x = f + 1e-10
    threshold = f + 5e-11
    assert float(np.float32(x)) == f
    group = PathGroup(
        np.array([[0]]), np.array([[-np.inf]]), np.array([[threshold]]), np.array([[0.5]]), np.ones((1, 1))
    )
    row = np.array([[x]])
    as_float64 = TreePaths((group,), np.zeros(1), "le", float32=False)
    as_float32 = TreePaths((group,), np.zeros(1), "le", float32=True)
    assert TreeShap(as_float64, 1).raw(row)[0, 0] == 0.0
    assert TreeShap(as_float32, 1).raw(row)[0, 0] == 1.0


def test_a_scaler_in_front_is_applied_first() -> None:
    group = PathGroup(
        np.array([[0]]), np.array([[-np.inf]]), np.array([[0.0]]), np.array([[0.5]]), np.ones((1, 1))
    )
    scaled = TreePaths((group,), np.zeros(1), "le", False, shift=np.array([10.0]), scale=np.array([2.0]))
    raw = TreeShap(scaled, 1).raw(np.array([[9.0], [11.0]]))
    assert raw[:, 0].tolist() == [1.0, 0.0]  # (9 - 10) / 2 <= 0 follows the path; (11 - 10) / 2 does not


def test_the_artifact_round_trips_and_refuses_what_does_not_fit() -> None:
    rng = np.random.default_rng(5)
    artifact = ExplanationArtifact(space="margin", inputs=COLUMNS, model=random_paths(rng, outputs=3))
    data = dump(artifact)
    assert dump(artifact) == data  # deterministic bytes: same model, same artifact
    again = load(data)
    assert again.space == "margin"
    assert again.outputs == 3
    rows = rng.normal(size=(3, COLUMNS))
    np.testing.assert_array_equal(
        TreeShap(again.model, COLUMNS).shap_values(rows),  # type: ignore[arg-type]
        TreeShap(artifact.model, COLUMNS).shap_values(rows),  # type: ignore[arg-type]
    )
    with pytest.raises(ExplanationArtifactError, match="column the graph does not have"):
        dump(ExplanationArtifact(space="margin", inputs=2, model=artifact.model))
    with pytest.raises(ExplanationArtifactError, match="not an explanation artifact"):
        load(b"not a zip file")
    linear = Linear(coef=np.ones((1, 3)), intercept=np.zeros(1), mean=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ExplanationArtifactError, match="non-finite"):
        dump(ExplanationArtifact(space="prediction", inputs=3, model=linear))
