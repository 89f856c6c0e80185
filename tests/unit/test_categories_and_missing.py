"""The served table's contract for categories and missing values: validation, encoding, drift, manifest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from lambda_app.drift import DriftMonitor
from lambda_app.errors import InvalidInputError
from lambda_app.preprocess import model_input, needs_encoding
from lambda_app.registry import FeatureReference, FeatureSpec, Reference
from lambda_app.validation import records_to_matrix

SPECS = [
    FeatureSpec(name="port", dtype="integer"),
    FeatureSpec(name="protocol", dtype="category", categories=["icmp", "tcp", "udp"], encoding="ordinal"),
    FeatureSpec(name="encrypted", dtype="boolean", fill=True),
    FeatureSpec(name="bytes", dtype="number", fill=1088.5),
]
ONE_HOT = [SPECS[0], SPECS[1].model_copy(update={"encoding": "onehot", "fill": "tcp"}), *SPECS[2:]]


def test_records_become_the_served_table_one_column_per_feature() -> None:
    rows: list[dict[str, Any]] = [
        {"port": 80, "protocol": "tcp", "encrypted": False, "bytes": 12.5},
        {"port": 53, "protocol": "sctp", "encrypted": None, "bytes": None},  # unseen, missing, missing
    ]
    table = records_to_matrix(rows, SPECS, 10)
    assert table[0].tolist() == [80.0, 1.0, 0.0, 12.5]
    assert table[1, :2].tolist() == [53.0, -1.0]
    assert np.isnan(table[1, 2:]).all()
    # one record alone takes the same path
    assert records_to_matrix(rows[1], SPECS, 10)[0, :2].tolist() == [53.0, -1.0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("protocol", None, "must be a string, got null (this model takes null only for features it fills)"),
        ("protocol", 6, "must be a string, got number"),
        ("protocol", True, "must be a string, got boolean"),
        ("port", None, "must be a number, got null (this model takes null only for features it fills)"),
        ("encrypted", "yes", "must be true or false, got string"),
        ("bytes", math.inf, "must be a finite number"),
        ("bytes", "1", "must be a number, got string"),
    ],
)
def test_each_bad_value_is_named_with_its_row_and_field(field: str, value: Any, message: str) -> None:
    good = {"port": 80, "protocol": "tcp", "encrypted": True, "bytes": 1.0}
    with pytest.raises(InvalidInputError) as raised:
        records_to_matrix([good, {**good, field: value}], SPECS, 10)
    (detail,) = raised.value.details
    assert (detail.row, detail.field, detail.message) == (1, field, message)


def test_the_graph_input_fills_missing_values_and_encodes_categories() -> None:
    table = np.array([[80.0, 1.0, np.nan, np.nan], [53.0, -1.0, 1.0, 3.0], [22.0, np.nan, 0.0, 2.0]])
    ordinal = model_input(table[:2], SPECS)
    assert ordinal.tolist() == [[80.0, 1.0, 1.0, 1088.5], [53.0, -1.0, 1.0, 3.0]]
    onehot = model_input(table, ONE_HOT)
    assert onehot.tolist() == [
        [80.0, 0.0, 1.0, 0.0, 1.0, 1088.5],
        [53.0, 0.0, 0.0, 0.0, 1.0, 3.0],  # unseen: all zero, as OneHotEncoder(handle_unknown="ignore")
        [22.0, 0.0, 1.0, 0.0, 0.0, 2.0],  # missing: the fill, tcp
    ]
    plain = [FeatureSpec(name="a", dtype="number"), FeatureSpec(name="b", dtype="boolean")]
    assert not needs_encoding(plain)
    same = np.array([[1.0, 0.0]])
    assert model_input(same, plain) is same  # nothing to do: no copy on the hot path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "p", "dtype": "category"}, "needs its categories and an encoding"),
        (
            {"name": "p", "dtype": "category", "categories": ["a", "a"], "encoding": "ordinal"},
            "lists a category twice",
        ),
        (
            {"name": "p", "dtype": "category", "categories": ["a"], "encoding": "ordinal", "fill": "b"},
            "fill 'b' is not a category",
        ),
        ({"name": "n", "dtype": "number", "categories": ["a"]}, "has no categories or encoding"),
        ({"name": "n", "dtype": "number", "fill": "x"}, "fill must be a finite number"),
        ({"name": "b", "dtype": "boolean", "fill": 1.5}, "fill must be true or false"),
    ],
)
def test_a_feature_spec_that_cannot_be_served_is_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureSpec.model_validate(spec)


def test_a_plain_feature_spec_is_written_as_before() -> None:
    """No new keys for a model without categories or fills: an older service still reads its manifest."""
    assert FeatureSpec(name="two", dtype="number").model_dump() == {"name": "two", "dtype": "number"}
    summary = {
        "count": 1,
        "mean": 0.0,
        "std": 0.0,
        "min": 0.0,
        "max": 0.0,
        "quantiles": {},
        "bin_edges": [0.0, 0.0],
        "bin_fractions": [1.0],
    }
    assert FeatureReference.model_validate(summary).model_dump() == summary


def test_online_drift_counts_unseen_categories_and_missing_values_per_window() -> None:
    edges = [-0.5, 0.5, 1.5, 2.5]
    reference = Reference(
        features={
            "protocol": FeatureReference(
                count=10,
                mean=1.0,
                std=0.5,
                min=0.0,
                max=2.0,
                quantiles={},
                bin_edges=edges,
                bin_fractions=[0.1, 0.8, 0.1],
                categories=["icmp", "tcp", "udp"],
            ),
            "bytes": FeatureReference(
                count=10,
                mean=5.0,
                std=1.0,
                min=0.0,
                max=10.0,
                quantiles={},
                bin_edges=[0.0, 5.0, 10.0],
                bin_fractions=[0.5, 0.5],
                missing_fraction=0.05,
            ),
        }
    )
    monitor = DriftMonitor(
        reference, ["protocol", "bytes"], min_rows=4, refresh_rows=4, categories=[0], nullable=[1]
    )
    small = np.array([[1.0, 2.0], [-1.0, np.nan]])  # the per-value path (<= 8 rows)
    first = monitor.observe(small)
    assert first.unseen_share == 0.5
    assert first.out_of_range_share == pytest.approx(1 / 3)  # of the 3 values present: the unseen one
    assert not first.fresh
    large = np.array([[1.0, 2.0]] * 3 + [[1.0, 7.0]] * 3 + [[2.0, np.nan]] * 2)  # the vectorised path
    second = monitor.observe(large)
    assert second.unseen_share == 0.0
    assert second.fresh
    assert second.missing_share == {"bytes": pytest.approx(3 / 10)}
    assert second.psi["bytes"] < 0.05  # 4 and 3 values in the two halves; NaN never lands in a bin


def test_a_nan_sent_for_a_feature_that_takes_null_is_still_refused() -> None:
    """null is a missing value; NaN (which strict JSON does not even have) is a bad number, in any batch."""
    good = {"port": 80, "protocol": "tcp", "encrypted": True, "bytes": None}
    for rows in ([{**good, "bytes": math.nan}], [good, {**good, "bytes": math.nan}]):
        with pytest.raises(InvalidInputError) as raised:
            records_to_matrix(rows, SPECS, 10)
        assert raised.value.details[0].message == "must be a finite number"


def test_batch_columns_follow_the_same_rules() -> None:
    import pyarrow as pa

    from lambda_app.batch.columns import check_rows, check_schema

    port = FeatureSpec(name="port", dtype="category", categories=["22", "80"], encoding="ordinal")
    specs = [port, SPECS[1], SPECS[3]]
    batch = pa.record_batch(
        {
            "port": pa.array([80, 22, 443, 80], pa.int64()),  # a port declared a category: read as text
            "protocol": pa.array(["tcp", "", None, "quic"]),
            "bytes": pa.array(["12.5", "NA", "", "n/a"]),
        }
    )
    check_schema(batch.schema, specs, reserved=[])
    checked = check_rows(batch, specs)
    assert checked.accepted.tolist() == [True, False, False, True]
    assert checked.reasons == ["field 'protocol': missing value", "field 'protocol': missing value"]
    assert checked.matrix[:, :2].tolist() == [[1.0, 1.0], [1.0, -1.0]]
    assert checked.matrix[0, 2] == 12.5
    assert np.isnan(checked.matrix[1, 2])  # n/a: missing, and bytes is filled
