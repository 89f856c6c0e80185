"""Promotion through the quality gate, forced promotion on the record, and rollback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lambda_app.registry import LocalStorage, read_alias
from tests.conftest import SAMPLE_DATA
from training.__main__ import main
from training.data.synthetic import generate
from training.evaluation.evaluate import between_scores, threshold_max_f1, threshold_quantile
from training.exceptions import TrainingError

WEAK_CONFIG = """
[data]
features = ["one", "two", "three"]
[model.params]
n_estimators = 3
max_samples = 16
random_state = 1
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Registries trained once per module, copied by each test: ``single`` holds a good production model,
    ``lifecycle`` the same and a much weaker candidate."""
    root = tmp_path_factory.mktemp("lifecycle")
    single = root / "single"
    assert main(["--data", str(SAMPLE_DATA), "--model-uri", str(single)]) == 0
    registry = root / "lifecycle"
    shutil.copytree(single, registry)
    weak = root / "weak.toml"
    weak.write_text(WEAK_CONFIG)
    newer = root / "newer.csv"
    generate(4000, seed=3).to_csv(newer, index=False)
    weak_args = ["--alias", "candidate", "--config", str(weak), "--allow-worse-than-baseline"]
    assert main(["--data", str(newer), "--model-uri", str(registry), *weak_args]) == 0
    return {"single": single, "lifecycle": registry}


@pytest.fixture
def lifecycle(trained: dict[str, Path], tmp_path: Path) -> tuple[Path, str, str]:
    """A registry with a good production model and a much weaker candidate (this test's own copy)."""
    registry = tmp_path / "registry"
    shutil.copytree(trained["lifecycle"], registry)
    storage = LocalStorage(registry)
    production = read_alias(storage, "production")
    candidate = read_alias(storage, "candidate")
    assert production is not None
    assert candidate is not None
    return registry, production.version, candidate.version


def test_a_worse_candidate_is_refused_and_the_alias_does_not_move(
    lifecycle: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry, production, candidate = lifecycle
    assert main(["promote", "--model-uri", str(registry)]) == 1
    err = capsys.readouterr().err
    assert f"refused: {candidate} is worse than {production} on pr_auc" in err
    assert "--force promotes it anyway" in err
    record = read_alias(LocalStorage(registry), "production")
    assert record is not None
    assert record.version == production


def test_force_promotes_and_says_so_in_the_history_then_rollback_restores(
    lifecycle: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    registry, production, candidate = lifecycle
    assert main(["promote", "--model-uri", str(registry), "--force"]) == 0
    record = read_alias(LocalStorage(registry), "production")
    assert record is not None
    assert record.version == candidate
    assert record.reason.startswith("forced promotion past the quality gate")
    assert main(["rollback", "--model-uri", str(registry)]) == 0
    record = read_alias(LocalStorage(registry), "production")
    assert record is not None
    assert record.version == production
    assert record.reason == f"rollback from {candidate} to {production}"
    assert [h.reason.split(" ")[0] for h in record.history][-2:] == ["published", "forced"]


def test_a_candidate_as_good_within_the_margin_is_promoted_on_an_independent_holdout(
    lifecycle: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, _, _ = lifecycle
    holdout = tmp_path / "holdout.csv"
    generate(3000, seed=77).to_csv(holdout, index=False)
    # the production model itself, published again, ties on every metric
    assert main(["--data", str(SAMPLE_DATA), "--model-uri", str(registry), "--alias", "staging"]) == 0
    code = main(
        [
            "promote",
            "--model-uri",
            str(registry),
            "--from-alias",
            "staging",
            "--data",
            str(holdout),
            "--margin",
            "0.05",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "holdout: 3000 rows" in out
    assert "| candidate |" in out
    assert "| serving |" in out


def test_the_first_promotion_of_an_alias_needs_no_comparison(lifecycle: tuple[Path, str, str]) -> None:
    registry, _, candidate = lifecycle
    assert main(["promote", "--model-uri", str(registry), "--to", "canary", "--version", candidate]) == 0
    record = read_alias(LocalStorage(registry), "canary")
    assert record is not None
    assert record.reason == "promoted: first model for this alias"


def test_unlabelled_holdout_cannot_gate_without_force(
    lifecycle: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, _, _ = lifecycle
    unlabelled = tmp_path / "unlabelled.csv"
    generate(500, seed=1).drop(columns=["label"]).to_csv(unlabelled, index=False)
    assert main(["promote", "--model-uri", str(registry), "--data", str(unlabelled)]) == 1
    assert "the quality gate needs labels" in capsys.readouterr().err


def test_missing_candidate_and_nothing_to_roll_back_are_one_line_errors(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained["single"], registry)
    assert main(["promote", "--model-uri", str(registry)]) == 1
    assert "no alias 'candidate'" in capsys.readouterr().err
    assert main(["rollback", "--model-uri", str(registry)]) == 1
    assert "no earlier version to roll back to: it has only served" in capsys.readouterr().err


def test_thresholds_never_sit_on_a_score() -> None:
    scores = np.repeat(np.array([0.4, 0.5, 0.6, 0.7]), 25)
    labels = (scores >= 0.6).astype(int)
    for threshold in (threshold_max_f1(scores, labels), threshold_quantile(scores, 0.5)):
        assert threshold not in set(scores.tolist())
    assert threshold_max_f1(scores, labels) == pytest.approx(0.55)
    assert between_scores(scores, 0.9) == 0.9  # nothing above: unchanged


def test_alias_file_stays_valid_json_for_other_tools(lifecycle: tuple[Path, str, str]) -> None:
    registry, production, _ = lifecycle
    data = json.loads((registry / "aliases" / "production.json").read_text())
    assert data["version"] == production


def test_promotion_knows_which_direction_is_better_for_a_regressor(tmp_path: Path) -> None:
    """RMSE is better lower: a worse regressor is refused, a better one promoted, on the same holdout."""
    from lambda_app.registry import open_storage
    from training.config import TrainingConfig
    from training.data.synthetic import generate
    from training.lifecycle import PromotionRefusedError, promote
    from training.train import run_training

    data = tmp_path / "latency.csv"
    generate(2000, seed=21, task="regression").to_csv(data, index=False)
    registry = tmp_path / "registry"

    def trained(params: dict[str, object], alias: str) -> str:
        config = TrainingConfig.model_validate(
            {
                "data": {"features": ["one", "two", "three"], "label": "latency_ms"},
                "model": {
                    "task": "regression",
                    "estimator": "sklearn.ensemble.GradientBoostingRegressor",
                    "params": {"random_state": 0, **params},
                },
            }
        )
        return run_training(str(data), str(registry), config, alias=alias).manifest.version

    good = trained({}, "production")
    weak = trained({"n_estimators": 2, "max_depth": 1}, "candidate")
    storage = open_storage(str(registry))
    with pytest.raises(PromotionRefusedError, match=r"worse than .* on rmse \(lower is better\)"):
        promote(storage, weak, "production")
    comparison, record = promote(storage, weak, "staging")  # nothing there yet: first model
    assert comparison is not None
    assert comparison.metric == "rmse"
    assert record.version == weak
    comparison, record = promote(storage, good, "staging")
    assert comparison is not None
    assert comparison.current is not None
    assert comparison.candidate["rmse"] < comparison.current["rmse"]
    assert record.version == good


def test_rollbacks_walk_back_through_the_history_and_records_say_what_happened(tmp_path: Path) -> None:
    """Two rollbacks go two versions back (not back and forth); re-promoting says so; force is recorded."""
    from lambda_app.registry import open_storage
    from training.config import TrainingConfig
    from training.data.synthetic import generate
    from training.lifecycle import promote, rollback
    from training.train import run_training

    data = tmp_path / "flows.csv"
    generate(800, seed=3).to_csv(data, index=False)
    config = TrainingConfig.model_validate(
        {
            "data": {"features": ["one", "two", "three"]},
            "model": {"params": {"n_estimators": 10, "random_state": 0}},
            "tuning": {"enabled": False},
        }
    )
    registry = tmp_path / "registry"
    versions = [
        run_training(str(data), str(registry), config, allow_worse_than_baseline=True).manifest.version
        for _ in range(3)
    ]
    storage = open_storage(str(registry))
    assert rollback(storage, "production").version == versions[1]
    second = rollback(storage, "production")
    assert second.version == versions[0]
    assert second.reason == f"rollback from {versions[1]} to {versions[0]}"
    with pytest.raises(TrainingError, match="no earlier version left to roll back to") as third:
        rollback(storage, "production")
    # it says how to serve an earlier version again, with the command to run
    assert (
        f"promote it: python -m training promote --model-uri {registry} --version {versions[1]}"
        " --to production" in str(third.value)
    )
    _, again = promote(storage, versions[0], "production", force=True)
    assert again.reason == (
        f"promoted again: {versions[0]} is already what production serves"
        " (--force given; the gate did not need it)"
    )
