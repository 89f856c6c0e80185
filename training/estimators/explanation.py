"""The explanation artifact of a fitted model: what serving needs to explain its answers per row.

Serving computes path-dependent Tree SHAP, or exact linear contributions, from an
``ExplanationArtifact`` (lambda_app/explain/artifact.py states the format). This module reads the
fitted model exactly as it was compiled to ONNX (a bare estimator, or one behind a StandardScaler)
and writes its trees as root-to-leaf paths, or its coefficients, in the serving graph's input space.

Covered: IsolationForest; random forests, extra trees and decision trees; GradientBoosting,
HistGradientBoosting, XGBoost and LightGBM; logistic and least-squares linear models (each read by
training/estimators/explained_models.py, with the tree cover shap's TreeExplainer uses, so the
numbers agree with shap's).

Nothing is taken on trust: the offset (an init score, a base margin) is the model's own output minus
the paths a row follows, the same on every row checked, and the whole artifact is then checked against
the model on a sample of the fitting rows (``verify_explanation``). Anything else (nearest neighbours,
kernels, networks, a transformed target...) raises NotExplainableError with a one-line reason; the
model is published without an explanation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambda_app.explain.artifact import (
    ExplanationArtifact,
    ExplanationArtifactError,
    Linear,
    PathGroup,
    Space,
    TreePaths,
    dump,
    validate,
)
from training.estimators.explained_models import (
    ExplainedModel,
    ModelParts,
    NotExplainableError,
    Tree,
    explained_model,
    model_parts,
)

__all__ = [
    "NotExplainableError",
    "PublishedExplanation",
    "explained_output",
    "explanation_for_publishing",
    "export_explanation",
    "verify_explanation",
]

log = logging.getLogger("training")

CHECKED_ROWS = 500
"""At most this many fitting rows are checked (fewer for a large ensemble: CHECKED_ELEMENTS)."""
CHECKED_ELEMENTS = 40_000_000
"""Rows x path columns the check evaluates at most; it checks at least MIN_CHECKED_ROWS rows."""
MIN_CHECKED_ROWS = 64
OFFSET_ROWS = 32
"""Fitting rows the offset is measured on (it must be the same on each)."""
CHUNK_ELEMENTS = 1 << 22
"""Rows are evaluated in chunks so that rows x path columns stays near this."""

TASK_SPACES: dict[str, tuple[Space, ...]] = {
    "anomaly": ("path_length",),
    "classification": ("probability", "log_odds", "margin"),
    "regression": ("prediction",),
}
"""The spaces a model of each task is explained in."""


@dataclass(frozen=True)
class PublishedExplanation:
    """What publishing writes (the artifact's bytes, or None) and records in the evaluation."""

    data: bytes | None
    record: dict[str, Any]


def explanation_for_publishing(
    estimator: Any,
    task: str,
    x_fit: np.ndarray,
    classes: list[Any] | None,
    native_missing: Sequence[str] = (),
) -> PublishedExplanation:
    """The explanation artifact to publish beside the graph, or None with the reason, recorded either way.

    A model without an exact explanation is published without one (one info line says why); an
    unexpected failure of the export does not stop publishing either, and is logged as a warning.
    ``native_missing``: features whose missing values reach the trees as they are; the explanation's
    paths know only split intervals, not the missing-value branch, so none is published.
    """
    if native_missing:
        reason = (
            f"missing values of {', '.join(repr(n) for n in native_missing)} reach the trees as they are"
            ' ([data] missing = "native"), and explanations follow split thresholds only'
        )
        log.info("no explanation published: %s", reason)
        return PublishedExplanation(None, {"available": False, "reason": reason})
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
    parts = model_parts(estimator)
    family = explained_model(parts)
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
    artifact = dataclasses.replace(
        artifact, notes={**notes, "checked_rows": len(rows), "max_difference": difference}
    )
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
    parts = model_parts(estimator)
    return _verify(artifact, explained_model(parts), parts, np.asarray(x_rows, dtype=np.float64))


def explained_output(artifact: ExplanationArtifact, x: np.ndarray) -> np.ndarray:
    """The raw output (rows, outputs) of graph input rows ``x``, from the artifact alone."""
    x = np.asarray(x, dtype=np.float64)
    model = artifact.model
    if isinstance(model, Linear):
        result: np.ndarray = model.intercept + x @ model.coef.T
        return result
    total: np.ndarray = model.offset + _paths_sum(model, x)
    return total


def _check_classes(family: ExplainedModel, classes: list[Any] | None) -> None:
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


def _check_link(family: ExplainedModel, parts: ModelParts, probe: np.ndarray) -> None:
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
        answered = "prediction is" if family.link == "identity" else "probabilities are"
        raise NotExplainableError(
            f"{family.name}'s {answered} not {what} of its trees or coefficients (its objective or"
            " loss maps them otherwise): no exact explanation in the served units"
        )


# Linear models ----------------------------------------------------------------------------------------


def _linear(family: ExplainedModel, parts: ModelParts, x_fit: np.ndarray) -> Linear:
    """The coefficients in the graph input space: a scaler in front folded in."""
    assert family.linear is not None
    coef, intercept = family.linear()
    shift, scale = parts.shift_scale
    if shift is not None and scale is not None:
        coef = coef / scale
        intercept = intercept - coef @ shift
    return Linear(coef=coef, intercept=intercept, mean=x_fit.mean(axis=0))


# Trees as paths ---------------------------------------------------------------------------------------


def _tree_paths(family: ExplainedModel, parts: ModelParts, inputs: int, probe: np.ndarray) -> TreePaths:
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
        scale=scale,
    )
    # The offset (an init score, a base margin, single-leaf trees) is what the model answers beyond
    # the paths a row follows: the same on every row, or the paths are not the model's.
    raw = family.raw(parts.model_input(probe))
    rest = raw - _paths_sum(paths, probe)
    offset = rest.mean(axis=0)
    spread = float(np.abs(rest - offset).max())
    limit = family.tolerance * max(1.0, float(np.abs(raw).max()))
    if spread > limit:
        raise NotExplainableError(
            f"{family.name}'s trees do not add up to its output (off by up to {spread:.3g} from one row"
            " to another): no exact explanation"
        )
    return dataclasses.replace(paths, offset=offset)


def _paths_of(tree: Tree, name: str) -> dict[int, tuple[np.ndarray, ...]]:
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


def _verify(
    artifact: ExplanationArtifact, family: ExplainedModel, parts: ModelParts, x_rows: np.ndarray
) -> float:
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
