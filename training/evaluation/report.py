"""Self-contained HTML reports (plots inlined as PNG) for evaluations and drift checks.

matplotlib renders off-screen (Agg); every plot is embedded as base64, so a report is one file
that opens anywhere, including from an S3 console download.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #b00020; font-weight: bold; } .good { color: #1b5e20; }
img { max-width: 100%; }
"""


def _png(fig: Any, tight: bool = True) -> str:
    """The figure as an inline PNG; ``tight`` crops it to what is drawn (one more full draw: a figure
    laid out by hand does without)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "<img alt='plot' src='data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode() + "'>"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape(str(value)) if value is not None else "-"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: Sequence[str]) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>"
    )


def score_distributions(scores: np.ndarray, labels: np.ndarray, threshold: float) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(float(scores.min()), float(scores.max()), 50)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", density=True)
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomaly", density=True)
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density (each class's area is 1)")
    ax.legend()
    ax.set_title("Score distributions on the holdout")
    return _png(fig)


def roc_and_pr_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], thresholds: dict[str, float] | None = None
) -> str:
    """``curves``: name -> (scores, labels); ROC and precision-recall for each, their areas in the
    legend, and each model's operating point (``thresholds``: name -> its decision threshold)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = _pyplot()
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name, (scores, labels) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        precision, recall, _ = precision_recall_curve(labels, scores)
        (line,) = roc_ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
        pr_ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(labels, scores):.3f})")
        if thresholds and name in thresholds:
            flagged = scores >= thresholds[name]
            positives = max(int(labels.sum()), 1)
            negatives = max(int((labels == 0).sum()), 1)
            hit = int((flagged & (labels == 1)).sum())
            point_recall = hit / positives
            point_precision = hit / max(int(flagged.sum()), 1)
            point_fpr = int((flagged & (labels == 0)).sum()) / negatives
            roc_ax.plot(
                point_fpr, point_recall, "o", color=line.get_color(), label=f"{name} at its threshold"
            )
            pr_ax.plot(
                point_recall, point_precision, "o", color=line.get_color(), label=f"{name} at its threshold"
            )
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    roc_ax.legend(loc="lower right", fontsize=8)
    pr_ax.legend(loc="lower left", fontsize=8)  # the curve starts top left and falls to the right
    return _png(fig)


def confusion(metrics: dict[str, Any]) -> str:
    return table(
        ["", "predicted normal", "predicted anomaly"],
        [
            ["actual normal", metrics["true_negatives"], metrics["false_positives"]],
            ["actual anomaly", metrics["false_negatives"], metrics["true_positives"]],
        ],
    )


PLOTS_PER_ROW = 3


def feature_histograms(
    reference: Any, names: Sequence[str], current: np.ndarray, title: str, label: str = "current"
) -> str:
    """Per feature: the reference's bin fractions against ``current`` binned the same way; three to a
    row. Numbers by their bins, booleans by value, categories by value (and unseen), missing shares
    under each."""
    from lambda_app.registry.reference import bin_counts, feature_bins

    plt = _pyplot()
    bins = feature_bins(reference, list(names))
    columns = min(PLOTS_PER_ROW, len(bins))
    rows = -(-len(bins) // columns)
    # Fixed spacing rather than a constrained layout: the layout engine measured every tick label of
    # every panel, most of the report's time on a wide table (30 features: 4.2 s, 2.3 s without it).
    fig, grid = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.6 * rows), squeeze=False)
    height = 3.6 * rows  # inches
    fig.subplots_adjust(
        left=0.07, right=0.98, bottom=1.2 / height, top=1 - 0.8 / height, wspace=0.3, hspace=0.8
    )
    axes = grid.ravel()
    for unused in axes[len(bins) :]:
        unused.set_axis_off()
    for ax, column, feature in zip(axes, range(current.shape[1]), bins, strict=False):
        summary = reference.features[feature.name]
        counts = bin_counts(current[:, column], feature)
        fractions = counts / max(counts.sum(), 1)
        expected = feature.expected
        if summary.categories:  # a bar per category, and one for unseen values (nothing is above)
            fractions, expected = fractions[:-1], expected[:-1]
        positions = np.arange(len(fractions))
        ax.bar(positions - 0.2, expected, width=0.4, label="training reference")
        ax.bar(positions + 0.2, fractions, width=0.4, label=label)
        ax.set_xticks(positions, bin_labels(summary), fontsize=7, rotation=45)
        xlabel = (
            "category"
            if summary.categories
            else "value"
            if list(summary.bin_edges) == [0.0, 0.5, 1.0]
            else "values (each bin from the value shown)"
        )
        missing = np.isnan(current[:, column]).mean() if len(current) else 0.0
        if summary.missing_fraction is not None or missing:
            trained = 100 * (summary.missing_fraction or 0)
            xlabel += f"\nmissing: {trained:.1f}% in training, {100 * missing:.1f}% {label}"
        ax.set(title=feature.name, xlabel=xlabel, ylabel="share of rows with a value")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, y=1 - 0.25 / height)
    return _png(fig, tight=False)


def bin_labels(summary: Any) -> list[str]:
    """Tick labels in the feature's own values: below the training minimum, each bin's lower edge,
    above the maximum (a port shows 20, 22, 53, 80, 443 rather than bin numbers). A category's: unseen
    values, then each category."""
    if summary.categories:
        return ["(unseen)", *summary.categories]
    if list(summary.bin_edges) == [0.0, 0.5, 1.0]:  # a boolean (or any 0/1 feature): one bin per value
        return ["<0", "0 (false)", "1 (true)", ">1"]
    edges = np.unique(np.asarray(summary.bin_edges, dtype=np.float64))
    inner = [f"{edge:.4g}" for edge in edges[:-1]] if len(edges) > 1 else [f"{edges[0]:.4g}"]
    return [f"<{summary.min:.4g}", *inner, f">{summary.max:.4g}"]


def metrics_table(name: str, metrics: dict[str, Any], baseline_name: str, baseline: dict[str, Any]) -> str:
    keys = [k for k in metrics if k != "rows"]
    return table(
        ["model", *keys], [[name, *[metrics[k] for k in keys]], [baseline_name, *[baseline[k] for k in keys]]]
    )


def class_report(
    name: str,
    feature_names: list[str],
    reference: Any,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    probabilities: np.ndarray,
    classes: list[Any],
    metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    confusion_matrix: list[list[int]],
) -> str:
    """A classifier's evaluation report: metrics beside the baseline, confusion matrix, curves (binary)."""
    sections = [
        f"<p>{len(test_labels)} held-out rows; {len(classes)} classes.</p>",
        "<h2>Holdout metrics</h2>",
        metrics_table(name, metrics, "most-frequent-class baseline", baseline_metrics),
        "<h2>Confusion matrix (rows: actual, columns: predicted)</h2>",
        table(
            ["", *[f"predicted {c}" for c in classes]],
            [[f"actual {c}", *row] for c, row in zip(classes, confusion_matrix, strict=True)],
        ),
    ]
    if len(classes) == 2:
        positive = np.asarray([str(v) == str(classes[1]) for v in test_labels], dtype=np.int64)
        if 0 < positive.sum() < len(positive):
            sections.append(
                f"<h2>ROC and precision-recall (positive class {html.escape(str(classes[1]))})</h2>"
            )
            sections.append(roc_and_pr_curves({name: (probabilities[:, 1], positive)}))
    sections.append("<h2>Holdout features against the training reference</h2>")
    sections.append(
        feature_histograms(reference, feature_names, test_features, "Feature distributions", "holdout")
    )
    return page(f"Evaluation report: {name}", sections)


def regression_report(
    name: str,
    feature_names: list[str],
    reference: Any,
    test_features: np.ndarray,
    truth: np.ndarray,
    predicted: np.ndarray,
    metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
) -> str:
    """A regressor's evaluation report: metrics beside the baseline, predicted vs actual, residuals."""
    plt = _pyplot()
    fig, (scatter, residuals) = plt.subplots(1, 2, figsize=(10, 4))
    scatter.scatter(truth, predicted, s=6, alpha=0.5)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color="grey", linestyle=":", label="perfect")
    scatter.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (holdout)")
    scatter.legend()
    residuals.hist(predicted - truth, bins=40)
    residuals.set(xlabel="predicted - actual", ylabel="rows", title="Residuals (holdout)")
    sections = [
        f"<p>{len(truth)} held-out rows.</p>",
        "<h2>Holdout metrics</h2>",
        metrics_table(name, metrics, "training-mean baseline", baseline_metrics),
        _png(fig),
        "<h2>Holdout features against the training reference</h2>",
        feature_histograms(reference, feature_names, test_features, "Feature distributions", "holdout"),
    ]
    return page(f"Evaluation report: {name}", sections)


def tuning_section(tuning: dict[str, Any]) -> str:
    """The search's trials, best first in the objective's direction."""
    lower = bool(tuning.get("lower_is_better"))
    ranked = sorted(tuning["trials"], key=lambda t: t["mean"] if lower else -t["mean"])
    direction = " (lower is better)" if lower else ""
    return f"<h2>Tuning ({html.escape(tuning['objective'])}{direction})</h2>" + table(
        ["params", "mean", "std"], [[str(t["params"]), t["mean"], t["std"]] for t in ranked]
    )


def selection_section(selection: dict[str, Any]) -> str:
    """``estimator = "auto"``: each family's cross-validated score and time, in the order tried."""
    direction = "lower is better" if selection["lower_is_better"] else "higher is better"
    if not selection.get("ranked", True):
        why = selection["leaderboard"][0]["status"].removeprefix("chosen: ")
        return (
            f"<h2>Estimator chosen: {html.escape(selection['chosen'])}</h2><p>No family was cross-validated:"
            f" {html.escape(why)}. The default was fitted with scikit-learn's parameters, untuned.</p>"
        )
    rows = [
        [
            s["estimator"],
            "-" if s["score"] is None else s["score"],
            "-" if s["std"] is None else s["std"],
            f"{s['seconds']:.1f}",
            s["status"],
        ]
        for s in selection["leaderboard"]
    ]
    return (
        f"<h2>Estimator chosen: {html.escape(selection['chosen'])}</h2><p>Each family cross-validated from"
        f" its default parameters ({selection['folds']} folds on {selection['rows']:,} rows), scored by"
        f" {html.escape(selection['metric'])} ({direction}); the winner was then tuned and fitted.</p>"
        + table(["estimator", selection["metric"], "std", "seconds", "status"], rows)
    )


def with_section(report: str, section: str) -> str:
    """``report`` (a page from ``page``) with ``section`` appended at the end of its body."""
    return report.replace("</body>", section + "</body>", 1)
