"""The linkage of a large drop in a process of its own.

At province scale the linkage works through ≈ 6 GiB (11.5 million records, their profiles, pairs and groups).
In the run's own process the allocator kept most of it after the stage ended, so the rules stage started from
7 GiB and peaked above 8. In a child process, everything the linkage used goes back to the system when it ends;
the run reads back only its result. The child gets the paths of the spilled input files (never a copy of the
run's frames: it is started with ``spawn``), writes the result as Arrow IPC, and ends with the run if the run is
killed. Small drops link in the run's own process: a fresh interpreter costs about a second. The child also
numbers the records' persons and households and counts what the linkage did (``Linkage``): their working memory
(id codes and ranks of 11.5 million keys) is then never the run's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dibao.errors import DibaoError
from dibao.ingest import Drop
from dibao.link.keys import LINK_KEYS, Linkage, link_numbers
from dibao.link.persons import LinkResult, link_persons
from dibao.link.records import person_records
from dibao.link.summary import LinkSummary, summarise
from dibao.processes import end_with_parent
from dibao.schema import FILE_SPECS

# Records above which the linkage runs in a child process (a province has ~11 million; 200,000 households ~1.1).
IN_PROCESS_UP_TO = 1_000_000
_RESULT = ("links", "review", "households")


@dataclass(frozen=True)
class SpilledInputs:
    """The person-level files of a drop as Parquet files: what ``person_records`` reads, in the child."""

    paths: Mapping[str, str]

    @property
    def files(self) -> Mapping[str, str]:
        return self.paths

    def scan(self, stem: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.paths[stem])


def link_drop(drop: Drop, work: Path, in_child: bool | None = None) -> Linkage:
    """``link_persons(person_records(drop))``, numbered and counted (``Linkage``), in a child process when the
    drop is large (``in_child`` None:
    more than ``IN_PROCESS_UP_TO`` records) and every person-level file is spilled; ``work``: a folder for the
    child's result (in the run's spill folder)."""
    person_level = {stem: f for stem, f in drop.files.items() if FILE_SPECS[stem].person_level}
    if in_child is None:
        in_child = sum(f.rows_accepted for f in person_level.values()) > IN_PROCESS_UP_TO
    paths = {stem: str(f.spilled) for stem, f in person_level.items() if f.spilled is not None}
    if not in_child or len(paths) < len(person_level):
        result = link_persons(person_records(drop))
        return Linkage.made(result, summarise(result))
    work.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: never a copy of the run's frames
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=end_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            pool.submit(_link_files, paths, str(work)).result()
    except BrokenProcessPool as exc:
        raise DibaoError(f"链接进程意外终止，未发布任何结果 (the linkage process ended unexpectedly, e.g. out of "
                         f"memory; nothing was published): {exc}") from exc
    result = LinkResult(*(pl.read_ipc(work / f"{name}.arrow") for name in _RESULT))
    keys = result.links.select(LINK_KEYS).with_columns(pl.read_ipc(work / "numbers.arrow"))
    summary = LinkSummary.from_manifest(json.loads((work / "summary.json").read_text(encoding="utf-8")))
    return Linkage(keys, summary, lambda: result)


def _link_files(paths: Mapping[str, str], work: str) -> None:
    """The child's task: link the spilled files and write the result."""
    result = link_persons(person_records(SpilledInputs(paths)))
    for name, frame in zip(_RESULT, (result.links, result.review, result.households), strict=True):
        # Arrow IPC, not Parquet: no encoding either way (the evidence lists took 14 s to write as Parquet at 2M).
        frame.write_ipc(Path(work) / f"{name}.arrow", compression="uncompressed")
    (Path(work) / "summary.json").write_text(json.dumps(summarise(result).as_manifest()), encoding="utf-8")
    keys = result.links.select("person_key", "household")
    del result  # written: the numbers are made beside the two keys only, not on top of the whole result
    link_numbers(keys).write_ipc(Path(work) / "numbers.arrow", compression="uncompressed")
