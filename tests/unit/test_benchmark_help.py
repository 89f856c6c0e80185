"""Every benchmark explains itself with --help and returns at once, without running (they take minutes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = sorted(
    f"benchmarks.{path.stem}" if path.stem != "__main__" else "benchmarks"
    for path in (ROOT / "benchmarks").glob("*.py")
    if 'if __name__ == "__main__"' in path.read_text() and not path.stem.startswith("naive")
)


def test_every_runnable_benchmark_is_listed() -> None:
    assert {"benchmarks", "benchmarks.batch", "benchmarks.preprocessing", "benchmarks.quality"} <= set(
        BENCHMARKS
    )


@pytest.mark.parametrize("module", BENCHMARKS)
def test_help_describes_the_benchmark_and_runs_nothing(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,  # a benchmark that ignored --help would run for minutes
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {module}")
    assert "issue" not in done.stdout.lower()
    assert "seed's" not in done.stdout
