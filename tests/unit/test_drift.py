"""Population stability index and out-of-range share against the manifest's reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lambda_app.drift import DriftMonitor, bin_counts, feature_bins, psi
from lambda_app.registry import LocalStorage, Manifest, read_manifest, resolve_version
from training.data.synthetic import generate


@pytest.fixture(scope="module")
def manifest(trained_registry: Path) -> Manifest:
    storage = LocalStorage(trained_registry)
    return read_manifest(storage, resolve_version(storage, "production"))


def fresh_rows(n: int, seed: int) -> np.ndarray:
    return generate(n, seed=seed)[["one", "two", "three"]].to_numpy(dtype=float)


def test_psi_is_zero_for_identical_and_large_for_disjoint_distributions() -> None:
    expected = np.array([0.0, 0.25, 0.25, 0.25, 0.25, 0.0])
    assert psi(np.array([0, 25, 25, 25, 25, 0.0]), expected) == pytest.approx(0.0, abs=1e-9)
    assert psi(np.array([0, 0, 0, 0, 0, 100.0]), expected) > 5
    assert psi(np.zeros(6), expected) == 0.0


def test_bins_put_out_of_range_values_in_the_outer_bins(manifest: Manifest) -> None:
    bins = feature_bins(manifest.reference, manifest.feature_names)[1]  # "two"
    counts = bin_counts(np.array([bins.low - 1, bins.high + 1, (bins.low + bins.high) / 2]), bins)
    assert counts[0] == 1
    assert counts[-1] == 1
    assert counts[1:-1].sum() == 1


def test_same_distribution_stays_stable_and_a_shift_is_flagged(manifest: Manifest) -> None:
    stable = DriftMonitor(manifest.reference, manifest.feature_names)
    shifted = DriftMonitor(manifest.reference, manifest.feature_names)
    rows = fresh_rows(3000, seed=21)
    moved = rows.copy()
    moved[:, 1] += 2.0  # "two" drifts by two units
    for start in range(0, 3000, 100):
        calm = stable.observe(rows[start : start + 100])
        drifted = shifted.observe(moved[start : start + 100])
    assert max(calm.psi.values()) < 0.1
    assert drifted.psi["two"] > 0.25
    assert drifted.psi["one"] < 0.1


def test_single_rows_and_batches_agree(manifest: Manifest) -> None:
    by_row = DriftMonitor(manifest.reference, manifest.feature_names, refresh_rows=100)
    by_batch = DriftMonitor(manifest.reference, manifest.feature_names, refresh_rows=100)
    rows = fresh_rows(1000, seed=5)
    for row in rows:
        one = by_row.observe(row[None, :])
    for start in range(0, 1000, 100):
        many = by_batch.observe(rows[start : start + 100])
    for name in manifest.feature_names:
        assert one.psi[name] == pytest.approx(many.psi[name], rel=1e-6)


def test_psi_waits_for_enough_rows_and_out_of_range_is_per_batch(manifest: Manifest) -> None:
    monitor = DriftMonitor(manifest.reference, manifest.feature_names, min_rows=200)
    first = monitor.observe(fresh_rows(50, seed=1))
    assert first.psi == {}
    assert not first.fresh
    wild = np.array([[99999.0, 500.0, -500.0]])
    snapshot = monitor.observe(wild)
    assert snapshot.out_of_range_share == pytest.approx(1.0)
