"""Score one table file, chunk by chunk, through the model's predictor: /predict's path for files.

Each chunk: check the feature columns (columns.py) -> predict the rows that passed -> write them
with every input column and the task's answer columns, and write the others to the rejects with
their row number and reason. Memory holds one chunk at a time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from lambda_app.batch.columns import TableSchemaError, check_rows, check_schema
from lambda_app.batch.formats import Format, TableReader, TableWriter, open_table
from lambda_app.errors import ExplanationUnavailableError, ModelOutputError
from lambda_app.explain.explainer import Explainer, explanation_column_names, explanation_columns
from lambda_app.model_store import LoadedModel
from lambda_app.preprocess import category_columns, unseen_by_row
from lambda_app.registry import FeatureSpec

VERSION_COLUMN = "model_version"
UNSEEN_COLUMN = "unseen"
"""Per scored row, its category fields whose value the model never saw (comma-separated; empty: none)."""
ROW_COLUMN = "row_number"
REASON_COLUMN = "reason"
CODE_COLUMN = "reason_code"
"""The rejected row's first problem as a code (lambda_app/row_rules.py, as /predict's ``errors[].code``).
Not ``code``: a column a user's table may well have, which would then clash with it."""
DEFAULT_CHUNK_ROWS = 100_000


class BatchTimeLimitError(RuntimeError):
    """The time left (a Lambda invocation's) ran out before the file was scored; nothing was written."""


@dataclass
class FileResult:
    """What scoring one file did."""

    rows: int = 0
    rejected: int = 0
    tally: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    separator: str = ","  # a CSV's, as read (and written)

    @property
    def scored(self) -> int:
        return self.rows - self.rejected


def answer_schema(model: LoadedModel, explain: int = 0) -> pa.Schema:
    """The columns scoring adds for this model, typed by scoring one row of zeros; a model with
    category features also says which of a row's categories it never saw (``unseen``); ``explain``
    K adds each row's explanation with its K largest contributions (explain_base, explain_value,
    explain_1_feature, explain_1_contribution, ..., explain_rest)."""
    probe = model.predictor.predict(np.zeros((1, len(model.manifest.features)), dtype=np.float64))
    fields = [pa.field(name, pa.array(values).type) for name, values in probe.columns().items()]
    if category_columns(model.manifest.features):
        fields.append(pa.field(UNSEEN_COLUMN, pa.string()))
    for name in explanation_column_names(explain) if explain else ():
        kind = pa.string() if name.endswith("_feature") else pa.float64()
        fields.append(pa.field(name, kind))
    return pa.schema([*fields, pa.field(VERSION_COLUMN, pa.string())])


def explainer_of(model: LoadedModel) -> Explainer:
    """The model's explainer for batch ``--explain``; ExplanationUnavailableError when it has none."""
    if model.explainer is None:
        raise ExplanationUnavailableError(f"model version {model.manifest.version} has no explanations")
    return model.explainer.get()


def score_file(
    source: Path,
    fmt: Format,
    output: Path,
    rejects: Path,
    model: LoadedModel,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    out_of_time: Callable[[], bool] | None = None,
    refuse_unseen: bool = False,
    explain: int = 0,
    separator: str | None = None,
    decimal: str = ".",
) -> FileResult:
    """Score ``source`` into ``output`` (always written, header only when nothing scored) and
    ``rejects`` (written only when some row was rejected). The caller owns both paths: on an
    exception it deletes whatever is there. ``refuse_unseen``: a category value the model never saw
    rejects its row (UNSEEN_CATEGORIES=refuse) instead of being scored and named in ``unseen``.
    ``explain`` K > 0: each scored row also gets its explanation's K largest contributions.
    ``separator``: a CSV's (None: a comma, or what its header shows); the outputs are written with
    it. ``decimal``: the decimal separator of its numbers (and of the numbers scoring adds to it).

    Raises:
        TableSchemaError, UnsupportedFormatError: the file cannot be scored by this model.
        ModelOutputError: the model produced a non-finite value.
        BatchTimeLimitError: ``out_of_time()`` said stop.
    """
    table = open_table(source, fmt, chunk_rows, separator)
    try:
        return _score_table(
            table, source, fmt, output, rejects, model, on_chunk, out_of_time, refuse_unseen, explain, decimal
        )
    finally:
        table.close()


def _score_table(
    table: TableReader,
    source: Path,
    fmt: Format,
    output: Path,
    rejects: Path,
    model: LoadedModel,
    on_chunk: Callable[[int], None] | None,
    out_of_time: Callable[[], bool] | None,
    refuse_unseen: bool = False,
    explain: int = 0,
    decimal: str = ".",
) -> FileResult:
    started = time.perf_counter()
    answer = answer_schema(model, explain)
    explainer = explainer_of(model) if explain else None
    features = model.manifest.features
    check_schema(table.schema, features, reserved=[*answer.names, ROW_COLUMN, REASON_COLUMN, CODE_COLUMN])
    version = model.manifest.version
    writer = TableWriter(output, fmt, pa.schema([*table.schema, *answer]), table.separator, decimal)
    reject_schema = pa.schema(
        [
            pa.field(ROW_COLUMN, pa.int64()),
            pa.field(REASON_COLUMN, pa.string()),
            pa.field(CODE_COLUMN, pa.string()),
            *table.schema,
        ]
    )
    reject_writer: TableWriter | None = None
    result = FileResult(separator=table.separator)
    try:
        for read in table.chunks:
            chunk = read.batch
            if out_of_time is not None and out_of_time():
                raise BatchTimeLimitError(f"{source.name}: stopped after {result.rows} rows, out of time")
            checked = check_rows(chunk, features, read.bad_text, refuse_unseen, decimal)
            if checked.matrix.shape[0]:
                prediction = model.predictor.predict(checked.matrix)
                if not prediction.finite():
                    raise ModelOutputError("the model produced a non-finite value; the file was not scored")
                kept = chunk if not checked.rejected else chunk.filter(pa.array(checked.accepted))
                answers = dict(prediction.columns())
                if UNSEEN_COLUMN in answer.names:
                    answers[UNSEEN_COLUMN] = _unseen_cells(checked.matrix, features)
                if explainer is not None:
                    predicted = answers["prediction"] if model.manifest.task == "classification" else None
                    encoded = model.predictor.encode(checked.matrix)
                    answers.update(explanation_columns(explainer, encoded, predicted, explain))
                columns = [*kept.columns, *_answer_columns(answers, answer, version)]
                writer.write(pa.RecordBatch.from_arrays(columns, schema=_output_schema(kept, answer)))
                result.tally.update(prediction.tally())
            if checked.rejected:
                if reject_writer is None:
                    reject_writer = TableWriter(rejects, fmt, reject_schema, table.separator)
                row_numbers = np.flatnonzero(~checked.accepted) + result.rows + 1
                refused = chunk.filter(pa.array(~checked.accepted))
                reject_writer.write(
                    pa.RecordBatch.from_arrays(
                        [
                            pa.array(row_numbers, pa.int64()),
                            pa.array(checked.reasons, pa.string()),
                            pa.array(checked.codes, pa.string()),
                            *refused.columns,
                        ],
                        schema=reject_schema,
                    )
                )
                result.rejected += checked.rejected
            result.rows += chunk.num_rows
            if on_chunk is not None:
                on_chunk(chunk.num_rows)
        writer.close()
        if reject_writer is not None:
            reject_writer.close()
    except BaseException:
        writer.abandon()
        if reject_writer is not None:
            reject_writer.abandon()
        raise
    result.seconds = time.perf_counter() - started
    return result


def _output_schema(kept: pa.RecordBatch, answer: pa.Schema) -> pa.Schema:
    return pa.schema([*kept.schema, *answer])


def _unseen_cells(matrix: np.ndarray, features: list[FeatureSpec]) -> list[str]:
    cells = [""] * len(matrix)
    for row, fields in unseen_by_row(matrix, features):
        cells[row] = ",".join(fields)
    return cells


def _answer_columns(columns: dict[str, object], answer: pa.Schema, version: str) -> list[pa.Array]:
    arrays = [pa.array(values, type=answer.field(name).type) for name, values in columns.items()]
    rows = len(arrays[0])
    return [*arrays, pa.array([version] * rows, pa.string())]


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "BatchTimeLimitError",
    "FileResult",
    "TableSchemaError",
    "answer_schema",
    "score_file",
]
