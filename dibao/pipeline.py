"""The daily run (``dibao run``): ingest a drop, compute the outputs, publish one dated run folder.

Stages report to a callback so the CLI can show progress and timings; the pipeline itself prints nothing.
A drop with any file-level fault publishes nothing (the previous run stays the one served).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dibao import __version__, duck, policy_files
from dibao.errors import DibaoError
from dibao.headers import HeaderTable, load_header_table
from dibao.ingest import Drop, ingest_drop
from dibao.ingest.validate import FIELD_CLEARED, ROW_REJECTED
from dibao.link import LinkResult, crosswalk_table
from dibao.link.isolated import link_drop
from dibao.profile import StageClock
from dibao.publish import contract, worklists
from dibao.publish.cache import RULES_RENEW_ABOVE, RunCache, file_sha256
from dibao.publish.coverage import coverage, load_coverage_config
from dibao.publish.guards import DEFAULT_MAX_SHRINK, DropShrank, guard_summary, shrinks
from dibao.publish.parquet import canonical_chunks
from dibao.publish.state import Lists, carry_forward, diff_lists, publish_lists, summary_line
from dibao.publish.store import RunStore
from dibao.rules import ParameterSet, RuleSet, decide, load_parameters, load_rules
from dibao.serve.audit.anchor import anchor_after_run

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """What a published run holds, for the summary."""

    date: dt.date
    folder: Path
    drop: Drop
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def input_summary(drop: Drop) -> dict[str, dict[str, Any]]:
    """Per input file: what was read and what was rejected, for the manifest and the CLI table."""
    summary: dict[str, dict[str, Any]] = {}
    for stem, f in drop.files.items():
        def per_reason(action: str, rejected: pl.DataFrame = f.rejected) -> dict[str, int]:
            rows = (rejected.filter(pl.col("action") == action).group_by("reason_code")
                    .agg(pl.col("row").n_unique().alias("rows")).sort("reason_code"))
            return dict(zip(rows["reason_code"], rows["rows"], strict=True))

        summary[stem] = {
            "file": f.raw.path.name,
            "format": f.raw.format,
            "encoding": f.raw.encoding,
            "sha256": f.raw.sha256,
            "rows_read": f.rows_read,
            "rows_accepted": f.rows_accepted,
            "rows_rejected": f.rows_read - f.rows_accepted,
            "fields_cleared": f.fields_cleared,
            "rejected_by_reason": per_reason(ROW_REJECTED),
            "cleared_by_reason": per_reason(FIELD_CLEARED),
            "data_notes": dict(f.data_notes.group_by("code").len().sort("code").iter_rows()),
            "notes": f.notes,
        }
    return summary


LINK_OUTPUTS = (contract.PERSON_LINKS, contract.HOUSEHOLD_LINKS, contract.LINK_REVIEW)


def _unchanged_files(previous: Path | None, previous_manifest: dict[str, Any] | None, link_key: str | None,
                     ) -> dict[str, dict[str, Any]]:
    """Published files of the previous run that this run would write byte for byte again: the linkage outputs,
    when both runs used the same cached linkage (their bytes depend on it alone). Checked against the previous
    manifest's SHA-256 before they are reused."""
    if previous is None or previous_manifest is None or link_key is None:
        return {}
    if previous_manifest.get("cache", {}).get("link_key") != link_key:
        return {}
    return {f.filename: previous_manifest["files"][f.filename] for f in LINK_OUTPUTS
            if f.filename in previous_manifest.get("files", {})}


def _reuse_file(source: Path, target: Path, expected: dict[str, Any]) -> bool:
    try:
        if file_sha256(source) != expected["sha256"]:
            return False
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    except OSError:
        return False
    return True


def _write_output(path: Path, frame: pl.DataFrame | Callable[[], pl.DataFrame],
                  known: dict[str, Any] | None = None, previous: Path | None = None) -> dict[str, Any]:
    """Write one published file (or link the previous run's identical one); its manifest entry. ``frame`` may be
    a function that makes it: then it is made only when the file is not reused."""
    if known is not None and previous is not None and _reuse_file(previous / path.name, path, known):
        return {"rows": int(known["rows"]), "sha256": known["sha256"]}
    if callable(frame):
        frame = frame()
    # The bytes must depend on the values only, not on how the frame is chunked (``canonical_chunks``).
    canonical_chunks(frame).write_parquet(path, statistics=True)
    return {"rows": frame.height, "sha256": file_sha256(path)}


def _write_outputs(folder: Path, outputs: dict[contract.PublishedFile, pl.DataFrame],
                   staged: dict[str, tuple[Path, dict[str, Any]]] | None = None) -> dict[str, dict[str, Any]]:
    """Write the run's files into ``folder``; ``staged`` files (written earlier, see ``_stage_link_outputs``)
    are moved in."""
    written = {}
    for name, (path, info) in (staged or {}).items():
        os.replace(path, folder / name)
        written[name] = info
    for published, frame in outputs.items():
        written[published.filename] = _write_output(folder / published.filename, frame)
    return written


def _stage_link_outputs(spill: Path, linkage: Callable[[], LinkResult], reuse: dict[str, dict[str, Any]],
                        previous: Path | None) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Write the linkage's published files as soon as the linkage is done, into the run's spill folder (same disk
    as the run folder; moved in at publishing): the wide person_links frame (evidence lists, names, methods for
    every input row) then need not be held through the rules stage, where the run's memory peaks. ``linkage``
    gives the whole result, called only when a file is not the previous run's (a cached one is then read)."""
    result = functools.cache(linkage)  # read or made once, for whichever file needs it first
    # The cross-walk is made only when its file is not reused (2 s at 2M), and first: made after the person_links
    # write, its group-by came on top of what that write had left allocated (the stage's peak 5.7 -> 6.4 GiB).
    outputs: dict[contract.PublishedFile, Callable[[], pl.DataFrame]] = {
        contract.HOUSEHOLD_LINKS: lambda: crosswalk_table(result().links),
        contract.PERSON_LINKS: lambda: result().links, contract.LINK_REVIEW: lambda: result().review}
    staged = {}
    for published, frame in outputs.items():
        path = spill / published.filename
        staged[published.filename] = (path, _write_output(path, frame, reuse.get(published.filename), previous))
    return staged


def content_hash(files: dict[str, dict[str, Any]]) -> str:
    """One hash over the published data files: same inputs, date and rules → same hash."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}:{files[name]['sha256']}\n".encode())
    return digest.hexdigest()


def _policy_origin(path: Path) -> str:
    """``shipped`` for the package's own policy file, else the file's path: an audit can see which policy ran."""
    shipped = path.name in policy_files.FILES and path.resolve() == policy_files.shipped(path.name).resolve()
    return "shipped" if shipped else str(path)


def run_daily(
    inputs: Path,
    date: dt.date,
    store: RunStore,
    *,
    encodings: dict[str, str] | None = None,
    headers: HeaderTable | None = None,
    parameters: ParameterSet | None = None,
    rules: RuleSet | None = None,
    replace: bool = False,
    rebuild: bool = False,
    wait_seconds: float = 0.0,
    max_shrink: float = DEFAULT_MAX_SHRINK,
    accept_shrink: bool = False,
    rules_dir: Path | None = None,
    progress: Progress = lambda _: None,
    clock: StageClock | None = None,
    cache: bool = True,
) -> RunResult:
    """Run the daily job for ``date`` on the drop folder ``inputs`` and publish it into ``store``.

    Raises ``DropShrank`` (nothing published) when an input lost more than ``max_shrink`` of its accepted rows
    since the previous run, unless ``accept_shrink``. ``rules_dir`` is a deployment's own rules folder: each
    policy file it holds replaces the shipped one (``headers``, ``parameters`` and ``rules`` given here win).
    ``cache``: reuse validated files and the linkage of earlier runs by content (``dibao/publish/cache.py``).
    """
    clock = clock or StageClock(on_start=progress)
    timings: dict[str, float] = {}
    headers = headers or load_header_table(policy_files.policy_path(policy_files.HEADERS, rules_dir))
    parameters = parameters or load_parameters(policy_files.policy_path(policy_files.PARAMETERS, rules_dir))
    rules = rules or load_rules(parameters, policy_files.policy_path(policy_files.ELIGIBILITY, rules_dir))
    coverage_path = policy_files.policy_path(policy_files.COVERAGE, rules_dir)
    coverage_config = load_coverage_config(coverage_path)
    with store.lock(wait_seconds=wait_seconds), store.spill_folder() as spill, duck.configured(spill):
        latest = store.published_dates()[-1] if store.published_dates() else None
        if latest is not None and date < latest and not rebuild:
            raise DibaoError(
                f"{store.root}: runs up to {latest} are already published; a run for the earlier date {date} "
                f"would contradict them. Use --rebuild to rebuild from {date} (later runs are removed, then "
                f"re-run each later day)")
        previous_date = store.previous(date)
        previous = Lists.read(store.run_dir(previous_date)) if previous_date else None
        with clock.stage("ingest") as stage:
            run_cache = RunCache.for_store(store.root, headers) if cache else None
            # Each file's typed rows leave memory once typed (the cache's copy, or a file in the spill folder):
            # the later stages read only the columns they need. At 2 million households they are ~3 GiB.
            drop = ingest_drop(inputs, headers=headers, encodings=encodings, run_date=date, cache=run_cache,
                               spill_to=spill / "inputs")
            for ingested in drop.files.values():
                ingested.release_raw()  # the text as read: as large as the files, no longer needed
            stage.rows = sum(f.rows_read for f in drop.files.values())
        previous_manifest = store.manifest(previous_date) if previous_date else None
        shrunk = shrinks(drop, previous_manifest, max_shrink)
        if shrunk and not accept_shrink:
            raise DropShrank(shrunk, max_shrink)

        with clock.stage("link") as stage:
            linkage = run_cache.load_link() if run_cache else None
            if linkage is None:
                linkage = link_drop(drop, spill / "link")  # a large drop: in a process of its own
                if run_cache:
                    run_cache.save_link(linkage)
            elif run_cache:
                run_cache.linkage = "reused"
            stage.rows = linkage.keys.height
        with clock.stage("write links") as stage:  # timed apart: the link stage stays the linkage alone
            previous_folder = store.run_dir(previous_date) if previous_date else None
            staged = _stage_link_outputs(
                spill, linkage.result, _unchanged_files(previous_folder, previous_manifest,
                                                        run_cache.link_key() if run_cache else None),
                previous_folder)
            stage.rows = sum(info["rows"] for _, info in staged.values())
        links, link_counts = linkage.keys, linkage.summary.as_manifest()
        del linkage  # the whole linkage result is no longer needed: only the numbered keys are read from here

        with clock.stage("rules") as stage:
            policy = (parameters.source, rules.source)
            basis = run_cache.load_rules(policy) if run_cache else None
            decided = decide(drop, links, date, parameters, rules, basis=basis)
            if run_cache and (basis is None or decided.groups_recomputed > RULES_RENEW_ABOVE * decided.groups):
                run_cache.save_rules(policy, decided.basis(date))
            del basis  # the cached day's facts and decisions (1.5 GiB at 2M): held to the end, they topped day 2
            stage.rows = decided.facts.height

        lists = publish_lists(
            carry_forward(Lists(decided.exit_candidates, decided.inclusion_candidates, decided.flags),
                          previous, rules, decided.params),
            drop.frame_or_empty("counties"))
        diff = diff_lists(lists, previous, date)
        with clock.stage("coverage") as stage:
            rates = coverage(drop, links, lists.exit, lists.inclusion, date, coverage_config)
            stage.rows = rates.height

        outputs: dict[contract.PublishedFile, pl.DataFrame] = {
            contract.EXIT_CANDIDATES: lists.exit,
            contract.INCLUSION_CANDIDATES: lists.inclusion,
            contract.FLAGS: lists.flag,
            contract.DIFF: diff,
            contract.COVERAGE: rates,
            contract.DECISIONS: decided.decisions,
            contract.HOUSEHOLD_FACTS: decided.facts,
            contract.PARAMETERS_IN_FORCE: decided.params,
            contract.REJECTED: drop.rejected,
            contract.INPUT_NOTES: drop.data_notes,
        }

        def write(folder: Path) -> None:
            with clock.stage("write") as stage:
                files = _write_outputs(folder, outputs, staged=staged)
                stage.rows = sum(entry["rows"] for entry in files.values())
            timings.update(clock.timings)
            manifest["worklists"] = worklists.pending(drop.frame_or_empty("counties"))  # written after publishing
            manifest.update(
                files=files,
                content_sha256=content_hash(files),
                timings_seconds=timings,
                **({"profile": clock.profile} if clock.memory else {}),
            )
            (folder / contract.MANIFEST_FILE).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )

        manifest: dict[str, Any] = {
            "run_date": date.isoformat(),
            "engine_version": __version__,
            "inputs_folder": str(inputs),
            "inputs": input_summary(drop),
            "rejected_rows": sum(f.rows_read - f.rows_accepted for f in drop.files.values()),
            "skipped": drop.missing_optional,
            "guards": guard_summary(shrunk, max_shrink, accept_shrink),
            "notes": drop.notes,
            "rules": {
                "headers": {"file": headers.source.name, "version": headers.version,
                            "from": _policy_origin(headers.source)},
                "parameters": {"file": parameters.source.name, "version": parameters.version,
                               "from": _policy_origin(parameters.source)},
                "eligibility": {"file": rules.source.name, "version": rules.version,
                                "from": _policy_origin(rules.source), "rules": [r.id for r in rules.rules]},
                "coverage": {"file": coverage_path.name, "version": coverage_config.version,
                             "from": _policy_origin(coverage_path)},
            },
            "previous_run": previous_date.isoformat() if previous_date else None,
            "removed_later_runs": [d.isoformat() for d in store.published_dates() if d > date] if rebuild else [],
            "summary": summary_line(diff, lists.exit, date),
            "changes": dict(diff.group_by("list", "change").len().select(
                pl.concat_str("list", "change", separator=":"), "len").sort("list").iter_rows()),
            "decisions": {
                **{contract.LIST_FILES[name].name: lists.get(name).height for name in contract.LISTS},
                "by_rule": dict(decided.decisions.group_by("rule_id").len().sort("rule_id").iter_rows()),
            },
            "linkage": link_counts,
        }
        if run_cache is not None:
            for stem, info in manifest["inputs"].items():
                info["cache"] = run_cache.ingest_status.get(stem, "miss")
            manifest["cache"] = {"inputs": {s: i["cache"] for s, i in manifest["inputs"].items()},
                                 "linkage": run_cache.linkage or "computed",
                                 "link_key": run_cache.link_key(),
                                 "rules": {"from": run_cache.rules_basis or "computed",
                                           "groups_recomputed": decided.groups_recomputed,
                                           "groups": decided.groups},
                                 "discarded": dict(sorted(run_cache.discarded.items()))}
        progress("publish")
        folder = store.publish(date, write, replace=replace or rebuild)
        if run_cache is not None:
            run_cache.sweep(date)
        if rebuild:
            store.remove_after(date)
        progress("work lists")  # the Parquet run is published and served; the workbooks follow (worker processes)
        # What was published is let go first: the work lists read only today's lists. Held through the lists'
        # planning, the facts and decisions (1.5 GiB at 2M) topped a day that linked and ruled everything afresh.
        outputs.clear()
        del decided, links, previous
        try:
            manifest["worklists"] = worklists.complete(
                folder, date, lists.exit, lists.inclusion, lists.flag, diff, drop.frame_or_empty("counties"),
                previous=store.run_dir(previous_date) if previous_date else None)
        except Exception as exc:
            raise DibaoError(f"{folder} is published, but its work lists were not written ({exc}); write them "
                             f"with `dibao worklists --store {store.root} --date {date}`") from exc
        timings["worklists"] = manifest["worklists"]["seconds"]
    anchor_after_run(store.root)  # the audit log's head, signed, outside the run (content hash unchanged)
    return RunResult(date, folder, drop, manifest, timings)
