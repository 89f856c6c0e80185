"""The quality benchmark's pure helpers (benchmarks/quality.py): seeds per table, the seeded config, and
the row over seeds (means, spread, ratio and target on the means). No training."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.quality import (
    SEEDS,
    SMALL_TABLE_ROWS,
    Table,
    chosen,
    mean_spread,
    score_cell,
    score_row,
    seeded,
    split_seeds,
    to_toml,
)


def runs(score: str, **values: list[float]) -> dict[str, list[dict[str, Any]]]:
    """Fake per-seed metrics: ``values`` per run key; the product's choice is LogisticRegression."""
    out = {key: [{score: v} for v in seeds] for key, seeds in values.items()}
    for metrics in out["product"]:
        metrics["estimator"] = "LogisticRegression"
    return out


def test_small_tables_get_every_seed_large_ones_the_first() -> None:
    assert split_seeds(178) == SEEDS
    assert split_seeds(SMALL_TABLE_ROWS - 1) == SEEDS
    assert split_seeds(SMALL_TABLE_ROWS) == (42,)
    assert split_seeds(5000) == (42,)


def test_seeded_sets_the_split_seed_and_leaves_the_table_alone() -> None:
    config = {"data": {"label": "y"}, "model": {"task": "classification"}, "split": {"test_fraction": 0.3}}
    table = Table("t", "classification", "y", config, 100)
    job = seeded(table, 3)
    assert job.config["split"] == {"test_fraction": 0.3, "seed": 3}
    assert job.config["data"] == config["data"]
    assert "seed" not in table.config["split"]  # the original is not changed
    assert "[split]\ntest_fraction = 0.3\nseed = 3\n" in to_toml(job.config)


def test_mean_spread_and_cells() -> None:
    assert mean_spread([0.5]) == (0.5, 0.0)
    mean, spread = mean_spread([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert spread == pytest.approx(1.0)  # sample standard deviation
    assert score_cell([0.97101]) == "0.9710"
    assert score_cell([1.0, 2.0, 3.0]) == "2.0000 ± 1.0000"


def test_chosen_counts_a_mixed_choice() -> None:
    assert chosen(["LogisticRegression"] * 5) == "LogisticRegression"
    assert chosen(["A", "B", "A"]) == "A 2/3, B 1/3"


def test_the_target_is_on_the_means_not_on_one_split() -> None:
    # The product loses the first split by one row but wins on average.
    metrics = runs(
        "f1_macro",
        product=[0.971, 1.0, 1.0, 1.0, 1.0],
        hgb=[1.0, 0.94, 0.97, 0.97, 0.94],
        forest=[1.0, 0.97, 0.97, 0.94, 0.97],
    )
    row = score_row("wine", "f1_macro", metrics)
    assert row[:3] == ["wine", "f1_macro", "5"]
    assert row[3].endswith("(LogisticRegression)")
    assert row[3].startswith("0.9942 ± ")
    assert row[6] == f"{0.9942 / 0.970:.3f}"
    assert row[-1] == "yes"


def test_lower_is_better_compares_with_the_lower_plain_mean() -> None:
    metrics = runs("log_loss", product=[0.06, 0.07], hgb=[0.05, 0.06], forest=[0.10, 0.10])
    row = score_row("wine", "log_loss", metrics)
    assert row[6] == f"{0.065 / 0.055:.3f}"
    assert row[-1] == "NO"
    # Within 1% of the better plain pipeline's mean meets the target.
    metrics = runs("log_loss", product=[0.0555], hgb=[0.055], forest=[0.10])
    assert score_row("t", "log_loss", metrics)[-1] == "yes"


def test_a_before_column_when_another_checkout_ran() -> None:
    metrics = runs("rmse", product=[50.0], before=[60.0], hgb=[55.0], forest=[54.0])
    row = score_row("diabetes", "rmse", metrics)
    assert row == [
        "diabetes",
        "rmse",
        "1",
        "60.0000",
        "50.0000 (LogisticRegression)",
        "55.0000",
        "54.0000",
        f"{50 / 54:.3f}",
        "yes",
    ]
