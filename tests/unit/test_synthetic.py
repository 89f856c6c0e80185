"""The example data generator: seeded, realistic, anomalies genuinely different."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.synthetic import COMMON_PORTS, generate


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    assert generate(500, seed=3).equals(generate(500, seed=3))
    assert not generate(500, seed=3).equals(generate(500, seed=4))


def test_columns_and_types() -> None:
    frame = generate(1000, seed=1)
    assert list(frame.columns) == ["one", "two", "three", "label"]
    assert frame["one"].dtype == np.int64
    assert set(frame["label"].unique()) <= {0, 1}


def test_normal_traffic_uses_common_ports_and_stays_around_12_to_17() -> None:
    normal = generate(20_000, seed=2).query("label == 0")
    assert set(normal["one"]) <= set(COMMON_PORTS)
    for column in ("two", "three"):
        inside = normal[column].between(11, 18).mean()
        assert inside > 0.99, column


def test_anomalies_are_a_few_percent_and_differ_from_normal_traffic() -> None:
    frame = generate(50_000, anomaly_rate=0.03, seed=5)
    assert 0.025 < frame["label"].mean() < 0.035
    anomalies = frame.query("label == 1")
    rare_port = ~anomalies["one"].isin(list(COMMON_PORTS))
    out_of_range = ~anomalies["two"].between(10, 19) | ~anomalies["three"].between(10, 19)
    assert rare_port.mean() > 0.25
    assert out_of_range.mean() > 0.25
    assert (~rare_port & ~out_of_range).mean() > 0.25  # unusual combinations of in-range values


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(0)
    with pytest.raises(ValueError, match="anomaly_rate"):
        generate(10, anomaly_rate=1.5)
