"""Published Parquet bytes depend on the values only, however the frame is chunked in memory."""

from __future__ import annotations

import io
import itertools

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.publish.parquet import canonical_chunks, quick_to_write

_EVIDENCE = st.lists(st.sampled_from(["id", "name", "household", "name_pinyin", "county"]), max_size=4)


def _bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, statistics=True)
    return buffer.getvalue()


def _chunked(frame: pl.DataFrame, cuts: list[int]) -> pl.DataFrame:
    bounds = sorted({0, frame.height, *(cut % (frame.height + 1) for cut in cuts)})
    return pl.concat([frame.slice(start, end - start) for start, end in itertools.pairwise(bounds)], rechunk=False)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.text(max_size=3), _EVIDENCE), min_size=1, max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=6), chunk_rows=st.integers(1, 20))
def test_the_canonical_layout_keeps_the_values_and_depends_on_the_row_count_only(
        rows: list[tuple[str, list[str]]], cuts: list[int], chunk_rows: int) -> None:
    frame = pl.DataFrame({"key": [key for key, _ in rows], "evidence": [evidence for _, evidence in rows]},
                         schema={"key": pl.String, "evidence": pl.List(pl.String)})
    whole = canonical_chunks(frame, rows=chunk_rows)
    assert whole.equals(frame)
    again = canonical_chunks(_chunked(frame, cuts), rows=chunk_rows)
    assert again.equals(frame)
    assert [again.get_column(c).chunk_lengths() for c in again.columns] == \
        [whole.get_column(c).chunk_lengths() for c in whole.columns]


def test_a_province_sized_frame_chunked_two_ways_is_published_as_the_same_bytes() -> None:
    """Polars sizes row groups from a frame's chunks once it has about a million rows: written as they are, two
    chunkings of the same values give two files."""
    rows = 1_200_000
    index = pl.int_range(rows, eager=True)
    frame = pl.DataFrame({"key": index.cast(pl.String),
                          "evidence": pl.Series([["id"], [], ["id", "name"]]).gather(index % 3)})
    one_way, other_way = _chunked(frame, [700_000]), _chunked(frame, [50_000])
    assert _bytes(one_way) != _bytes(other_way)
    assert _bytes(canonical_chunks(one_way)) == _bytes(canonical_chunks(other_way))


def test_a_flat_frame_is_one_chunk_and_a_long_list_frame_is_in_row_sized_chunks() -> None:
    flat = pl.concat([pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [3]})], rechunk=False)
    assert canonical_chunks(flat, rows=1).n_chunks() == 1
    lists = pl.DataFrame({"a": [[1], [2], [3], [4], [5]]})
    assert canonical_chunks(lists, rows=2).get_column("a").chunk_lengths() == [2, 2, 1]


def test_the_cache_copies_only_a_full_list_column_in_a_long_chunk() -> None:
    flat = pl.concat([pl.DataFrame({"a": [1, 2, 3]}), pl.DataFrame({"a": [4]})], rechunk=False)
    assert quick_to_write(flat, rows=1).get_column("a").chunk_lengths() == [3, 1]  # as it was: not copied
    lists = pl.DataFrame({"a": [[1], [2], [3]], "b": [1, 2, 3]})
    assert quick_to_write(lists, rows=3) is lists
    assert quick_to_write(lists, rows=2).get_column("a").chunk_lengths() == [2, 1]
    assert quick_to_write(lists, rows=2).equals(lists)
    nearly_empty = pl.DataFrame({"a": [[], [], [1]], "b": [1, 2, 3]})  # one value: cheap to slice, left as it is
    assert quick_to_write(nearly_empty, rows=2) is nearly_empty
