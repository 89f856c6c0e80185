"""Drift against the training reference: population stability index and out-of-range share.

The manifest's reference summary holds, per feature, decile bin edges of the training data and
the fraction of training rows in each bin. New data is binned the same way (with one bin below
and one above the training range), and PSI = sum((actual - expected) * ln(actual / expected)).
Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.

Part of the registry contract because the reference summary is: training (offline reports)
and the service (online metrics) both bin with it, so the two can never compute drift differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lambda_app.registry.manifest import Reference

EPSILON = 1e-4  # floor for empty bins: ln(0) has no place in PSI


@dataclass(frozen=True)
class FeatureBins:
    name: str
    inner_edges: np.ndarray  # edges strictly inside the training range; searchsorted bins on these
    expected: np.ndarray  # fractions: [below min, training bins..., above max]
    low: float
    high: float


def feature_bins(reference: Reference, names: list[str]) -> list[FeatureBins]:
    """Per-feature bins from the manifest's reference summary, in feature order."""
    bins = []
    for name in names:
        ref = reference.features[name]
        edges = np.asarray(ref.bin_edges, dtype=np.float64)
        expected = np.concatenate([[0.0], np.asarray(ref.bin_fractions, dtype=np.float64), [0.0]])
        bins.append(FeatureBins(name, edges[1:-1], expected, float(ref.min), float(ref.max)))
    return bins


def bin_counts(values: np.ndarray, bins: FeatureBins) -> np.ndarray:
    """Counts in [below min, each training bin, above max] for one feature's values (NaN, a missing
    value, is not counted: missing shares are reported apart). A category feature's values are its
    categories' indices, one bin each; an unseen category (-1) falls below the minimum."""
    values = values[~np.isnan(values)]
    inner = np.searchsorted(bins.inner_edges, values, side="right") + 1
    inner[values < bins.low] = 0
    inner[values > bins.high] = len(bins.expected) - 1
    return np.bincount(inner, minlength=len(bins.expected)).astype(np.float64)


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of observed ``counts`` against ``expected`` fractions."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    actual = np.maximum(counts / total, EPSILON)
    wanted = np.maximum(expected, EPSILON)
    return float(np.sum((actual - wanted) * np.log(actual / wanted)))
