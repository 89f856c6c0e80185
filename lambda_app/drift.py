"""Online drift for a running container, over the registry's reference bins (registry/reference.py)."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import numpy as np

from lambda_app.registry import Manifest, Reference
from lambda_app.registry.reference import bin_counts, feature_bins, psi


@dataclass(frozen=True)
class DriftSnapshot:
    psi: dict[str, float]
    out_of_range_share: float  # of the values present in this batch, across features
    window_rows: float
    fresh: bool  # PSI was recomputed by this batch (it is emitted then, not with every request)
    unseen_share: float | None = None  # of this batch's category values; None: no category feature
    missing_share: dict[str, float] = field(default_factory=dict)  # window, features that take null


class DriftMonitor:
    """Online drift for a container: each batch adds to a decaying window of bin counts.

    PSI needs a population, not one row, so it is computed over roughly the last
    ``window_rows`` rows this container scored, recomputed every ``refresh_rows`` rows and
    reported with every request in between; the out-of-range share is per batch. Small
    batches take a pure-Python path (a bisect per value): a 1-row request pays a few
    microseconds for drift.
    """

    def __init__(
        self,
        reference: Reference,
        names: list[str],
        window_rows: int = 2000,
        min_rows: int = 200,
        refresh_rows: int = 50,
        *,
        categories: list[int] | None = None,
        nullable: list[int] | None = None,
    ) -> None:
        """``categories``, ``nullable``: the columns of category features, of features that take null."""
        self._bins = feature_bins(reference, names)
        self._categories = categories or []
        self._nullable = nullable or []
        self._missing = np.zeros(len(self._nullable))
        self._pending_missing = np.zeros(len(self._nullable))
        self._missing_share: dict[str, float] = {}
        self._edges = [b.inner_edges.tolist() for b in self._bins]
        self._window = float(window_rows)
        self._min_rows = float(min_rows)
        self._refresh_rows = refresh_rows
        self._counts = [np.zeros(len(b.expected)) for b in self._bins]
        self._pending = [[0.0] * len(b.expected) for b in self._bins]
        self._pending_rows = 0
        self._rows = 0.0
        self._psi: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> DriftMonitor:
        features = manifest.features
        return cls(
            manifest.reference,
            manifest.feature_names,
            categories=[i for i, spec in enumerate(features) if spec.dtype == "category"],
            nullable=[i for i, spec in enumerate(features) if spec.takes_missing],
        )

    def observe(self, features: np.ndarray) -> DriftSnapshot:
        n, k = features.shape
        outside = 0.0
        present = float(n * k)
        unseen = None
        if self._categories:
            codes = features[:, self._categories]
            unseen = float(np.sum(codes < 0)) / max(1, int(np.sum(~np.isnan(codes))))
        with self._lock:
            if self._nullable:
                missing = np.isnan(features[:, self._nullable]).sum(axis=0)
                self._pending_missing += missing
                present -= float(missing.sum())
            if n <= 8:
                for row in features.tolist():
                    for i, value in enumerate(row):
                        bins = self._bins[i]
                        if value != value:  # NaN: a missing value, counted above
                            continue
                        if value < bins.low:
                            index = 0
                        elif value > bins.high:
                            index = len(bins.expected) - 1
                        else:
                            index = bisect.bisect_right(self._edges[i], value) + 1
                        self._pending[i][index] += 1
                        outside += index == 0 or index == len(bins.expected) - 1
            else:
                for i, bins in enumerate(self._bins):
                    counts = bin_counts(features[:, i], bins)
                    outside += counts[0] + counts[-1]
                    self._pending[i] = (np.asarray(self._pending[i]) + counts).tolist()
            self._pending_rows += n
            fresh = self._fold() if self._pending_rows >= self._refresh_rows else False
            values = dict(self._psi)
            missing_share = dict(self._missing_share)
            rows = self._rows + self._pending_rows
        return DriftSnapshot(
            psi=values,
            out_of_range_share=float(outside) / max(present, 1.0),
            window_rows=rows,
            fresh=fresh,
            unseen_share=unseen,
            missing_share=missing_share,
        )

    def _fold(self) -> bool:
        """Move pending counts into the decaying window; recompute PSI when there is enough (lock held)."""
        keep = max(0.0, 1.0 - self._pending_rows / self._window)
        for counts, pending in zip(self._counts, self._pending, strict=True):
            counts *= keep
            counts += np.asarray(pending)
        self._rows = self._rows * keep + self._pending_rows
        self._missing = self._missing * keep + self._pending_missing
        self._pending = [[0.0] * len(b.expected) for b in self._bins]
        self._pending_missing = np.zeros(len(self._nullable))
        self._pending_rows = 0
        if self._rows < self._min_rows:
            return False
        self._psi = {b.name: psi(c, b.expected) for b, c in zip(self._bins, self._counts, strict=True)}
        self._missing_share = {
            self._bins[i].name: float(m / self._rows)
            for i, m in zip(self._nullable, self._missing, strict=True)
        }
        return True
