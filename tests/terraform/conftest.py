"""Terraform fixtures: a moto server on loopback and a Terraform working copy that talks to it.

Terraform runs through scripts/tf.sh, which honours TF_PLUGIN_MIRROR. When terraform is not
installed these tests skip, saying so, unless REQUIRE_TERRAFORM=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from benchmarks.loadtest import free_port
from tests.conftest import ROOT

TERRAFORM_DIR = ROOT / "terraform"
TF_WRAPPER = ROOT / "scripts" / "tf.sh"
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector:test-1"
COMMAND_TIMEOUT = 600


def require_terraform() -> None:
    if shutil.which("terraform"):
        return
    if os.environ.get("REQUIRE_TERRAFORM") == "1":
        pytest.fail("terraform is not installed and REQUIRE_TERRAFORM=1")
    pytest.skip("terraform is not installed (set REQUIRE_TERRAFORM=1 to make this a failure)")


@dataclass
class Terraform:
    """A copy of terraform/ and the environment that points it at the moto server."""

    workdir: Path
    endpoint: str
    env: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(TF_WRAPPER), f"-chdir={self.workdir}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def var_args(self) -> list[str]:
        return [arg for name, value in self.variables.items() for arg in ("-var", f"{name}={value}")]

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: value["value"] for name, value in raw.items()}

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def step_functions_routes_terraform_calls() -> Iterator[None]:
    """The two Step Functions actions the AWS provider (>= 5.67) calls that moto 5.2.5 lacks.

    ``ValidateStateMachineDefinition`` (when planning a state machine) answers OK, and
    ``ListStateMachineVersions`` (on every read) answers none: without them apply retries and hangs.
    Test code only, added to moto's response class for the life of the server; the Terraform code
    knows nothing of it.
    """
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    routes = {
        "validate_state_machine_definition": lambda self: ActionResult({"result": "OK", "diagnostics": []}),
        "list_state_machine_versions": lambda self: ActionResult({"stateMachineVersions": []}),
    }
    added = [name for name in routes if not hasattr(StepFunctionResponse, name)]
    for name in added:
        setattr(StepFunctionResponse, name, routes[name])
    try:
        yield
    finally:
        for name in added:
            delattr(StepFunctionResponse, name)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server of its own on 127.0.0.1 and a free port, stopped after the module."""
    require_terraform()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with step_functions_routes_terraform_calls():
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Terraform:
    """terraform/ copied to a scratch directory and initialised (providers from TF_PLUGIN_MIRROR if set)."""
    workdir = tmp_path_factory.mktemp("terraform")
    for path in TERRAFORM_DIR.iterdir():
        if path.is_file() and path.suffix in {".tf", ".hcl"} and path.name != ".terraform.lock.hcl":
            shutil.copy(path, workdir / path.name)
    tests_dir = TERRAFORM_DIR / "tests"
    if tests_dir.is_dir():
        shutil.copytree(tests_dir, workdir / "tests")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "TF_CLI_CONFIG_FILE": str(workdir / "no-cli-config.tfrc"),
    }
    (workdir / "no-cli-config.tfrc").write_text("")
    if os.environ.get("TF_PLUGIN_MIRROR"):
        env["TF_PLUGIN_MIRROR"] = os.environ["TF_PLUGIN_MIRROR"]
    tf = Terraform(
        workdir=workdir,
        endpoint=moto_endpoint,
        env=env,
        variables={"image_uri": IMAGE_URI, "force_destroy": "true"},
    )
    tf.run("init", "-input=false", "-no-color")
    return tf
