"""The README's "Your own CSV in three commands" runs as written on a table of this test's own: the
training and batch commands as real processes, the served registry answering the README's curl body."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import ROOT

HEADING = "## Your own CSV in three commands"
ROWS = 300
# The README's placeholders, and what this test puts in their place.
DATA, REGISTRY, OUTPUT = "customers.csv", "my-registry", "scored.csv"


def quickstart_block() -> str:
    """The first bash block under the quickstart's heading in README.md."""
    text = (ROOT / "README.md").read_text()
    assert HEADING in text, f"README.md has a section {HEADING!r}"
    section = text.split(HEADING + "\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block is not None, "the quickstart shows its commands in a bash block"
    return block.group(1)


def commands(block: str) -> list[list[str]]:
    """Each command of a shell block, continued lines joined, comments dropped, split as a shell would."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        shlex.split(line)
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def customers(path: Path) -> pd.DataFrame:
    """A churn table: an id, a category, a number with empty cells, a whole number, a yes/no label; seeded."""
    rng = np.random.default_rng(5)
    plan = rng.choice(["basic", "plus", "pro"], ROWS, p=[0.4, 0.35, 0.25])
    tenure = rng.integers(1, 61, ROWS)
    spend = rng.gamma(4.0, 12.0, ROWS).round(2)
    logit = 1.5 + 2.5 * (plan == "basic") - 1.5 * (plan == "pro") - 0.12 * tenure + 0.01 * spend
    churned = np.where(rng.random(ROWS) < 1 / (1 + np.exp(-logit)), "yes", "no")
    table = pd.DataFrame(
        {
            "customer_id": [f"C-{i:05d}" for i in rng.permutation(ROWS)],  # an id: skipped, never required
            "plan": plan,
            "monthly_spend": spend,
            "tenure_months": tenure,
            "churned": churned,
        }
    )
    table.loc[rng.random(ROWS) < 0.1, "monthly_spend"] = np.nan
    table.to_csv(path, index=False)
    return table


def run(argv: list[str], paths: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One README command as a process in the repository, its placeholders replaced, AWS out of reach."""
    assert argv[:2] == [".venv/bin/python", "-m"], argv
    args = [sys.executable, *(paths.get(arg, arg) for arg in argv[1:])]
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_quickstart_runs_as_written_on_a_csv_of_ones_own(tmp_path: Path) -> None:
    # GIVEN the README's commands and a churn table whose label is not called "label" or "target"
    block = quickstart_block()
    train, serve, curl, batch = commands(block)
    table = customers(tmp_path / DATA)
    assert table["monthly_spend"].isna().any()
    paths = {DATA: str(tmp_path / DATA), REGISTRY: str(tmp_path / REGISTRY), OUTPUT: str(tmp_path / OUTPUT)}
    assert train[:4] == [".venv/bin/python", "-m", "training", "--data"]
    assert train[train.index("--label") + 1] == "churned"
    assert train[train.index("--task") + 1] == "classification"

    # WHEN it is trained as the README says
    trained = run(train, paths)

    # THEN a production version is published in the registry the README then serves
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "published classifier version" in trained.stdout
    assert serve == ["make", "serve", f"MODEL_URI={train[train.index('--model-uri') + 1]}"]
    registry = paths[REGISTRY]
    assert (Path(registry) / "aliases" / "production.json").exists()

    # WHEN the README's curl body is sent to that registry's service
    assert curl[0] == "curl"
    url = next(arg for arg in curl if "/predict" in arg)
    body = curl[curl.index("-d") + 1]
    try:
        with TestClient(create_app(Settings(model_uri=registry))) as client:
            response = client.post(
                "/" + url.split("/", 1)[1],
                content=body.encode(),
                headers={"content-type": "application/json"},
            )
    finally:  # outside Lambda nothing flushes the request's metrics: leave none for the next test
        from lambda_app.observability import metrics

        metrics.clear_metrics()

    # THEN every record gets a class and its probabilities, the classes the README shows
    assert response.status_code == 200, response.text
    answer = response.json()
    records = json.loads(body)
    assert len(answer["predictions"]) == len(records)
    assert [set(p) for p in answer["probabilities"]] == [{"no", "yes"}] * len(records)
    shown = re.search(r'^# 200 (\{"predictions":(\[[^\]]*\]).*(?:\n#  .*)*)', block, flags=re.M)
    assert shown is not None, "the quickstart shows the answer under the curl command"
    assert answer["predictions"] == json.loads(shown.group(2))
    assert set(re.findall(r'"([a-z]+)":', shown.group(1))) == set(answer) | {"no", "yes"}

    # WHEN the file is batch-scored as the README says
    assert batch[:3] == [".venv/bin/python", "-m", "lambda_app.batch"]
    scored = run(batch, paths)

    # THEN every input row comes out scored, with its columns kept and nothing rejected
    assert scored.returncode == 0, scored.stderr[-3000:]
    with open(paths[OUTPUT], newline="") as f:
        out = list(csv.DictReader(f))
    assert len(out) == ROWS
    assert {"plan", "monthly_spend", "tenure_months", "churned", "prediction", "model_version"} <= set(out[0])
    assert {row["prediction"] for row in out} <= {"yes", "no"}
    assert not (tmp_path / "scored.rejects.csv").exists()


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("# a comment\n.venv/bin/python -m x --a 'b c'\n", [[".venv/bin/python", "-m", "x", "--a", "b c"]]),
        ("curl -s \\\n  -d '{\"a\": 1}'\n", [["curl", "-s", "-d", '{"a": 1}']]),
    ],
)
def test_commands_are_read_as_a_shell_reads_them(block: str, expected: list[list[str]]) -> None:
    assert commands(block) == expected
