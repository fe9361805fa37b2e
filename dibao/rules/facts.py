"""Household facts, assembled in DuckDB from the linked data (one row per household; columns: ``catalog.FACTS``).

The work is a list of named SQL steps (``STEPS``, run by ``dibao.rules.steps``), each one table with its inputs;
the last step's columns, and the department items' aggregates, come from the fact declarations in
``dibao/rules/catalog.py``, so a fact's expression, label, unit and reference live together.

Two kinds of subject share one table:
- ``roll``: each 低保/特困 roll household (应退尽退 is decided on these);
- ``household``: each registry family, and each monitored family with no registry household in its cross-walk
  group (应保尽保 and the monitoring checks are decided on these).

The family that counts (共同生活的家庭成员, 民发〔2021〕57号 第七条) is not the registry's 户:
- a roll household's family is the persons its roll lists — covered members and co-resident members listed as
  not covered (是否保障对象=否). A 单人保 entry that lists only its covered member takes its family from the
  registry/monitoring household it shares members with (``family_basis`` says so: approximate);
- persons serving a sentence, in compulsory drug rehabilitation or missing (department data, until the end date
  the record gives) are left out of every family, and of the per-capita divisor of its income source;
- balances, vehicles, homes, businesses, deaths and disabilities count for family members only. Registry members
  missing from a roll family are counted (``unlisted_registry_members``, a flag), never added to it.

Inside the steps a person is a number and so is a household (``numbered_links``): every join and grouping is on
integers, and a household's text key (``source:number``) is only carried to the published ``household_key``.

Income: a roll household's current income comes from the registry or monitoring household it shares most members
with (the roll's own figure is from the last review and goes stale). When that household is not the family (a
larger registry 户, an adult child who lives apart) its per-capita figure is used and ``income_basis`` says
``per_capita`` (approximate). A 特困 person is assessed on their own income: a source household that holds
anyone else is not used, nor is any for a person in an institution (集中供养). Income is counted as
``dibao/rules/income.py`` declares: the parts that do not count on the run date are taken out, rigid spending is
deducted at its share up to its cap, wages lose the employment-cost share (higher for disabled or seriously ill
workers).

Money and rounding (one rule, so the same inputs always publish the same figures):
- Amounts are exact decimals, never floats. Each amount in a file is read as DECIMAL(18,2) yuan
  (``dibao.ingest.parse.parse_money``; a value written with more decimals is rounded half-up to the fen on
  reading); sums and products are DECIMAL (exact, whatever order DuckDB's threads add them in); parameters are
  DECIMAL(38,6) (``params`` refuses a value with more decimals).
- Each published money figure is computed from the exact amounts and rounded once, at the end, to the fen
  (2 decimals), half-up: a third decimal of 5 or more rounds up (1,785.125 → 1,785.13; 0.004 → 0.00); a
  negative figure rounds by its size (−2.675 → −2.68). No figure is computed from another rounded figure: a
  per-capita figure divides the exact total, not the rounded one. Quotients (per capita, per month, an average
  employment-cost share over ``wd`` workers) are kept as an exact numerator over a whole-number divisor and
  rounded in integers, because DuckDB divides DECIMALs in floating point.
- The rules compare the rounded figures, the ones the caseworker sees (``rules.evaluate``).
- Published columns stay Float64 (the schema analysts and the API read): each holds the double nearest to the
  rounded figure, which prints with at most 2 decimals (119221.9, never 119221.90000000001) and is the same
  double on every run.
- Where a household's rows disagree on a value (county, town, village, area, 救助类型, 监测对象类别), the most
  frequent value is taken; a tie goes to the value on the 户主's row, then to that of the first listed row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import polars as pl

from dibao import duck
from dibao.errors import ConfigError
from dibao.ingest import Drop
from dibao.ingest.parse import parse_money
from dibao.link.keys import numbered_links
from dibao.normalise.ids import id_codes
from dibao.rules.catalog import CATALOG, Catalog
from dibao.rules.compile import ASSET_FACTS, AssetKind, RuleSet
from dibao.rules.income import (
    DEDUCTIONS,
    EMPLOYMENT_COST_SHARE,
    EMPLOYMENT_COST_SHARE_DISABLED,
    INCOME_COMPONENTS,
    OWN_BENEFIT_PARAMETERS,
    RIGID_SPENDING_FIELDS,
    income_parameters,
)
from dibao.rules.steps import Step, run_steps
from dibao.schema import FAMILY_EXCLUDING_ITEMS, FILE_SPECS, FieldType

# The frames registered before the steps run.
INPUTS = ("links", "params", "registry", "monitoring", "dibao_roll", "bank_assets", "relatives", "dept_facts",
          "asset_kind", "asset_word", "asset_exemption")

# Disability kinds as 民发〔2021〕43号 第五条(三) grades them; a record's kind is read from its 类型 and 数值.
DISABILITY_KINDS = ("intellectual_mental", "physical", "visual", "other", "unspecified")
_KIND_WORDS = (("intellectual_mental", "智力|精神"), ("physical", "肢体"), ("visual", "视力"),
               ("other", "听力|言语|多重"))
PERSON_PARAMETERS = (
    "elderly_age", "minor_age", "destitute_minor_until_age", "deceased_recheck_months",
    "review_months_stable", "review_months_unstable", "review_months_destitute",
    *(f"no_work_capacity_grade_{k}" for k in DISABILITY_KINDS),
    "severe_disability_grade", "severe_disability_grade_intellectual_mental",
)
# Every parameter the facts read (beyond the asset exemptions, which asset_kinds names).
FACT_PARAMETERS: tuple[str, ...] = (*income_parameters(), *PERSON_PARAMETERS)

# The income figures of a registry/monitoring household: every money field of the contract's income block.
_INCOME_FIELDS = tuple(f.name for f in FILE_SPECS["registry"].fields
                       if f.type is FieldType.MONEY and f.household_level and f.name != "per_capita_net_income")

# Rounding, once, half-up (ties away from zero) to the fen: fen() for a sum or product, fen_div() for x / d
# (d a positive whole number) in integers, since DuckDB would divide DECIMALs as DOUBLEs. x has ≤ 8 decimals.
# Each has a fast path for the amounts a household has, in 64-bit decimals (DECIMAL(18) and narrower), and the
# same rounding in 128-bit ones for any larger amount: the 128-bit divisions alone were half of the last step's
# time at province scale (13 money facts over 2.2 million households: 5 s). fen_div's fast path:
# round-half-up(|x|·100 / d) = ⌊(200·|x| + d) / 2d⌋ = ⌊(⌊200·|x|⌋ + d) / 2d⌋, d a whole number.
_MACROS = """
CREATE TEMP MACRO fen(x) AS CASE
  WHEN abs(x) < 1000000000 THEN round(CAST(x AS DECIMAL(18, 8)), 2)
  ELSE round(CAST(x AS DECIMAL(38, 8)), 2) END;
CREATE TEMP MACRO fen_div(x, d) AS CASE
  WHEN abs(x) < 10000000 AND d < 1000000000
  THEN CAST(sign(x) * ((floor(abs(CAST(x AS DECIMAL(15, 8)) * CAST(200 AS DECIMAL(3, 0))))::BIGINT + d) // (2 * d))
            AS DECIMAL(15, 0)) * 0.01
  ELSE CAST(sign(x) * ((2 * abs(CAST(CAST(x AS DECIMAL(38, 8)) * 100000000 AS HUGEINT)) + CAST(d AS HUGEINT) * 1000000)
                       // (2 * CAST(d AS HUGEINT) * 1000000)) AS DECIMAL(38, 0)) * 0.01 END;
"""

# Per person (``pd``) with the subject's parameters (``p``): 无劳动能力 by disability (43号 第五条(三)), severe
# disability (57号 第八条, 单人保), working age (43号 第五条(一)(二)).
_NO_CAPACITY = "(" + " OR ".join(
    f"coalesce(pd.grade_{k} <= p.no_work_capacity_grade_{k}, FALSE)" for k in DISABILITY_KINDS) + ")"
_SEVERE = ("(coalesce(least(" + ", ".join(f"pd.grade_{k}" for k in DISABILITY_KINDS)
           + ") <= p.severe_disability_grade, FALSE) OR coalesce(pd.grade_intellectual_mental "
           "<= p.severe_disability_grade_intellectual_mental, FALSE) OR coalesce(pd.serious_illness, FALSE))")
_DISABLED_OR_ILL = ("(coalesce(pd.serious_illness, FALSE) OR least("
                    + ", ".join(f"pd.grade_{k}" for k in DISABILITY_KINDS) + ") IS NOT NULL)")
_ALIVE = "pd.death_date IS NULL"
_WORKING_AGE = "(pa.age >= p.minor_age AND pa.age < p.elderly_age)"
_MAYBE_WORKING_AGE = f"(pa.age IS NULL OR {_WORKING_AGE})"  # able to work unless shown otherwise (应养尽养)


def _modes(table: str, key: str, agreed: tuple[str, ...], voted: tuple[str, ...] = ()) -> Step:
    """Step ``<table>_mode``: one value per household of each household-level column.

    ``agreed`` columns are household-level in the input contract, so ingest has already made every member's row
    carry one value (``dibao.ingest.households``): any aggregate returns it. ``voted`` columns may differ between
    members (救助类型): the most frequent non-null value, ties broken by the 户主's row and then the first listed
    row (DuckDB's ``mode`` and ``any_value`` pick by thread timing).
    """
    plain = ", ".join(f"min({c}) AS {c}" for c in agreed)
    if not voted:
        return Step(f"{table}_mode", (table,), f"SELECT {key}, {plain} FROM {table} GROUP BY {key}",
                    why="the one value of each household-level column")
    cols = ", ".join(voted)
    picks = ", ".join(f"arg_max(v, (n, head, -first_row)) FILTER (WHERE c = '{c}') AS {c}" for c in voted)
    votes = (f"SELECT k, {picks} FROM ("
             f"SELECT k, c, v, count(*) AS n, bool_or(relation IS NOT DISTINCT FROM '户主') AS head, "
             f"min(\"row\")::BIGINT AS first_row "
             f"FROM (UNPIVOT (SELECT {key} AS k, \"row\", relation, {cols} FROM {table}) "
             f"ON {cols} INTO NAME c VALUE v) GROUP BY k, c, v) GROUP BY k")
    return Step(f"{table}_mode", (table,),
                f"SELECT a.*, {', '.join('v.' + c for c in voted)} FROM "
                f"(SELECT {key}, {plain} FROM {table} GROUP BY {key}) a LEFT JOIN ({votes}) v ON v.k = a.{key}",
                why="the one value of each household-level column")


_MODE_STEPS = (
    _modes("registry", "household_id", ("county_code", "town", "village")),
    _modes("monitoring", "household_id", ("county_code", "town", "village", "monitoring_category")),
    _modes("dibao_roll", "dibao_household_id", ("county_code", "town", "village", "area"), ("assistance_type",)),
)


def _place_step() -> Step:
    """Where each household lives and who heads it, for the work lists (the 户主 row, else the first listed):
    the same query over each person-level file with a household number."""
    parts = [
        f"""SELECT n.household_number, m.town, m.village, h.head_name, h.head_id
FROM (SELECT {key},
             arg_min(name, (relation IS DISTINCT FROM '户主')::INTEGER * 100000000 + "row") AS head_name,
             arg_min(id_norm, (relation IS DISTINCT FROM '户主')::INTEGER * 100000000 + "row") AS head_id
      FROM {stem} GROUP BY {key}) h
LEFT JOIN {stem}_mode m ON m.{key} = h.{key}
JOIN household_key n ON n.household = '{stem}:' || h.{key}"""
        for stem, key in (("dibao_roll", "dibao_household_id"), ("registry", "household_id"),
                          ("monitoring", "household_id"))]
    return Step("place", ("dibao_roll", "dibao_roll_mode", "household_key", "monitoring", "monitoring_mode",
                          "registry", "registry_mode"), "\nUNION ALL\n".join(parts),
                why="where each household lives and who heads it")


def _income_hh_step() -> Step:
    """Registry and monitoring households with their household-total income figures (one value per household:
    ingest made the members agree). ``unreadable``: a figure of the income block could not be read at ingest (it
    was cleared), so the household's income is unknown — never taken as 0."""
    unreadable = ("bool_or(coalesce(list_has_any(cleared_fields, ["
                  + ", ".join(f"'{f}'" for f in _INCOME_FIELDS) + "]), FALSE)) AS unreadable")
    money = ",\n             ".join(f"max(CAST({f} AS DECIMAL(18, 2))) AS {f}" for f in _INCOME_FIELDS)
    money += ",\n             " + unreadable
    cols = ", ".join(f"r.{f}" for f in _INCOME_FIELDS)
    return Step('income_hh', ('household_key', 'monitoring', 'monitoring_mode', 'registry', 'registry_mode'),
                why='Registry and monitoring households with their (household-total) income figures.',
                sql=f"""
SELECT n.household_number, n.household, 'registry' AS src, r.household_id, m.county_code,
       {cols}, r.size, r.income_assessed_date, r.unreadable,
       NULL::VARCHAR AS monitoring_category, NULL::DATE AS identified_date, NULL::BOOLEAN AS risk_eliminated,
       NULL::DATE AS risk_eliminated_date
FROM (SELECT household_id, {money}, coalesce(max(household_size), count(*)) AS size,
             max(income_assessed_date) AS income_assessed_date
      FROM registry GROUP BY household_id) r
LEFT JOIN registry_mode m ON m.household_id = r.household_id
JOIN household_key n ON n.household = 'registry:' || r.household_id
UNION ALL
SELECT n.household_number, n.household, 'monitoring', r.household_id, m.county_code,
       {cols}, r.size, r.income_assessed_date, r.unreadable,
       m.monitoring_category, r.identified_date, r.risk_eliminated, r.risk_eliminated_date
FROM (SELECT household_id, {money}, count(*) AS size, max(income_assessed_date) AS income_assessed_date,
             max(identified_date) AS identified_date, bool_or(risk_eliminated) AS risk_eliminated,
             max(risk_eliminated_date) AS risk_eliminated_date
      FROM monitoring GROUP BY household_id) r
LEFT JOIN monitoring_mode m ON m.household_id = r.household_id
JOIN household_key n ON n.household = 'monitoring:' || r.household_id
""")


def _grade(kind: str) -> str:
    return f"min(grade) FILTER (WHERE dkind = '{kind}') AS grade_{kind}"


_EXCLUDING = ", ".join(f"'{item}'" for item in FAMILY_EXCLUDING_ITEMS)
_DKIND = "CASE " + " ".join(f"WHEN regexp_matches(concat_ws(' ', kind, value), '{words}') THEN '{k}'"
                            for k, words in _KIND_WORDS) + " ELSE 'unspecified' END"
_INCOME_COLS = ", ".join(f"i.{f}" for f in _INCOME_FIELDS)
_NULL_INCOME = ", ".join(f"NULL::DECIMAL(18, 2) AS {f}" for f in _INCOME_FIELDS)

# ``{department}``, ``{assets}`` and ``{columns}`` are filled from the catalog and the rules (``build_steps``).
STEPS: tuple[Step, ...] = (
    Step('household_key',
         ('links',),
         why='The key (source:household number) of each numbered household.',
         sql=r"""
SELECT household_number, any_value(household) AS household FROM links WHERE household_number IS NOT NULL
GROUP BY household_number
"""),
    Step('person',
         ('links',),
         why='Each person once, with the birth date their ID states. An ID\'s person_number is its code (its 17 '
             'digits × 11 + the check, numbered_links), so the date is digits 7–14 of number // 11000; a key that '
             'is not an ID has a negative number and no date (grouping 11.5 M text keys took 2.6 s at 2M).',
         sql=r"""
SELECT person_number,
       CASE WHEN person_number >= 0
            THEN try_strptime(lpad(((person_number // 11000) % 100000000)::VARCHAR, 8, '0'), '%Y%m%d')::DATE
       END AS birth_date
FROM (SELECT DISTINCT person_number FROM links)
"""),
    Step('person_age',
         ('person',),
         sql=r"""
SELECT person_number, birth_date,
       date_diff('year', birth_date, $run_date)
         - CASE WHEN month($run_date) * 100 + day($run_date) < month(birth_date) * 100 + day(birth_date)
                THEN 1 ELSE 0 END AS age
FROM person
"""),
    Step('dept',
         ('dept_facts', 'links'),
         sql=r"""
SELECT l.person_number, f."row" AS dept_row, f.item, trim(f.value) AS value, nullif(trim(f.kind), '') AS kind,
       f.as_of, f.amount
FROM dept_facts f JOIN links l ON l.source = 'dept_facts' AND l."row" = f."row"
"""),
    Step('person_dept_base',
         ('dept',),
         why='One row per person of the department data: disability grade per kind, death, the latest 工资收入 '
             '(two on the same day: the higher, where arg_max alone picks either), serious illness, and the '
             'catalog\'s department aggregates. Nothing here reads the run date (``person_excluded`` does).',
         sql=f"""
SELECT person_number,
  {', '.join(_grade(k) for k in DISABILITY_KINDS)},
  max(CASE WHEN item = '死亡' THEN coalesce(try_cast(value AS DATE), as_of) END) AS death_date,
  arg_max(amount, (as_of, amount)) FILTER (WHERE item = '工资收入' AND as_of IS NOT NULL) AS wage_monthly,
  bool_or(item = '重病') AS serious_illness{{department}}
FROM (SELECT *,
        CASE WHEN item = '残疾等级' THEN
          CASE WHEN regexp_matches(value, '(一|1)级') THEN 1 WHEN regexp_matches(value, '(二|2)级') THEN 2
               WHEN regexp_matches(value, '(三|3)级') THEN 3 WHEN regexp_matches(value, '(四|4)级') THEN 4 END
        END AS grade,
        {_DKIND} AS dkind
      FROM dept)
GROUP BY person_number
"""),
    Step('person_excluded',
         ('dept',),
         why='Whether a 服刑/强制隔离戒毒/失踪 record takes the person out of the family on the run date (its 数值, '
             'where a date, is when that ends). Apart from the other department aggregates so that a second day '
             'recomputes only this for its new date (dibao/rules/incremental.py): 1.6 s at 2M for all of them.',
         sql=f"""
SELECT person_number, bool_or(coalesce(try_cast(value AS DATE) > $run_date, TRUE)) AS excluded
FROM dept WHERE item IN ({_EXCLUDING})
GROUP BY person_number
"""),
    Step('person_dept',
         ('person_dept_base', 'person_excluded'),
         why='The department data per person, with ``excluded`` (false for a person with no such record).',
         sql=r"""
SELECT b.*, coalesce(e.excluded, FALSE) AS excluded
FROM person_dept_base b LEFT JOIN person_excluded e ON e.person_number = b.person_number
"""),
    Step('person_asset',
         ('asset_kind', 'asset_word', 'dept'),
         why='Vehicle and home records per person and class (asset_kinds of the rules): the first class whose '
             'words the record\'s 类型 or 数值 contains, else the kind\'s default (null: unclassified).',
         sql=r"""
WITH rec AS (
  SELECT d.person_number, d.dept_row, k.fact, k.default_class,
         CASE WHEN k.by_value AND try_cast(d.value AS INTEGER) BETWEEN 0 AND k.max_units
              THEN try_cast(d.value AS INTEGER) ELSE 1 END AS units,
         concat_ws(' ', d.kind, d.value) AS words
  FROM dept d JOIN asset_kind k ON k.item = d.item
), hit AS (
  SELECT r.dept_row, r.fact, arg_min(w.class, w.priority) AS class
  FROM rec r JOIN asset_word w ON w.fact = r.fact AND contains(r.words, w.word)
  GROUP BY r.dept_row, r.fact
)
SELECT r.person_number, r.fact, coalesce(h.class, r.default_class) AS class, sum(r.units) AS units
FROM rec r LEFT JOIN hit h ON h.dept_row = r.dept_row AND h.fact = r.fact
GROUP BY r.person_number, r.fact, coalesce(h.class, r.default_class)
"""),
    Step('person_bank',
         ('bank_assets', 'links'),
         sql=r"""
SELECT l.person_number, sum(CAST(b.balance AS DECIMAL(18, 2))) AS balance
FROM bank_assets b JOIN links l ON l.source = 'bank_assets' AND l."row" = b."row"
GROUP BY l.person_number
"""),
    Step('roll_row',
         ('dibao_roll', 'links'),
         why='Who each roll household lists, and whether the roll covers them (是否保障对象; blank: covered).',
         sql=r"""
SELECT l.household_number, l.person_number, bool_or(coalesce(r.member_covered, TRUE)) AS covered
FROM dibao_roll r JOIN links l ON l.source = 'dibao_roll' AND l."row" = r."row"
GROUP BY 1, 2
"""),
    Step('roll_person',
         ('dibao_roll', 'links'),
         why='Per person covered on the roll: in how many roll households, and whether by both 低保 and 特困.',
         sql=r"""
SELECT l.person_number,
       count(DISTINCT r.dibao_household_id) AS roll_households,
       bool_or(r.assistance_type = '低保') AND bool_or(r.assistance_type = '特困供养') AS dibao_and_destitute
FROM dibao_roll r JOIN links l ON l.source = 'dibao_roll' AND l."row" = r."row"
WHERE coalesce(r.member_covered, TRUE)
GROUP BY l.person_number
"""),
    Step('unfiled_relative',
         ('relatives',),
         sql=r"""
SELECT DISTINCT relative_person_number AS person_number FROM relatives
WHERE NOT filed AND relative_id_status IN ('valid', 'upgraded', 'unknown_region')
"""),
    Step('unknown_region_person',
         ('links',),
         why='Persons whose ID has an area code no edition of GB/T 2260 has (a fabricated number is what '
             'audits look for).',
         sql=r"""
SELECT DISTINCT person_number FROM links WHERE id_status = 'unknown_region'
"""),
    Step('cleared',
         ('dibao_roll', 'links', 'monitoring', 'registry'),
         why='Fields cleared at ingest because their value could not be read (the row, the person, stayed).',
         sql=r"""
SELECT l.household_number, unnest(f.cleared_fields) AS field FROM (
  SELECT 'dibao_roll' AS source, "row", cleared_fields FROM dibao_roll WHERE cleared_fields IS NOT NULL
  UNION ALL
  SELECT 'registry', "row", cleared_fields FROM registry WHERE cleared_fields IS NOT NULL
  UNION ALL
  SELECT 'monitoring', "row", cleared_fields FROM monitoring WHERE cleared_fields IS NOT NULL
) f JOIN links l ON l.source = f.source AND l."row" = f."row"
"""),
    Step('member',
         ('links',),
         sql=r"""
SELECT DISTINCT household_number, person_number, source FROM links WHERE household_number IS NOT NULL
"""),
    _income_hh_step(),
    Step('roll_hh',
         ('dibao_roll', 'dibao_roll_mode', 'household_key'),
         sql=r"""
SELECT n.household_number, n.household, r.dibao_household_id AS subject_id,
       m.county_code, m.area, m.assistance_type, coalesce(r.coverage_mode, '整户保') AS coverage_mode,
       CASE WHEN m.assistance_type = '特困供养' THEN coalesce(r.support_mode, '分散供养') END AS support_mode,
       r.monthly_benefit, r.assessed_income, coalesce(r.covered_persons, r.covered_listed) AS covered_persons,
       r.listed, r.covered_listed, r.last_review_date, r.enrolled_date
FROM (SELECT dibao_household_id, max(CAST(monthly_benefit AS DECIMAL(18, 2))) AS monthly_benefit,
             max(CAST(assessed_monthly_income AS DECIMAL(18, 2))) AS assessed_income,
             max(covered_persons) AS covered_persons, count(*) AS listed,
             count(*) FILTER (WHERE coalesce(member_covered, TRUE)) AS covered_listed,
             min(coverage_mode) AS coverage_mode, min(support_mode) AS support_mode,
             max(last_review_date) AS last_review_date, min(enrolled_date) AS enrolled_date
      FROM dibao_roll GROUP BY dibao_household_id) r
LEFT JOIN dibao_roll_mode m ON m.dibao_household_id = r.dibao_household_id
JOIN household_key n ON n.household = 'dibao_roll:' || r.dibao_household_id
"""),
    _place_step(),
    Step('best_income',
         ('member',),
         why='Which registry/monitoring household each household shares most members with (its income '
             'household).',
         sql=r"""
SELECT household_number, income_household FROM (
  SELECT a.household_number, b.household_number AS income_household,
         row_number() OVER (PARTITION BY a.household_number
                            ORDER BY count(*) DESC, (b.source = 'monitoring') DESC, b.household_number) AS rn
  FROM member a JOIN member b ON a.person_number = b.person_number AND b.source IN ('registry', 'monitoring')
  WHERE a.household_number <> b.household_number OR a.source IN ('registry', 'monitoring')
  GROUP BY a.household_number, b.household_number, b.source
) WHERE rn = 1
"""),
    Step('best_monitoring',
         ('member',),
         why='The monitored household of each registry household (monitoring attributes), by shared members.',
         sql=r"""
SELECT household_number, monitoring_household FROM (
  SELECT a.household_number, b.household_number AS monitoring_household,
         row_number() OVER (PARTITION BY a.household_number ORDER BY count(*) DESC, b.household_number) AS rn
  FROM member a JOIN member b ON a.person_number = b.person_number AND b.source = 'monitoring'
  GROUP BY a.household_number, b.household_number
) WHERE rn = 1
"""),
    Step('roll_overlap',
         ('best_income', 'member', 'person_dept', 'roll_hh', 'roll_row'),
         why='A roll household against its income household: members only the registry/monitoring household has '
             '(counted: not excluded; unlisted: also alive) and members only the roll lists.',
         sql=r"""
WITH pairs AS (
  SELECT r.household_number, bi.income_household
  FROM roll_hh r JOIN best_income bi ON bi.household_number = r.household_number
), roll_set AS (
  SELECT DISTINCT p.household_number, rr.person_number
  FROM pairs p JOIN roll_row rr ON rr.household_number = p.household_number
), income_set AS (
  SELECT DISTINCT p.household_number, m.person_number
  FROM pairs p JOIN member m ON m.household_number = p.income_household
)
SELECT coalesce(a.household_number, b.household_number) AS household_number,
       count(*) FILTER (WHERE a.person_number IS NULL AND NOT coalesce(pd.excluded, FALSE)) AS income_only,
       count(*) FILTER (WHERE a.person_number IS NULL AND NOT coalesce(pd.excluded, FALSE)
                        AND pd.death_date IS NULL) AS unlisted_alive,
       count(*) FILTER (WHERE b.person_number IS NULL AND NOT coalesce(pd.excluded, FALSE)) AS roll_only
FROM roll_set a FULL JOIN income_set b
  ON a.household_number = b.household_number AND a.person_number = b.person_number
LEFT JOIN person_dept pd ON pd.person_number = coalesce(a.person_number, b.person_number)
GROUP BY coalesce(a.household_number, b.household_number)
"""),
    Step('subject',
         ('best_income', 'best_monitoring', 'income_hh', 'member', 'roll_hh', 'roll_overlap'),
         why='Every subject with its income household. A 特困 person uses it only when it holds nobody else and '
             'the person does not live in an institution; a 单人保 entry listing only its covered member takes its '
             'family from it.',
         sql=f"""
WITH roll AS (
  SELECT r.*, bi.income_household AS best_household, ov.income_only, ov.unlisted_alive, ov.roll_only,
         i.src IS NOT NULL AND NOT i.unreadable AND (r.assistance_type IS DISTINCT FROM '特困供养'
                                OR (coalesce(ov.income_only, 0) = 0
                                    AND r.support_mode IS DISTINCT FROM '集中供养')) AS use_income
  FROM roll_hh r
  LEFT JOIN best_income bi ON bi.household_number = r.household_number
  LEFT JOIN income_hh i ON i.household_number = bi.income_household
  LEFT JOIN roll_overlap ov ON ov.household_number = r.household_number
), roll_family AS (
  SELECT *, CASE WHEN coverage_mode = '单人保' AND listed = covered_listed AND use_income
                 THEN 'income_household' ELSE 'roll' END AS family_basis
  FROM roll
)
SELECT 'roll' AS subject_type, r.subject_id, 'dibao_roll' AS source, r.household_number, r.household,
       r.county_code, r.area,
       TRUE AS covered, r.assistance_type, r.coverage_mode, r.support_mode, r.monthly_benefit, r.assessed_income,
       r.covered_persons, r.last_review_date, r.enrolled_date, NULL::BIGINT AS declared_size,
       CASE WHEN r.use_income THEN r.best_household END AS income_household,
       CASE WHEN r.use_income THEN i.src END AS income_src,
       {', '.join(f'CASE WHEN r.use_income THEN i.{f} END AS {f}' for f in _INCOME_FIELDS)},
       CASE WHEN r.use_income THEN i.size END AS income_size, i.income_assessed_date AS income_assessed_date,
       r.best_household AS figures_household,
       r.family_basis,
       r.family_basis = 'income_household' OR (coalesce(r.income_only, 0) = 0 AND coalesce(r.roll_only, 0) = 0)
         AS income_exact,
       CASE WHEN r.family_basis = 'roll' AND r.assistance_type IS DISTINCT FROM '特困供养'
            THEN r.unlisted_alive END AS unlisted_registry_members,
       m.monitoring_category, m.identified_date, m.risk_eliminated, m.risk_eliminated_date,
       m.household_number IS NOT NULL AS monitored
FROM roll_family r
LEFT JOIN income_hh i ON i.household_number = r.best_household
LEFT JOIN income_hh m ON m.household_number = CASE WHEN i.src = 'monitoring' THEN i.household_number END
UNION ALL
SELECT 'household', i.household_id, i.src, i.household_number, i.household, i.county_code, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, i.size,
       i.household_number, CASE WHEN NOT i.unreadable THEN i.src END, {_INCOME_COLS}, i.size,
       i.income_assessed_date, i.household_number,
       'household', TRUE, NULL,
       coalesce(m.monitoring_category, i.monitoring_category), coalesce(m.identified_date, i.identified_date),
       coalesce(m.risk_eliminated, i.risk_eliminated), coalesce(m.risk_eliminated_date, i.risk_eliminated_date),
       (m.household_number IS NOT NULL OR i.src = 'monitoring')
FROM income_hh i
LEFT JOIN best_monitoring bm ON bm.household_number = i.household_number AND i.src = 'registry'
LEFT JOIN income_hh m ON m.household_number = bm.monitoring_household
WHERE i.src = 'registry'
   OR i.household_number NOT IN (
     SELECT a.household_number FROM member a JOIN member b ON a.person_number = b.person_number
     WHERE a.source = 'monitoring' AND b.source = 'registry')
"""),
    Step('family',
         ('member', 'person_dept', 'roll_row', 'subject'),
         why='The 共同生活家庭成员 of each subject (57号 第七条): a roll household\'s listed persons (covered: on '
             'this roll household as covered), or its income household\'s for a 单人保 entry listing nobody else; a '
             'registry/monitoring family\'s members. ``excluded``: serving a sentence, in compulsory drug '
             'rehabilitation or missing (counted apart, in nothing else).',
         sql=r"""
SELECT f.household_number, f.person_number, bool_or(f.covered) AS covered,
       coalesce(any_value(pd.excluded), FALSE) AS excluded
FROM (
  SELECT s.household_number, rr.person_number, rr.covered
  FROM subject s JOIN roll_row rr ON rr.household_number = s.household_number
  UNION ALL
  SELECT s.household_number, m.person_number, FALSE
  FROM subject s JOIN member m ON m.household_number = s.income_household
  WHERE s.family_basis = 'income_household'
  UNION ALL
  SELECT s.household_number, m.person_number, FALSE
  FROM subject s JOIN member m ON m.household_number = s.household_number
  WHERE s.subject_type = 'household'
) f LEFT JOIN person_dept pd ON pd.person_number = f.person_number
GROUP BY f.household_number, f.person_number
"""),
    Step('params_exact',
         ('params',),
         sql="SELECT county_code, area, {parameters} FROM params"),
    Step('income_stats',
         ('member', 'params_exact', 'person_age', 'person_dept', 'subject'),
         why='Over the income household\'s members: who are excluded from its per-capita divisor, and its '
             'working members (working age, able) — disabled or seriously ill ones take the higher '
             'employment-cost share.',
         sql=f"""
SELECT s.household_number,
  count(*) FILTER (WHERE coalesce(pd.excluded, FALSE)) AS income_excluded,
  count(*) FILTER (WHERE NOT coalesce(pd.excluded, FALSE) AND {_ALIVE} AND {_WORKING_AGE}
                   AND NOT {_NO_CAPACITY}) AS workers,
  count(*) FILTER (WHERE NOT coalesce(pd.excluded, FALSE) AND {_ALIVE} AND {_WORKING_AGE}
                   AND NOT {_NO_CAPACITY} AND {_DISABLED_OR_ILL}) AS disabled_workers
FROM subject s
JOIN member m ON m.household_number = s.income_household
JOIN params_exact p ON p.county_code = s.county_code AND p.area = coalesce(s.area, '农村')
LEFT JOIN person_age pa ON pa.person_number = m.person_number
LEFT JOIN person_dept pd ON pd.person_number = m.person_number
GROUP BY s.household_number
"""),
    Step('member_agg',
         ('family', 'params_exact', 'person_age', 'person_bank', 'person_dept', 'roll_person', 'subject',
          'unfiled_relative', 'unknown_region_person'),
         why='Family aggregates. ``covered`` members are those this roll household covers.',
         sql=f"""
SELECT fm.household_number,
  count(*) FILTER (WHERE fm.excluded) AS excluded_members,
  count(*) FILTER (WHERE NOT fm.excluded) AS family_size,
  count(*) FILTER (WHERE NOT fm.excluded AND rp.person_number IS NOT NULL) AS roll_members,
  coalesce(sum(pb.balance) FILTER (WHERE NOT fm.excluded), 0) AS financial_assets,
  count(*) FILTER (WHERE NOT fm.excluded AND pd.death_date IS NOT NULL) AS deceased_members,
  max(pd.death_date) FILTER (WHERE NOT fm.excluded) AS last_death_date,
  count(*) FILTER (WHERE fm.covered AND pd.death_date IS NOT NULL) AS deceased_covered_members,
  count(*) FILTER (WHERE fm.covered AND NOT fm.excluded AND {_ALIVE}) AS living_covered_members,
  count(*) FILTER (WHERE s.subject_type = 'roll' AND NOT fm.covered AND NOT fm.excluded AND {_ALIVE})
    AS uncovered_members,
  min(pd.death_date) FILTER (WHERE fm.covered) AS covered_death_date,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND {_NO_CAPACITY}) AS no_work_capacity_members,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND {_NO_CAPACITY} AND rp.person_number IS NULL)
    AS uncovered_no_work_capacity_members,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND {_SEVERE}) AS severe_condition_members,
  count(*) FILTER (WHERE fm.covered AND NOT fm.excluded AND {_ALIVE} AND {_SEVERE})
    AS covered_severe_condition_members,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND {_MAYBE_WORKING_AGE} AND NOT {_NO_CAPACITY})
    AS able_to_work_members,
  count(*) FILTER (WHERE fm.covered AND NOT fm.excluded AND {_ALIVE} AND pa.age >= p.destitute_minor_until_age
                   AND pa.age < p.elderly_age AND NOT {_NO_CAPACITY}) AS covered_able_adults,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND pa.age >= p.elderly_age) AS elderly_members,
  count(*) FILTER (WHERE NOT fm.excluded AND {_ALIVE} AND pa.age < p.minor_age) AS minor_members,
  min(pa.birth_date + to_years(CAST(p.destitute_minor_until_age AS INTEGER)))
    FILTER (WHERE fm.covered AND NOT fm.excluded AND {_ALIVE} AND pa.age <= p.destitute_minor_until_age)
    AS minor_adult_ts,
  count(*) FILTER (WHERE NOT fm.excluded AND rp.roll_households > 1 AND (fm.covered OR s.subject_type = 'household'))
    AS duplicate_enrolled_members,
  count(*) FILTER (WHERE NOT fm.excluded AND rp.dibao_and_destitute) AS dibao_and_destitute_members,
  count(*) FILTER (WHERE NOT fm.excluded AND ur.person_number IS NOT NULL) AS unfiled_relative_members,
  count(*) FILTER (WHERE NOT fm.excluded AND urp.person_number IS NOT NULL) AS unknown_region_members,
  sum(pd.wage_monthly) FILTER (WHERE NOT fm.excluded) AS dept_wage_monthly{{members}}
FROM family fm
JOIN subject s ON s.household_number = fm.household_number
JOIN params_exact p ON p.county_code = s.county_code AND p.area = coalesce(s.area, '农村')
LEFT JOIN person_age pa ON pa.person_number = fm.person_number
LEFT JOIN person_dept pd ON pd.person_number = fm.person_number
LEFT JOIN person_bank pb ON pb.person_number = fm.person_number
LEFT JOIN roll_person rp ON rp.person_number = fm.person_number
LEFT JOIN unfiled_relative ur ON ur.person_number = fm.person_number
LEFT JOIN unknown_region_person urp ON urp.person_number = fm.person_number
GROUP BY fm.household_number
"""),
    Step('asset_agg',
         ('asset_exemption', 'family', 'person_asset', 'subject'),
         why='Vehicles and homes of the family by class: counted, exempt on the run date (a flag parameter per '
             'class, per county and area), or of no known class.',
         sql=r"""
SELECT fm.household_number{assets}
FROM family fm
JOIN subject s ON s.household_number = fm.household_number
JOIN person_asset pa ON pa.person_number = fm.person_number
LEFT JOIN asset_exemption e ON e.county_code = s.county_code AND e.area = coalesce(s.area, '农村')
                           AND e.fact = pa.fact AND e.class = pa.class
WHERE NOT fm.excluded
GROUP BY fm.household_number
"""),
    Step('missing',
         ('cleared', 'subject'),
         why='What could not be read for a subject: its own rows and those of the registry/monitoring household '
             'whose figures it would use (also when they were set aside because a figure could not be read).',
         sql=r"""
SELECT household_number, string_agg(DISTINCT field, ',' ORDER BY field) AS missing_fields FROM (
  SELECT s.household_number, c.field FROM subject s JOIN cleared c ON c.household_number = s.household_number
  UNION ALL
  SELECT s.household_number, c.field FROM subject s JOIN cleared c ON c.household_number = s.figures_household
) GROUP BY household_number
"""),
    Step('household_facts',
         ('asset_agg', 'income_stats', 'member_agg', 'missing', 'params_exact', 'place', 'subject'),
         why='Exact figures first (DECIMAL), each rounded once in the final SELECT and published as DOUBLE '
             '(see the docstring).',
         sql=r"""
WITH base AS (
  SELECT s.*, a.* EXCLUDE (household_number), x.* EXCLUDE (household_number), w.* EXCLUDE (household_number),
         p.* EXCLUDE (county_code, area),
         greatest(CASE WHEN s.subject_type = 'household'
                       THEN coalesce(s.declared_size - coalesce(w.income_excluded, 0), a.family_size)
                       ELSE a.family_size END, 1) AS size,
         greatest(coalesce(s.income_size, 0) - coalesce(w.income_excluded, 0), 1) AS src_size,
         CASE WHEN coalesce(w.disabled_workers, 0) > 0 THEN w.workers ELSE 1 END AS wd,
         CASE WHEN coalesce(w.disabled_workers, 0) > 0
              THEN p.{share} * (w.workers - w.disabled_workers) + p.{share_disabled} * w.disabled_workers
              ELSE p.{share} END AS share_wd,
         {excluded} AS excluded_exact,
         {deduction} AS deduction_exact,
         {rigid} AS rigid_exact,
         (a.minor_adult_ts)::DATE AS minor_adult_date,
         (a.covered_death_date + to_months(CAST(p.deceased_recheck_months AS INTEGER)))::DATE AS death_recheck_due,
         coalesce(s.last_review_date, s.enrolled_date) AS review_from,
         CASE WHEN s.subject_type <> 'roll' THEN NULL
              WHEN s.assistance_type = '特困供养' THEN p.review_months_destitute
              WHEN coalesce(a.able_to_work_members, 0) > 0 THEN p.review_months_unstable
              ELSE p.review_months_stable END AS review_months
  FROM subject s
  LEFT JOIN member_agg a ON a.household_number = s.household_number
  LEFT JOIN asset_agg x ON x.household_number = s.household_number
  LEFT JOIN income_stats w ON w.household_number = s.household_number
  JOIN params_exact p ON p.county_code = s.county_code AND p.area = coalesce(s.area, '农村')
), scaled AS (
  SELECT *,
         coalesce(wage_income, 0) * wd - coalesce(wage_income, 0) * share_wd
           + (coalesce(other_net_income, 0) - excluded_exact) * wd AS gross_scaled,
         CAST(share_wd AS DOUBLE) / wd AS share_applied,
         fen_div(dept_wage_monthly * (1 - {share}), size) AS dept_per_capita,
         CAST(review_months AS INTEGER) AS review_cycle_months,
         (review_from + to_months(CAST(review_months AS INTEGER)))::DATE AS next_review_date
  FROM base
), exact AS (
  SELECT *, gross_scaled - deduction_exact * wd AS net_scaled FROM scaled
)
SELECT {columns}
FROM exact LEFT JOIN place pl ON pl.household_number = exact.household_number
LEFT JOIN missing mi ON mi.household_number = exact.household_number
ORDER BY subject_type, subject_id, source
"""),
)


def _excluded_sql() -> str:
    """The parts of 其他纯收入 that do not count (per the subject's programme), plus the family's own benefit
    where the source includes it without a component saying how much."""
    parts = [f"coalesce(s.{c.field}, 0) * (1 - CASE WHEN s.assistance_type = '特困供养' "
             f"THEN p.{c.destitute_parameter} ELSE p.{c.counted} END)" for c in INCOME_COMPONENTS]
    given = " AND ".join(f"s.{c.field} IS NULL" for c in INCOME_COMPONENTS if c.own_benefit)
    includes = "CASE s.income_src " + " ".join(
        f"WHEN '{src}' THEN p.{param}" for src, param in OWN_BENEFIT_PARAMETERS.items()) + " ELSE 0 END"
    own = (f"CASE WHEN s.subject_type = 'roll' AND {includes} = 1 AND {given} "
           f"THEN 12 * coalesce(s.monthly_benefit, 0) ELSE 0 END")
    return "(" + " + ".join([*parts, own]) + ")"


def _deduction_sql() -> str:
    return "(" + " + ".join(f"least(coalesce(s.{d.field}, 0) * p.{d.share}, p.{d.cap})" for d in DEDUCTIONS) + ")"


def _rigid_sql() -> str:
    return "(" + " + ".join(f"coalesce(s.{f}, 0)" for f in RIGID_SPENDING_FIELDS) + ")"


def _assets_sql(asset_kinds: tuple[AssetKind, ...]) -> str:
    """Per asset fact: ``{fact}`` (counted), ``exempt_{fact}`` and ``unclassified_{fact}``."""
    out = [f"0 AS {prefix}{fact}" for fact in ASSET_FACTS if fact not in {k.fact for k in asset_kinds}
           for prefix in ("", "exempt_", "unclassified_")]
    for kind in asset_kinds:
        is_fact = f"pa.fact = '{kind.fact}'"
        out += [
            f"coalesce(sum(pa.units) FILTER (WHERE {is_fact} AND pa.class IS NOT NULL "
            f"AND NOT coalesce(e.exempt, FALSE)), 0) AS {kind.fact}",
            f"coalesce(sum(pa.units) FILTER (WHERE {is_fact} AND coalesce(e.exempt, FALSE)), 0) AS exempt_{kind.fact}",
            f"coalesce(sum(pa.units) FILTER (WHERE {is_fact} AND pa.class IS NULL), 0) AS unclassified_{kind.fact}",
        ]
    return "".join(f",\n  {c}" for c in out)


def build_steps(catalog: Catalog = CATALOG, asset_kinds: tuple[AssetKind, ...] = ()) -> tuple[Step, ...]:
    """The steps with the catalog's department aggregates, the asset kinds and the fact columns filled in."""
    person = "".join(f",\n  {f.person} AS {f.name}" for f in catalog.department)
    members = "".join(f",\n  {f.members.format(col='pd.' + f.name)} AS {f.name}" for f in catalog.department)
    columns = ",\n       ".join(f"{f.expression} AS {f.name}" for f in catalog.facts)
    parameters = ", ".join(f"CAST({name} AS DECIMAL(38, 6)) AS {name}" for name in FACT_PARAMETERS)
    filled = {
        "person_dept_base": {"department": person},
        "member_agg": {"members": members},
        "params_exact": {"parameters": parameters},
        "asset_agg": {"assets": _assets_sql(asset_kinds)},
        "household_facts": {"columns": columns, "excluded": _excluded_sql(), "deduction": _deduction_sql(),
                            "rigid": _rigid_sql(), "share": EMPLOYMENT_COST_SHARE,
                            "share_disabled": EMPLOYMENT_COST_SHARE_DISABLED},
    }
    return tuple(
        replace(step, sql=step.sql.format(**filled[step.name])) if step.name in filled else step
        for step in (*_MODE_STEPS, *STEPS))


def _with_amounts(dept_facts: pl.DataFrame) -> pl.DataFrame:
    """``amount``: a 工资收入 or 经营收入 report's value read like every amount (exact, to the fen), else null."""
    money_text = dept_facts.select(
        pl.when(pl.col("item").is_in(["工资收入", "经营收入"])).then(pl.col("value"))).to_series()
    amount, fault = parse_money(money_text)
    return dept_facts.with_columns(pl.when(fault.is_null()).then(amount).alias("amount"))


def _asset_tables(asset_kinds: tuple[AssetKind, ...], params: pl.DataFrame
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(kinds, words, exemptions): the asset_kinds of the rules as tables, and per county and area whether each
    class is exempt on the run date (its flag parameter is 1)."""
    kinds = pl.DataFrame([{"fact": k.fact, "item": k.item, "by_value": k.units == "value",
                           "max_units": k.max_units, "default_class": k.default} for k in asset_kinds],
                         schema={"fact": pl.String, "item": pl.String, "by_value": pl.Boolean,
                                 "max_units": pl.Int32, "default_class": pl.String})
    words = pl.DataFrame([{"fact": k.fact, "class": c.id, "word": w, "priority": i}
                          for k in asset_kinds for i, c in enumerate(k.classes) for w in c.match],
                         schema={"fact": pl.String, "class": pl.String, "word": pl.String, "priority": pl.Int32})
    exemptions = pl.DataFrame(
        [{"county_code": row["county_code"], "area": row["area"], "fact": k.fact, "class": c.id,
          "exempt": c.exempt is not None and row[c.exempt] == 1}
         for row in params.iter_rows(named=True) for k in asset_kinds for c in k.classes],
        schema={"county_code": pl.String, "area": pl.String, "fact": pl.String, "class": pl.String,
                "exempt": pl.Boolean})
    return kinds, words, exemptions


def facts_connection(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, rules: RuleSet
                     ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the inputs of the fact steps (``INPUTS``) and the SQL macros they use."""
    missing = [name for name in FACT_PARAMETERS if name not in params.columns]
    if missing:
        raise ConfigError(f"parameters: the household facts read {', '.join(missing)}, which the parameter file "
                          "does not define (see the shipped dibao/policy/parameters.yaml)")
    kinds, words, exemptions = _asset_tables(rules.asset_kinds, params)
    con = duck.connect()
    try:
        duck.register(con, "links", numbered_links(links))
        duck.register(con, "params", params)
        for stem in ("registry", "monitoring", "dibao_roll", "bank_assets"):
            drop.register(con, stem)
        duck.register(con, "relatives", drop.scan("relatives").with_columns(
            id_codes(pl.col("relative_id_norm")).alias("relative_person_number")).collect())
        duck.register(con, "dept_facts", _with_amounts(drop.scan("dept_facts").collect()))
        duck.register(con, "asset_kind", kinds)
        duck.register(con, "asset_word", words)
        duck.register(con, "asset_exemption", exemptions)
        con.execute(_MACROS)
    except BaseException:
        con.close()
        raise
    return con


def step_parameters(drop: Drop, run_date: dt.date) -> dict[str, object]:
    """The ``$name`` values of the fact steps."""
    return {"run_date": run_date, "bank_data": "bank_assets" in drop.files, "dept_data": "dept_facts" in drop.files}


def household_facts(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, run_date: dt.date,
                    rules: RuleSet) -> pl.DataFrame:
    """One row per roll household and per registry/monitoring family, with the columns of the rules' catalog,
    in a fixed order (subject_type, subject_id, source)."""
    con = facts_connection(drop, links, params, rules)
    try:
        run_steps(con, build_steps(rules.catalog, rules.asset_kinds), INPUTS, step_parameters(drop, run_date),
                  keep=("household_facts",))
        return duck.take_table(con, "household_facts")
    finally:
        con.close()
