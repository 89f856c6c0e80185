"""Settings derived values, and tracing that switches itself on only inside Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lambda_app.config import Settings
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"inference_threads": 3}, 3),
        ({"aws_lambda_function_memory_size": 1024}, 1),
        ({"aws_lambda_function_memory_size": 3538}, 2),
        ({"aws_lambda_function_memory_size": 10240}, 5),
        ({"inference_threads": 2, "aws_lambda_function_memory_size": 10240}, 2),
    ],
)
def test_inference_threads_follow_lambda_vcpus(env: dict[str, int], expected: int) -> None:
    assert Settings(**env).threads == expected  # type: ignore[arg-type]


def test_inference_threads_default_to_the_machine_outside_lambda() -> None:
    assert Settings().threads == max(1, os.cpu_count() or 1)


def _observability(env: dict[str, str]) -> dict[str, object]:
    code = (
        "import json, sys; from lambda_app import observability as o\n"
        "def f(): return 1\n"
        "print(json.dumps({'tracing': o.TRACING, 'wrapped': o.traced(f) is not f,"
        " 'xray': 'aws_xray_sdk.core' in sys.modules, 'result': o.traced(f)()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": os.environ.get("PATH", ""), "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", **env},
    )
    output: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_outside_lambda_no_tracer_is_created_and_the_xray_sdk_is_not_imported() -> None:
    assert _observability({}) == {"tracing": False, "wrapped": False, "xray": False, "result": 1}


def test_inside_lambda_functions_are_traced() -> None:
    observed = _observability({"LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "us-east-1"})
    assert observed == {"tracing": True, "wrapped": True, "xray": True, "result": 1}


def test_tracing_can_be_switched_off_in_lambda() -> None:
    observed = _observability({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert observed["tracing"] is False
