"""Frames laid out for Parquet: quick to write, and the same bytes for the same values.

Polars writes a row group per slice of a frame's chunks, so the bytes depend on how the frame happens to be
chunked in memory (a frame assembled from a cached day and a recomputed part is chunked unlike a full one):
frames are put in one canonical layout before writing. One chunk is that layout for flat columns. A list column
(person_links' ``evidence``) in one large chunk is slow to write: each row group is a slice of it, and every
slice is as costly as the whole list (11.5 million evidence lists: 12.5 s, against 4 s from row-sized chunks).
So frames with a list column are copied into chunks of ``LIST_CHUNK_ROWS`` rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

LIST_CHUNK_ROWS = 262_144


def _nested(frame: pl.DataFrame) -> list[str]:
    return [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List | pl.Array | pl.Struct)]


def _in_row_chunks(frame: pl.DataFrame, rows: int) -> pl.DataFrame:
    return pl.concat([frame.gather(np.arange(start, min(start + rows, frame.height)))
                      for start in range(0, frame.height, rows)], rechunk=False)


def canonical_chunks(frame: pl.DataFrame, rows: int = LIST_CHUNK_ROWS) -> pl.DataFrame:
    """``frame`` in the layout its Parquet bytes are written from: one chunk, or, with a list column and more
    than ``rows`` rows, chunks of ``rows`` rows each (copies, not slices of one chunk)."""
    if not _nested(frame) or frame.height <= rows:
        return frame.rechunk()
    return _in_row_chunks(frame, rows)


def quick_to_write(frame: pl.DataFrame, rows: int = LIST_CHUNK_ROWS) -> pl.DataFrame:
    """``frame`` as it is, unless its list columns hold more than ``rows`` values in a chunk longer than ``rows``
    rows: then in row-sized chunks. For files whose bytes need not be reproducible (the run cache). A slice costs
    as much as its chunk's list values, so a nearly empty list column (the inputs' ``cleared_fields``) is cheap
    to write as it is, and copying a province's input files for it was the ingest's peak (+1.8 GiB)."""
    lists = [name for name in _nested(frame) if isinstance(frame.schema[name], pl.List)]
    longest = max((length for name in lists for length in frame.get_column(name).chunk_lengths()), default=0)
    if longest <= rows or sum(frame.get_column(name).list.len().sum() or 0 for name in lists) <= rows:
        return frame
    return _in_row_chunks(frame, rows)
