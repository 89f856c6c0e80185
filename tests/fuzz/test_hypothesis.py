"""Property tests for request validation: any JSON value as a body is a 2xx or a 4xx, never an exception."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_app.config import Settings
from lambda_app.errors import InvalidInputError
from lambda_app.main import create_app
from lambda_app.registry import FeatureSpec
from lambda_app.validation import records_to_matrix

FEATURES = [
    FeatureSpec(name="one", dtype="integer"),
    FeatureSpec(name="two", dtype="number"),
    FeatureSpec(name="three", dtype="number"),
]
NAMES = ["one", "two", "three"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from([*NAMES, "four", ""]) | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)
numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))
record = st.fixed_dictionaries({"one": st.integers(-(10**6), 10**6), "two": numbers, "three": numbers})
PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY_SETTINGS
@given(payload=json_values)
def test_any_json_value_is_a_matrix_or_a_clear_invalid_input(payload: Any) -> None:
    try:
        matrix = records_to_matrix(payload, FEATURES, max_rows=10)
    except InvalidInputError as error:
        problem: InvalidInputError | None = error
    else:
        problem = None
    if problem is not None:
        assert problem.message
        assert problem.status == 422
        return
    assert matrix.shape[1] == 3
    assert np.isfinite(matrix).all()


@PROPERTY_SETTINGS
@given(rows=st.lists(record, min_size=1, max_size=20))
def test_valid_records_round_trip_in_order(rows: list[dict[str, Any]]) -> None:
    matrix = records_to_matrix(rows, FEATURES, max_rows=20)
    assert matrix.tolist() == [[float(r[name]) for name in NAMES] for r in rows]


@pytest.fixture(scope="module")
def client(trained_registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=str(trained_registry), max_rows=10))) as test_client:
        yield test_client


@PROPERTY_SETTINGS
@given(payload=json_values)
def test_any_json_body_gets_a_2xx_or_a_4xx_with_finite_scores(client: TestClient, payload: Any) -> None:
    body = json.dumps(payload, allow_nan=True).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code in {200, 400, 413, 422}, response.text
    data = response.json()
    if response.status_code == 200:
        assert all(math.isfinite(score) for score in data["scores"])
    else:
        assert data["error"]
        assert data["message"]
        assert data["request_id"]


@PROPERTY_SETTINGS
@given(rows=st.lists(record, min_size=1, max_size=10))
def test_a_row_scores_the_same_alone_and_in_a_batch(client: TestClient, rows: list[dict[str, Any]]) -> None:
    batch = client.post("/predict", json=rows).json()["scores"]
    alone = [client.post("/predict", json=row).json()["scores"][0] for row in rows[:3]]
    assert batch[: len(alone)] == alone


MIXED = [
    FeatureSpec(name="one", dtype="integer"),
    FeatureSpec(name="protocol", dtype="category", categories=["icmp", "tcp", "udp"], encoding="ordinal"),
    FeatureSpec(name="encrypted", dtype="boolean", fill=False),
    FeatureSpec(name="bytes", dtype="number", fill=1088.0),
]
mixed_json = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["one", "protocol", "encrypted", "bytes", "four"]), children, max_size=5
        )
    ),
    max_leaves=30,
)
mixed_record = st.fixed_dictionaries(
    {
        "one": st.integers(-(10**6), 10**6),
        "protocol": st.sampled_from(["icmp", "tcp", "udp"]) | st.text(max_size=6),
        "encrypted": st.none() | st.booleans(),
        "bytes": st.none() | numbers,
    }
)


@PROPERTY_SETTINGS
@given(payload=mixed_json)
def test_any_json_value_is_a_served_table_or_a_clear_invalid_input_for_every_type(payload: Any) -> None:
    try:
        table = records_to_matrix(payload, MIXED, max_rows=10)
    except InvalidInputError as error:
        problem: InvalidInputError | None = error
    else:
        problem = None
    if problem is not None:
        assert problem.status == 422
        assert problem.message
        return
    assert table.shape[1] == 4
    assert np.isfinite(table[:, :2]).all()  # a number and a category are never missing here
    assert set(table[:, 1].tolist()) <= {-1.0, 0.0, 1.0, 2.0}


@PROPERTY_SETTINGS
@given(rows=st.lists(mixed_record, min_size=1, max_size=20))
def test_mixed_records_become_the_served_table_cell_by_cell(rows: list[dict[str, Any]]) -> None:
    """The column-wise fast path gives exactly what the per-cell rules say."""
    table = records_to_matrix(rows, MIXED, max_rows=20)
    known = {"icmp": 0.0, "tcp": 1.0, "udp": 2.0}
    expected = [
        [
            float(r["one"]),
            known.get(r["protocol"], -1.0),
            math.nan if r["encrypted"] is None else float(r["encrypted"]),
            math.nan if r["bytes"] is None else float(r["bytes"]),
        ]
        for r in rows
    ]
    np.testing.assert_array_equal(table, np.array(expected))
