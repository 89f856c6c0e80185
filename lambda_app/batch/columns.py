"""Table columns -> the model's float matrix, with the reason for every row that cannot be scored.

The rules, codes and messages are /predict's (lambda_app/row_rules.py): finite numbers within the same
bound, whole numbers for integer features; each rejected row carries its first problem's code.
A CSV cell is a number when it is written as one (``12``, ``-3.5``,
``.5``, ``1e-3``); anything else (empty, ``NA``, ``nan``, ``1,5``) is a reason to set the row aside.
A boolean feature takes a bool column or ``true``/``false`` cells in any case, fed to the model as 1/0.
A category feature takes text (any value; an unseen one is scored as unseen), or whole numbers read
as their text (a port declared a category: 80 is "80", as in training). Where the model fills
missing values (its manifest says so per feature), an empty cell, a null, or a number column's
``NA``/``nan``/``null``... (lambda_app/preprocess.py: MISSING_WORDS) is missing: NaN in the served table.
Rows that break a rule go to the rejects with their reasons: never dropped silently, and never a
reason to stop scoring the rest of the chunk. Problems of a whole column (missing, or a type that
cannot hold numbers) are problems of the file: TableSchemaError.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lambda_app import row_rules
from lambda_app.batch.formats import is_text
from lambda_app.preprocess import MISSING_WORDS, UNSEEN
from lambda_app.registry import FeatureSpec
from lambda_app.row_rules import MAX_ABS_VALUE, Problem

NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
DECIMAL_COMMA_NUMBER_PATTERN = r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$"
"""A number as written where the decimal separator is a comma (``12,5``); a dot is not accepted
there (``1.250`` may mean 1250)."""
NON_FINITE_WORDS = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
MAX_QUOTED_VALUE = 40


class TableSchemaError(ValueError):
    """The file as a whole cannot be scored by this model (a missing or unusable column)."""


@dataclass(frozen=True)
class CheckedRows:
    """A chunk split into what can be scored and what cannot."""

    matrix: np.ndarray  # (accepted rows, n_features), float64, in the manifest's feature order
    accepted: np.ndarray  # bool mask over the chunk's rows
    reasons: list[str]  # one per rejected row, in row order
    codes: list[str]  # one per rejected row: its first problem's code (lambda_app/row_rules.py)

    @property
    def rejected(self) -> int:
        return len(self.reasons)


def check_schema(schema: pa.Schema, features: Sequence[FeatureSpec], reserved: Sequence[str]) -> None:
    """Refuse a file whose columns cannot feed the model, or would clash with the answer's columns."""
    names = list(schema.names)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise TableSchemaError(f"the input has duplicated column names: {', '.join(duplicated)}")
    missing = [spec.name for spec in features if spec.name not in names]
    if missing:
        hints = []
        for name in missing:
            guess = difflib.get_close_matches(name, names, n=1)
            hints.append(f"'{name}'" + (f" (is '{guess[0]}' it?)" if guess else ""))
        raise TableSchemaError(
            f"the input lacks the model's feature column(s) {', '.join(hints)}; found: {', '.join(names)}"
        )
    for spec in features:
        kind = schema.field(spec.name).type
        if spec.dtype == "boolean":
            if not (pa.types.is_boolean(kind) or is_text(kind) or pa.types.is_null(kind)):
                raise TableSchemaError(
                    f"column '{spec.name}' holds {kind} values; the model takes true/false"
                )
        elif spec.dtype == "category":
            if not (_is_text_or_dictionary(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
                raise TableSchemaError(
                    f"column '{spec.name}' holds {kind} values; the model takes text (categories)"
                )
        elif not _can_hold_numbers(kind):
            raise TableSchemaError(f"column '{spec.name}' holds {kind} values; the model takes numbers")
    clash = [name for name in reserved if name in names]
    if clash:
        raise TableSchemaError(
            f"the input already has column(s) {', '.join(clash)}, which scoring adds (is it a scored file?);"
            " rename them or score the original"
        )


def _is_text_or_dictionary(kind: pa.DataType) -> bool:
    return bool(is_text(kind) or (pa.types.is_dictionary(kind) and is_text(kind.value_type)))


def _can_hold_numbers(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or is_text(kind)
        or pa.types.is_null(kind)
    )


def check_rows(
    batch: pa.RecordBatch,
    features: Sequence[FeatureSpec],
    bad_text: Mapping[int, str] | None = None,
    refuse_unseen: bool = False,
    decimal: str = ".",
) -> CheckedRows:
    """The matrix of the rows every feature accepts, and a reason for each other row.

    ``bad_text``: rows already set aside while reading (a cell that is not UTF-8), with their reason.
    ``decimal``: the decimal separator of numbers written as text ("." or ",").
    """
    rows = batch.num_rows
    matrix = np.empty((rows, len(features)), dtype=np.float64)
    problems: list[tuple[np.ndarray, list[Problem]]] = []  # (bad mask, problem per bad row) per feature
    if bad_text:
        unreadable = np.zeros(rows, dtype=bool)
        unreadable[list(bad_text)] = True
        problems.append(
            (unreadable, [Problem(row_rules.UNREADABLE, bad_text[row]) for row in sorted(bad_text)])
        )
    for index, spec in enumerate(features):
        values, bad, found = _column(batch.column(spec.name), spec, refuse_unseen, decimal)
        matrix[:, index] = values
        if found:
            problems.append((bad, [Problem(p.code, f"field '{spec.name}': {p.message}") for p in found]))
    if not problems:
        return CheckedRows(matrix=matrix, accepted=np.ones(rows, dtype=bool), reasons=[], codes=[])
    rejected = np.zeros(rows, dtype=bool)
    for bad, _ in problems:
        rejected |= bad
    per_row: dict[int, list[Problem]] = {}
    for bad, found in problems:
        for row, problem in zip(np.flatnonzero(bad).tolist(), found, strict=True):
            per_row.setdefault(row, []).append(problem)
    return CheckedRows(
        matrix=matrix[~rejected],
        accepted=~rejected,
        reasons=["; ".join(p.message for p in per_row[row]) for row in sorted(per_row)],
        codes=[per_row[row][0].code for row in sorted(per_row)],
    )


def _boolean_column(column: pa.Array, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """A boolean feature as 1.0/0.0: a bool column, or text true/false in any case (CSV)."""
    if pa.types.is_boolean(column.type):
        missing = column.is_null().to_numpy(zero_copy_only=False)
        values = np.array(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.float64)
        return values, missing, [row_rules.MISSING_CELL] * int(missing.sum())
    if pa.types.is_null(column.type):
        return np.zeros(len(column)), np.ones(len(column), dtype=bool), [row_rules.MISSING_CELL] * len(column)
    lowered = pc.utf8_lower(column.fill_null(""))
    known = pc.is_in(lowered, value_set=pa.array(["true", "false"])).to_numpy(zero_copy_only=False)
    values = np.array(pc.equal(lowered, "true").to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = ~known
    reasons = []
    for row in np.flatnonzero(bad).tolist():
        cell = column[row].as_py()
        if cell is None or not cell.strip():
            reasons.append(row_rules.MISSING_CELL)
        else:
            reasons.append(row_rules.wrong_type(spec, _shown(cell)))
    values[bad] = 0.0
    return values, bad, reasons


def _category_column(
    column: pa.Array, spec: FeatureSpec, refuse_unseen: bool = False
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """A category feature as its values' indices (-1 unseen), NaN where a cell is empty or null.
    ``refuse_unseen`` (UNSEEN_CATEGORIES=refuse): an unseen value is a reason to set the row aside."""
    assert spec.categories is not None
    text = (
        column.cast(pa.string()) if not pa.types.is_null(column.type) else pa.nulls(len(column), pa.string())
    )
    missing = pc.or_kleene(text.is_null(), pc.equal(text, "")).fill_null(True).to_numpy(zero_copy_only=False)
    index = pc.index_in(text, value_set=pa.array(spec.categories, pa.string()))
    values = np.array(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.float64)
    values[missing] = np.nan
    bad = np.zeros(len(values), dtype=bool) if spec.takes_missing else missing.copy()
    unseen = (values == UNSEEN) if refuse_unseen else np.zeros(len(values), dtype=bool)
    if not bad.any() and not unseen.any():
        return values, bad, []
    reasons = []
    for row in np.flatnonzero(bad | unseen).tolist():
        if bad[row]:
            reasons.append(row_rules.MISSING_CELL)
        else:
            reasons.append(row_rules.unseen_category(spec, _shown(text[row].as_py())))
    bad = bad | unseen
    values[bad] = 0.0
    return values, bad, reasons


def _column(
    column: pa.Array, spec: FeatureSpec, refuse_unseen: bool = False, decimal: str = "."
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """One feature column in the served table, the mask of its bad rows, and the reason for each."""
    if spec.dtype == "category":
        return _category_column(column, spec, refuse_unseen)
    if spec.takes_missing:
        column = _nulls_for_missing_words(column)
    values, bad, reasons = (
        _boolean_column(column, spec) if spec.dtype == "boolean" else _number_column(column, spec, decimal)
    )
    if spec.takes_missing and bad.any():  # a missing value is filled or left to the model: not a reason
        missing = column.is_null().to_numpy(zero_copy_only=False)
        values[missing] = np.nan
        kept = [
            reason
            for row, reason in zip(np.flatnonzero(bad).tolist(), reasons, strict=True)
            if not missing[row]
        ]
        bad = bad & ~missing
        reasons = kept
    return values, bad, reasons


def _nulls_for_missing_words(column: pa.Array) -> pa.Array:
    """Text cells that say "missing" (empty, NA, nan, null...) as nulls, for a feature the model fills."""
    if not is_text(column.type):
        return column
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.if_else(
        pc.is_in(lowered, value_set=pa.array(sorted(MISSING_WORDS))), pa.scalar(None, column.type), column
    )


def _number_column(
    column: pa.Array, spec: FeatureSpec, decimal: str = "."
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    kind = column.type
    if is_text(kind):
        text = column.fill_null("")
        pattern = DECIMAL_COMMA_NUMBER_PATTERN if decimal == "," else NUMBER_PATTERN
        is_number = pc.match_substring_regex(text, pattern).to_numpy(zero_copy_only=False)
        numbers = pc.if_else(is_number, text, "0")
        if decimal == ",":
            numbers = pc.replace_substring(numbers, ",", ".")
        values = pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False)
        not_numbers = ~is_number
    else:
        missing = column.is_null().to_numpy(zero_copy_only=False)
        too_large = _integers_out_of_range(column)
        if too_large is not None:  # beyond 2**53 a cast to float64 fails (or rounds): set aside first
            column = pc.if_else(pa.array(too_large), pa.scalar(0, column.type), column)
        values = pc.cast(column, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        not_numbers = missing
        text = None
    values = np.array(values, dtype=np.float64)  # writable, owned
    with np.errstate(invalid="ignore"):
        non_finite = ~np.isfinite(values)
        out_of_range = np.abs(values) > MAX_ABS_VALUE
        if not is_text(kind) and too_large is not None:
            out_of_range |= too_large
        fractional = np.zeros_like(non_finite) if spec.dtype != "integer" else values != np.floor(values)
    bad = not_numbers | non_finite | out_of_range | fractional
    if not bad.any():
        return values, bad, []
    reasons = []
    for row in np.flatnonzero(bad).tolist():
        if not_numbers[row]:
            reasons.append(_not_a_number(None if text is None else text[row].as_py(), spec))
        elif non_finite[row]:
            reasons.append(row_rules.NOT_FINITE_PROBLEM)
        elif out_of_range[row]:
            reasons.append(row_rules.OUT_OF_RANGE_PROBLEM)
        else:
            reasons.append(row_rules.NOT_INTEGER_PROBLEM)
    values[bad] = 0.0
    return values, bad, reasons


def _integers_out_of_range(column: pa.Array) -> np.ndarray | None:
    """For an integer column, the mask of values beyond the service's bound (None otherwise)."""
    if not pa.types.is_integer(column.type):
        return None
    bound = int(MAX_ABS_VALUE)
    over = pc.greater(
        column, pa.scalar(bound, pa.uint64() if pa.types.is_unsigned_integer(column.type) else pa.int64())
    )
    if not pa.types.is_unsigned_integer(column.type):
        over = pc.or_(over, pc.less(column, pa.scalar(-bound, pa.int64())))
    return np.asarray(over.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _not_a_number(cell: str | None, spec: FeatureSpec) -> Problem:
    if cell is None or not cell.strip():
        return row_rules.MISSING_CELL
    if cell.strip().lower() in NON_FINITE_WORDS:
        return row_rules.NOT_FINITE_PROBLEM
    return row_rules.wrong_type(spec, _shown(cell))


def _shown(cell: str) -> str:
    """A cell quoted for a reason, cut to MAX_QUOTED_VALUE characters."""
    return repr(cell if len(cell) <= MAX_QUOTED_VALUE else cell[:MAX_QUOTED_VALUE] + "...")
