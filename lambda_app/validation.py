"""Request bodies -> the served table (float64, the manifest's feature order), or a clear 4xx.

Numbers as sent, booleans as 1/0, categories as their index (lambda_app/preprocess.py), null as
NaN where the model takes missing values (filled, or left to its trees).

Written by hand rather than as a pydantic model per row: the schema comes from the
manifest at run time, rows are checked straight into a numpy array (no object per row),
and every problem is reported with its row index and field name without echoing values
that JSON cannot represent.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import operator
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from lambda_app import row_rules
from lambda_app.errors import ErrorDetail, InvalidInputError, MalformedBodyError, TooManyRecordsError
from lambda_app.preprocess import UNSEEN, category_index, needs_encoding
from lambda_app.registry import FeatureSpec
from lambda_app.row_rules import MAX_ABS_VALUE, json_kind, more_problems

__all__ = [
    "MAX_ABS_VALUE",
    "columns_to_matrix",
    "parse_body",
    "records_to_matrix",
    "records_to_partial_matrix",
]

MAX_REPORTED_ERRORS = 20

MAX_NESTING_DEPTH = 32
"""Arrays and objects a body may nest. A request is at most an array of records of scalars (2 levels);
richer request formats nest about 4. The bound keeps every recursive walk of a parsed body (the
standard library's parser among them) far from Python's recursion limit."""


def parse_body(body: bytes) -> Any:
    """Parse JSON; raises MalformedBodyError when the body is not JSON at all, or nests too deep.

    orjson is strict (RFC 8259: UTF-8 only, no NaN/Infinity, no lone surrogates) and parses without
    Python recursion. When it refuses a body, the standard library gets a second look, and its result
    is kept only when the one thing wrong was a non-finite number (NaN, Infinity, 1e999): the caller
    can then name the row and field holding it. Anything else stays a 400. That second look recurses,
    so the nesting depth is measured on the raw bytes first; a body orjson accepts never pays for it.
    """
    if not body.strip():
        raise MalformedBodyError("request body is empty: send a JSON object or array of objects")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        strict_error = str(exc)
    depth = nesting_depth(body)
    if depth > MAX_NESTING_DEPTH:
        raise MalformedBodyError(
            f"request body nests {depth} levels deep; at most {MAX_NESTING_DEPTH} are accepted"
            " (one record, or an array of records)"
        )
    non_finite: list[str] = []

    def constant(token: str) -> float:
        non_finite.append(token)
        return float(token.replace("Infinity", "inf"))

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            non_finite.append(token)
        return value

    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=constant, parse_float=number)
    except ValueError:  # not JSON, or not UTF-8
        payload = None
    if not non_finite or _has_surrogate(payload):
        raise MalformedBodyError(f"request body is not valid JSON: {strict_error}")
    return payload


# A string literal, escapes included; one left open runs to the end of the body, as a tokenizer
# would read it. The closing quote is optional so that no match ever backtracks: linear on any input.
_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NESTING_STEP = np.zeros(256, dtype=np.int8)
_NESTING_STEP[list(b"[{")] = 1
_NESTING_STEP[list(b"]}")] = -1


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in raw JSON text, without parsing it: no recursion, any size.

    Brackets inside string literals are text, so the literals are dropped first; the depth is then
    the highest running sum of +1 per opening and -1 per closing bracket.
    """
    structure = np.frombuffer(_STRING_LITERAL.sub(b"", body), dtype=np.uint8)
    return int(np.cumsum(_NESTING_STEP[structure], dtype=np.int64).max(initial=0))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    """True when any string in ``value`` holds a lone UTF-16 surrogate (invalid in UTF-8).

    A loop over a stack, not recursion: the walk's depth is the body's, not the interpreter's.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _served_value(value: Any, spec: FeatureSpec) -> float:
    """One accepted value in the served table (see lambda_app/preprocess.py)."""
    if value is None:
        return math.nan
    if spec.dtype == "category":
        return category_index(spec).get(value, UNSEEN)
    return float(value)


def records_to_matrix(payload: Any, features: Sequence[FeatureSpec], max_rows: int) -> np.ndarray:
    """Validate one record or an array of records; return an (n_rows, n_features) array.

    A vectorised fast path accepts well-formed batches (the common case) in a few C-level
    passes; anything it doubts goes through the row-by-row check, which names every problem.

    Raises:
        InvalidInputError: wrong shape, missing/unknown fields, wrong types, non-finite values.
        TooManyRecordsError: more than ``max_rows`` records (422, like any schema violation).
    """
    rows = _rows(payload, max_rows)
    matrix = _fast_matrix(rows, features)
    if matrix is not None:
        return matrix
    details: list[ErrorDetail] = []
    for index, row in enumerate(rows):
        if len(details) >= MAX_REPORTED_ERRORS:
            break
        details.extend(row_problems(index, row, features))
    if details:
        raise invalid_rows(details)
    # The fast path doubted a batch the row-by-row check accepts: build it the slow way.
    return _slow_matrix(rows, features)  # pragma: no cover


def records_to_partial_matrix(
    payload: Any, features: Sequence[FeatureSpec], max_rows: int
) -> tuple[np.ndarray, np.ndarray, list[ErrorDetail]]:
    """Per-row answers (``/predict?errors=per_row``): the table of the valid records, the mask of
    valid records over the request's, and every problem of the others (row and field named).

    The body's shape (an object or a non-empty array within the record limit) is still judged whole.
    """
    rows = _rows(payload, max_rows)
    matrix = _fast_matrix(rows, features)
    if matrix is not None:
        return matrix, np.ones(len(rows), dtype=bool), []
    accepted = np.ones(len(rows), dtype=bool)
    details: list[ErrorDetail] = []
    for index, row in enumerate(rows):
        problems = row_problems(index, row, features)
        if problems:
            accepted[index] = False
            details.extend(problems)
    valid = [row for row, ok in zip(rows, accepted.tolist(), strict=True) if ok]
    if not valid:
        return np.empty((0, len(features)), dtype=np.float64), accepted, details
    matrix = _fast_matrix(valid, features)
    return (matrix if matrix is not None else _slow_matrix(valid, features)), accepted, details


def invalid_rows(details: list[ErrorDetail]) -> InvalidInputError:
    """The 422 for rows that break the row rules: the first problem in the message, up to
    MAX_REPORTED_ERRORS in ``errors``."""
    first = details[0]
    where = f"row {first.row}" + (f", field '{first.field}'" if first.field else "")
    more = more_problems(len(details) - 1)
    return InvalidInputError(f"{where}: {first.message}{more}", details[:MAX_REPORTED_ERRORS])


def _rows(payload: Any, max_rows: int) -> list[Any]:
    """The records of a body, judged whole: an object or a non-empty array within the limit."""
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        raise InvalidInputError(
            f"body must be a JSON object (one record) or an array of records, got {json_kind(payload)}"
        )
    if not payload:
        raise InvalidInputError("body is an empty array: send at least one record")
    if len(payload) > max_rows:
        raise TooManyRecordsError(
            f"{len(payload)} records exceed the limit of {max_rows} records per request"
        )
    return payload


def _slow_matrix(rows: list[Any], features: Sequence[FeatureSpec]) -> np.ndarray:
    return np.array(
        [[_served_value(row[spec.name], spec) for spec in features] for row in rows], dtype=np.float64
    ).reshape(len(rows), len(features))


NUMBER_TYPES = frozenset({int, float})
BOOLEAN_TYPES = frozenset({bool})


def _fast_matrix(rows: list[Any], features: Sequence[FeatureSpec]) -> np.ndarray | None:
    """The matrix when every row is a dict of exactly the features with finite in-range numbers."""
    names = [spec.name for spec in features]
    getter = operator.itemgetter(*names)
    try:
        values = [getter(row) for row in rows]
        if sum(map(len, rows)) != len(rows) * len(names):  # an unknown field somewhere
            return None
    except (KeyError, TypeError, IndexError):
        return None
    if len(names) == 1:
        values = [(value,) for value in values]
    if needs_encoding(features):
        return _served_columns(values, features)
    # Exact types: bool is an int subclass, and JSON true/false must not pass as 1/0 for a number
    # (nor a number for a boolean feature, which takes only true/false and is fed as 1/0).
    booleans = [i for i, spec in enumerate(features) if spec.dtype == "boolean"]
    if not booleans:
        if not set(map(type, itertools.chain.from_iterable(values))) <= NUMBER_TYPES:
            return None
    else:
        for column, cells in enumerate(zip(*values, strict=True)):
            if not set(map(type, cells)) <= (BOOLEAN_TYPES if column in booleans else NUMBER_TYPES):
                return None
    try:
        matrix = np.array(values, dtype=np.float64)
    except (OverflowError, ValueError):
        return None
    if not np.isfinite(matrix).all() or (np.abs(matrix) > MAX_ABS_VALUE).any():
        return None
    for column, spec in enumerate(features):
        if spec.dtype == "integer" and not np.array_equal(matrix[:, column], np.floor(matrix[:, column])):
            return None
    return matrix


NULLABLE_NUMBER_TYPES = NUMBER_TYPES | {type(None)}
NULLABLE_BOOLEAN_TYPES = BOOLEAN_TYPES | {type(None)}
CATEGORY_TYPES = frozenset({str})


def _served_columns(values: list[Any], features: Sequence[FeatureSpec]) -> np.ndarray | None:
    """The served table of a model with categories or fills, column by column; None when in doubt."""
    return _columns_matrix(list(zip(*values, strict=True)), len(values), features)


def columns_to_matrix(columns: Sequence[Sequence[Any]], features: Sequence[FeatureSpec]) -> np.ndarray:
    """Columns of JSON values (one per feature, in the manifest's order, of equal length) -> the served
    table, by /predict's rules: a fast column-wise pass, else the row-by-row check naming each problem
    (``field`` is the feature's name). Used by the Open Inference Protocol's per-feature tensors.

    Raises:
        InvalidInputError: a value breaks the row rules (at most MAX_REPORTED_ERRORS reported).
    """
    rows = len(columns[0]) if columns else 0
    matrix = _columns_matrix(columns, rows, features)
    if matrix is not None:
        return matrix
    names = [spec.name for spec in features]
    records = [dict(zip(names, cells, strict=True)) for cells in zip(*columns, strict=True)]
    details: list[ErrorDetail] = []
    for index, record in enumerate(records):
        if len(details) >= MAX_REPORTED_ERRORS:
            break
        details.extend(row_problems(index, record, features))
    if details:
        raise invalid_rows(details)
    return _slow_matrix(records, features)  # pragma: no cover - the fast pass accepts what this does


def _columns_matrix(
    columns: Sequence[Sequence[Any]], rows: int, features: Sequence[FeatureSpec]
) -> np.ndarray | None:
    matrix = np.empty((rows, len(features)), dtype=np.float64)
    for column, (spec, cells) in enumerate(zip(features, columns, strict=True)):
        kinds = set(map(type, cells))
        nullable = spec.takes_missing
        if spec.dtype == "category":
            if not kinds <= (CATEGORY_TYPES | {type(None)} if nullable else CATEGORY_TYPES):
                return None
            index = category_index(spec)
            matrix[:, column] = [math.nan if cell is None else index.get(cell, UNSEEN) for cell in cells]
            continue
        if spec.dtype == "boolean":
            allowed = NULLABLE_BOOLEAN_TYPES if nullable else BOOLEAN_TYPES
        else:
            allowed = NULLABLE_NUMBER_TYPES if nullable else NUMBER_TYPES
        if not kinds <= allowed:
            return None
        try:
            numbers = np.array(cells, dtype=np.float64)  # None -> NaN
        except (OverflowError, ValueError):
            return None
        # Only null is missing: a NaN sent as a number is refused row by row like any non-finite value.
        present = numbers[np.array([cell is not None for cell in cells])] if type(None) in kinds else numbers
        if not np.isfinite(present).all() or (np.abs(present) > MAX_ABS_VALUE).any():
            return None
        if spec.dtype == "integer" and not np.array_equal(present, np.floor(present)):
            return None
        matrix[:, column] = numbers
    return matrix


def row_problems(index: int, row: Any, features: Sequence[FeatureSpec]) -> list[ErrorDetail]:
    """Every problem of one record, by the row rules (lambda_app/row_rules.py), row and field named."""
    if not isinstance(row, dict):
        problem = row_rules.not_a_record(json_kind(row))
        return [ErrorDetail(problem.message, row=index, code=problem.code)]
    names = [spec.name for spec in features]
    details: list[ErrorDetail] = []
    # Unknown fields first: a typo ("tow") is the cause, the missing field ("two") its consequence.
    if len(row) != len(names) or row.keys() != set(names):
        missing = [name for name in names if name not in row]
        for key in row:
            if key not in names:
                guess = difflib.get_close_matches(str(key), missing, n=1)
                problem = row_rules.unknown_field(names, guess[0] if guess else None)
                details.append(ErrorDetail(problem.message, row=index, field=key[:100], code=problem.code))
    for spec in features:
        if spec.name not in row:
            problem = row_rules.MISSING_FIELD_PROBLEM
        else:
            found = row_rules.check_json_value(row[spec.name], spec)
            if found is None:
                continue
            problem = found
        details.append(ErrorDetail(problem.message, row=index, field=spec.name, code=problem.code))
    return details
