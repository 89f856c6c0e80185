"""Read a training file of any size in chunks, validate every row, keep a bounded seeded sample.

Memory must not grow with the file (a month of flows is 100M rows): the file is read in chunks of
CHUNK_ROWS (CSV through pandas, Parquet by row groups), each chunk is validated exactly as a whole
frame would be (training/data/validate.py: every row, errors naming the file's row), turned into the served
table, and offered to a reservoir sample (Vitter's algorithm R, vectorised per chunk, seeded) of at
most ``sample_rows`` rows. A file with no more rows than that is kept whole, in file order, so small
data trains exactly as before. What the first chunk shows decides the features (``auto``) and their
types; a category's known values are collected over every chunk; missing values are counted over the
whole file, so a feature missing anywhere gets a fill.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lambda_app.registry import FeatureSpec
from training.data.read import csv_separator, local_copy, sha256_file, unsupported_format
from training.data.validate import (
    Dataset,
    FeatureColumn,
    LabelParser,
    _described,
    anomaly_labels,
    refuse_constant,
    row_number,
    validate,
)
from training.exceptions import DataValidationError

log = logging.getLogger("training")

CHUNK_ROWS = 250_000
DEFAULT_SAMPLE_ROWS = 1_000_000


def iter_frames(
    path: Path, uri: str, chunk_rows: int = CHUNK_ROWS, separator: str | None = None, decimal: str = "."
) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks, each indexed by its rows' place in the file (0-based); a CSV's
    ``separator`` as declared, else found by ``csv_separator``; with ``decimal`` ",", its numbers
    written with a decimal comma read as numbers."""
    name = uri.lower()
    start = 0
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:
                if parquet.metadata.num_rows == 0:
                    yield parquet.schema_arrow.empty_table().to_pandas()
                    return
                for batch in parquet.iter_batches(batch_size=chunk_rows):
                    frame = batch.to_pandas()
                    frame.index = pd.RangeIndex(start, start + len(frame))
                    start += len(frame)
                    yield frame
            return
        if name.endswith((".csv", ".csv.gz")):
            sep = csv_separator(path, uri, separator)
            with pd.read_csv(path, chunksize=chunk_rows, dtype=str, keep_default_na=False, sep=sep) as reader:
                for frame in reader:
                    frame.index = pd.RangeIndex(start, start + len(frame))
                    start += len(frame)
                    yield decimal_commas_read(frame, uri) if decimal == "," else frame
            return
    except pd.errors.EmptyDataError:
        yield pd.DataFrame()
        return
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"cannot parse {uri}: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"cannot parse {uri}: {str(exc).splitlines()[0]}") from exc
    raise unsupported_format(uri)


DECIMAL_COMMA_NUMBER = r"\s*[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?\s*"
DOTTED_NUMBER = r"\s*[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?\s*"


def decimal_commas_read(frame: pd.DataFrame, uri: str) -> pd.DataFrame:
    """Cells that are numbers written with a decimal comma (``12,5``) in the form every reader
    parses (``12.5``). A number written with a dot is refused: where the comma is the decimal
    separator, ``1.250`` is likely 1250 with a thousands separator, and guessing would invent a value.
    """
    for column in frame.columns:
        cells = frame[column]
        dotted = cells.str.fullmatch(DOTTED_NUMBER)
        if dotted.any():
            position = int(dotted.to_numpy().nonzero()[0][0])
            raise DataValidationError(
                f"{uri}: column '{column}', row {row_number(cells, position)}: {cells.iloc[position]!r} is a"
                ' number written with a dot, but [data] decimal = ",": remove thousands separators from the'
                ' export, or set decimal = "." if the dot is the decimal separator'
            )
        commas = cells.str.fullmatch(DECIMAL_COMMA_NUMBER)
        if commas.any():
            frame[column] = cells.where(~commas, cells.str.replace(",", ".", regex=False))
    return frame


@dataclass
class Reservoir:
    """A uniform sample of at most ``capacity`` rows of everything offered, reproducible from ``seed``."""

    capacity: int
    seed: int
    seen: int = 0
    rows: np.ndarray | None = None  # the sampled rows' places in the file
    features: np.ndarray | None = None
    labels: np.ndarray | None = None
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def offer(self, features: np.ndarray, labels: np.ndarray | None) -> None:
        n = len(features)
        places = np.arange(self.seen, self.seen + n)
        if self.features is None:
            self.features = np.empty((self.capacity, features.shape[1]), dtype=np.float64)
            self.rows = np.empty(self.capacity, dtype=np.int64)
            if labels is not None:
                self.labels = np.empty(self.capacity, dtype=labels.dtype)
        assert self.rows is not None
        free = max(0, min(n, self.capacity - self.seen))  # the first rows fill the reservoir
        if free:
            self._put(slice(self.seen, self.seen + free), slice(0, free), features, labels, places)
        rest = np.arange(free, n)
        if len(rest):
            # Row i (0-based in the file) replaces a random slot with probability capacity / (i + 1);
            # in file order, so a later row wins a slot two rows draw, as one row at a time would.
            draws = self._rng.integers(0, places[rest] + 1)
            keep = draws < self.capacity
            self._put(draws[keep], rest[keep], features, labels, places)
        self.seen += n

    def _put(
        self, slots: Any, take: Any, features: np.ndarray, labels: np.ndarray | None, places: np.ndarray
    ) -> None:
        assert self.features is not None
        assert self.rows is not None
        self.features[slots] = features[take]
        self.rows[slots] = places[take]
        if self.labels is not None and labels is not None:
            if self.labels.dtype != labels.dtype and self.labels.dtype != object:
                self.labels = self.labels.astype(object)
            self.labels[slots] = labels[take]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The sample in file order."""
        kept = min(self.seen, self.capacity)
        assert self.features is not None
        assert self.rows is not None
        order = np.argsort(self.rows[:kept], kind="stable")
        labels = None if self.labels is None else self.labels[:kept][order]
        return self.features[:kept][order], labels


@dataclass
class _Categories:
    """A category feature's values across chunks: each chunk's codes mapped to one vocabulary."""

    values: dict[str, int] = field(default_factory=dict)

    def merge(self, codes: np.ndarray, chunk_values: list[str]) -> np.ndarray:
        lookup = np.array(
            [self.values.setdefault(v, len(self.values)) for v in chunk_values], dtype=np.float64
        )
        merged = np.full(len(codes), np.nan)
        present = ~np.isnan(codes)
        merged[present] = lookup[codes[present].astype(np.int64)]
        return merged

    def sorted(self) -> tuple[list[str], np.ndarray]:
        """The values sorted (as a whole frame would list them) and each merged code's new code."""
        ordered = sorted(self.values)
        remap = np.empty(len(ordered), dtype=np.float64)
        for position, value in enumerate(ordered):
            remap[self.values[value]] = position
        return ordered, remap


def _chunk_min_rows(first: bool, rows: int, chunk_rows: int, min_rows: int) -> int:
    """The row minimum a chunk is held to: a file that is one chunk is judged on its row count first,
    as a whole frame is; a larger file's is checked once every row is read."""
    if not first:
        return 0
    return min_rows if rows < chunk_rows else 1


def load_dataset(
    uri: str,
    features: Sequence[str] | Literal["auto"],
    label: str | None,
    *,
    s3_client: Any = None,
    labels_of: LabelParser = anomaly_labels,
    exclude: Sequence[str] = (),
    label_required: bool = False,
    min_rows: int = 1,
    missing: str = "impute",
    max_categories: int = 1000,
    types: dict[str, str] | None = None,
    specs: Sequence[FeatureSpec] | None = None,
    constant_ok: bool = False,
    sample_rows: int | None = None,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    separator: str | None = None,
    decimal: str = ".",
) -> Dataset:
    """Read ``uri`` (local path or s3://, CSV or Parquet) and validate it chunk by chunk into a Dataset
    of at most ``sample_rows`` rows (default 1,000,000; see the module)."""
    started = time.perf_counter()
    sample_rows = sample_rows or DEFAULT_SAMPLE_ROWS
    with local_copy(uri, s3_client) as path:
        sha256 = sha256_file(path)
        reservoir = Reservoir(sample_rows, seed)
        first: Dataset | None = None
        merged: dict[str, _Categories] = {}
        missing_counts: np.ndarray | None = None
        chunk_label = label
        declared = dict(types or {})
        from tqdm import tqdm

        progress = tqdm(desc="reading", unit=" rows", disable=None, leave=False)
        for frame in iter_frames(path, uri, chunk_rows, separator, decimal):
            if first is not None and frame.empty:
                continue
            part = validate(
                frame,
                features if first is None else first.feature_names,
                chunk_label,
                uri,
                sha256,
                labels_of,
                exclude=exclude,
                label_required=label_required,
                min_rows=_chunk_min_rows(first is None, len(frame), chunk_rows, min_rows),
                missing=missing,
                max_categories=max_categories,
                types=declared,
                specs=specs,
                constant_ok=True,
                log_types=False,
            )
            table = part.features
            if first is None:
                first = part
                if label is not None and part.labels is None:
                    chunk_label = None  # said once (or refused) by the first chunk
                # Later chunks keep the first chunk's types (an integer only where declared).
                for name, dtype in zip(part.feature_names, part.feature_dtypes, strict=True):
                    declared.setdefault(name, dtype)
                merged = {name: _Categories() for name in part.categories} if specs is None else {}
                missing_counts = np.zeros(table.shape[1], dtype=np.int64)
            assert missing_counts is not None
            if merged:
                table = table.copy()
                for index, name in enumerate(part.feature_names):
                    if name in merged:
                        table[:, index] = merged[name].merge(table[:, index], part.categories[name])
            missing_counts += np.isnan(table).sum(axis=0)
            reservoir.offer(table, part.labels)
            progress.update(len(table))
        progress.close()
    if first is None or reservoir.seen == 0:
        raise DataValidationError(f"{uri}: no data rows")
    if reservoir.seen < min_rows:
        raise DataValidationError(f"{uri}: {reservoir.seen} rows; training needs at least {min_rows}")
    sample, labels = reservoir.result()
    categories = dict(first.categories)
    for index, name in enumerate(first.feature_names):
        if name not in merged:
            continue
        values, remap = merged[name].sorted()
        if len(values) > max_categories:
            raise DataValidationError(
                f"column '{name}': {len(values)} distinct values in the file, more than [data]"
                f" max_categories = {max_categories}: free text or an id cannot be a category;"
                " exclude it or raise the cap"
            )
        present = ~np.isnan(sample[:, index])
        sample[present, index] = remap[sample[present, index].astype(np.int64)]
        categories[name] = values
    assert missing_counts is not None
    columns = [
        FeatureColumn(sample[:, i], dtype, categories.get(name))
        for i, (name, dtype) in enumerate(zip(first.feature_names, first.feature_dtypes, strict=True))
    ]
    if specs is None and not constant_ok:
        for name, column in zip(first.feature_names, columns, strict=True):
            refuse_constant(column, name)
    dataset = replace(
        first,
        features=sample,
        feature_dtypes=list(first.feature_dtypes),
        labels=labels,
        categories=categories,
        file_rows=reservoir.seen,
        sample_seed=seed,
        file_missing={n: int(c) for n, c in zip(first.feature_names, missing_counts, strict=True) if c},
    )
    seconds = time.perf_counter() - started
    if dataset.sampled:
        log.info(
            "read %d rows from %s in %.1fs (%.0f rows/s); training on a uniform sample of %d (seed %d)",
            reservoir.seen,
            uri,
            seconds,
            reservoir.seen / max(seconds, 1e-9),
            dataset.rows,
            seed,
        )
    else:
        log.info(
            "read %d rows from %s in %.1fs (%.0f rows/s)",
            reservoir.seen,
            uri,
            seconds,
            reservoir.seen / max(seconds, 1e-9),
        )
    if specs is None:
        log.info(
            "feature types: %s",
            "; ".join(_described(n, c) for n, c in zip(first.feature_names, columns, strict=True)),
        )
    return dataset
