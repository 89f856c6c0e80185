"""The explanation artifact: what serving needs to explain a model, written by training, read here.

ONNX graphs do not keep what attribution needs (skl2onnx drops a tree's node sample counts), so
training exports it beside the graph as ``explanation.npz``: numpy arrays only, read with
``allow_pickle=False`` (loading it runs no code), listed in the manifest with its sha256 like every
artifact. It is listed with the role ``other`` so a service that predates explanations still loads
the version (it ignores the file); a service that explains finds it by its path.

Everything is in the serving graph's input space (lambda_app/preprocess.py: one column per feature,
or per category of a one-hot feature), so serving explains the same matrix the graph scores, then
sums a one-hot feature's columns back into its feature.

Two kinds of model:

- ``trees``: any additive tree ensemble, as root-to-leaf *paths*. Each path lists the distinct input
  columns it splits on, with the interval of values that follows it (the splits on one column merged)
  and the share of the training cover that follows it at that column (the product of the cover
  ratios of its splits on it); the leaf value is already weighted (1/n_trees for a forest, the
  learning rate for boosting). The ensemble's raw output is ``offset`` + the sum of the values of the
  paths a row follows. Paths are grouped by their number of columns, so serving computes each group
  without padding (lambda_app/explain/tree_shap.py).
- ``linear``: ``raw = intercept + coef @ x``, with the training mean of each input column.

``space`` says what the raw output is and how the served number follows from it:

- ``prediction``: the regression prediction itself;
- ``probability``: one output per class, the served probabilities themselves (forests);
- ``log_odds``: one output, the log-odds of the second class (binary boosting, logistic models);
- ``margin``: one output per class, the softmax of which is the served probabilities;
- ``path_length``: an IsolationForest's mean path length; the served score is
  ``2 ** (-path_length / normaliser)`` (lambda_app/explain/explainer.py maps contributions onto it).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

FORMAT = 1
EXPLANATION_FILE = "explanation.npz"

Space = Literal["prediction", "probability", "log_odds", "margin", "path_length"]
SPACES: tuple[Space, ...] = ("prediction", "probability", "log_odds", "margin", "path_length")
Split = Literal["le", "lt"]


class ExplanationArtifactError(ValueError):
    """The explanation artifact is malformed (a bug or a tampered file, never user input)."""


@dataclass(frozen=True)
class PathGroup:
    """All paths with the same number ``m`` of distinct columns (arrays of ``paths`` rows)."""

    column: np.ndarray  # int32 (paths, m): the graph input column of each split column
    lower: (
        np.ndarray
    )  # float64 (paths, m): the path takes lower < x <= upper ("le") or lower <= x < upper ("lt")
    upper: np.ndarray  # float64 (paths, m)
    zero: np.ndarray  # float64 (paths, m): the share of cover that follows the path at this column, in (0, 1]
    value: np.ndarray  # float64 (paths, outputs): the weighted leaf value

    @property
    def width(self) -> int:
        return int(self.column.shape[1])


@dataclass(frozen=True)
class TreePaths:
    groups: tuple[PathGroup, ...]
    offset: np.ndarray  # float64 (outputs,): added to the paths' sum (an init score, a base margin)
    split: Split  # "le": x <= threshold goes left (scikit-learn, LightGBM); "lt": x < threshold (XGBoost)
    float32: bool  # the model compares float32(x), as scikit-learn's trees and XGBoost do
    # Applied to the graph input first when set: (x - shift) / scale (a StandardScaler before the trees).
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None


@dataclass(frozen=True)
class Linear:
    coef: np.ndarray  # float64 (outputs, inputs), in the graph input space (a scaler folded in)
    intercept: np.ndarray  # float64 (outputs,)
    mean: np.ndarray  # float64 (inputs,): the training mean of each input column


@dataclass(frozen=True)
class ExplanationArtifact:
    space: Space
    inputs: int  # the graph's input width
    model: TreePaths | Linear
    normaliser: float | None = None  # path_length only: c(max_samples) x 1
    notes: dict[str, Any] = field(default_factory=dict)  # how it was made (family, library versions)

    @property
    def outputs(self) -> int:
        model = self.model
        return int(model.intercept.shape[0] if isinstance(model, Linear) else model.offset.shape[0])


def dump(artifact: ExplanationArtifact) -> bytes:
    """The artifact as .npz bytes: deterministic for the same arrays (no timestamps in the archive)."""
    validate(artifact)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "space": artifact.space,
        "inputs": artifact.inputs,
        "normaliser": artifact.normaliser,
        "notes": artifact.notes,
    }
    arrays: dict[str, np.ndarray] = {}
    model = artifact.model
    if isinstance(model, Linear):
        meta["kind"] = "linear"
        arrays.update(coef=model.coef, intercept=model.intercept, mean=model.mean)
    else:
        meta.update(kind="trees", split=model.split, float32=model.float32, groups=len(model.groups))
        arrays["offset"] = model.offset
        if model.shift is not None and model.scale is not None:
            arrays.update(shift=model.shift, scale=model.scale)
        for index, group in enumerate(model.groups):
            for name in ("column", "lower", "upper", "zero", "value"):
                arrays[f"g{index}.{name}"] = getattr(group, name)
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def load(data: bytes) -> ExplanationArtifact:
    """Verified bytes -> the artifact; ExplanationArtifactError when it is not one this code reads."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes())
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise ExplanationArtifactError(f"not an explanation artifact: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExplanationArtifactError(
            f"explanation artifact format {meta.get('format')!r}; this service reads {FORMAT}"
        )
    try:
        model: TreePaths | Linear
        if meta["kind"] == "linear":
            model = Linear(
                coef=_floats(arrays["coef"]),
                intercept=_floats(arrays["intercept"]),
                mean=_floats(arrays["mean"]),
            )
        elif meta["kind"] == "trees":
            groups = tuple(
                PathGroup(
                    column=arrays[f"g{i}.column"].astype(np.intp),
                    lower=_floats(arrays[f"g{i}.lower"]),
                    upper=_floats(arrays[f"g{i}.upper"]),
                    zero=_floats(arrays[f"g{i}.zero"]),
                    value=_floats(arrays[f"g{i}.value"]),
                )
                for i in range(int(meta["groups"]))
            )
            model = TreePaths(
                groups=groups,
                offset=_floats(arrays["offset"]),
                split=meta["split"],
                float32=bool(meta["float32"]),
                shift=_floats(arrays["shift"]) if "shift" in arrays else None,
                scale=_floats(arrays["scale"]) if "scale" in arrays else None,
            )
        else:
            raise ExplanationArtifactError(f"unknown explanation kind {meta['kind']!r}")
        artifact = ExplanationArtifact(
            space=meta["space"],
            inputs=int(meta["inputs"]),
            model=model,
            normaliser=meta.get("normaliser"),
            notes=meta.get("notes") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ExplanationArtifactError):
            raise
        raise ExplanationArtifactError(f"explanation artifact incomplete: {exc!r}") from exc
    validate(artifact)
    return artifact


def _floats(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def validate(artifact: ExplanationArtifact) -> None:
    """Shapes agree, numbers are finite, columns exist: refused at load rather than explained wrongly."""
    problems: list[str] = []
    if artifact.space not in SPACES:
        problems.append(f"unknown space {artifact.space!r}")
    if artifact.space == "path_length" and not (artifact.normaliser and artifact.normaliser > 0):
        problems.append("a path_length explanation needs a positive normaliser")
    model, inputs = artifact.model, artifact.inputs
    if isinstance(model, Linear):
        outputs = model.intercept.shape[0] if model.intercept.ndim == 1 else -1
        if model.coef.shape != (outputs, inputs) or model.mean.shape != (inputs,):
            problems.append(f"linear shapes {model.coef.shape}, {model.intercept.shape}, {model.mean.shape}")
        arrays = [model.coef, model.intercept, model.mean]
    else:
        outputs = model.offset.shape[0] if model.offset.ndim == 1 else -1
        if model.split not in ("le", "lt"):
            problems.append(f"unknown split rule {model.split!r}")
        if (model.shift is None) != (model.scale is None):
            problems.append("shift and scale come together")
        arrays = [model.offset]
        if model.shift is not None and model.scale is not None:
            if (
                model.shift.shape != (inputs,)
                or model.scale.shape != (inputs,)
                or not np.all(model.scale != 0)
            ):
                problems.append("shift and scale need one non-zero scale per input column")
            arrays += [model.shift, model.scale]
        for group in model.groups:
            paths, width = group.column.shape if group.column.ndim == 2 else (-1, -1)
            shapes = {a.shape for a in (group.lower, group.upper, group.zero)}
            if width < 1 or shapes != {(paths, width)} or group.value.shape != (paths, outputs):
                problems.append(f"a path group's shapes disagree ({group.column.shape}, {group.value.shape})")
                continue
            if paths and (group.column.min() < 0 or group.column.max() >= inputs):
                problems.append("a path splits on a column the graph does not have")
            if paths and not ((group.zero > 0) & (group.zero <= 1)).all():
                problems.append("cover shares must lie in (0, 1]")
            arrays += [group.zero, group.value]
    if outputs < 1:
        problems.append("no outputs")
    if not all(np.isfinite(a).all() for a in arrays):
        problems.append("non-finite numbers")
    if problems:
        raise ExplanationArtifactError("invalid explanation artifact: " + "; ".join(problems))
