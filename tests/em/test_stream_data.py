"""ChunkedData: out-of-core fits equal the in-memory fit exactly (same chunks, float64)."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest
from _common import D, N, assert_same_fit, blobs, run

from latentmix.em._data import ArrayData, n_threads
from latentmix.em._stream import ChunkedData, as_chunked_source

STEP = 700  # rows per chunk on both sides of every comparison


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture(scope="module", params=[False, True], ids=["unweighted", "weighted"])
def case(request, data):
    X, w = data
    weighted = request.param
    ref = run(ArrayData(X, w if weighted else None, chunk_size=STEP), "full")
    return weighted, ref


def test_memmap_npy_is_exact(tmp_path, data, case):
    X, w = data
    weighted, ref = case
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "w.npy", w)
    source = ChunkedData.from_npy(
        tmp_path / "X.npy", (tmp_path / "w.npy") if weighted else None, chunk_size=STEP
    )
    assert (source.n_samples, source.n_features) == (N, D)
    assert_same_fit(run(source, "full"), ref, rtol=0)


def _frame(X, w):
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    frame.insert(1, "label", np.arange(len(X)) % 3)  # a column that is not a feature
    frame["weight"] = w
    return frame


def test_parquet_file_and_directory_are_exact(tmp_path, data, case):
    X, w = data
    weighted, ref = case
    frame = _frame(X, w)
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=STEP)
    folder = tmp_path / "parts"
    folder.mkdir()
    cut = 3 * STEP  # files end on chunk boundaries, so the chunks are ArrayData's
    frame.iloc[:cut].to_parquet(folder / "part-0.parquet", row_group_size=STEP)
    frame.iloc[cut:].to_parquet(folder / "part-1.parquet", row_group_size=STEP)
    for path in (tmp_path / "one.parquet", folder):
        source = ChunkedData.from_parquet(
            path,
            columns=["x0", "x1", "x2"],
            weight_column="weight" if weighted else None,
            batch_size=STEP,
        )
        assert (source.n_samples, source.n_features) == (N, D)
        assert_same_fit(run(source, "full"), ref, rtol=0)


def test_chunk_factory_is_exact(data, case):
    X, w = data
    weighted, ref = case

    def chunks():
        for start in range(0, N, STEP):
            part = slice(start, start + STEP)
            yield (X[part], w[part]) if weighted else X[part]

    assert_same_fit(run(ChunkedData.from_chunks(chunks), "full"), ref, rtol=0)


def test_memory_does_not_grow_with_the_number_of_chunks(data):
    X, _ = data
    alive = {"now": 0, "peak": 0}

    def release() -> None:
        alive["now"] -= 1

    def chunks():
        for start in range(0, N, 100):  # 50 chunks
            chunk = X[start : start + 100].copy()
            alive["now"] += 1
            alive["peak"] = max(alive["peak"], alive["now"])
            weakref.finalize(chunk, release)
            yield chunk
            del chunk

    source = ChunkedData.from_chunks(chunks)
    alive["peak"] = 0
    source.reduce(lambda Xc, w: float(Xc.sum()))
    # At most two chunks in flight per worker thread, plus the one being produced.
    assert alive["peak"] <= 2 * n_threads() + 2


def test_parquet_missing_column_is_named(tmp_path, data):
    X, w = data
    _frame(X, w).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"no column\(s\) \['x9'\].*'x0'"):
        ChunkedData.from_parquet(tmp_path / "d.parquet", columns=["x0", "x9"])
    with pytest.raises(ValueError, match="weight"):
        as_chunked_source(tmp_path / "d.parquet", w)


def test_factory_that_changes_between_passes(data):
    X, _ = data
    passes = {"n": 0}

    def chunks():
        passes["n"] += 1
        yield X[:100]
        yield X[100:200, : 2 if passes["n"] > 1 else 3]

    source = ChunkedData.from_chunks(chunks)
    with pytest.raises(ValueError, match="Chunk 1 has 2 columns, but the earlier chunks had 3"):
        source.reduce(lambda Xc, w: 0.0)

    rows = {"n": 0}

    def shrinking():
        rows["n"] += 1
        yield X[: 300 - 100 * rows["n"]]

    source = ChunkedData.from_chunks(shrinking)
    with pytest.raises(ValueError, match="yielded 100 rows, the first pass 200"):
        source.reduce(lambda Xc, w: 0.0)


def test_factory_must_be_re_iterable(data):
    X, _ = data
    with pytest.raises(TypeError, match="callable that returns a fresh iterator"):
        ChunkedData.from_chunks(iter([X]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no rows"):
        ChunkedData.from_chunks(lambda: iter([]))
    with pytest.raises(ValueError, match="lacks sample weights"):
        ChunkedData.from_chunks(lambda: iter([(X[:5], np.ones(5)), X[5:10]]))
