"""Global feature importance from the served explanations: the mean size of each feature's contribution.

The same explainer that answers ``/predict?explain=true`` (lambda_app/explain/) is run over the holdout
at training and over a window at a drift check, so the report's importance is exactly what clients see,
summed over rows. A classifier's importance is the mean over its classes (the two classes of a log-odds
explanation mirror each other). A feature whose mean contribution moves between training and a window
is one whose role in the answers changed, even when its own distribution moved little.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lambda_app.explain.explainer import Explainer
from training.evaluation.report import _png, _pyplot, table

MAX_ROWS = 500
"""Rows explained for an importance figure: enough for a stable mean, bounded in time (a few ms per
row for a large forest, so at most a few seconds per training run)."""


def global_importance(explainer: Explainer, encoded: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean |contribution| per feature over (a seeded sample of at most MAX_ROWS of) ``encoded`` rows."""
    if len(encoded) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(encoded), MAX_ROWS, replace=False))
        encoded = encoded[rows]
    if not len(encoded):
        return {name: 0.0 for name in explainer.names}
    contributions = explainer.attribute(encoded).contributions  # (rows, features, outputs)
    means = np.abs(contributions).mean(axis=(0, 2))
    return {name: float(value) for name, value in zip(explainer.names, means, strict=True)}


def importance_section(importance: Mapping[str, float], space: str, rows: int) -> str:
    """The training report's section: a bar per feature, largest first, and the table."""
    ranked = sorted(importance.items(), key=lambda item: -item[1])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ranked) + 1.2))
    ax.barh([name for name, _ in ranked][::-1], [value for _, value in ranked][::-1], color="#3b6ea5")
    ax.set_xlabel(f"mean |contribution| ({space})")
    ax.set_title("What drives the answers (holdout)")
    return (
        "<h2>Feature importance from the served explanations</h2>"
        f"<p>The mean size of each feature's contribution to the answer ({space}) over {rows} holdout rows,"
        " computed by the same explainer that answers <code>/predict?explain=true</code>.</p>"
        + _png(fig)
        + table(["feature", "mean |contribution|"], [[name, value] for name, value in ranked])
    )


def importance_changes(
    current: Mapping[str, float], reference: Mapping[str, float]
) -> dict[str, dict[str, float | None]]:
    """Per feature: the window's and training's mean |contribution| and their ratio (None from 0)."""
    return {
        name: {
            "importance": value,
            "reference_importance": reference.get(name),
            "importance_ratio": value / reference[name] if reference.get(name) else None,
        }
        for name, value in current.items()
    }


def importance_drift_section(changes: Mapping[str, Mapping[str, float | None]], space: str) -> str:
    """The drift report's section: each feature's contribution in the window beside training's, the
    largest relative moves first."""

    def moved(item: tuple[str, Mapping[str, float | None]]) -> float:
        ratio = item[1]["importance_ratio"]
        return -abs(np.log(ratio)) if ratio else 0.0

    rows = [
        [name, figures["importance"], figures["reference_importance"], figures["importance_ratio"]]
        for name, figures in sorted(changes.items(), key=moved)
    ]
    return (
        "<h2>How much each feature drives the answers</h2>"
        f"<p>Mean |contribution| to the answer ({space}) in this window and on the training holdout:"
        " a feature whose contribution grew or shrank is one whose role in the answers changed.</p>"
        + table(["feature", "window", "training", "window / training"], rows)
    )
