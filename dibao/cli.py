"""``dibao`` command line: what the county data team runs every morning.

Exit codes (for cron / systemd): 0 success; 1 other error; 2 the drop has file-level faults (nothing published);
3 a rules/config file is malformed; 4 (explain) nothing matches; 5 an input lost more rows than allowed since the
previous run (nothing published; --accept-shrink to confirm); 64 a usage error (a wrong option or a date not
written YYYY-MM-DD); 75 the store is busy with another run (retry later).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from dibao.errors import DibaoError, UsageFault
from dibao.ingest.parse import RowFault
from dibao.ingest.validate import REASONS
from dibao.private_files import owner_only_process
from dibao.publish.contract import CHANGE_LABELS, LIST_FILES, LIST_LABELS, LISTS
from dibao.serve.audit.commands import audit_commands

if TYPE_CHECKING:
    from dibao.publish.household import HistoryDay, Household, ListEntry

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date_option(text: str, option: str) -> dt.date:
    """Exactly YYYY-MM-DD (Python's fromisoformat would also take 20261122 or a week date like 2026W471)."""
    try:
        if _ISO_DATE.fullmatch(text.strip()) is None:
            raise ValueError(text)
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageFault(f"{option} {text!r}: 日期须写作 YYYY-MM-DD，如 2026-11-20 "
                         f"(a date must be written YYYY-MM-DD, e.g. 2026-11-20)") from None


class _Commands(TyperGroup):
    """Usage errors exit with 64 (EX_USAGE) instead of click's 2, which dibao uses for a drop with file faults."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        owner_only_process()  # every file dibao writes holds personal data: 0600 / 0700 (dibao/private_files.py)
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except DibaoError as exc:  # raised outside a command's own handler (e.g. while parsing an option)
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err_console.print("Aborted!")
            sys.exit(1)
        except typer.TyperException as exc:  # typer's (vendored click's) errors; 2 is its code for a usage error
            code = int(getattr(exc, "exit_code", 1))
            show = getattr(exc, "show", None)
            if show is not None:
                show()
            sys.exit(UsageFault.exit_code if code == 2 else code)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=_Commands,
    name="dibao",
    help="低保 cross-matching engine: validate daily drops, run the daily comparison, publish work lists.",
    no_args_is_help=True,
    add_completion=False,
)
# Logs of scheduled runs are not terminals: give them a width that fits the tables instead of 80 columns.
_LOG_WIDTH = None if sys.stdout.isatty() else 140
console = Console(width=_LOG_WIDTH)
err_console = Console(stderr=True, width=_LOG_WIDTH)


@contextmanager
def _operator_errors() -> Iterator[None]:
    """Print a DibaoError as the message it carries (no traceback) and exit with its code."""
    try:
        yield
    except DibaoError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line per error in logs
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
        return {"total_row": "合计行", "duplicate_row": "重复行"}.get(code, code)


def _inputs_table(summary: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("file", min_width=18, no_wrap=True)
    for column, justify in [("format", "left"), ("encoding", "left"), ("read", "right"),
                            ("accepted", "right"), ("rejected", "right"), ("rejected by reason", "left"),
                            ("fields cleared (row kept)", "left")]:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for info in summary.values():
        reasons = "\n".join(f"{_reason_label(code)} {n}" for code, n in info["rejected_by_reason"].items())
        cleared = "\n".join(f"{_reason_label(code)} {n}" for code, n in info.get("cleared_by_reason", {}).items())
        table.add_row(info["file"], info["format"], info["encoding"] or "-", f"{info['rows_read']:,}",
                      f"{info['rows_accepted']:,}", f"{info['rows_rejected']:,}", reasons or "-", cleared or "-")
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
RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", envvar="DIBAO_RULES", file_okay=False,
                 help="A deployment's own rules folder: each of headers.yaml, parameters.yaml, eligibility.yaml, "
                      "coverage.yaml it holds replaces the shipped one; a file it lacks: the shipped one is used."),
]


@app.command()
def ingest(
    drop: Annotated[Path, typer.Argument(help="Folder of one daily drop.")],
    encoding: EncodingOption = None,
    rejected_out: Annotated[
        Path | None, typer.Option("--rejected", help="Also write the rejected rows to this Parquet file.")
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="Judge the drop as of this date, YYYY-MM-DD "
                                                            "(default today).")] = None,
    rules: RulesOption = None,
) -> None:
    """Validate a daily drop and print, per file, rows read, accepted and rejected by reason."""
    from dibao.headers import load_header_table
    from dibao.ingest import ingest_drop
    from dibao.pipeline import input_summary
    from dibao.policy_files import HEADERS, policy_path

    with _operator_errors():
        run_date = parse_date_option(date, "--date") if date else None
        headers = load_header_table(policy_path(HEADERS, rules))
        started = time.perf_counter()
        with console.status("reading and validating the drop…"):
            result = ingest_drop(drop, headers=headers, encodings=_parse_encodings(encoding), run_date=run_date)
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
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Run a date earlier than the latest run: later runs "
                                                            "are removed (re-run each later day after).")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait if another run holds the store.")] = 0.0,
    max_shrink: Annotated[float, typer.Option(
        "--max-shrink", min=0.0, max=1.0,
        help="Largest share of a file's accepted rows that may disappear since the previous run.")] = 0.2,
    accept_shrink: Annotated[bool, typer.Option(
        "--accept-shrink", help="Publish although a file shrank more than --max-shrink (recorded in the manifest)."
    )] = False,
    rules: RulesOption = None,
    profile: Annotated[bool, typer.Option(
        "--profile", help="Measure each stage's peak memory too; write time and peak memory per stage to the "
                          "manifest (profile).")] = False,
) -> None:
    """The daily job: ingest, compare, and publish STORE/runs/DATE/ (all or nothing)."""
    from dibao.pipeline import run_daily
    from dibao.profile import StageClock
    from dibao.publish.store import RunStore

    with _operator_errors():
        run_date = parse_date_option(date, "--date")
        with _stage_progress() as (on_start, on_done):
            clock = StageClock(memory=profile, on_start=on_start, on_done=on_done)
            result = run_daily(inputs, run_date, RunStore(store), encodings=_parse_encodings(encoding),
                               replace=replace, rebuild=rebuild, wait_seconds=wait, max_shrink=max_shrink,
                               accept_shrink=accept_shrink, rules_dir=rules, progress=on_start, clock=clock)
        manifest = result.manifest
        console.print(_inputs_table(manifest["inputs"], f"dibao run {run_date} — inputs"))
        _print_notes(manifest["inputs"], manifest["skipped"], manifest["notes"])
        linkage = manifest["linkage"]
        methods = ", ".join(f"{m} {n:,}" for m, n in linkage["records_by_method"].items())
        review = ", ".join(f"{r} {n:,}" for r, n in linkage["review_by_reason"].items()) or "none"
        console.print(f"linkage: {linkage['persons']:,} persons; records by method: {methods}; "
                      f"to review (link_review.parquet): {review}", highlight=False)
        timings = ", ".join(f"{k} {v:.2f} s" for k, v in manifest["timings_seconds"].items())
        console.print(_summary_table(manifest))
        since = f"since {manifest['previous_run']}" if manifest["previous_run"] else "first run of this store"
        console.print(f"[bold]{manifest['summary']}[/]  ({since})", highlight=False)
        if manifest["removed_later_runs"]:
            console.print(f"[yellow]rebuilt from {run_date}: removed later runs "
                          f"{', '.join(manifest['removed_later_runs'])} — re-run those days[/]", highlight=False)
        console.print(f"[green]published[/] {result.folder}  ({timings}; "
                      f"{manifest['rejected_rows']:,} rejected rows in rejected.parquet)", highlight=False)


@contextmanager
def _stage_progress() -> Iterator[tuple[Callable[[str], None], Callable[[str, Any], None]]]:
    """A rich progress display: the running stage with its elapsed time, and each finished stage with its time,
    rows, rows per second and (with --profile) its peak memory."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description:<12}"), BarColumn(bar_width=24),
               TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def on_start(stage: str) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=None, info="")

        def on_done(stage: str, record: Any) -> None:
            on_start(stage)
            parts = [f"{record.seconds:.2f} s"]
            if record.rows:
                parts.append(f"{record.rows:,} rows ({record.rows / max(record.seconds, 1e-9):,.0f}/s)")
            if record.peak_rss_mib is not None:
                parts.append(f"peak {record.peak_rss_mib:,.0f} MiB")
            bar.update(tasks[stage], total=1, completed=1, info=" · ".join(parts))

        yield on_start, on_done
        for task in tasks.values():  # stages the clock does not time (publish, work lists): done with the run
            bar.update(task, total=1, completed=1)


def _summary_table(manifest: dict[str, Any]) -> Table:
    """Final summary: per list, today's count and the changes since the previous run."""
    changes = manifest.get("changes", {})
    table = Table(title=f"dibao run {manifest['run_date']} — summary", title_justify="left")
    for column in ("list", "today", "added", "resolved", "changed"):
        table.add_column(column, justify="left" if column == "list" else "right")
    counts = manifest["decisions"]
    for key in LISTS:
        table.add_row(f"{LIST_LABELS[key]} ({key})", f"{counts[LIST_FILES[key].name]:,}",
                      *(f"{changes.get(f'{key}:{c}', 0):,}" for c in ("added", "resolved", "changed")))
    return table


@app.command()
def runs(store: Annotated[Path, typer.Option("--store", help="Run store folder.")] = Path("store")) -> None:
    """List published runs with their counts."""
    from dibao.publish.store import RunStore
    from dibao.publish.worklists import is_ready

    runs_store = RunStore(store)
    table = Table("date", "exit", "inclusion", "flags", "rejected rows", "changes", "work lists", "content hash",
                  "engine", title=f"published runs in {store}", title_justify="left")
    for date in runs_store.published_dates():
        m: dict[str, Any] = runs_store.manifest(date)
        d = m.get("decisions", {})
        table.add_row(date.isoformat(), f"{d.get('exit_candidates', 0):,}", f"{d.get('inclusion_candidates', 0):,}",
                      f"{d.get('flags', 0):,}", f"{m.get('rejected_rows', 0):,}", str(m.get("summary", "")),
                      "ready" if is_ready(m) else "[yellow]not ready[/]",
                      str(m.get("content_sha256", ""))[:12], str(m.get("engine_version", "")))
    console.print(table)


@app.command("worklists")
def worklists_command(
    store: Annotated[Path, typer.Option("--store", help="Run store folder.")] = Path("store"),
    date: Annotated[str | None, typer.Option("--date", help="Run date, YYYY-MM-DD (default: the latest).")] = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait if another run holds the store.")] = 0.0,
) -> None:
    """(Re)write a published run's XLSX work lists from its Parquet files, e.g. after a crash before they were
    ready; workbooks whose rows are as in the previous run are carried over from it."""
    from dibao.publish.store import RunStore
    from dibao.publish.worklists import rewrite

    with _operator_errors():
        runs_store = RunStore(store)
        folder = _latest_run(store, date)
        run_date = dt.date.fromisoformat(folder.name)
        with runs_store.lock(wait_seconds=wait):
            previous = runs_store.previous(run_date)
            entry = rewrite(folder, runs_store.run_dir(previous) if previous else None)
    console.print(f"[green]work lists ready[/] {folder / 'worklists'}: {len(entry['files']):,} workbooks, "
                  f"{entry['written']:,} written, {entry['reused']:,} carried over from {entry['reused_from']} "
                  f"({entry['seconds']:.2f} s)", highlight=False)


@app.command()
def diff(
    date1: Annotated[str, typer.Argument(help="Earlier run date, YYYY-MM-DD.")],
    date2: Annotated[str, typer.Argument(help="Later run date, YYYY-MM-DD.")],
    store: Annotated[Path, typer.Option("--store", help="Run store folder.")] = Path("store"),
    limit: Annotated[int, typer.Option("--limit", help="Rows to print per list (the full diff: --out).")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Write the whole diff to this Parquet file.")] = None,
) -> None:
    """What changed between two published runs: added, resolved and changed items of every list."""
    from dibao.publish.state import Lists, diff_lists, summary_line

    with _operator_errors():
        first, second = _latest_run(store, date1), _latest_run(store, date2)
    later = Lists.read(second)
    day = dt.date.fromisoformat(second.name)
    changes = diff_lists(later, Lists.read(first), day)
    console.print(f"[bold]{first.name} → {second.name}: {summary_line(changes, later.exit, day)}[/]", highlight=False)
    for name, label in LIST_LABELS.items():
        rows = changes.filter(pl.col("list") == name)
        if rows.is_empty():
            continue
        table = Table("变化", "编号", "县", "乡镇", "说明", title=f"{label} ({rows.height:,})", title_justify="left")
        for r in rows.head(limit).iter_rows(named=True):
            table.add_row(CHANGE_LABELS[r["change"]], r["subject_id"], r["county_code"] or "", r["town"] or "",
                          r["detail"])
        console.print(table)
    if out is not None:
        changes.write_parquet(out)
        console.print(f"whole diff written to {out}")


def _latest_run(store: Path, date: str | None) -> Path:
    from dibao.publish.store import RunStore

    runs = RunStore(store)
    dates = runs.published_dates()
    if not dates:
        raise DibaoError(f"{store}: no published run (run `dibao run` first)")
    chosen = parse_date_option(date, "date") if date else dates[-1]
    if chosen not in dates:
        raise DibaoError(f"{store}: no run for {chosen} (published: {', '.join(map(str, dates[-5:]))})")
    return runs.run_dir(chosen)


@app.command()
def explain(
    query: Annotated[str, typer.Argument(help="ID number (15/18 digits, any formatting) or a household number.")],
    store: Annotated[Path, typer.Option("--store", help="Run store folder.")] = Path("store"),
    date: Annotated[str | None, typer.Option("--date", help="Run date (default: the latest).")] = None,
) -> None:
    """Explain one household or person: every decision with its figures, parameters, policy and link evidence,
    and the lists each household was on in every published run (what the API's /households answers)."""
    from dibao.explain import explain as explain_query

    with _operator_errors():
        result = explain_query(_latest_run(store, date), query)
    who = f"证件号码 {result.person_key}" if result.person_key else f"家庭编号 {result.query}"
    console.print(f"[bold]{who}[/] — 运行日期 {result.run}，跨系统共 {len(result.households)} 户", highlight=False)
    for household in result.households:
        _print_household(household)


def _print_household(hh: Household) -> None:
    from dibao.explain import figure_text

    console.rule(f"{hh.kind_label} {hh.household_id} ({hh.source})")
    place = " ".join(p for p in (hh.town, hh.village) if p)
    head = " ".join(p for p in (hh.head_name, hh.head_id) if p)
    if head or place:
        console.print(f"户主 {head or '-'}" + (f"；{place}" if place else ""), highlight=False)
    console.print("；".join(f"{f.label} {figure_text(f.words)}" for f in hh.facts if f.value is not None),
                  highlight=False)
    if hh.grace_until:
        console.print(f"[yellow]渐退帮扶期至 {hh.grace_until}[/] (自 {hh.grace_start or hh.first_seen} 起；"
                      f"首次列入应退尽退 {hh.first_seen})", highlight=False)
    elif hh.first_seen:
        console.print(f"首次列入应退尽退 {hh.first_seen}", highlight=False)
    if not hh.decisions:
        console.print("[green]未发现问题[/] (no findings)")
    for d in hh.decisions:
        console.print(f"[bold red]【{d.outcome_label}】{d.code}[/] {d.detail}", highlight=False)
        if d.due_date:
            console.print(f"    办理期限 {d.due_date}", highlight=False)
        for name, p in d.parameters.items():
            carried = "，已过期沿用" if p.carried_forward else ""
            console.print(f"    参数 {name} = {figure_text(p.value)} {p.unit_label or ''}"
                          f" (自 {p.from_} 起执行{carried})", highlight=False)
        console.print(f"    依据：{d.reference}", highlight=False)
    table = Table("姓名", "人员标识", "来源", "行", "关联方式", "得分", "依据")
    for m in hh.members:
        table.add_row(m.name or "-", m.person_key, m.source, str(m.row), m.method_label,
                      "-" if m.score is None else f"{m.score:.2f}", ",".join(m.evidence or []))
    console.print(table)
    console.print(f"历次名单 (lists in the {len(hh.history)} published runs up to this one):", highlight=False)
    for first, last, lists in _episodes(hh.history):
        days = str(first) if first == last else f"{first} 至 {last}"
        text = "；".join(f"{e.list_label}：{'、'.join(e.reason_labels)}" for e in lists) or "不在名单"
        console.print(f"  {days}  {text}", highlight=False)


def _episodes(history: tuple[HistoryDay, ...]) -> list[tuple[dt.date, dt.date, tuple[ListEntry, ...]]]:
    """Consecutive runs with the same lists and reasons, as (first run, last run, lists)."""
    episodes: list[tuple[dt.date, dt.date, tuple[ListEntry, ...]]] = []
    for day in history:
        if episodes and episodes[-1][2] == day.lists:
            episodes[-1] = (episodes[-1][0], day.run_date, day.lists)
        else:
            episodes.append((day.run_date, day.run_date, day.lists))
    return episodes


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
    from dibao_synth import generate

    if formats not in ("mixed", "csv", "parquet"):
        raise typer.BadParameter("expected mixed, csv or parquet", param_hint="--formats")
    with console.status(f"generating {households:,} households…"):
        summary = generate(households=households, seed=seed, out=out, truth_out=truth,
                           as_of=parse_date_option(date, "--date"), formats=formats)
    console.print(summary)


token_app = typer.Typer(help="API bearer tokens (stored hashed): add, list and revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")
StoreOption = Annotated[Path, typer.Option("--store", help="Run store folder.")]
TokensOption = Annotated[Path | None, typer.Option("--tokens", help="Tokens file (default: STORE/tokens.yaml).")]


@token_app.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="Who the token is for (shown in the audit log).")],
    role: Annotated[str, typer.Option("--role", help="caseworker | analyst | admin")],
    county: Annotated[list[str] | None, typer.Option("--county", help="County code a caseworker may see "
                                                                       "(repeatable).")] = None,
    store: StoreOption = Path("store"),
    tokens: TokensOption = None,
    expires: Annotated[str, typer.Option("--expires", help="When the token stops working: 90d, 12h, 2w from now, "
                                                           "a date YYYY-MM-DD (valid through that day), or never.")]
    = "90d",
    allow_unknown_county: Annotated[bool, typer.Option(
        "--allow-unknown-county", help="Accept a county code the store's latest run does not have (a county "
                                       "joining before its first run).")] = False,
) -> None:
    """Create a token; it is printed once and only its SHA-256 hash is kept. County codes must be counties of
    the store's latest run."""
    from dibao.serve.tokens import add_token, check_counties, parse_expiry, store_counties

    with _operator_errors():
        try:
            until = parse_expiry(expires)
            if not allow_unknown_county:
                check_counties(county or [], store_counties(store), store)
            secret = add_token(tokens or store / "tokens.yaml", name, role, county or [], lifetime=None,
                               expires=until)
        except ValueError as exc:
            raise DibaoError(str(exc)) from None
    valid = f"expires {until.astimezone():%Y-%m-%d %H:%M %Z}" if until else "never expires"
    console.print(f"token for {name} ({role}; counties: {', '.join(county or []) or 'all'}; {valid}) — shown once:",
                  highlight=False)
    console.print(secret, highlight=False)


@token_app.command("list")
def token_list(store: StoreOption = Path("store"), tokens: TokensOption = None) -> None:
    """The tokens of the file: name, role, counties, created, expires (never the token or its hash)."""
    from dibao.serve.tokens import list_tokens

    tokens_file = tokens or store / "tokens.yaml"
    with _operator_errors():
        try:
            infos = list_tokens(tokens_file)
        except ValueError as exc:
            raise DibaoError(f"{exc} — 令牌文件损坏，服务将拒绝所有令牌 (the server refuses every token until this is "
                             f"fixed)") from None
    now = dt.datetime.now(dt.UTC)
    table = Table("name", "role", "counties", "created", "expires", title=f"tokens in {tokens_file} "
                  f"({len(infos)})", title_justify="left")
    for info in infos:
        if info.expires is None:
            until = "never"
        else:
            until = f"{info.expires.astimezone():%Y-%m-%d %H:%M}"
            until += " [red](expired)[/]" if info.expires <= now else ""
        table.add_row(info.name, info.role, ", ".join(info.counties) or "all", info.created or "-", until)
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument()], store: StoreOption = Path("store"),
                 tokens: TokensOption = None) -> None:
    """Remove a token by name."""
    from dibao.serve.tokens import revoke_token

    removed = revoke_token(tokens or store / "tokens.yaml", name)
    console.print(f"revoked {name}" if removed else f"no token named {name}")
    if not removed:
        raise typer.Exit(1)


@app.command()
def serve(
    store: StoreOption = Path("store"),
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    tokens: TokensOption = None,
    workers: Annotated[int, typer.Option("--workers", help="Server processes.")] = 1,
    limits: Annotated[Path | None, typer.Option("--limits", help="Throttling limits (YAML; default: "
                                                "$DIBAO_API_LIMITS, else STORE/limits.yaml if present).")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Serve HTTPS: PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Serve HTTPS: PEM private key.")] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips", help="Reverse proxies trusted to name the client (X-Forwarded-For).")] = None,
) -> None:
    """Serve the latest published run over HTTP (FastAPI; OpenAPI docs at /docs). Switches to new runs itself."""
    from dibao.serve.server import serve as run_server

    with _operator_errors():
        run_server(store, host, port, tokens, workers=workers, limits_file=limits, tls_cert=tls_cert,
                   tls_key=tls_key, forwarded_allow_ips=forwarded_allow_ips)


# dibao audit [--verify | --find-id N | anchor]: dibao/serve/audit/commands.py
app.add_typer(audit_commands, name="audit")


@app.command("demo-access")
def demo_access(store: StoreOption = Path("store"), port: int = 8000) -> None:
    """Create demo tokens for each role and print how to start the service, call it and open its web pages."""
    from dibao.publish.state import Lists
    from dibao.serve.tokens import add_token, revoke_token

    with _operator_errors():
        run = _latest_run(store, None)
    exits = Lists.read(run).exit
    county = exits["county_code"][0] if exits.height else "340402"
    household = exits.filter(pl.col("county_code") == county)["dibao_household_id"][0] if exits.height else "?"
    tokens_file = store / "tokens.yaml"
    secrets = {}
    for name, role, counties in (("demo-caseworker", "caseworker", [county]), ("demo-analyst", "analyst", []),
                                 ("demo-admin", "admin", [])):
        revoke_token(tokens_file, name)
        secrets[role] = add_token(tokens_file, name, role, counties)
    url = f"http://127.0.0.1:{port}"
    console.print(f"\n=== the API: start it with\n  .venv/bin/dibao serve --store {store} --port {port}\n"
                  f"then (OpenAPI docs at {url}/docs):", highlight=False)
    console.print(f"  # caseworker of county {county}: one household, with every decision explained\n"
                  f"  curl -H 'Authorization: Bearer {secrets['caseworker']}' {url}/households/{household}\n"
                  f"  # analyst: coverage rates only (personal data is refused)\n"
                  f"  curl -H 'Authorization: Bearer {secrets['analyst']}' '{url}/coverage?level=province'\n"
                  f"  # admin: the province's 应退尽退 work list\n"
                  f"  curl -H 'Authorization: Bearer {secrets['admin']}' '{url}/candidates?type=exit&size=5'\n"
                  f"  # who read what: .venv/bin/dibao audit --store {store}", highlight=False, soft_wrap=True)
    console.print(f"\n=== the web pages (户查询, 工作清单, 覆盖率, 运行): open {url}/ui/ in a browser and log in with\n"
                  f"  caseworker of county {county}: {secrets['caseworker']}\n"
                  + (f"    then type {household} into 户查询 to see why it was flagged\n" if exits.height else "")
                  + f"  analyst (coverage chart, runs): {secrets['analyst']}\n"
                  f"  admin (everything): {secrets['admin']}", highlight=False, soft_wrap=True)


def main() -> None:  # pragma: no cover - entry point for `python -m dibao`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
