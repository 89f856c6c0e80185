"""Shared fixtures: fake AWS credentials, a trained registry, events, the Lambda context."""

from __future__ import annotations

import base64
import importlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Powertools reads these when lambda_app.observability is first imported.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AnomalyDetectorTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "anomaly-detector")
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = ROOT / "events"
SAMPLE_DATA = ROOT / "data" / "sample.csv"
SEED_RECORD = {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338}


TEST_PARITY_PROBE_ROWS = 10_000
"""Random rows the parity gate checks in in-process trainings and imports; the published default is
100,000 (tests/integration/test_training_cli.py checks that one)."""


@pytest.fixture(scope="session", autouse=True)
def small_parity_probe() -> Iterator[None]:
    """The same gate on fewer random rows, so the suite's many small trainings stay quick."""
    from training import importer, train

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "PARITY_PROBE_ROWS", TEST_PARITY_PROBE_ROWS)
        patch.setattr(importer, "PARITY_PROBE_ROWS", TEST_PARITY_PROBE_ROWS)
        yield


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials everywhere: no test can reach a real AWS account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MODEL_URI", "MODEL_ALIAS", "MODEL_VERSION", "MAX_ROWS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local registry with one version of the example model, trained once per session."""
    from training.tasks.checks import load_config
    from training.train import run_training

    root = tmp_path_factory.mktemp("registry")
    run_training(str(SAMPLE_DATA), str(root), load_config(), alias="production")
    return root


@pytest.fixture
def registry(trained_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the trained registry that a test may tamper with."""
    target = tmp_path / "registry"
    shutil.copytree(trained_registry, target)
    return target


@pytest.fixture
def lambda_context() -> Any:
    from lambda_app.invoke import LocalLambdaContext

    return LocalLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Import lambda_app.handler afresh under the given environment, as a new container would."""

    def load(**env: str) -> ModuleType:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        import lambda_app.handler

        return importlib.reload(lambda_app.handler)

    return load


FIXTURES_DIR = ROOT / "tests" / "fixtures"


def predict_event(records: Any) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) POST /predict event carrying ``records`` as its JSON body."""
    event = load_event("apigw_v2_predict_single.json")
    body = json.dumps(records)
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    return event


@pytest.fixture(scope="session")
def task_registries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A local registry per task, each with the example config of that task (training/configs/) and a
    random forest in place of its ``auto`` (family selection is tested in test_auto_estimator), trained
    once per session on generated flows (tuning off: these fixtures test serving)."""
    from training.data.synthetic import generate
    from training.tasks.checks import load_config
    from training.train import run_training

    registries: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("task-registries")
    for task in ("classification", "regression"):
        data = root / f"{task}.csv"
        generate(2000, seed=5, task=task, anomaly_rate=0.25 if task == "classification" else 0.03).to_csv(
            data, index=False
        )
        config = load_config(ROOT / "training" / "configs" / f"{task}.toml")
        forest = f"sklearn.ensemble.RandomForest{'Classifier' if task == 'classification' else 'Regressor'}"
        model = config.model.model_copy(update={"estimator": forest, "params": {"n_estimators": 50}})
        tuning = config.tuning.model_copy(update={"enabled": False})
        config = config.model_copy(update={"tuning": tuning, "model": model})
        run_training(str(data), str(root / task), config)
        registries[task] = root / task
    return registries


@pytest.fixture(scope="session")
def mixed_registries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small models over a mixed table (numbers, a category, a boolean, a number with missing values),
    trained once per session: an anomaly detector, and a classifier whose classes are integers
    (its predictions must stay integers on every route)."""
    from training.data.synthetic import generate
    from training.tasks.checks import load_config
    from training.train import run_training

    root = tmp_path_factory.mktemp("mixed-registries")
    registries: dict[str, Path] = {}
    frame = generate(1500, seed=3, mixed=True)
    frame.to_csv(root / "anomaly.csv", index=False)
    config = load_config()
    config = config.model_copy(update={"tuning": config.tuning.model_copy(update={"enabled": False})})
    run_training(str(root / "anomaly.csv"), str(root / "anomaly"), config, alias="production")
    registries["anomaly"] = root / "anomaly"

    frame = generate(1500, seed=4, task="classification", anomaly_rate=0.25, mixed=True)
    kinds = sorted(frame["kind"].unique())
    frame["kind"] = frame["kind"].map({kind: index for index, kind in enumerate(kinds)})
    frame.to_csv(root / "classification.csv", index=False)
    config = load_config(ROOT / "training" / "configs" / "classification.toml")
    forest = "sklearn.ensemble.RandomForestClassifier"  # not auto: family selection is tested elsewhere
    config = config.model_copy(
        update={
            "tuning": config.tuning.model_copy(update={"enabled": False}),
            "data": config.data.model_copy(update={"features": "auto"}),
            "model": config.model.model_copy(update={"estimator": forest, "params": {"n_estimators": 20}}),
        }
    )
    run_training(str(root / "classification.csv"), str(root / "classification"), config, alias="production")
    registries["classification"] = root / "classification"
    return registries
