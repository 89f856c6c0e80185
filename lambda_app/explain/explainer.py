"""Per-row explanations of the number the service answers, per original feature.

From the artifact's raw attributions (lambda_app/explain/tree_shap.py for trees, exact
``coef x (x - mean)`` for linear models) to what a client reads:

- Per feature: a one-hot category's columns are summed back into its feature.
- In the units of the answer where that keeps additivity: an anomaly score, a forest's class
  probability and a regression prediction are explained in their own units. A boosted or logistic
  classifier is explained in log-odds (binary) or per-class margins (the softmax of which are the
  probabilities): there the contributions add up exactly, while probabilities are not a sum of parts.
- An IsolationForest's score is ``2 ** (-path_length / c)``, a monotone function of the mean path
  length that Tree SHAP attributes exactly. The path-length contributions are rescaled by one factor per
  row, ``(score(x) - score(base)) / (path_length(x) - path_length(base))``, so they keep their signs
  and proportions and add up to the served score minus the score at the base value (at a row whose path
  length equals the base, the factor is the derivative there). A feature that shortens the path (makes
  the row easier to isolate) raises the score.

Each row's explanation adds up: ``base + sum(contributions) == value`` (to rounding), and ``value`` is
the served number (or its log-odds / margin), which tests check against the model's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambda_app.explain.artifact import ExplanationArtifact, ExplanationArtifactError, Linear
from lambda_app.explain.tree_shap import TreeShap
from lambda_app.registry import ClassLabel, FeatureSpec, Manifest


@dataclass(frozen=True)
class Attribution:
    """Explanations of a table: per row and output, the base, the value and each feature's part."""

    base: np.ndarray  # (rows, outputs)
    contributions: np.ndarray  # (rows, features, outputs)
    value: np.ndarray  # (rows, outputs) == base + contributions.sum(axis=1)
    outputs: list[str]  # the name of each output: "score", "prediction" or a class key


class Explainer:
    """Explains one loaded model (built on the first explain request; lambda_app/model_store.py)."""

    def __init__(
        self,
        artifact: ExplanationArtifact,
        features: Sequence[FeatureSpec],
        classes: Sequence[ClassLabel] | None = None,
    ) -> None:
        """``features`` and ``classes`` as the model's manifest lists them (training explains before
        the manifest exists, for its report)."""
        width = sum(spec.width for spec in features)
        if artifact.inputs != width:
            raise ExplanationArtifactError(
                f"the explanation artifact has {artifact.inputs} inputs; the model takes {width}"
            )
        self.artifact = artifact
        self.space = artifact.space
        self.names = [spec.name for spec in features]
        self.classes: list[ClassLabel] = list(classes or [])
        self._keys = [str(c) for c in self.classes]
        expected = _outputs_for(artifact, len(self.classes))
        if artifact.outputs != expected:
            raise ExplanationArtifactError(
                f"a {artifact.space} explanation of this model needs {expected} outputs,"
                f" not {artifact.outputs}"
            )
        widths = [spec.width for spec in features]
        self._starts = np.cumsum([0, *widths[:-1]])
        model = artifact.model
        self._trees = None if isinstance(model, Linear) else TreeShap(model, artifact.inputs)
        # What ``value`` is: "score", "prediction", "probability", "log_odds" or "margin".
        self.answer_space = "score" if artifact.space == "path_length" else artifact.space

    @classmethod
    def for_manifest(cls, artifact: ExplanationArtifact, manifest: Manifest) -> Explainer:
        return cls(artifact, manifest.features, manifest.classes)

    def attribute(self, encoded: np.ndarray) -> Attribution:
        """Explain rows of the graph input (lambda_app/preprocess.py's encoding of the served table)."""
        raw_base, raw = self._raw(encoded)  # (outputs,), (rows, inputs, outputs)
        per_feature = np.add.reduceat(raw, self._starts, axis=1)  # (rows, features, outputs)
        rows = len(encoded)
        base = np.tile(raw_base, (rows, 1))
        if self.space == "path_length":
            base, per_feature = self._to_score(raw_base, per_feature)
            outputs = ["score"]
        elif self.space == "log_odds":  # the second class's log-odds; the first's is its negative
            base = np.concatenate([-base, base], axis=1)
            per_feature = np.concatenate([-per_feature, per_feature], axis=2)
            outputs = self._keys
        elif self.space in ("probability", "margin"):
            outputs = self._keys
        else:
            outputs = ["prediction"]
        value = base + per_feature.sum(axis=1)
        return Attribution(base=base, contributions=per_feature, value=value, outputs=outputs)

    def _raw(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(encoded, dtype=np.float64)
        if self._trees is not None:
            return self._trees.base, self._trees.shap_values(x)
        model = self.artifact.model
        assert isinstance(model, Linear)
        base = model.intercept + model.coef @ model.mean
        raw = (x - model.mean)[:, :, None] * model.coef.T[None, :, :]
        return base, raw

    def _to_score(self, raw_base: np.ndarray, per_feature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Path-length attributions -> score attributions (module docstring)."""
        normaliser = self.artifact.normaliser
        assert normaliser is not None  # the artifact's validation guarantees it for path_length
        length_base = float(raw_base[0])
        length = length_base + per_feature[:, :, 0].sum(axis=1)
        score = 2.0 ** (-length / normaliser)
        score_base = 2.0 ** (-length_base / normaliser)
        moved = length - length_base
        flat = np.abs(moved) < 1e-12
        slope = -np.log(2.0) / normaliser * score_base  # d score / d length at the base
        factor = np.where(flat, slope, (score - score_base) / np.where(flat, 1.0, moved))
        base = np.full((len(length), 1), score_base)
        return base, per_feature * factor[:, None, None]


def _outputs_for(artifact: ExplanationArtifact, classes: int) -> int:
    if artifact.space in ("probability", "margin"):
        return classes
    return 1


def top_contributions(
    names: Sequence[str], contributions: np.ndarray, top: int
) -> tuple[list[dict[str, Any]], float]:
    """The ``top`` largest contributions by size (ties by feature order), and the sum of the rest."""
    order = np.argsort(-np.abs(contributions), kind="stable")
    shown = order[:top]
    listed = [{"feature": names[i], "contribution": float(contributions[i])} for i in shown]
    rest = float(contributions[order[top:]].sum()) if len(order) > top else 0.0
    return listed, rest


def explain_rows(
    explainer: Explainer,
    encoded: np.ndarray,
    table: np.ndarray,
    predicted: Sequence[ClassLabel] | None,
    top: int,
    all_classes: bool = False,
) -> list[dict[str, Any]]:
    """The ``explanations`` answer field: one object per row of ``table`` (the served table, NaN where a
    missing value was filled; ``encoded`` is the graph input made from it).

    Per row: ``base``, ``value`` and the ``top`` ``contributions`` (largest first) with ``rest``, the sum
    of the others, so ``base + sum(contributions) + rest == value``; ``imputed`` names the features whose
    missing value was filled (their contribution is the fill's). A classifier's row explains its predicted
    class (``class``), or every class under ``classes`` when ``all_classes``.
    """
    attribution = explainer.attribute(encoded)
    names = explainer.names
    missing = np.isnan(table)
    keys = attribution.outputs
    index = {key: i for i, key in enumerate(keys)}
    answers: list[dict[str, Any]] = []
    for row in range(len(table)):

        def one(output: int, row: int = row) -> dict[str, Any]:
            listed, rest = top_contributions(names, attribution.contributions[row, :, output], top)
            return {
                "base": float(attribution.base[row, output]),
                "value": float(attribution.value[row, output]),
                "contributions": listed,
                "rest": rest,
            }

        answer: dict[str, Any]
        if predicted is None:
            answer = one(0)
        elif all_classes:
            answer = {"classes": [{"class": c, **one(i)} for i, c in enumerate(explainer.classes)]}
        else:
            label = predicted[row]
            answer = {"class": label, **one(index[str(label)])}
        if missing[row].any():
            answer["imputed"] = [names[i] for i in np.flatnonzero(missing[row])]
        answers.append(answer)
    return answers


def explanation_columns(
    explainer: Explainer, encoded: np.ndarray, predicted: Sequence[ClassLabel] | None, top: int
) -> dict[str, Any]:
    """Batch scoring's explanation columns for rows of the graph input: ``explain_base``,
    ``explain_value``, then the ``top`` largest contributions as ``explain_<i>_feature`` and
    ``explain_<i>_contribution`` (largest first), and ``explain_rest`` (the sum of the others).
    A classifier's rows explain their predicted class."""
    attribution = explainer.attribute(encoded)
    rows = np.arange(len(encoded))
    if predicted is None:
        output = np.zeros(len(encoded), dtype=np.intp)
    else:
        index = {key: i for i, key in enumerate(attribution.outputs)}
        output = np.array([index[str(label)] for label in predicted], dtype=np.intp)
    parts = attribution.contributions[rows, :, output]  # (rows, features)
    order = np.argsort(-np.abs(parts), axis=1, kind="stable")
    names = np.array(explainer.names, dtype=object)
    columns: dict[str, Any] = {
        "explain_base": attribution.base[rows, output],
        "explain_value": attribution.value[rows, output],
    }
    shown = min(top, parts.shape[1])
    for rank in range(top):
        if rank < shown:
            column = order[:, rank]
            columns[f"explain_{rank + 1}_feature"] = names[column].tolist()
            columns[f"explain_{rank + 1}_contribution"] = parts[rows, column]
        else:  # fewer features than asked for: empty cells keep the columns the same for every model
            columns[f"explain_{rank + 1}_feature"] = [None] * len(encoded)
            columns[f"explain_{rank + 1}_contribution"] = np.full(len(encoded), np.nan)
    listed = np.take_along_axis(parts, order[:, :shown], axis=1).sum(axis=1)
    columns["explain_rest"] = parts.sum(axis=1) - listed
    return columns


def explanation_column_names(top: int) -> list[str]:
    """The columns ``explanation_columns`` adds, in order."""
    pairs = [
        name
        for rank in range(1, top + 1)
        for name in (f"explain_{rank}_feature", f"explain_{rank}_contribution")
    ]
    return ["explain_base", "explain_value", *pairs, "explain_rest"]
