"""What Dockerfile.lambda builds, proven without a Docker engine.

requirements.txt is installed into an empty directory and only what the Dockerfile copies is
copied beside it; a clean interpreter with only that directory on its path then serves events.
The image can therefore never silently depend on training code or development packages.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EVENTS_DIR, ROOT

pytestmark = pytest.mark.image

WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
DOCKERFILE = ROOT / "Dockerfile.lambda"


def dockerfile_instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined."""
    text = dockerfile.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_uses_the_lambda_base_image_and_the_handler_cmd() -> None:
    instructions = {k: v for k, v in dockerfile_instructions() if k in {"FROM", "CMD"}}
    assert re.match(r"public\.ecr\.aws/lambda/python:3\.1[2-9]", instructions["FROM"])
    assert json.loads(instructions["CMD"]) == ["lambda_app.handler.handler"]


def test_dockerfile_copies_only_requirements_and_lambda_app() -> None:
    copies = [shlex.split(args) for keyword, args in dockerfile_instructions() if keyword == "COPY"]
    assert [args[0] for args in copies] == ["requirements.txt", "lambda_app/"]


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/var/task as the Dockerfile builds it: pip --target, then the COPY instructions."""
    if not (WHEELHOUSE / ".stamp").exists():
        pytest.fail("the serving wheelhouse is missing: run `make wheelhouse` (make test does it)")
    root = tmp_path_factory.mktemp("task")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--only-binary=:all:",
            "--find-links",
            str(WHEELHOUSE),
            "--target",
            str(root),
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        check=True,
        timeout=600,
    )
    for keyword, args in dockerfile_instructions():
        if keyword == "COPY" and shlex.split(args)[0] == "lambda_app/":
            shutil.copytree(
                ROOT / "lambda_app", root / "lambda_app", ignore=shutil.ignore_patterns("__pycache__")
            )
    return root


RUNNER = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
for forbidden in ("training", "pandas", "sklearn", "scipy", "joblib", "pytest", "moto", "tests", "uvicorn"):
    assert importlib.util.find_spec(forbidden) is None, forbidden + " must not be in the image"
from lambda_app.handler import handler
from lambda_app.invoke import LocalLambdaContext
out = {}
for path in sys.argv[2:]:
    with open(path) as f:
        out[path] = handler(json.load(f), LocalLambdaContext())
print("RESULT " + json.dumps(out))
"""


def run_from_image(
    script: str, task_root: Path, args: list[str], registry: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``script`` in a clean interpreter that sees only the image's task root; must exit 0."""
    result = subprocess.run(
        # -I: ignore PYTHONPATH and user site; -S: no site-packages. Only the task root is added.
        [sys.executable, "-I", "-S", "-c", script, str(task_root), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            "MODEL_URI": str(registry),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_image_contents_alone_serve_events(
    task_root: Path, trained_registry: Path, tmp_path: Path
) -> None:
    events = [str(EVENTS_DIR / n) for n in ("apigw_v2_predict_single.json", "apigw_v2_health.json")]
    # The docs' script comes from a package in the image, not a CDN: proven from the image's contents.
    docs_event = json.loads((EVENTS_DIR / "apigw_v2_root.json").read_text())
    docs_event["rawPath"] = docs_event["requestContext"]["http"]["path"] = "/docs/assets/swagger-ui-bundle.js"
    (tmp_path / "docs_asset.json").write_text(json.dumps(docs_event))
    events.append(str(tmp_path / "docs_asset.json"))
    result = run_from_image(RUNNER, task_root, events, trained_registry, tmp_path)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    responses = json.loads(line[len("RESULT ") :])
    predict = responses[events[0]]
    assert predict["statusCode"] == 200, predict
    assert json.loads(predict["body"])["errors"] is None
    assert responses[events[1]]["statusCode"] == 200
    asset = responses[events[2]]
    assert asset["statusCode"] == 200
    assert asset["headers"]["content-type"].startswith("text/javascript")
    assert len(asset["body"]) > 1_000_000


BATCH_RUNNER = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
import lambda_app.batch.handler  # the image's second entry point imports from the image alone
sys.argv = ["python -m lambda_app.batch", *sys.argv[2:]]
runpy.run_module("lambda_app.batch", run_name="__main__")
"""


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_the_image_contents_alone_score_files(
    fmt: str, task_root: Path, trained_registry: Path, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.read_csv(ROOT / "data" / "sample.csv").head(50)
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(source, index=False)
    else:
        frame.to_csv(source, index=False, compression="gzip")
    args = ["--input", str(source), "--output", str(tmp_path / f"out.{fmt}"), "--quiet"]
    result = run_from_image(BATCH_RUNNER, task_root, args, trained_registry, tmp_path)
    assert "done: 1 file(s), 50 rows, 50 scored" in result.stderr
    scored = (
        pd.read_parquet(tmp_path / "out.parquet")
        if fmt == "parquet"
        else pd.read_csv(tmp_path / "out.csv.gz")
    )
    assert len(scored) == 50
    assert {"prediction", "score", "model_version"} <= set(scored.columns)
