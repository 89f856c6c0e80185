"""Every command block in the docs runs as written, or says what it needs.

A ``bash`` block is either marked on its first line (``# needs AWS``, ``# needs Docker``: the tests
exercise the same paths against moto and the image's contents instead), or its commands are replayed
here, in a scratch directory laid out like the repository (``data/``, ``events/``, the training
configs, the example model in ``model-registry``), with AWS out of reach. Lines that start the local
server or call it (``make serve``, ``make invoke``, ``curl``) are left to the tests that serve the app
(tests/functional/test_readme_examples.py replays every ``curl -d`` example and its answer); the README's
blocks are replayed by tests/docs/test_quickstart.py and the README tests. A ``python`` block is marked
or replayed by the test that names its page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^( *)```(bash|python)\n(.*?)^\1```", flags=re.S | re.M)
MARKS = ("# needs AWS", "# needs Docker")
EXPECTED_EXIT = re.compile(r"#.*\(exit (\d+) when")
"""A line whose comment says "(exit N when ...)" may end with N: the example shows that outcome."""
LEFT_TO_SERVING_TESTS = re.compile(r"^(\S+=\S+ )*(make (serve|invoke)|curl)\b")
PYTHON_BLOCKS_REPLAYED_BY = {"docs/api.md": ROOT / "tests" / "integration" / "test_stock_clients.py"}


def blocks(kind: str) -> list[tuple[str, int, str]]:
    """(page, block number on the page, text) of every ``kind`` block of the docs pages."""
    found = []
    for page in PAGES:
        matches = [m for m in BLOCK.finditer(page.read_text()) if m.group(2) == kind]
        for number, match in enumerate(matches, 1):
            text = "\n".join(line.removeprefix(match.group(1)) for line in match.group(3).splitlines())
            found.append((f"docs/{page.name}", number, text))
    return found


def runnable(text: str) -> str:
    """The block's commands this test runs: continued lines joined; servers, calls and comments out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    kept = []
    in_quote = False
    for line in joined.splitlines():
        if not in_quote and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not in_quote and LEFT_TO_SERVING_TESTS.match(line.strip()):
            continue
        expected = EXPECTED_EXIT.search(line)
        kept.append(f"{line.split('#')[0].rstrip()} || [ $? -eq {expected.group(1)} ]" if expected else line)
        in_quote ^= line.count('"') % 2 == 1  # a multi-line "python -c" argument
    return "\n".join(kept)


LOCAL = [
    pytest.param(text, id=f"{page}#{number}")
    for page, number, text in blocks("bash")
    if not text.startswith(MARKS) and runnable(text)
]


def test_every_block_is_marked_or_replayed() -> None:
    """Unmarked bash blocks are replayed below (by construction); python blocks by the test naming them."""
    assert len(LOCAL) >= 5, "the local examples are replayed here"
    for page, number, text in blocks("python"):
        if text.startswith(MARKS):
            continue
        replayer = PYTHON_BLOCKS_REPLAYED_BY.get(page)
        assert replayer is not None, f"{page} python block {number}: mark it, or replay it in a test"
        assert Path(page).name in replayer.read_text(), f"{replayer.name} reads {page}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, trained_registry: Path) -> Path:
    """A scratch directory laid out like the repository, with the example model published."""
    root = tmp_path_factory.mktemp("docs-workspace")
    shutil.copytree(ROOT / "data", root / "data", ignore=shutil.ignore_patterns("*.parquet"))
    for shared in ("events", "training"):
        (root / shared).symlink_to(ROOT / shared)
    shutil.copytree(trained_registry, root / "model-registry")
    return root


@pytest.mark.parametrize("text", LOCAL)
def test_the_block_runs_as_written(text: str, workspace: Path) -> None:
    script = runnable(text).replace(".venv/bin/python", sys.executable)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "AWS_PROFILE"))},
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n--- stderr ---\n{done.stderr[-3000:]}"
