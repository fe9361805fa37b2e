"""The synthetic province generator: deterministic, contract-shaped files, truth that matches the files, and
every noise kind and problem case present in a drop of 2,000 households."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import polars as pl
import pytest

from dibao.normalise.ids import normalise_ids
from dibao.schema import FILE_SPECS
from dibao_synth import SynthSummary, generate
from dibao_synth.noise import FAULT_KINDS, ID_KINDS, NAME_KINDS

AS_OF = dt.date(2026, 11, 20)
# The parts of 其他纯收入 that never count in the sample province (低保金, 特困供养金, 优待抚恤金, 计生奖扶金, 奖学金,
# 见义勇为奖励), by their contract headers.
NOT_COUNTED = ["低保金", "特困供养金", "优待抚恤金", "计划生育奖励扶助金", "奖学金", "见义勇为奖励"]
PERSON_SOURCES = ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts")


def read_any(path: Path) -> pl.DataFrame:
    """Read a drop file back as all-text columns, whatever its format and encoding."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".xlsx":
        return pl.read_excel(path, infer_schema_length=0)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    return pl.read_csv(io.BytesIO(text.encode()), infer_schema=False, encoding="utf8")


def files_of(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir())}


def labels(stem: str) -> list[str]:
    return [f.label for f in FILE_SPECS[stem].fields]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSummary, Path, Path]:
    """One drop of 2,000 households shared by the tests that look for every planted case."""
    out = tmp_path_factory.mktemp("synth") / "drop"
    summary = generate(households=2000, seed=11, out=out, as_of=AS_OF)
    return summary, out, summary.truth_out


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = generate(households=300, seed=5, out=tmp_path / "a", as_of=AS_OF)
    b = generate(households=300, seed=5, out=tmp_path / "b", as_of=AS_OF)
    for folder_a, folder_b in ((a.out, b.out), (a.truth_out, b.truth_out)):
        names = sorted(p.name for p in folder_a.iterdir())
        assert names == sorted(p.name for p in folder_b.iterdir())
        for name in names:
            assert (folder_a / name).read_bytes() == (folder_b / name).read_bytes(), name
    c = generate(households=300, seed=6, out=tmp_path / "c", as_of=AS_OF)
    assert (c.out / "dibao_roll.csv").read_bytes() != (a.out / "dibao_roll.csv").read_bytes()


def test_truth_folder_defaults_beside_drop(tmp_path: Path) -> None:
    generate(households=50, seed=1, out=tmp_path / "drop", formats="parquet")
    summary = generate(households=50, seed=1, out=tmp_path / "drop")  # replaces the Parquet drop
    assert len(list(summary.out.iterdir())) == len(FILE_SPECS)
    assert summary.truth_out == tmp_path / "drop_truth"
    assert {p.name for p in summary.truth_out.iterdir()} == {
        "persons.parquet", "records.parquet", "households.parquet", "relatives.parquet", "summary.json"}


def test_mixed_formats_encodings_and_headers(big: tuple[SynthSummary, Path, Path]) -> None:
    summary, out, _ = big
    files = files_of(out)
    assert set(files) == set(FILE_SPECS)
    assert {s: p.suffix for s, p in files.items()} == {
        "registry": ".csv", "monitoring": ".xlsx", "dibao_roll": ".csv", "bank_assets": ".csv",
        "dept_facts": ".parquet", "counties": ".xlsx", "relatives": ".csv"}
    assert summary.encodings["registry"] == summary.encodings["relatives"] == "gb18030"
    assert summary.encodings["dibao_roll"] == "utf-8-sig"
    assert summary.encodings["bank_assets"] == "utf-8"
    assert summary.xlsx_fallbacks == ()
    roll = files["dibao_roll"].read_bytes()
    assert roll.startswith(b"\xef\xbb\xbf")
    registry = files["registry"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        registry.decode("utf-8")
    assert registry.decode("gb18030").splitlines()[0] == ",".join(labels("registry"))
    for stem, path in files.items():
        expected = labels(stem)
        if stem == "bank_assets":
            expected = [("余额(元)" if h == "余额" else h) for h in expected]
        assert read_any(path).columns == expected, stem
    dept = pl.read_parquet(files["dept_facts"])
    assert all(dtype == pl.String for dtype in dept.schema.values())


def test_xlsx_cells_ids_as_text_amounts_as_numbers(big: tuple[SynthSummary, Path, Path]) -> None:
    _, out, _ = big
    monitoring = pl.read_excel(out / "monitoring.xlsx")
    assert monitoring.schema["证件号码"] == pl.String
    assert monitoring.schema["户编号"] == pl.String
    assert monitoring.schema["工资性收入"].is_numeric()
    counties = pl.read_excel(out / "counties.xlsx")
    assert counties["县级区划代码"].to_list()[0] == "340402"
    assert counties.schema["农村户籍人口"].is_numeric()


@pytest.mark.parametrize("formats", ["csv", "parquet"])
def test_single_format_drops(tmp_path: Path, formats: str) -> None:
    summary = generate(households=300, seed=2, out=tmp_path / "drop", formats=formats)
    files = files_of(summary.out)
    assert set(files) == set(FILE_SPECS)
    suffix = ".csv" if formats == "csv" else ".parquet"
    assert all(p.suffix == suffix for p in files.values())
    for stem, path in files.items():
        frame = read_any(path)
        assert frame.columns == labels(stem)
        assert frame.height == summary.rows[stem]
        if formats == "parquet":
            assert all(dtype == pl.String for dtype in frame.schema.values())
        else:
            path.read_bytes().decode("utf-8")  # plain UTF-8, no BOM needed
            assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_large_xlsx_falls_back_to_gb18030_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dibao_synth.writers.XLSX_MAX_ROWS", 50)
    summary = generate(households=300, seed=2, out=tmp_path / "drop")
    assert summary.xlsx_fallbacks == ("monitoring",)
    assert summary.formats["monitoring"] == "csv" and summary.encodings["monitoring"] == "gb18030"
    assert summary.formats["counties"] == "xlsx"
    assert (summary.out / "monitoring.csv").read_bytes().decode("gb18030").startswith("县级区划代码,")


def test_truth_rows_match_files(big: tuple[SynthSummary, Path, Path]) -> None:
    summary, out, truth = big
    records = pl.read_parquet(truth / "records.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    files = files_of(out)
    for stem in PERSON_SOURCES:
        frame = read_any(files[stem])
        rec = records.filter(pl.col("source") == stem).sort("row")
        assert frame.height == rec.height == summary.rows[stem], stem
        assert rec["row"].to_list() == list(range(1, frame.height + 1))
        # Where no noise and no fault was planted, the file shows exactly the true ID and name.
        id_col = FILE_SPECS[stem].field("id_number").label
        joined = pl.concat([frame.select(pl.col(id_col).alias("id"), pl.col("姓名").alias("nm")), rec],
                           how="horizontal").join(
            persons.select("person_uid", "id_number", "name"), on="person_uid", how="left")
        clean = joined.filter(pl.col("expected_reject_field").is_null())
        ids = clean.filter(pl.col("id_noise").is_null())
        assert (ids["id"] == ids["id_number"]).all(), stem
        assert (ids.height > 0.9 * clean.height) and (clean.height > 0.99 * joined.height)
        names = clean.filter(pl.col("name_noise").is_null())
        assert (names["nm"] == names["name"]).all(), stem
        noisy = clean.filter(pl.col("id_noise").is_not_null() & (pl.col("id_noise") != "blank"))
        assert (noisy["id"] != noisy["id_number"]).all(), stem
    relatives = pl.read_parquet(truth / "relatives.parquet")
    assert relatives["row"].drop_nulls().to_list() == list(range(1, summary.rows["relatives"] + 1))
    rel_file = read_any(files["relatives"])
    filed = relatives.filter(pl.col("in_file")).sort("row").join(
        persons.select(pl.col("person_uid").alias("staff_person_uid"), pl.col("id_number").alias("sid")),
        on="staff_person_uid", how="left", maintain_order="left")
    assert rel_file["工作人员证件号码"].to_list() == filed["sid"].to_list()


def test_true_ids_valid_unique_and_consistent(big: tuple[SynthSummary, Path, Path]) -> None:
    _, _, truth = big
    persons = pl.read_parquet(truth / "persons.parquet")
    checked = normalise_ids(persons, "id_number", prefix="n_", today=AS_OF)
    assert isinstance(checked, pl.DataFrame)
    assert (checked["n_status"] == "valid").all()
    assert persons["id_number"].n_unique() == persons.height
    assert (checked["n_birth_date"] == checked["birth_date"]).all()
    assert (checked["n_sex"] == checked["sex"]).all()
    assert (persons["birth_date"] <= AS_OF).all()
    born_elsewhere = persons.filter(pl.col("household_uid").is_not_null() &
                                    (pl.col("id_number").str.slice(0, 6) != pl.col("county_code")))
    assert 0 < born_elsewhere.height < 0.2 * persons.height


def test_every_noise_kind_and_row_fault_present(big: tuple[SynthSummary, Path, Path]) -> None:
    _, _, truth = big
    records = pl.read_parquet(truth / "records.parquet")
    assert set(records["id_noise"].drop_nulls()) == set(ID_KINDS)
    assert set(records["name_noise"].drop_nulls()) == set(NAME_KINDS)
    # The registry is the cleaner side; roll, bank and department records carry most noise.
    rate = records.group_by("source").agg(pl.col("id_noise").is_not_null().mean().alias("r"))
    r = dict(rate.iter_rows())
    assert r["registry"] < r["dibao_roll"] and r["registry"] < r["bank_assets"]
    assert all(v < 0.08 for v in r.values())
    faults = records.filter(pl.col("expected_reject_field").is_not_null())
    assert set(faults["source"]) == {"registry", "dibao_roll"}
    fields = set(faults["expected_reject_field"])
    assert {"enrolled_date", "monthly_benefit", "wage_income", "assessed_monthly_income"} <= fields
    assert fields & {"name", "household_id", "dibao_household_id"}
    assert 4 <= faults.height <= 30
    assert len(FAULT_KINDS) == 4


def test_noise_never_produces_another_persons_id(big: tuple[SynthSummary, Path, Path]) -> None:
    _, out, truth = big
    persons = pl.read_parquet(truth / "persons.parquet")
    records = pl.read_parquet(truth / "records.parquet")
    for stem in PERSON_SOURCES:
        frame = read_any(files_of(out)[stem])
        id_col = FILE_SPECS[stem].field("id_number").label
        both = pl.concat([frame.select(pl.col(id_col).alias("raw")), records.filter(pl.col("source") == stem)
                          .sort("row")], how="horizontal")
        checked = normalise_ids(both, "raw", prefix="n_", today=AS_OF)
        assert isinstance(checked, pl.DataFrame)
        usable = checked.filter(pl.col("n_status").is_in(["valid", "upgraded"])).join(
            persons.select("person_uid", "id_number"), left_on="n_norm", right_on="id_number", how="inner")
        assert (usable["person_uid"] == usable["person_uid_right"]).all(), stem


def test_expected_rejections_are_what_ingestion_rejects(big: tuple[SynthSummary, Path, Path]) -> None:
    drop_module = pytest.importorskip("dibao.ingest.drop")
    _, out, truth = big
    rejected = drop_module.ingest_drop(out).rejected.select(
        "source", pl.col("row").cast(pl.Int64), "field").sort("source", "row")
    expected = pl.read_parquet(truth / "records.parquet").filter(
        pl.col("expected_reject_field").is_not_null()).select(
        "source", "row", pl.col("expected_reject_field").alias("field")).sort("source", "row")
    assert rejected.equals(expected)


def test_every_problem_case_present(big: tuple[SynthSummary, Path, Path]) -> None:
    _, out, truth = big
    h = pl.read_parquet(truth / "households.parquet")
    on_roll = h.filter("on_roll")
    off_roll = h.filter(~pl.col("on_roll"))
    for flag in ("duplicate_enrolment", "dibao_and_destitute", "deceased_member", "vehicle", "business",
                 "extra_home", "relative_not_filed", "public_payroll"):
        assert on_roll[flag].sum() >= 2, flag
    assert (on_roll["per_capita_assets"] >= on_roll["standard"] * 24).sum() >= 2
    assert (on_roll["per_capita_monthly_income"] >= on_roll["standard"]).sum() >= 10  # exit by income
    assert (on_roll["per_capita_monthly_income"] == on_roll["standard"]).sum() >= 1  # exactly at the line
    assert off_roll.filter(pl.col("eligible") & (pl.col("in_registry") | pl.col("in_monitoring"))).height >= 5
    assert off_roll["edge"].sum() >= 5
    assert h["no_work_capacity_uncovered"].sum() >= 2
    assert h["risk_eliminated_below_line"].sum() >= 2 and h["risk_eliminated_too_soon"].sum() >= 2
    # 特困 households are mostly people alone.
    destitute = h.filter(pl.col("assistance_type") == "特困供养")
    assert destitute.height > 0 and (destitute["size"] == 1).mean() > 0.7
    # Duplicate enrolment: the same person twice on the roll, in two households (sometimes two counties).
    records = pl.read_parquet(truth / "records.parquet").filter(pl.col("source") == "dibao_roll")
    twice = records.group_by("person_uid").agg(pl.col("household_uid").n_unique().alias("n")).filter(
        pl.col("n") > 1)
    assert twice.height >= 4
    relatives = pl.read_parquet(truth / "relatives.parquet")
    assert set(relatives["status"]) == {"filed", "not_filed", "absent"}
    assert relatives.filter(pl.col("status") == "absent")["row"].is_null().all()
    dept = pl.read_parquet(out / "dept_facts.parquet")
    assert (dept["数值"] == "残疾人机动轮椅车").any()


def test_population_is_plausible(big: tuple[SynthSummary, Path, Path]) -> None:
    _, out, truth = big
    h = pl.read_parquet(truth / "households.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    n = h.height
    assert n == 2000
    assert 0.3 < h["on_roll"].mean() < 0.5
    assert 0.5 < h["in_registry"].mean() < 0.7
    assert 0.12 < h["in_monitoring"].mean() < 0.28
    assert 0.12 < (h["area"] == "城市").mean() < 0.3
    assert h["size"].min() == 1 and h["size"].max() == 6
    # Twins: same household, name and birth date; different IDs.
    twins = persons.filter("twin").group_by("household_uid", "name", "birth_date").agg(
        pl.col("id_number").n_unique().alias("ids"))
    assert twins.height >= 2 and (twins["ids"] == 2).all()
    assert persons["name"].str.contains("·").any()
    assert persons["name"].str.len_chars().is_between(2, 12).all()
    # Rural 低保 coverage per county lands in 3–8 %.
    counties = read_any(out / "counties.xlsx")
    roll = pl.read_parquet(truth / "records.parquet").filter(pl.col("source") == "dibao_roll").join(
        h.select("household_uid", "county_code", "area"), on="household_uid")
    rural = roll.filter(pl.col("area") == "农村").group_by("county_code").agg(pl.col("person_uid").n_unique())
    rates = rural.join(counties.select(pl.col("县级区划代码").alias("county_code"),
                                       pl.col("农村户籍人口").cast(pl.Int64)), on="county_code")
    rate = rates["person_uid"] / rates["农村户籍人口"]
    assert rate.min() > 0.025 and rate.max() < 0.085


def test_registry_income_figures_follow_the_formula(big: tuple[SynthSummary, Path, Path]) -> None:
    """The sample province's formula gives back each family's per-capita income from the registry's figures:
    wages less 20 %, 其他纯收入 less the parts that do not count, deductions up to their caps (families with no
    disabled or ill member and nobody out of the family: the plain employment-cost share)."""
    _, out, truth = big
    reg = read_any(out / "registry.csv")
    rec = pl.read_parquet(truth / "records.parquet").filter(pl.col("source") == "registry").sort("row")
    h = pl.read_parquet(truth / "households.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    plain = persons.group_by("household_uid").agg(
        ((pl.col("disability_grade") == 0) & ~pl.col("serious_illness") & ~pl.col("excluded")).all().alias("plain"))
    money = ["工资性收入", "其他纯收入", "医疗自付支出", "教育支出", "残疾康复支出", "家庭人口数", "家庭人均纯收入",
             *NOT_COUNTED]
    f = pl.concat([reg, rec], how="horizontal").filter(pl.col("expected_reject_field").is_null()).with_columns(
        [pl.col(c).cast(pl.Float64) for c in money]).join(
        h.filter(~pl.col("on_roll")).select("household_uid", "per_capita_monthly_income", "size"),
        on="household_uid").join(plain.filter("plain"), on="household_uid")
    not_counted = pl.sum_horizontal(pl.col(c).fill_null(0) for c in NOT_COUNTED)
    counted = (pl.col("工资性收入") * 0.8 + pl.col("其他纯收入") - not_counted
               - pl.min_horizontal("医疗自付支出", pl.lit(30000)) - pl.min_horizontal("教育支出", pl.lit(20000))
               - pl.min_horizontal("残疾康复支出", pl.lit(20000)))
    pcm = counted / 12 / pl.col("家庭人口数")
    assert f.height > 500
    assert f.select((pcm - pl.col("per_capita_monthly_income")).abs().max()).item() < 0.006
    assert (f["家庭人口数"] == f["size"]).all()
    assert ((f["家庭人均纯收入"] - f["per_capita_monthly_income"] * 12).abs() < 0.07).all()
    # Some exports leave the parts blank; most give them.
    assert 0.05 < reg["低保金"].is_null().mean() < 0.3


def test_summary_counts(big: tuple[SynthSummary, Path, Path]) -> None:
    import json

    summary, _, truth = big
    data = json.loads((truth / "summary.json").read_text(encoding="utf-8"))
    assert data["households"] == 2000
    assert data["rows"] == summary.rows
    assert data["flags_on_roll"]["duplicate_enrolment"] >= 2
    assert summary.seconds > 0 and summary.persons > 2000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A drop of a few hundred households, like the bundled sample."""
    out = tmp_path_factory.mktemp("small") / "drop"
    summary = generate(households=300, seed=20261120, out=out, as_of=AS_OF)
    return out, summary.truth_out


def test_a_small_drop_has_every_situation(small: tuple[Path, Path]) -> None:
    """Every family form, exit reason, inclusion reason and planted check is in a drop of 300 households."""
    out, truth = small
    h = pl.read_parquet(truth / "households.parquet")
    assert {f: n for f, n in h.group_by("roll_form").len().iter_rows()}.keys() == {
        "whole", "single_only", "single_listed", "child_apart", "institution"}
    for reason in ("income_above_standard", "assets_above_limit", "vehicle_owned", "business_revenue_above_limit",
                   "multiple_homes", "member_deceased", "duplicate_enrolment", "dibao_and_destitute",
                   "income_below_standard", "no_work_capacity_uncovered", "destitute_eligible_uncovered",
                   "member_deceased_recheck", "member_deceased_overdue", "family_members_mismatch",
                   "vehicle_use_check", "business_registered", "single_person_condition_unmet",
                   "destitute_minor_turning_adult", "review_overdue", "risk_eliminated_too_soon"):
        assert h[reason].fill_null(False).sum() >= 1, reason
    assert h.filter(pl.col("on_roll") & pl.col("components_blank")).height >= 2  # 差额 families, benefit inside
    assert (h.filter("on_roll")["review_overdue"].mean() or 0) < 0.1  # most reviewed within their cycle
    dept = pl.read_parquet(out / "dept_facts.parquet")
    kinds = set(dept["类型"].drop_nulls())
    for words in (("小型轿车", "小型普通客车", "轻型普通货车", "小型越野客车"), ("普通二轮摩托车", "轻便二轮摩托车"),
                  ("电动三轮车", "三轮汽车"), ("拖拉机", "低速货车", "农用运输车"), ("危房",), ("搬迁旧房",)):
        assert kinds & set(words), words
    assert (dept["数值"] == "残疾人机动轮椅车").any()
    items = set(dept["核对项目"])
    assert {"经营收入", "重病", "死亡", "不动产", "机动车", "残疾等级"} <= items
    assert items & {"服刑", "强制隔离戒毒", "失踪"}
    # Disability records always name their type.
    grades = dept.filter(pl.col("核对项目") == "残疾等级")["数值"]
    assert grades.str.contains("肢体|视力|听力|言语|智力|精神|多重").all()
    roll = read_any(out / "dibao_roll.csv")
    assert set(roll["保障方式"].drop_nulls()) == {"整户保", "单人保"}
    assert set(roll["是否保障对象"].drop_nulls()) == {"是", "否"} and roll["是否保障对象"].is_null().any()
    assert set(roll["供养方式"].drop_nulls()) == {"集中供养", "分散供养"}
    assert roll["最近核查日期"].is_not_null().all()
    monitoring = read_any(out / "monitoring.xlsx")
    eliminated = monitoring.filter(pl.col("风险是否消除") == "是")
    assert eliminated.height and eliminated["风险消除时间"].is_not_null().all()


def test_families_as_the_policy_reads_them(big: tuple[SynthSummary, Path, Path]) -> None:
    """The truth judges each roll entry on its family: an adult child living apart is flagged, not counted; a
    member out of the family leaves its size; a 特困 person in an institution is judged on their own income."""
    _, _, truth = big
    h = pl.read_parquet(truth / "households.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    apart = h.filter(pl.col("roll_form") == "child_apart")
    assert apart.height >= 2 and apart["family_members_mismatch"].all()
    assert (apart["members"] == apart["size"] - 1).all()
    out = persons.filter("excluded").group_by("household_uid").len().join(
        h.filter(pl.col("on_roll") & (pl.col("roll_form") == "whole")), on="household_uid")
    assert out.height >= 2 and (out["members"] == out["size"] - out["len"]).all()
    institution = h.filter(pl.col("roll_form") == "institution")
    assert institution.height >= 2
    assert (institution["support_mode"] == "集中供养").all()
    assert (institution["income_basis"] == "roll_assessment").all()
    assert (institution["net_annual_income"] / institution["size"] / 12 > institution["standard"]).all()
    assert not institution["destitute_income_above_standard"].any()
    single = h.filter(pl.col("coverage_mode") == "单人保")
    assert single["single_person_family_above_edge"].any() and not single["income_above_standard"].any()
    assert (single.filter(~pl.col("single_person_family_above_edge"))["per_capita_monthly_income"]
            >= single.filter(~pl.col("single_person_family_above_edge"))["standard"]).any()  # an edge family
    # 17-year-old 特困 turning 18 within 30 days (planted); an 18-year-old still on the roll is listed too.
    days = (h.filter("destitute_minor_turning_adult")["minor_adult_date"] - AS_OF).dt.total_days()
    assert days.is_between(1, 30).sum() >= 2 and (days <= 30).all()
