"""The README's example answers are produced by the code, not typed: each `curl ... -d '<body>'`
followed by a `# {"predictions": ...}` line is replayed against the example model (`make model`),
and the answer must match to every digit the README shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import ROOT

EXAMPLE = re.compile(r"-d '(?P<body>[\[{].*?[\]}])'\n# (?P<answer>\{\"predictions\".*?\})\n", re.S)
EXAMPLES = EXAMPLE.findall((ROOT / "README.md").read_text())


def test_the_readme_has_examples_to_check() -> None:
    assert len(EXAMPLES) >= 2  # the first screen's, and the API section's batch


@pytest.mark.parametrize(("body", "answer"), EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_a_readme_answer_matches_what_the_example_model_answers(
    body: str, answer: str, trained_registry: Path
) -> None:
    with TestClient(create_app(Settings(model_uri=str(trained_registry)))) as client:
        got = client.post(
            "/predict", content=body.encode(), headers={"content-type": "application/json"}
        ).json()
    shown = json.loads(re.sub(r'"version":"[^"]*"', '"version":null', answer.replace("...", "")))
    assert got["predictions"] == shown["predictions"]
    # The README may show fewer digits than the service returns, never different ones.
    for printed, actual in zip(
        re.findall(r"[0-9.]+", answer.split('"scores":', 1)[1].split("]")[0]), got["scores"], strict=True
    ):
        assert repr(actual).startswith(printed.rstrip(".")), (printed, actual)
