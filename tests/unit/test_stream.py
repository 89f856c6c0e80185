"""Reading a file in chunks into a bounded sample (training/data/stream.py): the same dataset as one frame
when the file fits the sample, a seeded uniform sample when it does not, every row validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data.stream import Reservoir, load_dataset
from training.data.synthetic import generate
from training.data.validate import validate
from training.exceptions import DataValidationError

ROWS = 1050


def flows(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = generate(ROWS, seed=2, mixed=True)
    frame.loc[frame.index[-3:], "protocol"] = "gre"  # a category only the last chunk has
    path = tmp_path / "flows.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_a_file_that_fits_the_sample_reads_in_chunks_exactly_as_one_frame(tmp_path: Path) -> None:
    path, _ = flows(tmp_path)
    whole = validate(pd.read_csv(path, dtype=str, keep_default_na=False), "auto", "label", "f", "0" * 64)
    chunked = load_dataset(str(path), "auto", "label", chunk_rows=100, sample_rows=10_000)
    assert chunked.feature_names == whole.feature_names
    assert chunked.feature_dtypes == whole.feature_dtypes
    assert chunked.categories == whole.categories == {"protocol": ["gre", "icmp", "tcp", "udp"]}
    np.testing.assert_array_equal(chunked.features, whole.features)
    assert chunked.labels is not None
    assert whole.labels is not None
    assert chunked.labels.tolist() == whole.labels.tolist()
    assert chunked.file_rows == ROWS
    assert not chunked.sampled
    assert chunked.file_missing == {"bytes": int(np.isnan(whole.features[:, 5]).sum())}


def test_a_larger_file_becomes_a_seeded_uniform_sample_in_file_order(tmp_path: Path) -> None:
    path, _ = flows(tmp_path)
    first = load_dataset(str(path), "auto", "label", chunk_rows=100, sample_rows=300, seed=4)
    again = load_dataset(str(path), "auto", "label", chunk_rows=100, sample_rows=300, seed=4)
    other = load_dataset(str(path), "auto", "label", chunk_rows=100, sample_rows=300, seed=5)
    assert first.rows == 300
    assert first.file_rows == ROWS
    assert first.sampled
    np.testing.assert_array_equal(first.features, again.features)  # same seed, same sample
    assert not np.array_equal(first.features, other.features)
    # the known values and the missing counts come from the whole file, not the sample
    assert first.categories["protocol"] == ["gre", "icmp", "tcp", "udp"]
    assert first.file_missing["bytes"] > np.isnan(first.features[:, 5]).sum()


def test_the_reservoir_keeps_every_row_with_the_same_chance() -> None:
    counts = np.zeros(50)
    for seed in range(400):
        reservoir = Reservoir(capacity=10, seed=seed)
        for start in range(0, 50, 7):  # uneven chunks
            rows = np.arange(start, min(start + 7, 50), dtype=np.float64)[:, None]
            reservoir.offer(rows, None)
        sample, _ = reservoir.result()
        assert sample[:, 0].tolist() == sorted(set(sample[:, 0].tolist()))  # distinct, in file order
        counts[sample[:, 0].astype(int)] += 1
    shares = counts / 400  # each row's chance is 10/50
    assert np.abs(shares - 0.2).max() < 0.08
    assert abs(shares[:10].mean() - shares[40:].mean()) < 0.05  # no bias to the rows that filled it first


def test_an_error_in_a_late_chunk_names_the_files_row(tmp_path: Path) -> None:
    path, frame = flows(tmp_path)
    bad = frame.astype({"two": object})
    bad.loc[949, "two"] = "oops"
    bad.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"column 'two', row 950: non-numeric value 'oops'"):
        load_dataset(str(path), "auto", "label", chunk_rows=100)


def test_a_number_is_an_integer_only_when_declared_and_then_checked_over_the_whole_file(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame({"a": [1.0] * 150 + [2.5] * 150, "b": np.arange(300) % 7, "label": [0, 1] * 150})
    frame.to_csv(tmp_path / "t.csv", index=False)
    dataset = load_dataset(str(tmp_path / "t.csv"), ["a", "b"], "label", chunk_rows=100)
    assert dataset.feature_dtypes == ["number", "number"]  # whole values in a file make no integer
    declared = load_dataset(
        str(tmp_path / "t.csv"), ["a", "b"], "label", chunk_rows=100, types={"b": "integer"}
    )
    assert declared.feature_dtypes == ["number", "integer"]
    with pytest.raises(DataValidationError, match=r"column 'a', row 151: 2.5 is not an integer"):
        load_dataset(str(tmp_path / "t.csv"), ["a", "b"], "label", chunk_rows=100, types={"a": "integer"})


def test_the_category_cap_holds_over_the_whole_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"p": ["a", "b"] * 100 + ["c", "d"] * 50, "x": np.arange(300) % 5, "label": [0, 1] * 150}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match="column 'p': 4 distinct values in the file, more than"):
        load_dataset(str(tmp_path / "t.csv"), ["p", "x"], "label", chunk_rows=100, max_categories=3)


def test_parquet_is_read_by_row_groups_too(tmp_path: Path) -> None:
    path, frame = flows(tmp_path)
    frame.to_parquet(tmp_path / "flows.parquet", index=False, row_group_size=100)
    from_csv = load_dataset(str(path), "auto", "label", chunk_rows=100)
    from_parquet = load_dataset(str(tmp_path / "flows.parquet"), "auto", "label", chunk_rows=100)
    np.testing.assert_array_equal(from_csv.features, from_parquet.features)
    assert from_parquet.feature_dtypes == from_csv.feature_dtypes


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 1] * 40 + [1] * 20),
        np.array(["normal", "rare_port", "out_of_range", "inverted", "normal"] * 20, dtype=object),
        np.array([10, 2, 2, 10, 33] * 20),  # as text, "10" sorts before "2": the order must follow the text
    ],
)
def test_class_codes_number_classes_as_their_text_sorts(labels: np.ndarray) -> None:
    """Splits stratified on the codes are the splits stratified on the labels' text (the old way,
    which copied every label as text: 240 MB of peak memory at a million rows)."""
    from sklearn.model_selection import train_test_split

    from training.data.labels import class_codes

    codes = class_codes(labels)
    text = labels.astype(str)
    assert [sorted(set(text[codes == c])) for c in range(codes.max() + 1)] == [[t] for t in sorted(set(text))]
    rows = np.arange(len(labels))
    assert np.array_equal(
        train_test_split(rows, test_size=0.2, random_state=3, stratify=codes)[1],
        train_test_split(rows, test_size=0.2, random_state=3, stratify=text)[1],
    )


def test_a_feature_missing_only_outside_the_sample_still_gets_a_fill(tmp_path: Path) -> None:
    from sklearn.ensemble import IsolationForest

    from training.estimators.preprocess import fit_preprocessing

    frame = pd.DataFrame({"a": np.arange(400) % 9 + 0.5, "b": np.arange(400) % 5, "label": [0, 1] * 200})
    frame.loc[399, "a"] = np.nan  # the last row only
    frame.to_csv(tmp_path / "t.csv", index=False)
    dataset = load_dataset(
        str(tmp_path / "t.csv"), ["a", "b"], "label", chunk_rows=100, sample_rows=100, seed=2
    )
    assert dataset.file_missing == {"a": 1}
    assert not np.isnan(dataset.features).any()  # the sample missed it
    specs = fit_preprocessing(dataset, np.arange(dataset.rows), IsolationForest()).specs
    assert specs[0].fill is not None  # null is accepted for 'a' at serving, served as the median
    assert specs[1].fill is None


def test_utf8_with_or_without_a_bom_reads_alike_and_other_encodings_are_named(tmp_path: Path) -> None:
    path, _ = flows(tmp_path)
    plain = load_dataset(str(path), "auto", "label", chunk_rows=100, sample_rows=10_000)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with_bom = load_dataset(str(bom), "auto", "label", chunk_rows=100, sample_rows=10_000)
    assert with_bom.feature_names == plain.feature_names
    np.testing.assert_array_equal(with_bom.features, plain.features)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(path.read_bytes().replace(b"tcp", b"tc\xe9", 1))
    with pytest.raises(DataValidationError, match=r"not UTF-8 text \(byte 0xe9\); save it as UTF-8"):
        load_dataset(str(latin), "auto", "label", chunk_rows=100, sample_rows=10_000)
