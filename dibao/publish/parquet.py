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


def canonical_chunks(frame: pl.DataFrame, rows: int = LIST_CHUNK_ROWS) -> pl.DataFrame:
    """``frame`` in the layout its Parquet bytes are written from: one chunk, or, with a list column and more
    than ``rows`` rows, chunks of ``rows`` rows each (copies, not slices of one chunk)."""
    nested = any(isinstance(dtype, pl.List | pl.Array | pl.Struct) for dtype in frame.dtypes)
    if not nested or frame.height <= rows:
        return frame.rechunk()
    return pl.concat([frame.gather(np.arange(start, min(start + rows, frame.height)))
                      for start in range(0, frame.height, rows)], rechunk=False)
