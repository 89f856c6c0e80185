"""A small, bounded run of the load test: several workers, concurrent clients, loopback only, zero errors."""

from __future__ import annotations

from pathlib import Path

from benchmarks.loadtest import run


def test_concurrent_clients_against_several_workers_get_only_expected_statuses(
    trained_registry: Path,
) -> None:
    report = run(str(trained_registry), workers=2, clients=8, requests=400, seconds=90)
    assert report["requests"] == 400
    assert report["errors"] == 0, report["error_samples"]
    assert report["server_errors"] == 0
    assert set(report["kinds"]) == {"1 row", "100 rows", "malformed", "NaN"}
