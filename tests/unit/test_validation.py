"""Request bodies -> feature matrix, or a 4xx naming the row and field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lambda_app.errors import InvalidInputError, MalformedBodyError, TooManyRecordsError
from lambda_app.registry import FeatureSpec
from lambda_app.validation import MAX_ABS_VALUE, parse_body, records_to_matrix

FEATURES = [
    FeatureSpec(name="one", dtype="integer"),
    FeatureSpec(name="two", dtype="number"),
    FeatureSpec(name="three", dtype="number"),
]
GOOD = {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338}


def test_single_record_becomes_one_row_in_manifest_order() -> None:
    matrix = records_to_matrix({"three": 3.0, "one": 1, "two": 2.0}, FEATURES, max_rows=10)
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[1.0, 2.0, 3.0]]


def test_array_of_records_becomes_rows() -> None:
    matrix = records_to_matrix([GOOD, {**GOOD, "one": 443}], FEATURES, max_rows=10)
    assert matrix.shape == (2, 3)
    assert matrix[1, 0] == 443


def test_integral_float_is_accepted_for_an_integer_feature() -> None:
    assert records_to_matrix({**GOOD, "one": 20.0}, FEATURES, max_rows=1)[0, 0] == 20


@pytest.mark.parametrize(
    ("payload", "row", "field", "message"),
    [
        ({**GOOD, "two": "12.6"}, 0, "two", "must be a number, got string"),
        ({**GOOD, "two": None}, 0, "two", "must be a number, got null"),
        ({**GOOD, "two": True}, 0, "two", "must be a number, got boolean"),
        ({**GOOD, "two": [1]}, 0, "two", "must be a number, got array"),
        ({**GOOD, "two": {"a": 1}}, 0, "two", "must be a number, got object"),
        ({**GOOD, "one": 20.5}, 0, "one", "must be an integer"),
        ({**GOOD, "two": float("nan")}, 0, "two", "must be a finite number"),
        ({**GOOD, "three": float("-inf")}, 0, "three", "must be a finite number"),
        ({**GOOD, "two": MAX_ABS_VALUE * 10}, 0, "two", "must be between"),
        ({"one": 20, "two": 1.0}, 0, "three", "field required"),
        ({**GOOD, "four": 1}, 0, "four", "unknown field"),
        ([GOOD, GOOD, {**GOOD, "two": "x"}], 2, "two", "must be a number"),
        ([GOOD, 5], 1, None, "must be an object, got number"),
    ],
)
def test_invalid_records_name_row_and_field(payload: Any, row: int, field: str | None, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        records_to_matrix(payload, FEATURES, max_rows=10)
    first = caught.value.details[0]
    assert (first.row, first.field) == (row, field)
    assert message in first.message
    assert f"row {row}" in caught.value.message
    if field:
        assert f"'{field}'" in caught.value.message


@pytest.mark.parametrize(
    ("payload", "kind"), [("x", "string"), (3, "number"), (None, "null"), (True, "boolean")]
)
def test_body_must_be_object_or_array(payload: Any, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=f"got {kind}"):
        records_to_matrix(payload, FEATURES, max_rows=10)


def test_empty_array_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="empty array"):
        records_to_matrix([], FEATURES, max_rows=10)


def test_more_rows_than_the_limit_is_422_stating_the_limit() -> None:
    with pytest.raises(TooManyRecordsError, match="limit of 2 records"):
        records_to_matrix([GOOD] * 3, FEATURES, max_rows=2)


def test_error_list_is_capped() -> None:
    with pytest.raises(InvalidInputError) as caught:
        records_to_matrix([{"x": 1}] * 100, FEATURES, max_rows=1000)
    assert len(caught.value.details) <= 20


@pytest.mark.parametrize("body", [b"", b"   ", b"{", b'{"one": 1,}', b"[" * 5000, b"\xff\xfe"])
def test_malformed_json_is_rejected(body: bytes) -> None:
    with pytest.raises(MalformedBodyError):
        parse_body(body)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_literals_parse_so_the_row_and_field_can_be_named(literal: str) -> None:
    payload = parse_body(f'{{"one": 20, "two": {literal}, "three": 1.5}}'.encode())
    with pytest.raises(InvalidInputError, match="row 0, field 'two': must be a finite number"):
        records_to_matrix(payload, FEATURES, max_rows=1)
