"""training/ imports in one direction: each layer only from the layers below it, no import circles.

Every import counts: at the top of a module, inside a function (a lazy import hides a circle, it does
not remove it) and under ``if TYPE_CHECKING:``. Within one package its modules may import each other,
without a circle. A new module or package must be given a layer here: where it sits is a decision.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS: list[set[str]] = [
    {"training", "training.exceptions"},
    {"training.config"},  # the config file's schema: plain data
    {"training.data"},
    {"training.estimators", "training.evaluation"},  # independent of each other
    {"training.tasks"},
    {"training.selection"},
    {"training.publish"},
    {
        "training.train",
        "training.importer",
        "training.lifecycle",
        "training.task_choice",
        "training.listing",
    },  # the runs
    {"training.__main__"},  # the CLI
]
"""Bottom to top. Units in one layer are siblings: neither imports the other."""

CONTRACT = ("lambda_app.registry", "lambda_app.models", "lambda_app.preprocess", "lambda_app.explain")
"""What training may import from the service: the artifact contract, never the service itself."""


def module_sources(root: Path) -> dict[str, str]:
    """Every module of the package at ``root``, by its dotted name."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        sources[".".join(parts)] = path.read_text()
    return sources


def imported(name: str, source: str, modules: set[str]) -> Iterator[tuple[str, int]]:
    """The modules ``name`` imports (those in ``modules`` resolved to the module, others as written),
    with the line of each import, wherever the import statement is."""
    package = name if f"{name}.__init__" in modules else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _known(alias.name, modules), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in modules else _known(base, modules)), node.lineno


def _known(name: str, modules: set[str]) -> str:
    """``name``, or the longest prefix of it that is a known module (``a.b.c`` imports ``a.b``'s)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return name


def unit(module: str, packages: set[str]) -> str:
    """The package a module belongs to (``training.data`` for ``training.data.read``), or the module
    itself for a top-level one (``training.train``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in packages else module


def layer_problems(sources: Mapping[str, str], packages: set[str]) -> list[str]:
    """Imports that point sideways or up, imports of service internals, and modules with no layer."""
    layer = {member: index for index, members in enumerate(LAYERS) for member in members}
    modules = set(sources) | {f"{p}.__init__" for p in packages}
    problems = []
    for name, source in sorted(sources.items()):
        mine = unit(name, packages)
        if mine not in layer:
            problems.append(f"{name}: no layer (add {mine} to LAYERS)")
            continue
        for target, line in imported(name, source, modules):
            if target.startswith("lambda_app") and not target.startswith(CONTRACT):
                problems.append(f"{name}:{line} imports {target}: only the contract, {', '.join(CONTRACT)}")
            if target not in sources:
                continue
            theirs = unit(target, packages)
            if theirs != mine and layer.get(theirs, len(LAYERS)) >= layer[mine]:
                problems.append(
                    f"{name}:{line} imports {target}: layer {layer.get(theirs)} ({theirs}) is not below"
                    f" layer {layer[mine]} ({mine})"
                )
    return problems


def circles(sources: Mapping[str, str], packages: set[str]) -> list[list[str]]:
    """Every import circle among ``sources`` (strongly connected modules), each listed once."""
    modules = set(sources) | {f"{p}.__init__" for p in packages}
    edges = {
        name: sorted({target for target, _ in imported(name, source, modules) if target in sources})
        for name, source in sources.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return found


def packages_of(sources: Mapping[str, str], root: Path) -> set[str]:
    return {name for name in sources if (root.parent / name.replace(".", "/") / "__init__.py").is_file()}


TRAINING = ROOT / "training"


def test_training_imports_point_down_only() -> None:
    sources = module_sources(TRAINING)
    assert layer_problems(sources, packages_of(sources, TRAINING)) == []


def test_training_has_no_import_circle() -> None:
    sources = module_sources(TRAINING)
    assert circles(sources, packages_of(sources, TRAINING)) == []


def test_the_imports_are_seen_wherever_they_are() -> None:
    """The check reads real edges: the run imports the tasks, the tasks the estimators lazily."""
    sources = module_sources(TRAINING)
    modules = set(sources)
    assert "training.tasks" in {t for t, _ in imported("training.train", sources["training.train"], modules)}
    base = {t for t, _ in imported("training.tasks.base", sources["training.tasks.base"], modules)}
    assert "training.estimators.convert" in base  # imported inside compile_with_parity


PACKAGES = {"training", "training.data", "training.tasks"}


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("training.config", "def f():\n    from training.tasks import task_kind\n"),
        (
            "training.data.read",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from training.train import Published\n",
        ),
        ("training.train", "from training.importer import import_model\n"),
        ("training.data.read", "from lambda_app.api.routes import predict\n"),
    ],
    ids=["lazy upward", "type-checking upward", "sideways", "service internals"],
)
def test_an_import_against_the_layers_is_reported(module: str, source: str) -> None:
    sources = {
        "training": "",
        "training.config": "",
        "training.data": "",
        "training.data.read": "",
        "training.tasks": "",
        "training.train": "",
        "training.importer": "",
        module: source,
    }
    problems = layer_problems(sources, PACKAGES)
    assert len(problems) == 1
    assert problems[0].startswith(f"{module}:")


def test_a_module_without_a_layer_is_reported() -> None:
    assert layer_problems({"training.helpers": ""}, {"training"}) == [
        "training.helpers: no layer (add training.helpers to LAYERS)"
    ]


def test_a_circle_inside_a_package_is_reported() -> None:
    sources = {
        "training.data": "",
        "training.data.read": "from training.data.validate import Dataset\n",
        "training.data.validate": "def f():\n    from training.data import read\n",
        "training.data.labels": "from training.data.read import local_copy\n",
    }
    assert circles(sources, {"training.data"}) == [["training.data.read", "training.data.validate"]]
