"""/predict?errors=per_row through the real Lambda handler: valid records scored, invalid ones null in
every answer field and named in ``errors``; the default stays all-or-nothing. Every task, a mixed table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest

from lambda_app.batch.columns import check_rows
from lambda_app.registry import FeatureSpec
from lambda_app.validation import records_to_partial_matrix
from tests.conftest import SEED_RECORD, predict_event, response_json

GOOD = [SEED_RECORD, {"one": 80, "two": 14.2, "three": 13.9}, {"one": 4444, "two": 31.5, "three": 2.25}]
BAD = {"one": 80, "two": "x", "three": 13.9}
ANSWER_FIELDS = {"anomaly": ["predictions", "scores"], "classification": ["predictions", "probabilities"]}


def call(handler: Callable[..., Any], context: Any, records: Any, query: str = "") -> tuple[int, Any]:
    event = predict_event(records)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    response = handler(event, context)
    return response["statusCode"], response_json(response)


@pytest.fixture(params=["anomaly", "classification", "regression"])
def task_handler(
    request: pytest.FixtureRequest,
    handler_module: Callable[..., ModuleType],
    trained_registry: Path,
    task_registries: dict[str, Path],
) -> tuple[str, Callable[..., Any]]:
    task = request.param
    registry = trained_registry if task == "anomaly" else task_registries[task]
    return task, handler_module(MODEL_URI=str(registry)).handler


def test_the_default_is_all_or_nothing(
    task_handler: tuple[str, Callable[..., Any]], lambda_context: Any
) -> None:
    _, handler = task_handler
    status, body = call(handler, lambda_context, [GOOD[0], BAD])
    assert status == 422
    assert body["message"] == "row 1, field 'two': must be a number, got string"
    assert body["errors"] == [
        {"row": 1, "field": "two", "code": "wrong_type", "message": "must be a number, got string"}
    ]
    assert call(handler, lambda_context, [GOOD[0], BAD], "errors=all")[0] == 422


def test_per_row_scores_the_valid_rows_and_names_the_others(
    task_handler: tuple[str, Callable[..., Any]], lambda_context: Any
) -> None:
    task, handler = task_handler
    records = [GOOD[0], BAD, GOOD[1], {"one": 1, "three": 2.0, "tow": 3.0}, GOOD[2], "not a record"]
    status, body = call(handler, lambda_context, records, "errors=per_row")
    assert status == 200
    status_all, alone = call(handler, lambda_context, GOOD)
    assert status_all == 200
    for field in ANSWER_FIELDS.get(task, ["predictions"]):
        assert body[field][1] is None
        assert body[field][3] is None
        assert body[field][5] is None
        # the valid rows get exactly what they get without the invalid ones
        assert [body[field][i] for i in (0, 2, 4)] == alone[field]
    assert body["errors"] == [
        {"row": 1, "field": "two", "code": "wrong_type", "message": "must be a number, got string"},
        {
            "row": 3,
            "field": "tow",
            "code": "unknown_field",
            "message": "unknown field (did you mean 'two'?); expected only one, two, three",
        },
        {"row": 3, "field": "two", "code": "missing_field", "message": "field required"},
        {"row": 5, "field": None, "code": "not_a_record", "message": "must be an object, got string"},
    ]
    assert body["version"] == alone["version"]


def test_per_row_with_every_row_valid_is_the_default_answer(
    task_handler: tuple[str, Callable[..., Any]], lambda_context: Any
) -> None:
    _, handler = task_handler
    assert call(handler, lambda_context, GOOD, "errors=per_row") == call(handler, lambda_context, GOOD)


def test_per_row_with_no_valid_row_is_a_422_naming_them(
    task_handler: tuple[str, Callable[..., Any]], lambda_context: Any
) -> None:
    _, handler = task_handler
    status, body = call(handler, lambda_context, [BAD, {**BAD, "two": None}], "errors=per_row")
    assert status == 422
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(0, "wrong_type"), (1, "missing_value")]


@pytest.mark.parametrize(
    ("query", "records", "fragment"),
    [
        ("errors=some", GOOD, "errors must be one of all, per_row"),
        ("errors=per_row&errors=all", GOOD, "given more than once"),
        ("errors=per_row", [], "empty array"),  # the body's shape is still judged whole
        ("errors=per_row", 5, "got number"),
    ],
)
def test_what_per_row_does_not_change(
    handler_module: Callable[..., ModuleType],
    trained_registry: Path,
    lambda_context: Any,
    query: str,
    records: Any,
    fragment: str,
) -> None:
    handler = handler_module(MODEL_URI=str(trained_registry)).handler
    status, body = call(handler, lambda_context, records, query)
    assert status == 422
    assert fragment in body["message"]


def test_the_row_limit_still_counts_every_record(
    handler_module: Callable[..., ModuleType], trained_registry: Path, lambda_context: Any
) -> None:
    handler = handler_module(MODEL_URI=str(trained_registry), MAX_ROWS="2").handler
    status, body = call(handler, lambda_context, [*GOOD], "errors=per_row")
    assert status == 422
    assert body["error"] == "too_many_records"


def test_rejected_rows_are_counted_in_the_metrics(
    handler_module: Callable[..., ModuleType],
    trained_registry: Path,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = handler_module(MODEL_URI=str(trained_registry)).handler
    capsys.readouterr()
    assert call(handler, lambda_context, [GOOD[0], BAD, BAD], "errors=per_row")[0] == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf, "one EMF document per invocation"
    rejected = [doc["RejectedRows"] for doc in emf if "RejectedRows" in doc]
    assert rejected in ([2.0], [[2.0]])
    assert [doc["Predictions"] for doc in emf if "Predictions" in doc][-1] in (1.0, [1.0])


MIXED_GOOD = [
    {"one": 80, "two": 14.2, "three": 13.9, "protocol": "tcp", "encrypted": True, "bytes": 1200.0},
    {"one": 443, "two": 12.5, "three": 15.1, "protocol": "udp", "encrypted": False, "bytes": None},
]


@pytest.mark.parametrize("task", ["anomaly", "classification"])
def test_a_mixed_table_per_row(
    task: str,
    handler_module: Callable[..., ModuleType],
    mixed_registries: dict[str, Path],
    lambda_context: Any,
) -> None:
    handler = handler_module(MODEL_URI=str(mixed_registries[task])).handler
    unseen = {**MIXED_GOOD[0], "protocol": "sctp"}
    records = [
        MIXED_GOOD[0],
        {**MIXED_GOOD[0], "encrypted": None},  # not a filled feature: refused
        {**MIXED_GOOD[0], "protocol": 6},
        unseen,  # scored as unseen, and said so, in the request's row numbers
        MIXED_GOOD[1],  # null where the model fills it: scored
    ]
    status, body = call(handler, lambda_context, records, "errors=per_row")
    assert status == 200
    assert [e["row"] for e in body["errors"]] == [1, 2]
    assert [e["code"] for e in body["errors"]] == ["missing_value", "wrong_type"]
    assert body["unseen"] == [{"row": 3, "fields": ["protocol"]}]
    _, alone = call(handler, lambda_context, [MIXED_GOOD[0], unseen, MIXED_GOOD[1]])
    assert [body["predictions"][i] for i in (0, 3, 4)] == alone["predictions"]
    if task == "classification":  # trained on whole-number classes: answered as numbers
        assert all(isinstance(p, int) for p in alone["predictions"])


def test_unseen_categories_refused_per_row(
    handler_module: Callable[..., ModuleType], mixed_registries: dict[str, Path], lambda_context: Any
) -> None:
    handler = handler_module(MODEL_URI=str(mixed_registries["anomaly"]), UNSEEN_CATEGORIES="refuse").handler
    records = [{**MIXED_GOOD[0], "two": "x"}, MIXED_GOOD[0], {**MIXED_GOOD[0], "protocol": "sctp"}]
    status, body = call(handler, lambda_context, records, "errors=per_row")
    assert status == 200
    assert body["predictions"][0] is None
    assert body["predictions"][2] is None
    assert body["predictions"][1] in (0, 1)
    assert [(e["row"], e["field"], e["code"]) for e in body["errors"]] == [
        (0, "two", "wrong_type"),
        (2, "protocol", "unseen_category"),
    ]


def test_batch_and_predict_give_the_same_codes_for_the_same_values() -> None:
    """One set of row rules: a value refused by /predict is refused by batch with the same code."""
    specs = [
        FeatureSpec(name="x", dtype="number"),
        FeatureSpec(name="n", dtype="integer"),
        FeatureSpec(name="b", dtype="boolean"),
    ]
    cases = [  # (JSON record, the same row as table cells)
        ({"x": 1e13, "n": 1, "b": True}, (1e13, "1", "true")),
        ({"x": 1.0, "n": 1.5, "b": True}, (1.0, "1.5", "true")),
        ({"x": 1.0, "n": 1, "b": "maybe"}, (1.0, "1", "maybe")),
        ({"x": None, "n": 1, "b": True}, (None, "1", "true")),
    ]
    _, _, details = records_to_partial_matrix([record for record, _ in cases], specs, 10)
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([cells[0] for _, cells in cases], pa.float64()),
            pa.array([cells[1] for _, cells in cases], pa.string()),
            pa.array([cells[2] for _, cells in cases], pa.string()),
        ],
        names=["x", "n", "b"],
    )
    checked = check_rows(batch, specs)
    assert (
        checked.codes
        == [d.code for d in details]
        == [
            "out_of_range",
            "not_integer",
            "wrong_type",
            "missing_value",
        ]
    )
