"""What Dockerfile.train builds, proven without a Docker engine.

Only what the Dockerfile copies is copied into an empty /app; the job then runs from there with
the pinned training dependencies (this interpreter's) and no project checkout on its path:
``python -m training retrain`` on a data directory publishes and promotes a model, while the
serving handler and the tests are absent.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_DATA
from tests.image.test_image_contents import dockerfile_instructions

pytestmark = pytest.mark.image

DOCKERFILE = ROOT / "Dockerfile.train"


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for keyword, args in dockerfile_instructions(DOCKERFILE):
        found.setdefault(keyword, []).append(args)
    return found


def test_dockerfile_runs_the_training_cli_as_a_non_root_user() -> None:
    found = instructions()
    assert re.match(r"python:3\.1[2-9]-slim", found["FROM"][0])
    assert json.loads(found["ENTRYPOINT"][0]) == ["python", "-m", "training"]
    assert json.loads(found["CMD"][0])[0] == "retrain"
    assert found["USER"][0].split(":")[0] not in {"root", "0"}
    # The task runs read-only with /tmp as a volume: the image must declare it world-writable, or the
    # non-root user cannot write its downloads there (Fargate bind mounts are root-owned 0755 otherwise).
    assert json.loads(found["VOLUME"][0]) == ["/tmp"]
    assert "chmod 1777 /tmp" in found["RUN"][-1]


def test_dockerfile_installs_the_openmp_runtime_lightgbm_links() -> None:
    # python:3.12-slim has no libgomp: `import lightgbm` fails there without it ("libgomp.so.1: cannot
    # open shared object file"), and LightGBM is in the pinned training requirements.
    assert "lightgbm==" in (ROOT / "requirements-train.txt").read_text()
    assert any("libgomp1" in run and "--no-install-recommends" in run for run in instructions()["RUN"])


def test_dockerfile_copies_training_code_and_the_shared_contract_only() -> None:
    sources = [src for args in instructions()["COPY"] for src in shlex.split(args)[:-1]]
    assert sources == [
        "requirements.txt",
        "requirements-train.txt",
        "training/",
        "lambda_app/__init__.py",
        "lambda_app/preprocess.py",
        "lambda_app/registry/",
        "lambda_app/models/",
        "lambda_app/explain/",
    ]
    allowed = {
        line[1:]
        for line in (ROOT / "Dockerfile.train.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(sources) <= allowed, "the build context (Dockerfile.train.dockerignore) must admit every COPY"


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Dockerfile builds it (the pip install aside): the COPY instructions, nothing else."""
    app = tmp_path_factory.mktemp("app")
    for args in instructions()["COPY"]:
        *sources, dest = shlex.split(args)
        for source in sources:
            if source.startswith("requirements"):
                continue  # installed by pip, then deleted
            if source.endswith("/"):
                shutil.copytree(
                    ROOT / source,
                    app / dest,
                    ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True,
                )
            else:
                (app / dest).mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, app / dest)
    return app


def run_in(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args], cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_image_contents_alone_retrain_and_promote(app_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "incoming"
    data.mkdir()
    shutil.copy(SAMPLE_DATA, data / "flows-2026-11-26.csv")
    registry = tmp_path / "registry"
    result = run_in(app_dir, "-m", "training", "retrain", "--data", f"{data}/", "--model-uri", str(registry))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "production -> " in result.stdout
    production = json.loads((registry / "aliases" / "production.json").read_text())
    candidate = json.loads((registry / "aliases" / "candidate.json").read_text())
    assert production["version"] == candidate["version"]

    probe = run_in(
        app_dir,
        "-c",
        "import importlib.util, training; "
        "print(training.__file__); "
        "mods = ('lambda_app.handler', 'lambda_app.main', 'tests'); "
        "print([m for m in mods if importlib.util.find_spec(m)])",
    )
    origin, present = probe.stdout.splitlines()
    assert Path(origin).is_relative_to(app_dir), "training must come from the image's /app, not the checkout"
    assert present == "[]", "the serving handler and the tests must not be in the training image"
