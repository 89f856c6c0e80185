"""A category value the model never saw is answered as the model's learned "other", never as a known
value, and every answer names the rows and fields that held one (batch: the ``unseen`` column);
``UNSEEN_CATEGORIES=refuse`` makes them a 422 / a rejected row instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lambda_app.batch.__main__ import EXIT_OK, EXIT_REJECTED, main
from lambda_app.invoke import LocalLambdaContext
from tests.conftest import predict_event, response_json
from training.config import TrainingConfig
from training.train import run_training

ROWS = 2000


@pytest.fixture(scope="module")
def passengers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Survival driven by sex (90% of women, 20% of men), a little by age: a forest that leans on sex."""
    rng = np.random.default_rng(11)
    sex = rng.choice(["female", "male"], ROWS)
    age = rng.uniform(1, 80, ROWS)
    survived = np.where(sex == "female", rng.random(ROWS) < 0.9, rng.random(ROWS) < 0.2)
    frame = pd.DataFrame({"sex": sex, "age": age.round(1), "survived": np.where(survived, "yes", "no")})
    root = tmp_path_factory.mktemp("passengers")
    frame.to_csv(root / "passengers.csv", index=False)
    config = TrainingConfig.model_validate(
        {
            "data": {"label": "survived"},
            "model": {
                "task": "classification",
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 100, "min_samples_leaf": 3},
            },
            "tuning": {"enabled": False},
        }
    )
    run_training(str(root / "passengers.csv"), str(root / "registry"), config)
    return root


def ask(
    handler_module: Callable[..., ModuleType], root: Path, records: list[dict[str, Any]], **env: str
) -> Any:
    handler = handler_module(MODEL_URI=str(root / "registry"), MODEL_REFRESH_SECONDS="0", **env).handler
    return handler(predict_event(records), LocalLambdaContext())


def test_an_unseen_value_is_answered_as_the_learned_other_and_named(
    passengers: Path, handler_module: Callable[..., ModuleType]
) -> None:
    records = [{"sex": s, "age": 30.0} for s in ("female", "male", "Female", "FEMALE ")]
    response = ask(handler_module, passengers, records)
    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    yes = [row["yes"] for row in body["probabilities"]]
    female, male, unseen = yes[0], yes[1], yes[2]
    # "Female" is neither scored as "female" nor as "male": as the "other" the forest learned.
    assert abs(unseen - female) > 0.05
    assert abs(unseen - male) > 0.05
    assert min(female, male) < unseen < max(female, male)
    assert yes[3] == unseen  # every unseen value alike
    assert body["unseen"] == [{"row": 2, "fields": ["sex"]}, {"row": 3, "fields": ["sex"]}]


def test_known_values_only_answer_unseen_null(
    passengers: Path, handler_module: Callable[..., ModuleType]
) -> None:
    body = response_json(ask(handler_module, passengers, [{"sex": "male", "age": 40.0}]))
    assert body["unseen"] is None


def test_refuse_makes_an_unseen_value_a_422_naming_row_and_field(
    passengers: Path, handler_module: Callable[..., ModuleType]
) -> None:
    records = [{"sex": "male", "age": 40.0}, {"sex": "Female", "age": 30.0}]
    response = ask(handler_module, passengers, records, UNSEEN_CATEGORIES="refuse")
    assert response["statusCode"] == 422
    body = response_json(response)
    assert body["errors"][0]["row"] == 1
    assert body["errors"][0]["field"] == "sex"
    assert "a category value the model never saw (it knows 2: female, male)" in body["message"]


def test_batch_names_unseen_fields_per_row_or_rejects_them(
    passengers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"sex": ["female", "Female", "male"], "age": [30, 31, 32]}).to_csv(source, index=False)
    registry = str(passengers / "registry")
    assert (
        main(
            [
                "--input",
                str(source),
                "--output",
                str(tmp_path / "out.csv"),
                "--model-uri",
                registry,
                "--quiet",
            ]
        )
        == EXIT_OK
    )
    scored = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert scored["unseen"].tolist() == ["", "sex", ""]
    monkeypatch.setenv("UNSEEN_CATEGORIES", "refuse")
    code = main(
        [
            "--input",
            str(source),
            "--output",
            str(tmp_path / "refused.csv"),
            "--model-uri",
            registry,
            "--quiet",
        ]
    )
    assert code == EXIT_REJECTED
    rejects = pd.read_csv(tmp_path / "refused.rejects.csv")
    assert rejects["row_number"].tolist() == [2]
    assert rejects["reason"].tolist() == [
        "field 'sex': 'Female' is a category value the model never saw (UNSEEN_CATEGORIES=refuse)"
    ]
