"""Parameter and rule files: every mistake a province can make is refused naming the file and the key or rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from dibao.errors import ConfigError
from dibao.rules.compile import compile_condition, load_rules
from dibao.rules.params import DEFAULT_PARAMETERS_PATH, load_parameters


def _write_params(tmp_path: Path, mutate: object) -> Path:
    doc = yaml.safe_load(DEFAULT_PARAMETERS_PATH.read_text(encoding="utf-8"))
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "parameters.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _standard(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return doc["parameters"]["dibao_standard"]["values"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["parameters"]["grace_months"].update(unit="moons"),
         "parameters.grace_months.unit: unknown unit 'moons'"),
        (lambda d: _standard(d).append({"county_code": "340402", "area": "农村", "from": dt.date(2025, 1, 1),
                                        "value": 700}),
         "parameters.dibao_standard: dates for 340402 农村 are not sorted"),
        (lambda d: (_standard(d)[0].update(until=dt.date(2026, 8, 1)),
                    _standard(d).insert(1, {"county_code": "340402", "area": "农村", "from": dt.date(2026, 7, 1),
                                            "value": 800})),
         "parameters.dibao_standard: dates for 340402 农村 overlap"),
        (lambda d: _standard(d)[0].pop("area"), "parameters.dibao_standard.values[0]: needs area"),
        (lambda d: d["parameters"]["grace_months"]["values"][0].update(county_code="340402"),
         "parameters.grace_months.values[0]: must not have county_code"),
    ],
)
def test_parameter_file_mistakes(tmp_path: Path, mutate: object, message: str) -> None:
    path = _write_params(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_parameters(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_county_without_a_value_in_force_is_refused_naming_the_key() -> None:
    parameters = load_parameters()
    with pytest.raises(ConfigError, match=r"parameters.dibao_standard: no value in force on 2025-12-31 "
                                          r"for county 340402 area 城市"):
        parameters.resolve(dt.date(2025, 12, 31), ["340402"])
    with pytest.raises(ConfigError, match="for county 999999"):
        parameters.resolve(dt.date(2026, 11, 20), ["999999"])


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("per_capita_incom > dibao_standard", "unknown name 'per_capita_incom'"),
        ("per_capita_income > (SELECT max(x) FROM t)", "is not allowed in a condition"),
        ("upper(area) = '农村'", "function UPPER is not allowed"),
        ("facts.members > 1", "write plain fact or parameter names"),
        ("members >", "is not valid SQL"),
    ],
)
def test_rule_conditions_are_whitelisted(condition: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_condition("my_rule", condition, set(load_parameters().parameters), Path("rules.yaml"))
    assert "rules.yaml: rule my_rule:" in str(info.value) and message in str(info.value)


def test_shipped_rules_compile_and_transpile_to_spark() -> None:
    rules = load_rules(load_parameters())
    assert len(rules.rules) >= 18
    for rule in rules.rules:
        spark = rule.to_dialect("spark")
        assert spark and "duckdb" not in spark.lower()
        assert rule.facts_read, rule.id


def test_a_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    rules = yaml.safe_load((DEFAULT_PARAMETERS_PATH.parent / "eligibility.yaml").read_text(encoding="utf-8"))
    rules["rules"].append(dict(rules["rules"][0]))
    path = tmp_path / "eligibility.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="rule income_above_standard: defined twice"):
        load_rules(load_parameters(), path)


# --- no numbers in conditions, status facts never decide, due dates, asset kinds, dated parameters --------------

def _write_rules(tmp_path: Path, mutate: object) -> Path:
    doc = yaml.safe_load((DEFAULT_PARAMETERS_PATH.parent / "eligibility.yaml").read_text(encoding="utf-8"))
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "eligibility.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _rule(doc: dict, rule_id: str) -> dict:  # type: ignore[type-arg]
    return next(r for r in doc["rules"] if r["id"] == rule_id)  # type: ignore[no-any-return]


def test_no_shipped_condition_holds_a_number_other_than_0_or_1() -> None:
    """Parsed, not grepped: every numeric literal of every condition is 0 or 1 (a threshold is a parameter)."""
    import sqlglot
    from sqlglot import exp

    for rule in load_rules(load_parameters()).rules:
        numbers = {n.this for n in sqlglot.parse_one(rule.when, read="duckdb").find_all(exp.Literal) if n.is_number}
        assert numbers <= {"0", "1"}, f"{rule.id}: {numbers}"


@pytest.mark.parametrize("condition", ["homes >= 2", "per_capita_income > 1.5 * dibao_standard",
                                       "days_past_review > 30", "vehicles > 0.5"])
def test_a_number_written_into_a_condition_is_refused(condition: str) -> None:
    with pytest.raises(ConfigError, match="make it a dated parameter"):
        compile_condition("my_rule", condition, set(load_parameters().parameters), Path("rules.yaml"))


def test_public_payroll_can_only_ever_be_a_flag(tmp_path: Path) -> None:
    """2022年兜底保障通知 一(一): no exit or inclusion on 特定职业、特殊身份 — enforced over any rule set."""
    rules = load_rules(load_parameters())
    readers = [r for r in rules.rules if "public_payroll_members" in r.facts_read]
    assert readers and all(r.outcome == "flag" for r in readers)
    for outcome in ("exit", "inclusion"):
        path = _write_rules(tmp_path, lambda d, o=outcome: _rule(d, "public_payroll_member").update(outcome=o))
        with pytest.raises(ConfigError, match="public_payroll_members is a status, not evidence"):
            load_rules(load_parameters(), path)
    hidden = _write_rules(tmp_path, lambda d: _rule(d, "vehicle_owned").update(
        when="vehicles > 0 OR public_payroll_members > 0"))
    with pytest.raises(ConfigError, match="rule vehicle_owned"):
        load_rules(load_parameters(), hidden)


def test_a_due_date_must_be_a_date_fact(tmp_path: Path) -> None:
    path = _write_rules(tmp_path, lambda d: _rule(d, "review_overdue").update(due="days_past_review"))
    with pytest.raises(ConfigError, match="due: 'days_past_review' is not a date fact"):
        load_rules(load_parameters(), path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["asset_kinds"].pop("homes"), "asset_kinds: declare homes"),
        (lambda d: d["asset_kinds"]["vehicles"].update(item="飞机"), "is not a 核对项目"),
        (lambda d: d["asset_kinds"]["vehicles"]["classes"][0].update(exempt="grace_months"),
         "is not a flag parameter"),
        (lambda d: d["asset_kinds"]["homes"].update(default="castle"), "'castle' is not one of its classes"),
        (lambda d: d["asset_kinds"]["vehicles"]["classes"].append(
            dict(d["asset_kinds"]["vehicles"]["classes"][0])), "a class id is snake_case and unique"),
    ],
)
def test_asset_kind_mistakes(tmp_path: Path, mutate: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_rules(load_parameters(), _write_rules(tmp_path, mutate))


def test_a_yearly_figure_past_its_year_stops_the_run_unless_carried_forward(tmp_path: Path) -> None:
    def expire(doc: dict) -> None:  # type: ignore[type-arg]
        doc["parameters"]["monitoring_income_line"]["carry_forward"] = False

    strict = load_parameters(_write_params(tmp_path, expire))
    with pytest.raises(ConfigError, match=r"parameters.monitoring_income_line: no value in force on 2027-01-02"):
        strict.resolve(dt.date(2027, 1, 2), ["340402"])
    carried = load_parameters().resolve(dt.date(2027, 1, 2), ["340402"])
    assert carried["monitoring_income_line"].to_list() == [7900, 7900]
    assert carried["monitoring_income_line__carried"].to_list() == [True, True]
    assert not load_parameters().resolve(dt.date(2026, 11, 20), ["340402"])["monitoring_income_line__carried"].any()


def test_every_shipped_parameter_is_dated_and_no_yearly_figure_is_used_silently() -> None:
    parameters = load_parameters()
    for name, p in parameters.parameters.items():
        assert p.values and all(v.valid_from for v in p.values), name
        if any(v.valid_until for v in p.values) and not p.carry_forward:
            last = max(v.valid_until or dt.date.max for v in p.values)
            assert last == dt.date.max, f"{name}: expires without carry_forward; give it an open last value"


def test_a_flag_parameter_is_0_or_1(tmp_path: Path) -> None:
    path = _write_params(tmp_path, lambda d: d["parameters"]["vehicle_exempt_motorcycle"]["values"][0].update(
        value=0.5))
    with pytest.raises(ConfigError, match=r"a flag is 1 .* or 0"):
        load_parameters(path)


def test_the_basic_pension_counts_again_after_the_fourteenth_five_year_plan() -> None:
    pension = load_parameters().parameters["pension_base_income_counted"]
    assert pension.in_force(dt.date(2025, 12, 31)).value == 0  # type: ignore[union-attr]
    assert pension.in_force(dt.date(2026, 1, 1)).value == 1  # type: ignore[union-attr]


def test_every_rule_cites_a_document_and_an_article() -> None:
    """A rule's reference names a document of docs/POLICY.md's table of documents and an article or section of it
    (第十三条, 一(三), 三(三) …)."""
    import re

    table = (Path(__file__).parent.parent / "docs" / "POLICY.md").read_text(encoding="utf-8")
    section = table.split("## Documents", 1)[1].split("\n## ", 1)[0]
    documents = [name.strip() for line in section.splitlines()[2:] if line.startswith("| ")
                 for name in line.split("|")[1].split(" / ")]
    assert len(documents) >= 8
    article = re.compile(r"第[一二三四五六七八九十百\d.]+[条章]|[一二三四五六七八九十]+\([一二三四五六七八九十]+\)"
                         r"|[一二三四五六七八九十]+ \(")
    for rule in load_rules(load_parameters()).rules:
        cited = [d for d in documents if d in rule.reference]
        assert cited, f"{rule.id}: names no document of docs/POLICY.md#documents: {rule.reference}"
        assert article.search(rule.reference), f"{rule.id}: names no article: {rule.reference}"
