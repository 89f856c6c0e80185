"""The documented example answers are produced by the code, not typed: each `curl ... -d '<body>'` in
README.md or docs/*.md followed by a `# {"predictions": ...}` line is replayed against the example model
(`make model`), and the answer must match to every digit the page shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import ROOT

EXAMPLE = re.compile(r"-d '(?P<body>[\[{][^']*?[\]}])'\n# (?P<answer>\{\"predictions\".*?\})\n", re.S)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FOUND = [(page, *example) for page in PAGES for example in EXAMPLE.findall(page.read_text())]
EXAMPLES = [(body, answer) for _, body, answer in FOUND]
IDS = [f"{page.relative_to(ROOT)}-{i}" for i, (page, _, _) in enumerate(FOUND)]


def test_the_docs_have_examples_to_check() -> None:
    pages = {page.relative_to(ROOT).as_posix() for page, _, _ in FOUND}
    assert {"README.md", "docs/api.md"} <= pages  # the first screen's, and the API page's batch


@pytest.mark.parametrize(("body", "answer"), EXAMPLES, ids=IDS)
def test_a_documented_answer_matches_what_the_example_model_answers(
    body: str, answer: str, trained_registry: Path
) -> None:
    with TestClient(create_app(Settings(model_uri=str(trained_registry)))) as client:
        got = client.post(
            "/predict", content=body.encode(), headers={"content-type": "application/json"}
        ).json()
    shown = json.loads(re.sub(r'"version":"[^"]*"', '"version":null', answer.replace("...", "")))
    assert got["predictions"] == shown["predictions"]
    # A page may show fewer digits than the service returns, never different ones.
    for printed, actual in zip(
        re.findall(r"[0-9.]+", answer.split('"scores":', 1)[1].split("]")[0]), got["scores"], strict=True
    ):
        assert repr(actual).startswith(printed.rstrip(".")), (printed, actual)
