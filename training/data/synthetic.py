"""A seeded synthetic dataset of network-flow records, for examples and tests, one per task.

Columns: ``one`` (destination port), ``two`` and ``three`` (continuous measurements, normal
traffic around 12 to 17, correlated per port), then the task's label:
- anomaly: ``label`` (1 = anomaly). Anomalies are a few percent and genuinely different: rare
  ports, out-of-range measurements, and in-range values in a combination normal traffic never shows.
- classification: ``kind``, which of those four the flow is (``normal``, ``rare_port``,
  ``out_of_range``, ``inverted``): string classes, multiclass.
- regression: ``latency_ms``, a flow's latency: a per-port base plus a function of the two
  measurements and noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# port -> (share of normal traffic, mean of two, mean of three)
COMMON_PORTS: dict[int, tuple[float, float, float]] = {
    443: (0.34, 14.6, 15.2),
    80: (0.30, 14.0, 14.4),
    53: (0.12, 12.9, 13.1),
    22: (0.08, 15.6, 16.0),
    25: (0.06, 13.4, 14.9),
    20: (0.05, 12.8, 15.7),
    21: (0.03, 13.1, 15.3),
    8080: (0.02, 14.9, 13.6),
}
RARE_PORTS = np.array([23, 135, 139, 445, 1433, 3389, 4444, 5900, 6667, 31337])


KINDS = ("normal", "rare_port", "out_of_range", "inverted")
LABELS = {"anomaly": "label", "classification": "kind", "regression": "latency_ms"}


def generate(
    rows: int, *, anomaly_rate: float = 0.03, seed: int = 0, task: str = "anomaly", mixed: bool = False
) -> pd.DataFrame:
    """``rows`` records, ``anomaly_rate`` of them anomalies, reproducible from ``seed``; the label
    column is the task's (see the module docstring). ``mixed`` adds a real table's column types
    (see ``with_mixed_columns``)."""
    frame = _generate(rows, anomaly_rate=anomaly_rate, seed=seed, task=task)
    return with_mixed_columns(frame, seed) if mixed else frame


def with_mixed_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The flows with a category, a boolean and missing values, before the label column:
    ``protocol`` (tcp, udp, icmp: DNS is mostly udp, the rest tcp, a few icmp), ``encrypted``
    (true/false: ports 443 and 22 are) and ``bytes`` (per flow, larger on rare ports; 5% missing)."""
    rng = np.random.default_rng(seed + 1)
    rows = len(frame)
    port = frame["one"].to_numpy()
    protocol = np.where(port == 53, np.where(rng.random(rows) < 0.9, "udp", "tcp"), "tcp").astype(object)
    protocol[rng.random(rows) < 0.01] = "icmp"
    encrypted = np.isin(port, [443, 22]) ^ (rng.random(rows) < 0.02)
    rare = ~np.isin(port, list(COMMON_PORTS))
    size = np.round(rng.lognormal(np.where(rare, 9.0, 7.0), 0.6)).astype(np.float64)
    size[rng.random(rows) < 0.05] = np.nan
    label = frame.columns[-1]
    mixed = frame.drop(columns=[label])
    mixed["protocol"] = protocol
    mixed["encrypted"] = encrypted
    mixed["bytes"] = size
    mixed[label] = frame[label]
    return mixed


def _generate(rows: int, *, anomaly_rate: float, seed: int, task: str) -> pd.DataFrame:
    if task not in LABELS:
        raise ValueError(f"task must be one of {', '.join(LABELS)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0 <= anomaly_rate < 1:
        raise ValueError("anomaly_rate must be in [0, 1)")
    rng = np.random.default_rng(seed)
    ports = np.array(list(COMMON_PORTS))
    shares = np.array([v[0] for v in COMMON_PORTS.values()])
    means = np.array([[v[1], v[2]] for v in COMMON_PORTS.values()])

    # Normal traffic: a common port, and measurements correlated around that port's means.
    which = rng.choice(len(ports), size=rows, p=shares / shares.sum())
    one = ports[which].astype(np.int64)
    shared = rng.normal(0.0, 0.55, size=rows)
    two = means[which, 0] + shared + rng.normal(0.0, 0.25, size=rows)
    three = means[which, 1] + 0.8 * shared + rng.normal(0.0, 0.25, size=rows)
    label = np.zeros(rows, dtype=np.int64)

    anomalous = np.flatnonzero(rng.random(rows) < anomaly_rate)
    kinds = rng.integers(0, 3, size=len(anomalous))
    label[anomalous] = 1

    rare = anomalous[kinds == 0]  # a port normal traffic never uses
    one[rare] = rng.choice(RARE_PORTS, size=len(rare))

    out = anomalous[kinds == 1]  # a measurement far outside the normal range
    low = rng.random(len(out)) < 0.5
    value = np.where(low, rng.uniform(0.5, 8.0, len(out)), rng.uniform(21.0, 40.0, len(out)))
    first = rng.random(len(out)) < 0.5
    two[out[first]] = value[first]
    three[out[~first]] = value[~first]

    odd = anomalous[kinds == 2]  # each value in range, but the pair inverted for the port
    sign = np.where(rng.random(len(odd)) < 0.5, 1.0, -1.0)
    two[odd] = means[which[odd], 0] + sign * rng.uniform(1.8, 2.6, len(odd))
    three[odd] = means[which[odd], 1] - sign * rng.uniform(1.8, 2.6, len(odd))

    if task == "classification":
        kind = np.full(rows, KINDS[0], dtype=object)
        for index, name in enumerate(KINDS[1:]):
            kind[anomalous[kinds == index]] = name
        return pd.DataFrame({"one": one, "two": two, "three": three, "kind": kind})
    if task == "regression":
        base = {port: 2.0 + (i % 4) * 1.5 for i, port in enumerate(sorted({*COMMON_PORTS, *RARE_PORTS}))}
        latency = (
            np.array([base[int(p)] for p in one])
            + 0.35 * (two - 12.0) ** 2
            + 0.6 * np.abs(three - two)
            + rng.gamma(2.0, 0.25, size=rows)
        )
        return pd.DataFrame({"one": one, "two": two, "three": three, "latency_ms": latency})
    return pd.DataFrame({"one": one, "two": two, "three": three, "label": label})
