"""A whole province every morning: the daily run beside a DuckDB floor, in one benchmark invocation.

    .venv/bin/python benchmarks/province.py --sizes 200000,2000000

For each size it generates (or reuses, under benchmarks/work/) a synthetic drop, then runs, each in a fresh child
process whose wall time and peak RSS are measured by the parent (``os.wait4``):

1. **the floor** — DuckDB alone doing the least a daily comparison must: read every file (GB18030 converted with
   ``iconv``, XLSX through fastexcel, Parquet directly), upper/trim the IDs, join the roll's persons exactly by ID
   to registry, monitoring, bank and department records, one row per roll household with two thresholds, Parquet
   out. No validation, no linkage repair, no rules engine: what no engine can go below;
2. **day 1** — ``dibao run --profile`` on the drop into a fresh store: time until the Parquet run is published
   (the manifest's stage timings), until the work lists are ready, peak RSS, per-stage time and peak memory;
3. **day 2, unchanged** — the same drop the next day (incremental: unchanged files come from the store's cache);
4. **day 3, 1% of roll rows changed** — the drop with 1% of the roll's households' 月保障金额 changed.

It prints one table per size and the ratios the targets are written in (run / floor; day 2 / day 1; memory per
household between the two sizes). Record the command and the figures in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
DIBAO = [sys.executable, "-m", "dibao"]
DAY1 = dt.date(2026, 11, 20)


def measured(command: list[str], cwd: Path = ROOT) -> tuple[float, float, int]:
    """Run ``command`` in a child process: (wall seconds, peak RSS MiB, exit code) of that child alone."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if child.stderr is not None:
        err = child.stderr.read().decode("utf-8", "replace")
        child.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            print(err[-2000:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def ensure_drop(households: int, seed: int) -> Path:
    drop = WORK / f"drop-{households}"
    if not (drop / "counties.xlsx").exists() and not any(drop.glob("counties.*")):
        from dibao_synth import generate

        generate(households=households, seed=seed, out=drop, truth_out=WORK / f"truth-{households}")
    return drop


# --- the floor ---------------------------------------------------------------------------------------------------

def _utf8_copy(path: Path, scratch: Path) -> Path:
    """A UTF-8 copy of a GB18030 CSV made by iconv (a UTF-8 file is used as it is)."""
    head = path.read_bytes()[:65536]
    try:
        head.decode("utf-8")
        return path
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the end of the sample
            return path
    out = scratch / path.name
    with out.open("wb") as sink:
        subprocess.run(["iconv", "-f", "GB18030", "-t", "UTF-8", str(path)], stdout=sink, check=True)
    return out


def floor(drop: Path, out: Path) -> None:
    """The DuckDB floor (run in a child process by ``main``)."""
    import duckdb
    import fastexcel

    from dibao.headers import load_header_table

    headers = load_header_table()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted(drop.iterdir()):
            stem = path.stem
            if stem not in headers.by_stem:
                continue
            if path.suffix == ".csv":
                source = f"read_csv('{_utf8_copy(path, Path(scratch))}', all_varchar = true, header = true)"
                con.execute(f"CREATE TABLE raw_{stem} AS SELECT * FROM {source}")
            elif path.suffix == ".parquet":
                con.execute(f"CREATE TABLE raw_{stem} AS SELECT * FROM read_parquet('{path}')")
            elif path.suffix == ".xlsx":
                sheet = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_arrow()
                con.register(f"arrow_{stem}", sheet)
                con.execute(f"CREATE TABLE raw_{stem} AS SELECT * FROM arrow_{stem}")
            names = [row[0] for row in con.execute(f"DESCRIBE raw_{stem}").fetchall()]
            renames = ", ".join(f'"{n}" AS {headers.resolve(stem, n)}' for n in names if headers.resolve(stem, n))
            con.execute(f"CREATE TABLE {stem} AS SELECT {renames} FROM raw_{stem}")
            con.execute(f"DROP TABLE raw_{stem}")
    money = "try_cast(replace({c}, ',', '') AS DECIMAL(18, 2))"
    con.execute(f"""
COPY (
  WITH roll AS (
    SELECT upper(trim(id_number)) AS id, dibao_household_id AS hh, any_value(county_code) OVER w AS county,
           any_value(area) OVER w AS area
    FROM dibao_roll WINDOW w AS (PARTITION BY dibao_household_id)
  ), reg AS (
    SELECT upper(trim(id_number)) AS id, household_id,
           ({money.format(c='wage_income')} * 0.8 + {money.format(c='other_net_income')})
             / try_cast(household_size AS INTEGER) / 12 AS per_capita
    FROM registry
  ), mon AS (
    SELECT upper(trim(id_number)) AS id, ({money.format(c='wage_income')} * 0.8
           + {money.format(c='other_net_income')}) / count(*) OVER (PARTITION BY household_id) / 12 AS per_capita
    FROM monitoring
  ), bank AS (
    SELECT upper(trim(id_number)) AS id, sum({money.format(c='balance')}) AS balance FROM bank_assets GROUP BY 1
  ), dept AS (
    SELECT upper(trim(id_number)) AS id, count(*) FILTER (WHERE item = '机动车') AS vehicles,
           bool_or(item = '死亡') AS dead
    FROM dept_facts GROUP BY 1
  )
  SELECT roll.hh, any_value(roll.county) AS county, any_value(roll.area) AS area, count(*) AS members,
         max(coalesce(mon.per_capita, reg.per_capita)) >= 760 AS income_above_standard,
         sum(coalesce(bank.balance, 0)) / count(*) >= 24 * 760 AS assets_above_limit,
         sum(coalesce(dept.vehicles, 0)) AS vehicles, bool_or(coalesce(dept.dead, FALSE)) AS deceased
  FROM roll LEFT JOIN reg USING (id) LEFT JOIN mon USING (id) LEFT JOIN bank USING (id) LEFT JOIN dept USING (id)
  GROUP BY roll.hh
) TO '{out}' (FORMAT parquet)""")
    con.close()


# --- the daily job -----------------------------------------------------------------------------------------------

def roll_changed_copy(drop: Path, target: Path, share: float = 0.01) -> Path:
    """The drop with ``share`` of the roll's households' 月保障金额 raised by one yuan (other files linked)."""
    import polars as pl

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in drop.iterdir():
        if not path.stem.startswith("dibao_roll"):
            os.link(path, target / path.name)
    roll = next(drop.glob("dibao_roll.*"))
    frame = pl.read_csv(roll, infer_schema=False, encoding="utf8-lossy")
    number = next(c for c in frame.columns if "低保家庭编号" in c or "家庭编号" in c)
    benefit = next(c for c in frame.columns if "保障金额" in c)
    households = frame[number].unique().sort()
    chosen = households.gather(list(range(0, households.len(), max(int(1 / share), 1))))
    frame = frame.with_columns(
        pl.when(pl.col(number).is_in(chosen.implode()))
        .then((pl.col(benefit).cast(pl.Float64, strict=False) + 1).cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col(benefit)).alias(benefit))
    frame.write_csv(target / "dibao_roll.csv", include_bom=True)
    return target


def run_day(drop: Path, store: Path, date: dt.date) -> dict[str, object]:
    wall, peak, code = measured([*DIBAO, "run", "--inputs", str(drop), "--date", date.isoformat(), "--store",
                                 str(store), "--profile"])
    if code != 0:
        return {"wall": wall, "peak_mib": peak, "exit": code}
    manifest = json.loads((store / "runs" / date.isoformat() / "manifest.json").read_text(encoding="utf-8"))
    stages = manifest.get("profile", {})
    ready = manifest.get("worklists", {})
    ready = ready if isinstance(ready, dict) else {"files": len(ready)}
    # --profile resets the kernel's high-water mark at each stage, which the child's rusage reports at exit: the
    # process's peak is the largest stage peak (or rusage's, for what ran outside the stages).
    peak = max([peak, *(float(s["peak_rss_mib"] or 0) for s in stages.values())])
    # Parquet published: the whole process less the work lists written after the publish (and the exit).
    lists_s = float(ready.get("seconds") or 0)
    return {"wall": wall, "peak_mib": peak, "exit": 0, "stages": stages, "parquet_s": wall - lists_s,
            "worklists_ready_s": wall, "worklists": {k: ready.get(k) for k in ("status", "seconds", "written",
                                                                               "reused", "workers")},
            "cache": manifest.get("cache")}


def bench(households: int, seed: int, days: bool) -> dict[str, object]:
    drop = ensure_drop(households, seed)
    result: dict[str, object] = {"households": households}
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        out = Path(tmp) / "floor.parquet"
        wall, peak, code = measured([sys.executable, __file__, "floor", str(drop), str(out)])
        result["floor"] = {"wall": wall, "peak_mib": peak, "exit": code}
        store = Path(tmp) / "store"
        result["day1"] = run_day(drop, store, DAY1)
        if days:
            result["day2_unchanged"] = run_day(drop, store, DAY1 + dt.timedelta(days=1))
            changed = roll_changed_copy(drop, Path(tmp) / "drop-changed")
            result["day3_roll_1pct"] = run_day(changed, store, DAY1 + dt.timedelta(days=2))
    return result


def report(results: list[dict[str, object]]) -> None:
    for r in results:
        floor_s = r["floor"]["wall"]  # type: ignore[index]
        day1 = r["day1"]  # type: ignore[assignment]
        print(f"\n## {r['households']:,} households")
        print("| what | wall s | peak RSS MiB | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| floor (DuckDB) | {floor_s:.1f} | {r['floor']['peak_mib']:,.0f} | 1.0 |")  # type: ignore[index]
        print(f"| day 1 whole process | {day1['wall']:.1f} | {day1['peak_mib']:,.0f} | "  # type: ignore[index]
              f"{day1['wall'] / floor_s:.1f}× floor |")  # type: ignore[index]
        if "parquet_s" in day1:  # type: ignore[operator]
            print(f"| day 1 Parquet published | {day1['parquet_s']:.1f} | | "  # type: ignore[index]
                  f"{day1['parquet_s'] / floor_s:.1f}× floor |")  # type: ignore[index]
        for name, stage in day1.get("stages", {}).items():  # type: ignore[attr-defined]
            print(f"| · {name} | {stage['seconds']:.1f} | {stage['peak_rss_mib'] or 0:,.0f} | "
                  f"{stage['seconds'] / floor_s:.2f}× floor |")
        for key in ("day2_unchanged", "day3_roll_1pct"):
            if key in r:
                day = r[key]  # type: ignore[assignment]
                print(f"| {key} | {day['wall']:.1f} | {day['peak_mib']:,.0f} | "  # type: ignore[index]
                      f"{day['wall'] / day1['wall']:.0%} of day 1 |")  # type: ignore[index]
    if len(results) >= 2:
        small, large = results[0], results[-1]
        grow = ((large["day1"]["peak_mib"] - small["day1"]["peak_mib"]) * 1024  # type: ignore[index]
                / (int(large["households"]) - int(small["households"])))  # type: ignore[call-overload]
        floor_grow = ((large["floor"]["peak_mib"] - small["floor"]["peak_mib"]) * 1024  # type: ignore[index]
                      / (int(large["households"]) - int(small["households"])))  # type: ignore[call-overload]
        print(f"\nmemory growth per added household: run {grow:.2f} KiB, floor {floor_grow:.2f} KiB")
    print(json.dumps(results, indent=1, default=str))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "floor":
        floor(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="200000,2000000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-days", action="store_true", help="day 1 only (no day 2 / day 3)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = [bench(int(n), args.seed, not args.no_days) for n in args.sizes.split(",")]
    report(results)
    print(f"benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
