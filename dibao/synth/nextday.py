"""``next_day``: the drop of the following morning — a copy of a generated drop with one day's realistic changes.

The daily batch is demonstrated on two consecutive days. Overnight the exports change the way real ones do:

1. **a death** (死亡): 公安局 reports that a member of a roll household died (one ``dept_facts`` row);
2. **an income rise** (渐退): a wage rise lifts a roll household's per-capita income just above its standard
   (``wage_income`` in the registry and/or monitoring rows of that family);
3. **a newly monitored household**: 2–4 persons identified today as 突发严重困难户, well below the standard and not
   covered (rows appended to ``monitoring``);
4. **a vehicle sold** (optional): the only 机动车 record of a roll household whose vehicle is its only exit reason
   is gone from ``dept_facts``.

Everything else stays as it was: unchanged files are copied byte for byte, and a changed file is rewritten in
its own format, encoding and header spelling with every other row exactly as written (values are read without
trimming, so the noise of day 1 — stray spaces, full-width digits — survives).

Households are chosen from the drop alone (a truth folder, when given, is only updated), and conservatively: a
household is changed only when every record of its members is clear — usable ID, row accepted, no noisy record
elsewhere that could be one of them — and the figures leave no doubt about its day-1 status (no exit reason,
income and assets clearly inside the limits). So the engine's reading of day 1 is certain, and each change has
exactly the effect named in the summary. Each change draws from its own random stream (seed, step, day 2),
so chained days with one seed still differ.

    python -m dibao.synth.nextday DROP OUT [--seed S] [--truth TRUTH] [--date YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import polars as pl
import polars.selectors as cs

from dibao.headers import HeaderTable, load_header_table
from dibao.ids import USABLE_STATUSES, check_chars_for, normalise_ids
from dibao.ingest import Drop, ingest_drop
from dibao.ingest.read import CSV_SUFFIXES, EXCEL_SUFFIXES, PARQUET_SUFFIXES, decode_text
from dibao.names import normalise_names
from dibao.schema import FILE_SPECS, MONITORING_CATEGORIES, Field, FieldType, FileSpec
from dibao.synth import names as nm
from dibao.synth.facts import DEPARTMENTS
from dibao.synth.params import ASSET_MONTHS, COUNTIES, EDGE_MULTIPLIER, EMPLOYMENT_COST_SHARE, MONITORING_LINE_YEAR
from dibao.synth.truth import build_summary
from dibao.synth.writers import _write_csv, _write_xlsx

PERSON_STEMS = ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts")
HOUSEHOLD_FIELD = {"registry": "household_id", "monitoring": "household_id", "dibao_roll": "dibao_household_id"}
INCOME_FIELDS = ("wage_income", "other_net_income", "medical_out_of_pocket", "education_spending")
# Where a person's name is taken from when the sources disagree (the registry is the cleanest).
_NAME_PRIORITY = {"registry": 0, "monitoring": 1, "dibao_roll": 2, "bank_assets": 3, "dept_facts": 4}

RISE_RANGE = (1.02, 1.10)  # the raised household's per-capita income lands this far above its standard
NEW_HOUSEHOLD_RANGE = (0.30, 0.60)  # the new monitored household's per-capita income, × the standard
MAX_RAISE = 1.5  # prefer households where a wage rise of at most 50 % does it
CLEAR_INCOME_SHARE = 0.9  # a household "clearly" eligible: income below this share of the standard
CLEAR_ASSET_SHARE = 0.8  # …and per-capita assets below this share of the limit
NEW_RISKS = ("因病", "因意外事故", "因灾", "因残")
NEW_RISK_WEIGHTS = (0.5, 0.25, 0.15, 0.10)
SUDDEN_HARDSHIP = MONITORING_CATEGORIES[2]  # 突发严重困难户
MIN_ID_DISTANCE = 3  # a new ID differs from every ID in the drop in at least this many characters
ELDERLY_AGE = 60

KINDS = {
    "death": "成员死亡 (member died)",
    "income_rise": "工资上涨, 收入超过低保标准 (wage rise above the standard, 渐退)",
    "new_monitored": "新识别突发严重困难户 (newly monitored household)",
    "vehicle_sold": "机动车已出售 (vehicle sold)",
}


@dataclass(frozen=True)
class Change:
    """One change between day 1 and day 2, and what the engine should make of it."""

    kind: str  # death | income_rise | new_monitored | vehicle_sold
    household_id: str  # 低保家庭编号 for roll households, 户编号 for the new monitored household
    persons: tuple[tuple[str, str], ...]  # (name, ID number) of the persons concerned
    files: tuple[str, ...]  # stems whose file changed
    detail: str
    expected: str  # the engine effect: "<list>: <reason> (<diff change>)"
    related_households: tuple[str, ...] = ()  # registry/monitoring households whose rows changed (source:id)
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NextDaySummary:
    """What ``next_day`` wrote: the two dates, each change, which files changed and which were copied."""

    drop: Path
    out: Path
    truth_out: Path | None
    seed: int
    day1: dt.date
    day2: dt.date
    changes: tuple[Change, ...]
    changed_files: dict[str, Path]
    copied_files: tuple[str, ...]
    skipped: tuple[str, ...]  # changes not made, and why

    def change(self, kind: str) -> Change | None:
        return next((c for c in self.changes if c.kind == kind), None)

    def lines(self) -> list[str]:
        out = [f"{self.drop} ({self.day1}) → {self.out} ({self.day2}), seed {self.seed}"]
        for c in self.changes:  # at most four changes
            people = "、".join(f"{name} {id_number}" for name, id_number in c.persons)
            out.append(f"- {KINDS[c.kind]}: {c.household_id} — {c.detail}")
            if people:
                out.append(f"    persons: {people}")
            out.append(f"    files: {', '.join(c.files)}; expected: {c.expected}")
        out.extend(f"- skipped: {why}" for why in self.skipped)
        out.append(f"changed files: {', '.join(p.name for p in self.changed_files.values()) or 'none'}; "
                   f"copied unchanged: {', '.join(self.copied_files) or 'none'}")
        if self.truth_out is not None:
            out.append(f"truth: {self.truth_out}")
        return out


# ---- reading and writing files exactly as they are ------------------------------------------------------------


@dataclass
class _RawFile:
    """One file with every value as written (nothing trimmed), its format, encoding and original headers."""

    stem: str
    path: Path
    format: str  # csv | xlsx | parquet
    encoding: str | None
    sheet: str | None
    frame: pl.DataFrame
    columns: dict[str, str]  # canonical field → header as written

    def header(self, name: str) -> str | None:
        return self.columns.get(name)


def _read_raw(stem: str, path: Path, headers: HeaderTable) -> _RawFile:
    suffix = path.suffix.lower()
    data = path.read_bytes()
    encoding = sheet = None
    if suffix in CSV_SUFFIXES:
        text, encoding = decode_text(path, data, None)
        if encoding not in ("utf-8", "utf-8-sig", "gb18030"):
            raise ValueError(f"{path.name}: cannot rewrite a CSV in {encoding}")
        first = text.split("\n", 1)[0]
        if "," not in first:
            raise ValueError(f"{path.name}: only comma-separated CSV can be rewritten")
        frame = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False, has_header=True)
        fmt = "csv"
    elif suffix in EXCEL_SUFFIXES:
        reader = fastexcel.read_excel(data)
        sheet = reader.sheet_names[0]
        frame = reader.load_sheet(0, dtypes="string").to_polars()
        fmt = "xlsx"
    elif suffix in PARQUET_SUFFIXES:
        frame = pl.read_parquet(io.BytesIO(data))
        fmt = "parquet"
    else:
        raise ValueError(f"{path.name}: unsupported format")
    columns: dict[str, str] = {}
    for header in frame.columns:  # loop over the file's columns
        canonical = headers.resolve(stem, header)
        if canonical is not None:
            columns.setdefault(canonical, header)
    return _RawFile(stem, path, fmt, encoding, sheet, frame, columns)


def _write_raw(raw: _RawFile, frame: pl.DataFrame, out: Path) -> Path:
    """Write ``frame`` (same columns as ``raw.frame``) in the format, encoding and sheet name ``raw`` had."""
    path = out / raw.path.name
    if raw.format == "csv":
        assert raw.encoding is not None
        _write_csv(frame, path, raw.encoding)
    elif raw.format == "xlsx":
        spec = FILE_SPECS[raw.stem]
        by_header = {h: n for n, h in raw.columns.items()}
        fields = tuple(spec.field(by_header[h]) if h in by_header else Field(h, h, FieldType.TEXT)
                       for h in frame.columns)
        sheet_spec = FileSpec(spec.stem, raw.sheet or spec.label, fields, spec.required_file, spec.person_level)
        _write_xlsx(frame, sheet_spec, path)
    else:
        frame.write_parquet(path, compression="zstd", statistics=False)
    return path


def _append(raw: _RawFile, frame: pl.DataFrame, rows: list[dict[str, str | None]]) -> pl.DataFrame:
    """Append rows given by canonical field name; columns the rows do not name stay blank."""
    by_header = {h: n for n, h in raw.columns.items()}
    data = {h: [r.get(by_header[h]) if h in by_header else None for r in rows] for h in frame.columns}
    new = pl.DataFrame(data, schema=dict.fromkeys(frame.columns, pl.String))
    return pl.concat([frame, new.cast(frame.schema, strict=False)])


def _set_values(frame: pl.DataFrame, header: str, rows: Sequence[int], value: str) -> pl.DataFrame:
    """Set one column to ``value`` in the given 1-based data rows."""
    dtype = frame.schema[header]
    hit = pl.int_range(1, pl.len() + 1).is_in(list(rows))
    return frame.with_columns(pl.when(hit).then(pl.lit(value).cast(dtype, strict=False)).otherwise(pl.col(header))
                              .alias(header))


def _money(value: float) -> str:
    """Amounts as the generator writes them: 1234 for whole yuan, 1234.5 / 1234.56 otherwise."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


# ---- what day 1 says: records, their clarity, and the households the engine is certain about -----------------


def _text(drop: Drop, stem: str, name: str) -> pl.Series:
    """One field of a file as text (trimmed, blank → null), or all nulls when the file lacks it."""
    f = drop.files[stem]
    header = f.column_map.get(name)
    if header is None:
        return pl.repeat(None, f.raw.frame.height, dtype=pl.String, eager=True)
    return f.raw.frame.get_column(header)


def _records(drop: Drop, today: dt.date) -> pl.DataFrame:
    """One row per record of every person-level file: ``clear`` when accepted with a usable ID."""
    frames = []
    usable = [s.value for s in USABLE_STATUSES]
    for stem in PERSON_STEMS:  # loop over the five person-level files
        f = drop.files.get(stem)
        if f is None:
            continue
        base = pl.DataFrame({
            "row": pl.int_range(1, f.raw.frame.height + 1, eager=True, dtype=pl.UInt32),
            "household": _text(drop, stem, HOUSEHOLD_FIELD.get(stem, "__none__")),
            "id_text": _text(drop, stem, "id_number"),
            "name": _text(drop, stem, "name"),
        })
        base = normalise_ids(base, "id_text", prefix="id_", today=today)
        base = base.hstack(normalise_names(base.get_column("name")))
        accepted = f.accepted.select("row", pl.lit(True).alias("accepted"))
        frames.append(base.join(accepted, on="row", how="left").select(
            pl.lit(stem).alias("source"), "row", "household", "name",
            pl.when(pl.col("id_status").is_in(usable)).then(pl.col("id_norm")).alias("id"),
            (pl.col("accepted").fill_null(False) & pl.col("id_status").is_in(usable)).alias("clear"),
            pl.col("id_norm").alias("id_any"), "name_pinyin", "id_region", "id_birth_date",
        ))
    return pl.concat(frames)


def _tainted(recs: pl.DataFrame) -> pl.DataFrame:
    """IDs that an unclear record (rejected, or without a usable ID) might also belong to: same name sound, or
    same birth place and date. Their households are left alone."""
    unclear = recs.filter(~pl.col("clear"))
    clear = recs.filter("clear")
    by_name = clear.join(unclear.select("name_pinyin").drop_nulls().unique(), on="name_pinyin", how="semi")
    by_birth = clear.join(unclear.select("id_region", "id_birth_date").drop_nulls().unique(),
                          on=["id_region", "id_birth_date"], how="semi")
    return pl.concat([by_name.select("id"), by_birth.select("id")]).unique()


def _standard(county_code: str, area: str) -> int:
    county = next(c for c in COUNTIES if c.code == county_code)
    return county.urban_standard if area == "城市" else county.rural_standard


def _standards() -> pl.DataFrame:
    """The monthly 低保 standard per county and area (DOMAIN.md §4, as the generator draws incomes against)."""
    return pl.DataFrame([(c.code, area, _standard(c.code, area)) for c in COUNTIES for area in ("城市", "农村")],
                        schema={"county_code": pl.String, "area": pl.String, "standard": pl.Int64}, orient="row")


def _roll_households(drop: Drop, recs: pl.DataFrame) -> pl.DataFrame:
    """Roll households whose day-1 reading is certain, with income, assets and department facts per household.

    Columns: dibao_household_id, county_code, area, assistance_type, ids (sorted), size, standard, pcm (per-capita
    monthly income as the engine computes it), income_households (null: a family in no registry or monitoring
    file, whose income is the roll's assessment), wage, other, medical, education, assets_pc,
    vehicles (countable 机动车 records), vehicle_rows, clean (no exit reason apart from a vehicle).
    """
    tainted = _tainted(recs)
    roll_typed = drop.frame_or_empty("dibao_roll").select(
        "row", "county_code", "area", "assistance_type", "assessed_monthly_income", "covered_persons")
    roll = recs.filter(pl.col("source") == "dibao_roll").join(roll_typed, on="row", how="left")
    in_many = roll.filter("clear").group_by("id").agg(pl.col("household").n_unique().alias("n")).filter(
        pl.col("n") > 1).select("id")
    roll = roll.with_columns(
        (pl.col("id").is_in(tainted["id"].implode()) | pl.col("id").is_in(in_many["id"].implode())).alias("doubt"))
    hh = roll.filter(pl.col("household").is_not_null()).group_by("household").agg(
        pl.len().alias("size"),
        pl.col("clear").all().alias("all_clear"),
        pl.col("doubt").any().alias("doubt"),
        pl.col("id").n_unique().alias("n_ids"),
        pl.col("id").sort().alias("ids"),
        pl.col("county_code").n_unique().alias("n_county"),
        pl.col("area").n_unique().alias("n_area"),
        pl.col("assistance_type").n_unique().alias("n_type"),
        pl.col("county_code").first(), pl.col("area").first(), pl.col("assistance_type").first(),
        pl.col("assessed_monthly_income").max().alias("assessed"), pl.col("covered_persons").max().alias("covered"),
    ).filter(
        pl.col("all_clear") & ~pl.col("doubt") & (pl.col("n_ids") == pl.col("size"))
        & (pl.col("n_county") == 1) & (pl.col("n_area") == 1) & (pl.col("n_type") == 1)
        & pl.col("county_code").is_in([c.code for c in COUNTIES])
    ).rename({"household": "dibao_household_id"}).drop("all_clear", "doubt", "n_ids", "n_county", "n_area", "n_type")

    income = _income_households(drop, recs)
    members = hh.select("dibao_household_id", pl.col("ids").alias("id")).explode("id")
    # Every registry/monitoring household holding one of the members must hold exactly these members.
    linked = members.join(income.select("key", "ids_i", "id_list"), left_on="id", right_on="id_list", how="inner")
    per_hh = linked.group_by("dibao_household_id").agg(
        pl.col("key").unique().sort().alias("income_households"),
        pl.col("ids_i").unique().alias("_sets"),
    )
    figures = (linked.select("dibao_household_id", "key").unique()
               .join(income.drop("ids_i", "id_list").unique("key"), on="key", how="left")
               .group_by("dibao_household_id").agg(
                   *[pl.col(c).n_unique().alias(f"_n_{c}") for c in (*INCOME_FIELDS, "size_i")],
                   *[pl.col(c).first() for c in (*INCOME_FIELDS, "size_i")],
                   pl.col("ok").all().alias("_ok"),
               ))
    # A family in no registry or monitoring file: the engine reads the roll's own assessed income.
    hh = hh.join(per_hh, on="dibao_household_id", how="left").join(figures, on="dibao_household_id", how="left")
    roll_only = pl.col("income_households").is_null()
    hh = hh.filter(
        (roll_only & (pl.col("covered").fill_null(pl.col("size")) == pl.col("size")) & pl.col("assessed").is_not_null())
        | (pl.col("_ok") & (pl.col("_sets").list.len() == 1) & (pl.col("_sets").list.first() == pl.col("ids"))
           & (pl.col("size_i") == pl.col("size"))
           & pl.all_horizontal(pl.col(f"_n_{c}") == 1 for c in (*INCOME_FIELDS, "size_i")))
    ).drop(cs.starts_with("_"), "covered", "size_i")

    keep = 1 - EMPLOYMENT_COST_SHARE
    net = pl.col("wage") * keep + pl.col("other") - pl.col("medical") - pl.col("education")
    hh = hh.rename({"wage_income": "wage", "other_net_income": "other", "medical_out_of_pocket": "medical",
                    "education_spending": "education"}).with_columns(
        pl.when(pl.col("income_households").is_null()).then(pl.col("assessed"))
        .otherwise(net / 12 / pl.col("size")).alias("pcm"),
    ).join(_standards(), on=["county_code", "area"], how="inner")

    # Assets and department facts of the members (clear records only: anything unclear tainted the household).
    bank = drop.frame_or_empty("bank_assets").select("row", "balance").join(
        recs.filter((pl.col("source") == "bank_assets") & pl.col("clear")).select("row", "id"), on="row")
    dept = drop.frame_or_empty("dept_facts").select("row", "item", "value").join(
        recs.filter((pl.col("source") == "dept_facts") & pl.col("clear")).select("row", "id"), on="row")
    value = pl.col("value").str.strip_chars()
    countable = (pl.col("item") == "机动车") & ~value.str.contains("残疾人").fill_null(False)
    member_facts = members.join(bank.group_by("id").agg(pl.col("balance").sum()), on="id", how="left").join(
        dept.group_by("id").agg(
            countable.sum().alias("vehicles"),
            pl.col("row").filter(countable).alias("vehicle_rows"),
            pl.col("item").is_in(["死亡", "工商登记", "财政供养"]).sum().alias("blocking"),
            (pl.col("item") == "工资收入").sum().alias("wage_facts"),
            pl.when(pl.col("item") == "不动产").then(value.cast(pl.Int64, strict=False)).max().alias("homes"),
        ), on="id", how="left",
    ).group_by("dibao_household_id").agg(
        pl.col("balance").sum().alias("assets"),
        pl.col("vehicles").sum(),
        pl.col("vehicle_rows").explode().drop_nulls().sort().alias("vehicle_rows"),
        pl.col("blocking").sum(),
        pl.col("wage_facts").sum(),
        pl.col("homes").max(),
    )
    hh = hh.join(member_facts, on="dibao_household_id", how="left").with_columns(
        (pl.col("assets").fill_null(0) / pl.col("size")).alias("assets_pc"))
    limit = pl.col("standard") * ASSET_MONTHS * CLEAR_ASSET_SHARE
    # Without a registry entry, a 人社局 wage record could become the income the engine reads: leave those alone.
    wages_known = pl.col("income_households").is_not_null() | (pl.col("wage_facts").fill_null(0) == 0)
    clean = ((pl.col("blocking").fill_null(0) == 0) & (pl.col("homes").fill_null(0) <= 1) & wages_known
             & (pl.col("assets_pc") < limit))
    return hh.with_columns(clean.alias("clean"), pl.col("vehicles").fill_null(0)).sort("dibao_household_id")


def _income_households(drop: Drop, recs: pl.DataFrame) -> pl.DataFrame:
    """Registry and monitoring households: ``key`` (source:household), their IDs, figures and size as the engine
    reads them, ``ok`` when every row is clear and the figures agree."""
    frames = []
    for stem in ("registry", "monitoring"):  # the two files that carry household income
        typed = drop.frame_or_empty(stem)
        size = pl.col("household_size") if stem == "registry" else pl.lit(None, dtype=pl.Int64)
        rows = recs.filter(pl.col("source") == stem).join(
            typed.select("row", *INCOME_FIELDS, size.alias("household_size")), on="row", how="left")
        frames.append(rows.filter(pl.col("household").is_not_null()).group_by("household").agg(
            pl.col("clear").all().alias("ok"),
            pl.col("id").sort().alias("ids_i"),
            pl.len().alias("_rows"),
            *[pl.col(c).fill_null(0).n_unique().alias(f"_n_{c}") for c in INCOME_FIELDS],
            *[pl.col(c).fill_null(0).first() for c in INCOME_FIELDS],
            pl.col("household_size").max().alias("_size"),
            pl.col("household_size").n_unique().alias("_n_size"),
        ).with_columns(
            (pl.lit(f"{stem}:") + pl.col("household")).alias("key"),
            pl.coalesce("_size", "_rows").alias("size_i"),
            (pl.col("ok") & pl.all_horizontal(pl.col(f"_n_{c}") == 1 for c in (*INCOME_FIELDS, "size"))).alias("ok"),
        ).select("key", "ok", "ids_i", *INCOME_FIELDS, "size_i"))
    income = pl.concat(frames)
    return income.with_columns(pl.col("ids_i").alias("id_list")).explode("id_list")


# ---- the four changes -----------------------------------------------------------------------------------------


def _age(id_number: str, day: dt.date) -> int:
    born = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _income_known_first(pool: pl.DataFrame) -> pl.DataFrame:
    """Households whose current income the registry or monitoring shows, if any; else roll-only families, whose
    income only the roll's last assessment shows (the engine cannot see a rise since, so the truth may still
    hold an income reason for them)."""
    known = pool.filter(pl.col("income_households").is_not_null())
    return known if known.height else pool


def _pick(rng: np.random.Generator, frame: pl.DataFrame) -> dict[str, Any]:
    return frame.row(int(rng.integers(0, frame.height)), named=True)


def _name_of(recs: pl.DataFrame, id_number: str) -> str:
    """The name most records give for an ID (the registry's spelling on a tie)."""
    names = recs.filter((pl.col("id") == id_number) & pl.col("clear") & pl.col("name").is_not_null())
    best = names.with_columns(pl.col("source").replace_strict(_NAME_PRIORITY, return_dtype=pl.Int64).alias("p")) \
        .group_by("name").agg(pl.len().alias("n"), pl.col("p").min()).sort(["n", "p", "name"],
                                                                            descending=[True, False, False])
    return str(best["name"][0])


def _rows_of(recs: pl.DataFrame, key: str) -> list[int]:
    source, household = key.split(":", 1)
    return recs.filter((pl.col("source") == source) & (pl.col("household") == household))["row"].to_list()


def _existing_ids(drop: Drop, recs: pl.DataFrame) -> np.ndarray:
    """Every 18-character ID-like value in the drop (usable or not) as an (n, 18) byte matrix."""
    found = [recs.get_column("id_any")]
    relatives = drop.frame("relatives")
    if relatives is not None:
        found += [relatives.get_column("staff_id_norm"), relatives.get_column("relative_id_norm")]
    ids = pl.concat(found).drop_nulls().unique().sort()
    ids = ids.filter(ids.str.contains(r"^[0-9]{17}[0-9X]$"))
    if ids.is_empty():
        return np.zeros((0, 18), dtype=np.uint8)
    return np.frombuffer(ids.str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, 18)


def _new_ids(rng: np.random.Generator, region: str, births: list[dt.date], male: list[bool],
             existing: np.ndarray) -> list[str]:
    """Valid IDs (GB 11643 check character) that are unique and far from every ID already in the drop."""
    out: list[str] = []
    taken = existing
    for birth, is_male in zip(births, male, strict=True):  # 2–4 persons
        for _ in range(1000):  # redraw the sequence number until the ID is far from all others
            seq = int(rng.integers(0, 500)) * 2 + int(is_male)
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            check = str(check_chars_for(np.array([[int(c) for c in first17]]))[0])
            candidate = first17 + check
            row = np.frombuffer(candidate.encode("ascii"), dtype=np.uint8)
            if len(taken) == 0 or int((taken != row).sum(axis=1).min()) >= MIN_ID_DISTANCE:
                out.append(candidate)
                taken = np.vstack([taken, row[None, :]])
                break
        else:  # pragma: no cover - 500 sequence numbers per day; a drop never fills them
            raise RuntimeError("could not draw a new unique ID")
    return out


@dataclass
class _NewHousehold:
    household_id: str
    county_code: str
    town: str
    village: str
    rows: list[dict[str, str | None]]
    persons: list[dict[str, object]]
    figures: dict[str, int]
    standard: int
    risk_type: str


def _new_household(rng: np.random.Generator, drop: Drop, recs: pl.DataFrame, day2: dt.date) -> _NewHousehold | None:
    """2–4 persons of a household identified today after a sudden hardship, in a real village."""
    monitoring = drop.frame("monitoring")
    if monitoring is None:
        return None
    places = monitoring.filter(
        pl.col("household_id").str.contains(r"^[0-9]{16}$") & pl.col("village").str.ends_with("村")
        & pl.col("county_code").is_in([c.code for c in COUNTIES]) & pl.col("town").is_not_null()
    ).select("county_code", "town", "village", pl.col("household_id").str.slice(0, 12).alias("prefix")).unique(
        "prefix").sort("prefix")
    if places.is_empty():
        return None
    place = _pick(rng, places)
    prefix = str(place["prefix"])
    numbers = recs.filter(pl.col("source").is_in(["registry", "monitoring"]))["household"].drop_nulls()
    ranks = numbers.filter(numbers.str.starts_with(prefix) & numbers.str.contains(r"^[0-9]{16}$")).str.slice(12)
    household_id = f"{prefix}{int(ranks.cast(pl.Int64).max() or 0) + 1:04d}"  # type: ignore[arg-type]

    size = int(rng.integers(2, 5))
    roles = ["户主", "配偶", "child", "child" if rng.random() < 0.5 else "parent"][:size]
    head_age = int(rng.integers(28, 56))
    head_male = bool(rng.random() < 0.85)
    ages, male = [head_age], [head_male]
    for role in roles[1:]:  # the other 1–3 members
        if role == "配偶":
            ages.append(int(np.clip(head_age + rng.integers(-6, 4), 20, 99)))
            male.append(not head_male)
        elif role == "child":
            ages.append(max(head_age - int(rng.integers(22, 36)), 1))
            male.append(bool(rng.random() < 0.52))
        else:
            ages.append(min(head_age + int(rng.integers(22, 33)), 92))
            male.append(bool(rng.random() < 0.4))
    surnames, weights = nm.surname_table()
    head_s, spouse_s, mother_s = (int(s) for s in rng.choice(len(surnames), size=3, p=weights))
    family_s = head_s if head_male else spouse_s
    surname_idx = [head_s, spouse_s] + [family_s if r == "child" else head_s if m else mother_s
                                        for r, m in zip(roles[2:], male[2:], strict=True)]
    names, _ = nm.draw_han_names(rng, np.array(surname_idx), np.array(male))
    relation = [r if r in ("户主", "配偶") else ("之子" if m else "之女") if r == "child" else ("之父" if m else "之母")
                for r, m in zip(roles, male, strict=True)]
    births = [day2 - dt.timedelta(days=round(a * 365.2425) + int(rng.integers(1, 365))) for a in ages]
    ids = _new_ids(rng, str(place["county_code"]), births, male, _existing_ids(drop, recs))

    standard = _standard(str(place["county_code"]), "农村")
    ratio = float(rng.uniform(*NEW_HOUSEHOLD_RANGE))
    net = round(ratio * standard * 12 * size)
    risk = str(rng.choice(NEW_RISKS, p=np.array(NEW_RISK_WEIGHTS)))
    medical = int(round(float(rng.uniform(6000, 25000)), -1)) if risk != "因灾" else 0
    students = sum(6 <= a <= 22 for a in ages)
    education = int(round(float(rng.uniform(800, 6000)) * min(students, 3), -1)) if students else 0
    gross = net + medical + education
    workers = sum(18 <= a < 60 for a in ages)
    keep = 1 - EMPLOYMENT_COST_SHARE
    wages = int(math.floor(gross * float(rng.uniform(0.45, 0.9)) / keep / 5) * 5) if workers else 0
    other = gross - round(wages * keep)
    figures = {"wage_income": wages, "other_net_income": other, "medical_out_of_pocket": medical,
               "education_spending": education}
    where = {"county_code": str(place["county_code"]), "town": str(place["town"]), "village": str(place["village"])}
    rows: list[dict[str, str | None]] = [
        {**where, "household_id": household_id, "name": str(name), "id_number": id_number, "relation": rel,
         **{k: str(v) for k, v in figures.items()}, "monitoring_category": SUDDEN_HARDSHIP,
         "identified_date": day2.isoformat(), "risk_type": risk, "risk_eliminated": "否"}
        for name, id_number, rel in zip(names.to_list(), ids, relation, strict=True)]
    persons = [{"name": str(name), "id_number": id_number, "relation": rel, "age": age, "male": m, "birth_date": b}
               for name, id_number, rel, age, m, b in zip(names.to_list(), ids, relation, ages, male, births,
                                                          strict=True)]
    return _NewHousehold(household_id, str(place["county_code"]), str(place["town"]), str(place["village"]), rows,
                         persons, figures, standard, risk)


# ---- the truth folder -----------------------------------------------------------------------------------------


@dataclass
class _TruthEdits:
    """What changed, in the terms of the truth tables."""

    deaths: list[str] = field(default_factory=list)  # dibao_household_id
    death_person: str | None = None  # ID number
    rises: dict[str, tuple[int, float]] = field(default_factory=dict)  # dibao_household_id → (net, pcm)
    vehicles_sold: list[str] = field(default_factory=list)  # dibao_household_id
    removed_dept_rows: list[int] = field(default_factory=list)
    appended: dict[str, list[str | None]] = field(default_factory=dict)  # stem → ID per appended row
    new_household: _NewHousehold | None = None


def _blank_row(schema: pl.Schema, values: dict[str, object]) -> pl.DataFrame:
    row: dict[str, object] = {c: (False if t == pl.Boolean else None) for c, t in schema.items()}
    row.update({k: v for k, v in values.items() if k in schema})
    return pl.DataFrame([row], schema=schema)


def _update_truth(truth: Path, truth_out: Path, edits: _TruthEdits, rows: dict[str, int],
                  files: dict[str, dict[str, object]], day2: dt.date, info: dict[str, object]) -> None:
    hh = pl.read_parquet(truth / "households.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    records = pl.read_parquet(truth / "records.parquet")
    relatives = pl.read_parquet(truth / "relatives.parquet")
    summary = json.loads((truth / "summary.json").read_text(encoding="utf-8"))

    on = pl.col("dibao_household_id")
    hh = hh.with_columns(pl.when(on.is_in(edits.deaths)).then(True).otherwise(pl.col("deceased_member"))
                         .alias("deceased_member"),
                         pl.when(on.is_in(edits.vehicles_sold)).then(False).otherwise(pl.col("vehicle")).alias("vehicle"))
    for household, (net, pcm) in edits.rises.items():  # one raised household
        hit = on == household
        hh = hh.with_columns(
            pl.when(hit).then(pl.lit(net)).otherwise(pl.col("net_annual_income")).alias("net_annual_income"),
            pl.when(hit).then(pl.lit(pcm)).otherwise(pl.col("per_capita_monthly_income"))
            .alias("per_capita_monthly_income"),
            pl.when(hit).then(pl.lit("just_above")).otherwise(pl.col("income_band")).alias("income_band"),
        )

    # New monitored household and its persons.
    new = edits.new_household
    changed = pl.col("dibao_household_id").is_in(edits.deaths + list(edits.rises) + edits.vehicles_sold)
    if new is not None:
        uid = int(hh["household_uid"].max() or 0) + 1  # type: ignore[arg-type]
        size = len(new.persons)
        new_net = new.figures["wage_income"] * (1 - EMPLOYMENT_COST_SHARE) + new.figures["other_net_income"] \
            - new.figures["medical_out_of_pocket"] - new.figures["education_spending"]
        hh = pl.concat([hh, _blank_row(hh.schema, {
            "household_uid": uid, "county_code": new.county_code, "area": "农村",
            "monitoring_household_id": new.household_id, "size": size, "per_capita_monthly_income": new_net / 12 / size,
            "standard": new.standard, "per_capita_assets": 0.0, "in_monitoring": True, "income_band": "eligible",
            "net_annual_income": round(new_net), "risk_eliminated": False, "risk_eliminated_below_line": False,
            "risk_eliminated_too_soon": False, "town": new.town, "village": new.village,
        })])
        first = int(persons["person_uid"].max() or 0) + 1  # type: ignore[arg-type]
        for i, p in enumerate(new.persons):  # 2–4 persons
            persons = pl.concat([persons, _blank_row(persons.schema, {
                "person_uid": first + i, "id_number": p["id_number"], "name": p["name"],
                "birth_date": p["birth_date"], "sex": "男" if p["male"] else "女", "household_uid": uid,
                "county_code": new.county_code, "relation": p["relation"], "age": p["age"], "minority": False,
                "twin": False, "disability_grade": 0,
            })])
        changed = changed | (pl.col("household_uid") == uid)
    # Derived conclusions of the changed households, with the formulas of truth.household_truth.
    limit = pl.col("standard") * ASSET_MONTHS
    assets_ok = (pl.col("per_capita_assets") < limit) & ~pl.col("vehicle") & ~pl.col("business")
    income = pl.col("per_capita_monthly_income")
    derived = {
        "eligible": (income < pl.col("standard")) & assets_ok,
        "edge": (income >= pl.col("standard")) & (income < pl.col("standard") * EDGE_MULTIPLIER) & assets_ok,
        "income_above_standard": pl.col("on_roll") & (income >= pl.col("standard")),
        "assets_above_limit": pl.col("on_roll") & (pl.col("per_capita_assets") >= limit),
    }
    hh = hh.with_columns(pl.when(changed).then(e).otherwise(pl.col(c)).alias(c) for c, e in derived.items())
    below_line = pl.col("net_annual_income") / pl.col("size") < MONITORING_LINE_YEAR
    hh = hh.with_columns(
        pl.when(changed).then(pl.col("eligible") & ~pl.col("on_roll") & (pl.col("in_registry")
                                                                          | pl.col("in_monitoring")))
        .otherwise(pl.col("missed_eligible")).alias("missed_eligible"),
        pl.when(changed & pl.col("in_monitoring")).then(pl.col("risk_eliminated") & below_line)
        .otherwise(pl.col("risk_eliminated_below_line")).alias("risk_eliminated_below_line"),
    )

    # Records: removed department rows renumbered, appended rows numbered after the last.
    dept = pl.col("source") == "dept_facts"
    for row in sorted(edits.removed_dept_rows, reverse=True):  # one or two removed rows
        records = records.filter(~(dept & (pl.col("row") == row))).with_columns(
            pl.when(dept & (pl.col("row") > row)).then(pl.col("row") - 1).otherwise(pl.col("row")).alias("row"))
    uid_of = dict(zip(persons["id_number"].to_list(), persons["person_uid"].to_list(), strict=True))
    hh_of = dict(zip(persons["person_uid"].to_list(), persons["household_uid"].to_list(), strict=True))
    pieces = []
    for stem, ids in edits.appended.items():  # at most two files get rows
        last = int(records.filter(pl.col("source") == stem)["row"].max() or 0)  # type: ignore[arg-type]
        person = [uid_of.get(i) for i in ids]
        pieces.append(pl.DataFrame({
            "source": [stem] * len(ids), "row": list(range(last + 1, last + 1 + len(ids))), "person_uid": person,
            "household_uid": [hh_of.get(p) if p is not None else None for p in person],
            "id_noise": [None] * len(ids), "name_noise": [None] * len(ids),
            "expected_reject_field": [None] * len(ids), "extra_enrolment": [False] * len(ids),
        }, schema=records.schema))
    if pieces:
        order = {s: i for i, s in enumerate(dict.fromkeys(records["source"].to_list() + list(edits.appended)))}
        records = pl.concat([records, *pieces]).with_columns(
            pl.col("source").replace_strict(order, return_dtype=pl.Int64).alias("__o")
        ).sort("__o", "row", maintain_order=True).drop("__o")

    new_summary = build_summary(hh, records, relatives,
                                persons.with_columns(pl.col("household_uid").fill_null(-1)), rows)
    new_summary["files"] = files
    new_summary["as_of"] = day2.isoformat()
    new_summary["seed"] = summary.get("seed")
    new_summary["next_day"] = info
    truth_out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("households", hh), ("persons", persons), ("records", records)):
        frame.write_parquet(truth_out / f"{name}.parquet", compression="zstd", statistics=False)
    shutil.copy2(truth / "relatives.parquet", truth_out / "relatives.parquet")  # unchanged
    (truth_out / "summary.json").write_text(
        json.dumps(new_summary, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


# ---- next_day -------------------------------------------------------------------------------------------------


def _day_one(drop: Drop, truth: Path | None) -> dt.date:
    """The drop's own date: the truth's ``as_of``, else the day after its latest bank query or department record."""
    if truth is not None and (truth / "summary.json").is_file():
        as_of = json.loads((truth / "summary.json").read_text(encoding="utf-8")).get("as_of")
        if as_of:
            return dt.date.fromisoformat(as_of)
    latest = [d for d in (drop.frame_or_empty("bank_assets")["query_date"].max(),
                          drop.frame_or_empty("dept_facts")["as_of"].max()) if isinstance(d, dt.date)]
    if not latest:
        raise ValueError("cannot tell the drop's date: give date= (the day-2 date) or truth=")
    return max(latest) + dt.timedelta(days=1)


def next_day(drop: Path, out: Path, *, seed: int = 1, truth: Path | None = None,
             date: dt.date | None = None) -> NextDaySummary:
    """Write into ``out`` the drop of the day after ``drop``, with a death, an income rise, a newly monitored
    household and (when one qualifies) a vehicle sold; update a copy of ``truth`` as ``<out>_truth``.

    ``date`` is the day-2 date; by default the day after the truth's ``as_of`` or, without truth, after the day
    the drop was made (the day after its latest bank query or department record: exact for a generated drop; pass
    ``date`` for a drop that ``next_day`` itself wrote).
    """
    drop, out = Path(drop), Path(out)
    if out.resolve() == drop.resolve():
        raise ValueError("out must be another folder than the day-1 drop")
    headers = load_header_table()
    day1_drop = ingest_drop(drop, headers=headers)
    day2 = date or _day_one(day1_drop, truth) + dt.timedelta(days=1)
    day1 = day2 - dt.timedelta(days=1)
    recs = _records(day1_drop, day2)
    roll = _roll_households(day1_drop, recs)

    def rng(step: int) -> np.random.Generator:
        return np.random.default_rng([seed, step, day2.toordinal()])  # another day, other changes

    raws = {stem: _read_raw(stem, f.raw.path, headers) for stem, f in day1_drop.files.items()
            if stem in ("registry", "monitoring", "dept_facts")}
    frames = {stem: r.frame for stem, r in raws.items()}
    changes: list[Change] = []
    skipped: list[str] = []
    edits = _TruthEdits()
    used: set[str] = set()
    new_dept_rows: list[dict[str, str | None]] = []
    clearly_eligible = pl.col("clean") & (pl.col("pcm") < pl.col("standard") * CLEAR_INCOME_SHARE)

    # 1. A death: a member (an elderly one where there is one) of a roll household with no exit reason.
    if "dept_facts" in raws:
        pool = _income_known_first(roll.filter(clearly_eligible & (pl.col("vehicles") == 0))).select(
            "dibao_household_id", "ids").explode("ids").rename({"ids": "id"})
        pool = pool.with_columns(pl.col("id").map_elements(lambda i: _age(i, day2), return_dtype=pl.Int64)
                                 .alias("age"))
        if pool.filter(pl.col("age") >= ELDERLY_AGE).height:
            pool = pool.filter(pl.col("age") >= ELDERLY_AGE)
        if pool.height:
            chosen = _pick(rng(1), pool)
            household, id_number = str(chosen["dibao_household_id"]), str(chosen["id"])
            name = _name_of(recs, id_number)
            new_dept_rows.append({"id_number": id_number, "name": name, "department": DEPARTMENTS["死亡"],
                                  "item": "死亡", "value": day2.isoformat(), "as_of": day2.isoformat()})
            used.add(household)
            edits.deaths.append(household)
            edits.death_person = id_number
            changes.append(Change("death", household, ((name, id_number),), ("dept_facts",),
                                  f"{name} ({chosen['age']}岁) died on {day2}; 公安局 死亡 record added",
                                  "exit_candidates: member_deceased (added)"))
        else:
            skipped.append("death: no roll household qualifies")
    else:
        skipped.append("death: the drop has no dept_facts file")

    # 2. An income rise: a 低保 household clearly inside every test gets a raise that lifts it 2–10 % above.
    pool = roll.filter(pl.col("clean") & (pl.col("vehicles") == 0) & (pl.col("assistance_type") == "低保")
                       & pl.col("income_households").is_not_null()
                       & (pl.col("pcm") < pl.col("standard") - 0.01)
                       & ~pl.col("dibao_household_id").is_in(list(used)))
    # A wage rise needs someone earning wages, and a plausible one: the smallest raises that do it.
    keep = 1 - EMPLOYMENT_COST_SHARE
    needed = ((pl.col("standard") * sum(RISE_RANGE) / 2 * 12 * pl.col("size") - pl.col("other") + pl.col("medical")
               + pl.col("education")) / keep / pl.col("wage"))
    earning = pool.filter(pl.col("wage") > 0).with_columns(needed.alias("raise")).sort("raise", "dibao_household_id")
    if earning.height:
        modest = earning.filter(pl.col("raise") <= MAX_RAISE)
        pool = modest if modest.height else earning.head(3)
    if pool.height:
        r = rng(2)
        chosen = _pick(r, pool)
        household, size, standard = str(chosen["dibao_household_id"]), int(chosen["size"]), int(chosen["standard"])
        wage, other, medical, education = (float(chosen[c]) for c in ("wage", "other", "medical", "education"))
        target = float(r.uniform(RISE_RANGE[0], RISE_RANGE[1] - 0.01)) * standard * 12 * size
        new_wage = math.ceil((target - other + medical + education) / keep / 5) * 5
        net = new_wage * keep + other - medical - education
        pcm = net / 12 / size
        assert RISE_RANGE[0] <= pcm / standard <= RISE_RANGE[1] and new_wage > wage
        keys = [str(k) for k in chosen["income_households"]]
        for key in keys:  # the registry and/or monitoring entry of the family
            stem = key.split(":", 1)[0]
            rows = _rows_of(recs, key)
            frames[stem] = _set_values(frames[stem], str(raws[stem].header("wage_income")), rows, _money(new_wage))
            per_capita_header = raws[stem].header("per_capita_net_income")
            if stem == "registry" and per_capita_header:
                frames[stem] = _set_values(frames[stem], per_capita_header, rows, _money(round(net / size, 2)))
        used.add(household)
        edits.rises[household] = (round(net), pcm)
        ids = [str(i) for i in chosen["ids"]]
        changes.append(Change(
            "income_rise", household, tuple((_name_of(recs, i), i) for i in ids),
            tuple(sorted({k.split(":", 1)[0] for k in keys})),
            f"工资性收入 {_money(wage)} → {_money(new_wage)} yuan/yr: per-capita monthly income "
            f"{chosen['pcm']:.2f} → {pcm:.2f} against a standard of {standard} ({pcm / standard - 1:+.1%})",
            "exit_candidates: income_above_standard with grace_until (added)", tuple(keys),
            {"wage_before": wage, "wage_after": float(new_wage), "pcm_before": round(float(chosen["pcm"]), 2),
             "pcm_after": round(pcm, 2), "standard": float(standard)}))
    else:
        skipped.append("income rise: no 低保 household in the registry or monitoring qualifies")

    # 3. A newly monitored household, identified today, well below the standard and not covered.
    if "monitoring" in raws:
        new = _new_household(rng(3), day1_drop, recs, day2)
        if new is not None:
            frames["monitoring"] = _append(raws["monitoring"], frames["monitoring"], new.rows)
            edits.new_household = new
            edits.appended["monitoring"] = [str(p["id_number"]) for p in new.persons]
            size = len(new.persons)
            net = (new.figures["wage_income"] * (1 - EMPLOYMENT_COST_SHARE) + new.figures["other_net_income"]
                   - new.figures["medical_out_of_pocket"] - new.figures["education_spending"])
            changes.append(Change(
                "new_monitored", new.household_id, tuple((str(p["name"]), str(p["id_number"])) for p in new.persons),
                ("monitoring",),
                f"{SUDDEN_HARDSHIP} ({new.risk_type}) in {new.town}{new.village}, {size} persons, identified {day2}: "
                f"per-capita monthly income {net / 12 / size:.2f} against a standard of {new.standard}",
                "inclusion_candidates: income_below_standard (added)", (),
                {"pcm": round(net / 12 / size, 2), "standard": float(new.standard)}))
        else:
            skipped.append("new monitored household: no village to place it in")
    else:
        skipped.append("new monitored household: the drop has no monitoring file")

    # 4. A vehicle sold: a household whose single countable vehicle is its only exit reason.
    if "dept_facts" in raws:
        pool = _income_known_first(roll.filter(clearly_eligible & (pl.col("vehicles") == 1)
                                               & ~pl.col("dibao_household_id").is_in(list(used))))
        if pool.height:
            chosen = _pick(rng(4), pool)
            household = str(chosen["dibao_household_id"])
            rows = [int(x) for x in chosen["vehicle_rows"]]
            sold = recs.filter((pl.col("source") == "dept_facts") & pl.col("row").is_in(rows))
            id_number = str(sold["id"][0])
            plate = frames["dept_facts"].row(rows[0] - 1, named=True)[str(raws["dept_facts"].header("value"))]
            frames["dept_facts"] = frames["dept_facts"].with_row_index("__r", offset=1).filter(
                ~pl.col("__r").is_in(rows)).drop("__r")
            edits.vehicles_sold.append(household)
            edits.removed_dept_rows.extend(rows)
            changes.append(Change("vehicle_sold", household, ((_name_of(recs, id_number), id_number),),
                                  ("dept_facts",), f"机动车 {str(plate).strip()} no longer registered (sold)" + (
                                      "" if chosen["income_households"] is not None
                                      else "; income known only from the roll's last assessment"),
                                  "exit_candidates: vehicle_owned resolved (resolved)"))
        else:
            skipped.append("vehicle sold: no roll household whose only exit reason is one vehicle")

    if new_dept_rows:
        frames["dept_facts"] = _append(raws["dept_facts"], frames["dept_facts"], new_dept_rows)
        edits.appended["dept_facts"] = [r["id_number"] for r in new_dept_rows]

    # Write: changed files rewritten in their own format, everything else copied byte for byte.
    out.mkdir(parents=True, exist_ok=True)
    for stem in FILE_SPECS:  # remove a previous day's files of another format (two files for one stem)
        for suffix in (*CSV_SUFFIXES, *EXCEL_SUFFIXES, *PARQUET_SUFFIXES):
            (out / f"{stem}{suffix}").unlink(missing_ok=True)
    changed_stems = {s for c in changes for s in c.files}
    changed: dict[str, Path] = {}
    copied: list[str] = []
    for path in sorted(drop.iterdir()):  # the files of the drop
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
        stem = path.stem.lower()
        if stem in changed_stems and stem in raws and raws[stem].path == path:
            changed[stem] = _write_raw(raws[stem], frames[stem], out)
        else:
            shutil.copy2(path, out / path.name)
            copied.append(path.name)

    truth_out = None
    if truth is not None:
        truth_out = out.with_name(out.name + "_truth")
        counts = {stem: (frames[stem].height if stem in frames else f.rows_read) for stem, f in day1_drop.files.items()}
        files: dict[str, dict[str, object]] = {
            stem: {"name": f.raw.path.name, "format": f.raw.format, "encoding": f.raw.encoding,
                   "xlsx_fallback": False} for stem, f in day1_drop.files.items()}
        old = json.loads((truth / "summary.json").read_text(encoding="utf-8")).get("files", {})
        for stem, entry in files.items():  # keep the generator's note of a planned XLSX written as CSV
            entry["xlsx_fallback"] = bool(old.get(stem, {}).get("xlsx_fallback", False))
        info = {"seed": seed, "day1": day1.isoformat(), "day2": day2.isoformat(),
                "changes": [{"kind": c.kind, "household_id": c.household_id, "persons": [list(p) for p in c.persons],
                             "files": list(c.files), "expected": c.expected, "detail": c.detail} for c in changes]}
        _update_truth(Path(truth), truth_out, edits, counts, files, day2, info)

    return NextDaySummary(drop, out, truth_out, seed, day1, day2, tuple(changes), changed, tuple(copied),
                          tuple(skipped))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dibao.synth.nextday",
                                     description="Write the next day's drop of a generated drop.")
    parser.add_argument("drop", type=Path, help="day-1 drop folder (written by dibao synth)")
    parser.add_argument("out", type=Path, help="folder for the day-2 drop")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truth", type=Path, default=None, help="day-1 truth folder; its update goes to OUT_truth")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="day-2 date (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    summary = next_day(args.drop, args.out, seed=args.seed, truth=args.truth, date=args.date)
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
