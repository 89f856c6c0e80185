"""Stock Open Inference Protocol clients against a local server (uvicorn on 127.0.0.1): NVIDIA's
tritonclient (HTTP, JSON tensors) in this environment, KServe's v2 REST client in its own
(.venv-kserve, built by `make test`). For each task and a mixed table, their answers equal /predict's.
Neither client is a serving dependency: requirements.txt (the image) holds none of them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest
import tritonclient.http as triton

from benchmarks.loadtest import free_port, serving, wait_ready
from tests.conftest import ROOT

KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
ROWS = [
    {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338},
    {"one": 80, "two": 14.2, "three": 13.9},
    {"one": 4444, "two": 31.5, "three": 2.25},
]
MIXED = [  # every value present: a numpy FP64 array cannot carry JSON null (send raw JSON for that)
    {"one": 80, "two": 14.2, "three": 13.9, "protocol": "tcp", "encrypted": True, "bytes": 1200.0},
    {"one": 443, "two": 12.5, "three": 15.1, "protocol": "udp", "encrypted": False, "bytes": 950.5},
    {"one": 53, "two": 16.5, "three": 12.1, "protocol": "sctp", "encrypted": False, "bytes": 80.0},
]
NUMPY = {"FP64": np.float64, "BOOL": np.bool_, "BYTES": np.object_}
DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "category": "BYTES"}
KINDS = ["anomaly", "classification", "regression", "mixed-anomaly", "mixed-classification"]


@pytest.fixture(scope="module")
def servers(
    trained_registry: Path, task_registries: dict[str, Path], mixed_registries: dict[str, Path]
) -> Iterator[dict[str, str]]:
    """One local server per model, started once for the module and stopped after it."""
    registries = {
        "anomaly": trained_registry,
        "classification": task_registries["classification"],
        "regression": task_registries["regression"],
        "mixed-anomaly": mixed_registries["anomaly"],
        "mixed-classification": mixed_registries["classification"],
    }
    with contextlib.ExitStack() as stack:
        urls = {}
        for kind, registry in registries.items():
            port = free_port()
            server, log = stack.enter_context(serving(str(registry), port, workers=1))
            urls[kind] = f"127.0.0.1:{port}"
            wait_ready(f"http://{urls[kind]}", server, log)
        yield urls


def describe(url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The served model (GET /model) and the rows to send it."""
    model = httpx2.get(f"http://{url}/model", timeout=10).json()
    return model, MIXED if len(model["features"]) > 3 else ROWS


def predict(url: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx2.post(f"http://{url}/predict", json=rows, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def as_list(array: np.ndarray) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]


@pytest.mark.parametrize("kind", KINDS)
def test_tritonclient(servers: dict[str, str], kind: str) -> None:
    url = servers[kind]
    model, rows = describe(url)
    client = triton.InferenceServerClient(url=url, connection_timeout=10.0, network_timeout=10.0)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(model["name"])
        assert client.is_model_ready(model["name"], model["version"])
        assert not client.is_model_ready("no-such-model")
        metadata = client.get_model_metadata(model["name"])
        assert metadata["versions"] == [model["version"]]
        assert client.get_server_metadata()["extensions"] == []
        inputs = []
        for spec in metadata["inputs"]:
            values = np.array([row[spec["name"]] for row in rows], dtype=NUMPY[spec["datatype"]])
            tensor = triton.InferInput(spec["name"], [len(rows)], spec["datatype"])
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
        result = client.infer(model["name"], inputs, outputs=outputs, request_id="triton-1")
        response = result.get_response()
        assert response["id"] == "triton-1"
        assert response["model_version"] == model["version"]
        expected = predict(url, rows)
        assert as_list(result.as_numpy("predictions")) == expected["predictions"]
        if model["task"] == "anomaly":
            assert result.as_numpy("scores").tolist() == expected["scores"]
        if model["task"] == "classification":
            classes = json.loads(metadata["parameters"]["classes"])
            probabilities = result.as_numpy("probabilities")
            assert probabilities.shape == (len(rows), len(classes))
            assert probabilities.tolist() == [
                [row[str(c)] for c in classes] for row in expected["probabilities"]
            ]
            integers = all(isinstance(c, int) for c in classes)
            assert result.as_numpy("predictions").dtype == (np.int64 if integers else np.object_)
        with pytest.raises(triton.InferenceServerException, match="is not served here"):
            client.infer("no-such-model", inputs, outputs=outputs)
    finally:
        client.close()


def test_tritonclient_binary_data_is_refused_with_the_way_out(servers: dict[str, str]) -> None:
    url = servers["anomaly"]
    model, rows = describe(url)
    client = triton.InferenceServerClient(url=url, connection_timeout=10.0, network_timeout=10.0)
    try:
        tensors = []
        for name in ("one", "two", "three"):
            tensor = triton.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(
                np.array([row[name] for row in rows], dtype=np.float64), binary_data=True
            )
            tensors.append(tensor)
        with pytest.raises(triton.InferenceServerException, match="binary_data=False"):
            client.infer(model["name"], tensors)
    finally:
        client.close()


@pytest.fixture(scope="module")
def kserve_python() -> Path:
    if not KSERVE_PYTHON.exists():
        message = f"KServe's client is missing at {KSERVE_PYTHON}: `make test` installs it"
        if os.environ.get("REQUIRE_KSERVE"):
            pytest.fail(message)
        pytest.skip(message)
    return KSERVE_PYTHON


@pytest.mark.parametrize("kind", KINDS)
def test_kserve_client(servers: dict[str, str], kserve_python: Path, kind: str) -> None:
    url = servers[kind]
    model, rows = describe(url)
    inputs = [
        {
            "name": spec["name"],
            "shape": [len(rows)],
            "datatype": DATATYPES[spec["dtype"]],
            "data": [row[spec["name"]] for row in rows],
        }
        for spec in model["features"]
    ]
    result = subprocess.run(
        [
            str(kserve_python),
            str(ROOT / "tests" / "integration" / "kserve_client.py"),
            f"http://{url}",
            model["name"],
        ],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "NO_PROXY": "127.0.0.1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert (answer["live"], answer["ready"], answer["model_ready"]) == (True, True, True)
    # (KServe's client does not keep the answer's model_version on this path: the name it does.)
    assert (answer["id"], answer["model_name"]) == ("kserve-1", model["name"])
    expected = predict(url, rows)
    outputs = answer["outputs"]
    assert [str(p) for p in outputs["predictions"]["data"]] == [str(p) for p in expected["predictions"]]
    if model["task"] == "anomaly":
        assert outputs["scores"]["data"] == expected["scores"]
    if model["task"] == "classification":
        keys = [str(c) for c in model["classes"]]
        assert outputs["probabilities"]["shape"] == [len(rows), len(keys)]
        assert outputs["probabilities"]["data"] == [row[k] for row in expected["probabilities"] for k in keys]


def test_no_client_library_in_the_serving_image() -> None:
    serving = (ROOT / "requirements.txt").read_text().lower()
    for library in ("tritonclient", "kserve", "mlserver", "geventhttpclient"):
        assert library not in serving


def test_the_documented_tritonclient_example_runs_as_written(servers: dict[str, str]) -> None:
    page = (ROOT / "docs" / "api.md").read_text()
    (example,) = [block for block in page.split("```python\n")[1:] if "tritonclient.http" in block]
    code = example.split("```", 1)[0]
    assert 'url="localhost:8000"' in code  # make serve's address; here the test server's
    result = subprocess.run(
        [sys.executable, "-c", code.replace("localhost:8000", servers["anomaly"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = result.stdout.strip()
    assert printed.startswith("[0 1] [0.41")
    assert printed.split("] [", 1)[1].split()[1].startswith("0.82")
