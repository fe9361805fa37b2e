"""``dibao`` command line: what the county data team runs every morning.

Exit codes (for cron / systemd): 0 success; 1 other error; 2 the drop has file-level faults (nothing published);
3 a rules/config file is malformed; 75 the store is busy with another run (retry later).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dibao.errors import DibaoError
from dibao.ingest.validate import REASONS, RowFault

app = typer.Typer(
    name="dibao",
    help="低保 cross-matching engine: validate daily drops, run the daily comparison, publish work lists.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@contextmanager
def _operator_errors() -> Iterator[None]:
    """Print a DibaoError as the message it carries (no traceback) and exit with its code."""
    try:
        yield
    except DibaoError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None


def _parse_encodings(values: list[str] | None) -> dict[str, str]:
    result = {}
    for item in values or []:
        stem, sep, encoding = item.partition("=")
        if not sep or not stem or not encoding:
            raise typer.BadParameter(f"{item!r}: expected STEM=ENCODING, e.g. registry=gb18030")
        result[stem.strip()] = encoding.strip()
    return result


def _reason_label(code: str) -> str:
    try:
        return REASONS[RowFault(code)].split(" (")[0]
    except ValueError:
        return code


def _inputs_table(summary: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in [("file", "left"), ("format", "left"), ("encoding", "left"), ("read", "right"),
                            ("accepted", "right"), ("rejected", "right"), ("rejected by reason", "left")]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in summary.values():
        reasons = "\n".join(f"{_reason_label(code)} {n}" for code, n in info["rejected_by_reason"].items())
        table.add_row(info["file"], info["format"], info["encoding"] or "-", f"{info['rows_read']:,}",
                      f"{info['rows_accepted']:,}", f"{info['rows_rejected']:,}", reasons or "-")
    return table


def _print_notes(summary: dict[str, dict[str, Any]], skipped: dict[str, str], notes: list[str]) -> None:
    for info in summary.values():
        for note in info["notes"]:
            console.print(f"  [dim]{info['file']}: {note}[/]", highlight=False)
    for note in notes:
        console.print(f"  [dim]{note}[/]", highlight=False)
    for stem, why in skipped.items():
        console.print(f"  [yellow]{stem} absent:[/] {why}", highlight=False)


EncodingOption = Annotated[
    list[str] | None,
    typer.Option("--encoding", help="Force a CSV encoding for one file: STEM=ENCODING (repeatable)."),
]


@app.command()
def ingest(
    drop: Annotated[Path, typer.Argument(help="Folder of one daily drop.")],
    encoding: EncodingOption = None,
    rejected_out: Annotated[
        Path | None, typer.Option("--rejected", help="Also write the rejected rows to this Parquet file.")
    ] = None,
) -> None:
    """Validate a daily drop and print, per file, rows read, accepted and rejected by reason."""
    from dibao.ingest import ingest_drop
    from dibao.pipeline import input_summary

    with _operator_errors():
        started = time.perf_counter()
        with console.status("reading and validating the drop…"):
            result = ingest_drop(drop, encodings=_parse_encodings(encoding))
        summary = input_summary(result)
        console.print(_inputs_table(summary, f"{drop} — {time.perf_counter() - started:.1f} s"))
        _print_notes(summary, result.missing_optional, result.notes)
        if rejected_out is not None:
            result.rejected.write_parquet(rejected_out)
            console.print(f"rejected rows written to {rejected_out}")


@app.command()
def run(
    inputs: Annotated[Path, typer.Option("--inputs", help="Folder of the day's drop.")],
    date: Annotated[str, typer.Option("--date", help="Run date, YYYY-MM-DD.")],
    store: Annotated[Path, typer.Option("--store", help="Run store folder (runs are published in STORE/runs/).")],
    encoding: EncodingOption = None,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an already published run for DATE.")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait if another run holds the store.")] = 0.0,
) -> None:
    """The daily job: ingest, compare, and publish STORE/runs/DATE/ (all or nothing)."""
    from dibao.pipeline import run_daily
    from dibao.store import RunStore

    try:
        run_date = dt.date.fromisoformat(date)
    except ValueError:
        raise typer.BadParameter(f"{date!r} is not a date in YYYY-MM-DD form", param_hint="--date") from None
    with _operator_errors():
        stage_started: dict[str, float] = {}

        def progress(stage: str) -> None:
            stage_started[stage] = time.perf_counter()
            status.update(f"{stage}…")

        with console.status("starting…") as status:
            result = run_daily(inputs, run_date, RunStore(store), encodings=_parse_encodings(encoding),
                               replace=replace, wait_seconds=wait, progress=progress)
        manifest = result.manifest
        console.print(_inputs_table(manifest["inputs"], f"dibao run {run_date} — inputs"))
        _print_notes(manifest["inputs"], manifest["skipped"], manifest["notes"])
        linkage = manifest["linkage"]
        methods = ", ".join(f"{m} {n:,}" for m, n in linkage["records_by_method"].items())
        review = ", ".join(f"{r} {n:,}" for r, n in linkage["review_by_reason"].items()) or "none"
        console.print(f"linkage: {linkage['persons']:,} persons; records by method: {methods}; "
                      f"to review (link_review.parquet): {review}", highlight=False)
        timings = ", ".join(f"{k} {v:.2f} s" for k, v in manifest["timings_seconds"].items())
        console.print(f"[green]published[/] {result.folder}  ({timings}; "
                      f"{manifest['rejected_rows']:,} rejected rows in rejected.parquet)", highlight=False)


@app.command()
def synth(
    households: Annotated[int, typer.Option("--households", min=1, help="Households in the drop.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed → identical files).")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Folder for the generated drop.")] = Path("drop"),
    truth: Annotated[Path | None, typer.Option("--truth", help="Folder for the ground truth "
                                                               "(default: OUT_truth beside OUT).")] = None,
    date: Annotated[str, typer.Option("--date", help="The drop's date, YYYY-MM-DD.")] = "2026-11-20",
    formats: Annotated[str, typer.Option("--formats", help="mixed | csv | parquet")] = "mixed",
) -> None:
    """Generate a synthetic province's daily drop (all seven files) and its ground truth."""
    from dibao.synth import generate

    if formats not in ("mixed", "csv", "parquet"):
        raise typer.BadParameter("expected mixed, csv or parquet", param_hint="--formats")
    with console.status(f"generating {households:,} households…"):
        summary = generate(households=households, seed=seed, out=out, truth_out=truth,
                           as_of=dt.date.fromisoformat(date), formats=formats)
    console.print(summary)


def main() -> None:  # pragma: no cover - entry point for `python -m dibao`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
