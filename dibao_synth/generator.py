"""``generate``: one synthetic daily drop of the sample province, with its ground truth.

Each step draws from its own random stream (seed, step number), so changing one step does not reshuffle the
others, and the same seed and arguments give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from dibao.schema import FILE_SPECS
from dibao_synth import sources
from dibao_synth.assets import build_bank_accounts
from dibao_synth.conditions import draw_conditions
from dibao_synth.facts import build_facts
from dibao_synth.income import assign_income, monitoring_status
from dibao_synth.noise import apply_id_noise, apply_name_noise, apply_row_faults
from dibao_synth.params import COUNTIES, DEFAULT_AS_OF, staff_count
from dibao_synth.places import build_places
from dibao_synth.policy import load_policy
from dibao_synth.population import build_population
from dibao_synth.problems import plant_extra_roll_rows, plant_no_work_capacity
from dibao_synth.programmes import assign_programmes, assign_segments
from dibao_synth.relatives import build_relatives, split_staff
from dibao_synth.rollforms import assign_roll_forms
from dibao_synth.truth import RECORD_SCHEMA, build_summary, household_truth, person_truth, write_truth
from dibao_synth.truth_policy import Inputs
from dibao_synth.writers import write_table

PERSON_SOURCES = ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts")
MIN_HOUSEHOLDS_FOR_FAULTS = 200


@dataclass(frozen=True)
class SynthSummary:
    """What was written: rows, format and encoding per file, and how long it took."""

    out: Path
    truth_out: Path
    households: int
    persons: int
    rows: dict[str, int]
    paths: dict[str, Path]
    formats: dict[str, str]
    encodings: dict[str, str | None]
    xlsx_fallbacks: tuple[str, ...]  # stems planned as XLSX but written as CSV GB18030 (too many rows)
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def generate(households: int, seed: int, out: Path, truth_out: Path | None = None,
             as_of: dt.date = DEFAULT_AS_OF, formats: str = "mixed") -> SynthSummary:
    """Write a drop of ``households`` households to ``out`` and its truth to ``truth_out`` (default
    ``<out>_truth``). Files of an earlier drop with the same stems are replaced."""
    if households < 1:
        raise ValueError("households must be at least 1")
    if formats not in ("mixed", "csv", "parquet"):
        raise ValueError(f"formats must be mixed, csv or parquet, not {formats!r}")
    start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    truth_out = Path(truth_out) if truth_out is not None else out.with_name(out.name + "_truth")
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_files(out)

    def rng(step: int) -> np.random.Generator:
        return np.random.default_rng([seed, step])

    def lap(name: str, t: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - t, 3)
        return now

    t = start
    policy = load_policy(as_of)
    places = build_places(rng(1))
    in_reg, in_mon, on_roll = assign_segments(rng(2), households)
    from_pop, outsiders = split_staff(staff_count(households))
    pop = build_population(rng(3), households, places, in_reg, in_mon, on_roll, outsiders, as_of)
    t = lap("population", t)
    hh = assign_programmes(rng(4), pop.households, pop.persons, places, as_of)
    hh, persons = assign_roll_forms(rng(12), hh, pop.persons, as_of)
    persons = plant_no_work_capacity(rng(5), hh, persons)
    extra = plant_extra_roll_rows(rng(7), hh, persons)
    conditions, persons = draw_conditions(rng(13), hh, persons, as_of)
    hh = assign_income(rng(6), hh, persons, extra, as_of).with_columns(
        pl.Series("standard_policy", policy.per_household("dibao_standard", hh["county_code"], hh["area"])))
    hh = monitoring_status(rng(14), hh, as_of, policy.value("monitoring_income_line"))
    accounts, _ = build_bank_accounts(rng(8), hh, persons, as_of)
    facts = build_facts(rng(9), hh, persons, conditions, as_of)
    pairs = build_relatives(rng(10), hh, persons, from_pop)
    t = lap("programmes", t)

    typed = {
        "registry": sources.build_registry(persons, hh),
        "monitoring": sources.build_monitoring(persons, hh),
        "dibao_roll": sources.build_roll(persons, hh, extra),
        "bank_assets": sources.build_bank(persons, accounts),
        "dept_facts": sources.build_dept(persons, facts),
        "relatives": sources.build_relatives_file(persons, pairs),
    }
    typed["counties"] = sources.build_counties(_rural_population(rng(11), typed["dibao_roll"], hh))
    t = lap("tables", t)

    true_ids = persons["id_number"]
    person_cols = persons.select(
        pl.col("person_uid").alias("_person"), "id17", "age", "surname_len", "minority",
        pl.col("birth_date").dt.year().alias("birth_year"))
    records: list[pl.DataFrame] = []
    written = {}
    for step, stem in enumerate(FILE_SPECS, start=20):  # loop over the seven files
        r = rng(step)
        frame = sources.to_text(typed[stem], stem, r)
        if stem in PERSON_SOURCES:
            frame, rec = _noisy(r, stem, frame, person_cols, true_ids, households)
            records.append(rec)
        written[stem] = write_table(frame, FILE_SPECS[stem], out, formats)
        t = lap(f"write_{stem}", t)

    record_truth = pl.concat(records)
    hh_truth = household_truth(Inputs(hh, persons, extra, facts, accounts, record_truth, policy), pairs)
    rows = {stem: w.rows for stem, w in written.items()}
    summary = build_summary(hh_truth, record_truth, pairs, persons, rows)
    summary["files"] = {s: {"name": w.path.name, "format": w.format, "encoding": w.encoding,
                            "xlsx_fallback": w.xlsx_fallback} for s, w in written.items()}
    summary["as_of"] = as_of.isoformat()
    summary["seed"] = seed
    write_truth(truth_out, {
        "persons": person_truth(persons),
        "records": record_truth,
        "households": hh_truth,
        "relatives": pairs.select("row", "staff_person_uid", "staff_role", "relative_person_uid",
                                  "relative_household_uid", "relation", "status",
                                  (pl.col("status") != "absent").alias("in_file"), "relative_on_roll"),
    }, summary)
    lap("truth", t)
    return SynthSummary(
        out=out, truth_out=truth_out, households=households,
        persons=int((persons["household_uid"] >= 0).sum()),
        rows=rows,
        paths={s: w.path for s, w in written.items()},
        formats={s: w.format for s, w in written.items()},
        encodings={s: w.encoding for s, w in written.items()},
        xlsx_fallbacks=tuple(s for s, w in written.items() if w.xlsx_fallback),
        seconds=round(time.perf_counter() - start, 3),
        timings=timings,
    )


def _remove_stale_files(out: Path) -> None:
    """Remove files of a previous drop in another format (``registry.parquet`` beside a new ``registry.csv``
    would be two files for one stem, which ingestion refuses). Only the seven contract names are touched."""
    for stem in FILE_SPECS:  # loop over the seven stems and three suffixes
        for suffix in (".csv", ".xlsx", ".parquet"):
            path = out / f"{stem}{suffix}"
            if path.is_file():
                path.unlink()


def _noisy(rng: np.random.Generator, stem: str, frame: pl.DataFrame, person_cols: pl.DataFrame,
           true_ids: pl.Series, households: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply ID noise, name noise and row faults to one person-level file; return it and its record truth."""
    info = frame.select("_person").join(person_cols, on="_person", how="left", maintain_order="left")
    allow_blank = stem in ("registry", "monitoring", "dibao_roll")
    ids, id_kind = apply_id_noise(
        rng, stem, frame["id_number"], info["id17"].to_numpy(), info["birth_year"].to_numpy(),
        info["age"].to_numpy(), allow_blank=allow_blank, true_ids=true_ids)
    names, name_kind = apply_name_noise(rng, stem, frame["name"], info["surname_len"].to_numpy(),
                                        info["minority"].to_numpy())
    frame = frame.with_columns(ids.alias("id_number"), names.alias("name"))
    frame, reject = apply_row_faults(rng, stem, frame, frame["_extra"].to_numpy(),
                                     households >= MIN_HOUSEHOLDS_FOR_FAULTS)
    blank_name = (reject == "name").fill_null(False)
    records = pl.DataFrame({
        "source": pl.Series([stem]).gather(np.zeros(frame.height, dtype=np.int64)),
        "row": np.arange(1, frame.height + 1, dtype=np.int64),
        "person_uid": frame["_person"],
        "household_uid": frame["_household"],
        "id_noise": id_kind,
        "name_noise": pl.select(pl.when(blank_name).then(None).otherwise(name_kind)).to_series(),
        "expected_reject_field": reject,
        "extra_enrolment": frame["_extra"],
    }, schema=RECORD_SCHEMA)
    return frame, records


def _rural_population(rng: np.random.Generator, roll: pl.DataFrame, hh: pl.DataFrame) -> np.ndarray:
    """农村户籍人口 per county such that rural 低保 coverage (rural roll persons / it) is 3–8 %."""
    rural = (
        roll.filter(pl.col("area") == "农村").group_by("county_code").agg(pl.col("_person").n_unique().alias("n"))
    )
    counts = dict(rural.iter_rows())
    rate = rng.uniform(0.03, 0.08, len(COUNTIES))
    persons = np.array([counts.get(c.code, 0) for c in COUNTIES], dtype=np.float64)
    return np.maximum(np.round(persons / rate), 20).astype(np.int64)
