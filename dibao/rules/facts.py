"""Household facts, assembled in DuckDB from the linked data (one row per household; columns: ``catalog.FACTS``).

The work is a list of named SQL steps (``STEPS``, run by ``dibao.rules.steps``), each one table with its inputs;
the last step's columns, and the department items' aggregates, come from the fact declarations in
``dibao/rules/catalog.py``, so a fact's expression, label, unit and reference live together.

Two kinds of subject share one table:
- ``roll``: each 低保/特困 roll household (应退尽退 is decided on these);
- ``household``: each registry family, and each monitored family with no registry household in its cross-walk
  group (应保尽保 and the monitoring checks are decided on these).

A roll household's current income comes from the registry or monitoring household it shares most members with
(the roll's own figure is from the last review and goes stale); its members' balances, vehicles, homes,
businesses, deaths and disabilities come from the bank and department records linked to the same persons.

Money and rounding (one rule, so the same inputs always publish the same figures):
- Amounts are exact decimals, never floats. Each amount in a file is read as DECIMAL(18,2) yuan
  (``dibao.ingest.parse.parse_money``; a value written with more decimals is rounded half-up to the fen on
  reading); sums and products are DECIMAL (exact, whatever order DuckDB's threads add them in); parameters are
  DECIMAL(38,6) (``params`` refuses a value with more decimals).
- Each published money figure is computed from the exact amounts and rounded once, at the end, to the fen
  (2 decimals), half-up: a third decimal of 5 or more rounds up (1,785.125 → 1,785.13; 0.004 → 0.00); a
  negative figure rounds by its size (−2.675 → −2.68). No figure is computed from another rounded figure: a
  per-capita figure divides the exact total, not the rounded one. Quotients (per capita, per month) are rounded
  in integers, because DuckDB divides DECIMALs in floating point.
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

from dibao.ingest import Drop
from dibao.ingest.parse import parse_money
from dibao.rules.catalog import CATALOG, Catalog
from dibao.rules.steps import Step, run_steps

# The frames registered before the steps run.
INPUTS = ("links", "params", "registry", "monitoring", "dibao_roll", "bank_assets", "relatives", "dept_facts")

# Rounding, once, half-up (ties away from zero) to the fen: fen() for a sum or product, fen_div() for x / d
# (d a positive whole number) in integers, since DuckDB would divide DECIMALs as DOUBLEs. x has ≤ 8 decimals.
_MACROS = """
CREATE TEMP MACRO fen(x) AS round(CAST(x AS DECIMAL(38, 8)), 2);
CREATE TEMP MACRO fen_div(x, d) AS
  CAST(sign(x) * ((2 * abs(CAST(CAST(x AS DECIMAL(38, 8)) * 100000000 AS HUGEINT)) + CAST(d AS HUGEINT) * 1000000)
                  // (2 * CAST(d AS HUGEINT) * 1000000)) AS DECIMAL(38, 0)) * 0.01;
"""


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
        f"""SELECT '{stem}:' || h.{key} AS household, m.town, m.village, h.head_name, h.head_id
FROM (SELECT {key},
             arg_min(name, (relation IS DISTINCT FROM '户主')::INTEGER * 100000000 + "row") AS head_name,
             arg_min(id_norm, (relation IS DISTINCT FROM '户主')::INTEGER * 100000000 + "row") AS head_id
      FROM {stem} GROUP BY {key}) h
LEFT JOIN {stem}_mode m ON m.{key} = h.{key}"""
        for stem, key in (("dibao_roll", "dibao_household_id"), ("registry", "household_id"),
                          ("monitoring", "household_id"))]
    return Step("place", ("dibao_roll", "dibao_roll_mode", "monitoring", "monitoring_mode", "registry",
                          "registry_mode"), "\nUNION ALL\n".join(parts),
                why="where each household lives and who heads it")


# ``{department}`` and ``{columns}`` are filled from the catalog (``build_steps``); everything else is as read.
STEPS: tuple[Step, ...] = (
    Step('exact_params',
         ('params',),
         sql=r"""
SELECT county_code, area, CAST(employment_cost_share AS DECIMAL(38, 6)) AS employment_cost_share,
       elderly_age, minor_age
FROM params
"""),
    Step('person',
         ('links',),
         sql=r"""
SELECT DISTINCT person_key,
       CASE WHEN regexp_full_match(person_key, '\d{17}[\dX]')
            THEN try_strptime(substr(person_key, 7, 8), '%Y%m%d')::DATE END AS birth_date
FROM links
"""),
    Step('person_age',
         ('person',),
         sql=r"""
SELECT person_key, birth_date,
       date_diff('year', birth_date, $run_date)
         - CASE WHEN strftime($run_date, '%m%d') < strftime(birth_date, '%m%d') THEN 1 ELSE 0 END AS age
FROM person
"""),
    Step('dept',
         ('dept_facts', 'links'),
         sql=r"""
SELECT l.person_key, f.item, trim(f.value) AS value, f.as_of, f.amount
FROM dept_facts f JOIN links l ON l.source = 'dept_facts' AND l."row" = f."row"
"""),
    Step('person_dept',
         ('dept',),
         why='The latest 工资收入 report of a person (two on the same day: the higher, where arg_max alone picks '
             'either).',
         sql=r"""
SELECT person_key,
  min(CASE WHEN item = '残疾等级' THEN
        CASE WHEN regexp_matches(value, '^(一|1)级') THEN 1 WHEN regexp_matches(value, '^(二|2)级') THEN 2
             WHEN regexp_matches(value, '^(三|3)级') THEN 3 WHEN regexp_matches(value, '^(四|4)级') THEN 4 END
      END) AS disability_grade,
  bool_or(item = '残疾等级' AND regexp_matches(value, '智力|精神')) AS intellectual_or_mental,
  max(CASE WHEN item = '死亡' THEN coalesce(try_cast(value AS DATE), as_of) END) AS death_date,
  arg_max(amount, (as_of, amount)) FILTER (WHERE item = '工资收入' AND as_of IS NOT NULL) AS wage_monthly{department}
FROM dept GROUP BY person_key
"""),
    Step('person_bank',
         ('bank_assets', 'links'),
         sql=r"""
SELECT l.person_key, sum(CAST(b.balance AS DECIMAL(18, 2))) AS balance
FROM bank_assets b JOIN links l ON l.source = 'bank_assets' AND l."row" = b."row"
GROUP BY l.person_key
"""),
    Step('roll_person',
         ('dibao_roll', 'links'),
         sql=r"""
SELECT l.person_key,
       count(DISTINCT r.dibao_household_id) AS roll_households,
       bool_or(r.assistance_type = '低保') AND bool_or(r.assistance_type = '特困供养') AS dibao_and_destitute
FROM dibao_roll r JOIN links l ON l.source = 'dibao_roll' AND l."row" = r."row"
GROUP BY l.person_key
"""),
    Step('unfiled_relative',
         ('relatives',),
         sql=r"""
SELECT DISTINCT relative_id_norm AS person_key FROM relatives
WHERE NOT filed AND relative_id_status IN ('valid', 'upgraded', 'unknown_region')
"""),
    Step('unknown_region_person',
         ('links',),
         why='Persons whose ID has an area code no edition of GB/T 2260 has (a fabricated number is what '
             'audits look for).',
         sql=r"""
SELECT DISTINCT person_key FROM links WHERE id_status = 'unknown_region'
"""),
    Step('cleared',
         ('dibao_roll', 'monitoring', 'registry'),
         why='Fields cleared at ingest because their value could not be read (the row, the person, stayed).',
         sql=r"""
SELECT 'dibao_roll:' || dibao_household_id AS household, unnest(cleared_fields) AS field
FROM dibao_roll WHERE cleared_fields IS NOT NULL
UNION ALL
SELECT 'registry:' || household_id, unnest(cleared_fields) FROM registry WHERE cleared_fields IS NOT NULL
UNION ALL
SELECT 'monitoring:' || household_id, unnest(cleared_fields) FROM monitoring WHERE cleared_fields IS NOT NULL
"""),
    Step('member',
         ('links',),
         sql=r"""
SELECT DISTINCT household, household_group, person_key, source FROM links WHERE household IS NOT NULL
"""),
    Step('income_hh',
         ('monitoring', 'monitoring_mode', 'registry', 'registry_mode'),
         why='Registry and monitoring households with their (household-total) income figures.',
         sql=r"""
SELECT 'registry:' || r.household_id AS household, 'registry' AS src, r.household_id, m.county_code,
       r.wage, r.other, r.medical, r.education, r.size,
       NULL::VARCHAR AS monitoring_category, NULL::DATE AS identified_date, NULL::BOOLEAN AS risk_eliminated
FROM (SELECT household_id, max(CAST(wage_income AS DECIMAL(18, 2))) AS wage,
             max(CAST(other_net_income AS DECIMAL(18, 2))) AS other,
             max(CAST(medical_out_of_pocket AS DECIMAL(18, 2))) AS medical,
             max(CAST(education_spending AS DECIMAL(18, 2))) AS education,
             coalesce(max(household_size), count(*)) AS size
      FROM registry GROUP BY household_id) r
LEFT JOIN registry_mode m ON m.household_id = r.household_id
UNION ALL
SELECT 'monitoring:' || r.household_id, 'monitoring', r.household_id, m.county_code,
       r.wage, r.other, r.medical, r.education, r.size,
       m.monitoring_category, r.identified_date, r.risk_eliminated
FROM (SELECT household_id, max(CAST(wage_income AS DECIMAL(18, 2))) AS wage,
             max(CAST(other_net_income AS DECIMAL(18, 2))) AS other,
             max(CAST(medical_out_of_pocket AS DECIMAL(18, 2))) AS medical,
             max(CAST(education_spending AS DECIMAL(18, 2))) AS education, count(*) AS size,
             max(identified_date) AS identified_date, bool_or(risk_eliminated) AS risk_eliminated
      FROM monitoring GROUP BY household_id) r
LEFT JOIN monitoring_mode m ON m.household_id = r.household_id
"""),
    Step('roll_hh',
         ('dibao_roll', 'dibao_roll_mode'),
         sql=r"""
SELECT 'dibao_roll:' || r.dibao_household_id AS household, r.dibao_household_id AS subject_id,
       m.county_code, m.area, m.assistance_type, r.monthly_benefit, r.assessed_income, r.covered_persons, r.listed
FROM (SELECT dibao_household_id, max(CAST(monthly_benefit AS DECIMAL(18, 2))) AS monthly_benefit,
             max(CAST(assessed_monthly_income AS DECIMAL(18, 2))) AS assessed_income,
             max(covered_persons) AS covered_persons, count(*) AS listed
      FROM dibao_roll GROUP BY dibao_household_id) r
LEFT JOIN dibao_roll_mode m ON m.dibao_household_id = r.dibao_household_id
"""),
    _place_step(),
    Step('best_income',
         ('member',),
         why='Which registry/monitoring household each household shares most members with (its income '
             'household).',
         sql=r"""
SELECT household, income_household FROM (
  SELECT a.household, b.household AS income_household,
         row_number() OVER (PARTITION BY a.household
                            ORDER BY count(*) DESC, (b.source = 'monitoring') DESC, b.household) AS rn
  FROM member a JOIN member b ON a.person_key = b.person_key AND b.source IN ('registry', 'monitoring')
  WHERE a.household <> b.household OR a.source IN ('registry', 'monitoring')
  GROUP BY a.household, b.household, b.source
) WHERE rn = 1
"""),
    Step('best_monitoring',
         ('member',),
         why='The monitored household of each registry household (monitoring attributes), by shared members.',
         sql=r"""
SELECT household, monitoring_household FROM (
  SELECT a.household, b.household AS monitoring_household,
         row_number() OVER (PARTITION BY a.household ORDER BY count(*) DESC, b.household) AS rn
  FROM member a JOIN member b ON a.person_key = b.person_key AND b.source = 'monitoring'
  GROUP BY a.household, b.household
) WHERE rn = 1
"""),
    Step('subject',
         ('best_income', 'best_monitoring', 'income_hh', 'member', 'roll_hh'),
         sql=r"""
SELECT 'roll' AS subject_type, r.subject_id, 'dibao_roll' AS source, r.household, r.county_code, r.area,
       TRUE AS covered, r.assistance_type, r.monthly_benefit, r.assessed_income,
       coalesce(i.size, r.covered_persons, r.listed) AS members, bi.income_household,
       i.src AS income_src, i.wage, i.other, i.medical, i.education,
       m.monitoring_category, m.identified_date, m.risk_eliminated, m.household IS NOT NULL AS monitored
FROM roll_hh r
LEFT JOIN best_income bi ON bi.household = r.household
LEFT JOIN income_hh i ON i.household = bi.income_household
LEFT JOIN income_hh m ON m.household = CASE WHEN i.src = 'monitoring' THEN i.household END
UNION ALL
SELECT 'household', i.household_id, i.src, i.household, i.county_code, NULL,
       NULL, NULL, NULL, NULL,
       i.size, i.household, i.src, i.wage, i.other, i.medical, i.education,
       coalesce(m.monitoring_category, i.monitoring_category), coalesce(m.identified_date, i.identified_date),
       coalesce(m.risk_eliminated, i.risk_eliminated), (m.household IS NOT NULL OR i.src = 'monitoring')
FROM income_hh i
LEFT JOIN best_monitoring bm ON bm.household = i.household AND i.src = 'registry'
LEFT JOIN income_hh m ON m.household = bm.monitoring_household
WHERE i.src = 'registry'
   OR i.household NOT IN (SELECT a.household FROM member a JOIN member b ON a.person_key = b.person_key
                          WHERE a.source = 'monitoring' AND b.source = 'registry')
"""),
    Step('subject_member',
         ('member', 'subject'),
         why='Members of a subject: its own listed persons and those of its income household (the whole '
             'family).',
         sql=r"""
SELECT s.household, m.person_key FROM subject s JOIN member m ON m.household = s.household
UNION
SELECT s.household, m.person_key FROM subject s JOIN member m ON m.household = s.income_household
"""),
    Step('member_agg',
         ('exact_params', 'person_age', 'person_bank', 'person_dept', 'roll_person', 'subject',
          'subject_member', 'unfiled_relative', 'unknown_region_person'),
         sql=r"""
SELECT sm.household,
  count(*) FILTER (WHERE rp.person_key IS NOT NULL) AS roll_members,
  coalesce(sum(pb.balance), 0) AS financial_assets,
  count(*) FILTER (WHERE pd.death_date IS NOT NULL) AS deceased_members,
  max(pd.death_date) AS last_death_date,
  count(*) FILTER (WHERE pd.disability_grade IN (1, 2) OR (pd.disability_grade = 3 AND pd.intellectual_or_mental))
    AS no_work_capacity_members,
  count(*) FILTER (WHERE pa.age >= p.elderly_age) AS elderly_members,
  count(*) FILTER (WHERE pa.age < p.minor_age) AS minor_members,
  count(*) FILTER (WHERE rp.roll_households > 1) AS duplicate_enrolled_members,
  count(*) FILTER (WHERE rp.dibao_and_destitute) AS dibao_and_destitute_members,
  count(*) FILTER (WHERE ur.person_key IS NOT NULL) AS unfiled_relative_members,
  count(*) FILTER (WHERE urp.person_key IS NOT NULL) AS unknown_region_members,
  sum(pd.wage_monthly) AS dept_wage_monthly{department}
FROM subject_member sm
JOIN subject s ON s.household = sm.household
JOIN exact_params p ON p.county_code = s.county_code AND p.area = coalesce(s.area, '农村')
LEFT JOIN person_age pa ON pa.person_key = sm.person_key
LEFT JOIN person_dept pd ON pd.person_key = sm.person_key
LEFT JOIN person_bank pb ON pb.person_key = sm.person_key
LEFT JOIN roll_person rp ON rp.person_key = sm.person_key
LEFT JOIN unfiled_relative ur ON ur.person_key = sm.person_key
LEFT JOIN unknown_region_person urp ON urp.person_key = sm.person_key
GROUP BY sm.household
"""),
    Step('missing',
         ('cleared', 'subject'),
         why='What could not be read for a subject: its own rows and those of its income household.',
         sql=r"""
SELECT household, string_agg(DISTINCT field, ',' ORDER BY field) AS missing_fields FROM (
  SELECT s.household, c.field FROM subject s JOIN cleared c ON c.household = s.household
  UNION ALL
  SELECT s.household, c.field FROM subject s JOIN cleared c ON c.household = s.income_household
) GROUP BY household
"""),
    Step('household_facts',
         ('exact_params', 'member_agg', 'missing', 'place', 'subject'),
         why='Exact figures first (DECIMAL), each rounded once in the final SELECT and published as DOUBLE '
             '(see the docstring).',
         sql=r"""
WITH base AS (
  SELECT s.*, a.*, p.employment_cost_share,
         greatest(coalesce(s.members, 1), 1) AS size,
         coalesce(s.wage, 0) * (1 - p.employment_cost_share) + coalesce(s.other, 0) AS gross_exact,
         coalesce(s.medical, 0) + coalesce(s.education, 0) AS rigid_exact
  FROM subject s
  LEFT JOIN member_agg a ON a.household = s.household
  JOIN exact_params p ON p.county_code = s.county_code AND p.area = coalesce(s.area, '农村')
), exact AS (
  SELECT *, gross_exact - rigid_exact AS net_exact,
         fen_div(dept_wage_monthly * (1 - employment_cost_share), size) AS dept_per_capita
  FROM base
)
SELECT {columns}
FROM exact LEFT JOIN place pl ON pl.household = exact.household
LEFT JOIN missing mi ON mi.household = exact.household
ORDER BY subject_type, subject_id, source
"""),
)


def _with_wage_amounts(dept_facts: pl.DataFrame) -> pl.DataFrame:
    """``amount``: a 工资收入 report's value read like every amount (exact, to the fen), else null."""
    wage_text = dept_facts.select(pl.when(pl.col("item") == "工资收入").then(pl.col("value"))).to_series()
    amount, fault = parse_money(wage_text)
    return dept_facts.with_columns(pl.when(fault.is_null()).then(amount).alias("amount"))


def build_steps(catalog: Catalog = CATALOG) -> tuple[Step, ...]:
    """The steps with the catalog's department aggregates and fact columns filled in."""
    person = "".join(f",\n  {f.person} AS {f.name}" for f in catalog.department)
    members = "".join(f",\n  {f.members.format(col='pd.' + f.name)} AS {f.name}" for f in catalog.department)
    columns = ",\n       ".join(f"{f.expression} AS {f.name}" for f in catalog.facts)
    filled = {"person_dept": {"department": person}, "member_agg": {"department": members},
              "household_facts": {"columns": columns}}
    return tuple(
        replace(step, sql=step.sql.format(**filled[step.name])) if step.name in filled else step
        for step in (*_MODE_STEPS, *STEPS))


def household_facts(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, run_date: dt.date,
                    catalog: Catalog = CATALOG) -> pl.DataFrame:
    """One row per roll household and per registry/monitoring family, with the columns of ``catalog.FACTS``,
    in a fixed order (subject_type, subject_id, source)."""
    con = duckdb.connect()
    try:
        con.register("links", links.select("source", "row", "person_key", "household", "household_group",
                                           "id_status"))
        con.register("params", params)
        for stem in ("registry", "monitoring", "dibao_roll", "bank_assets", "relatives"):
            con.register(stem, drop.frame_or_empty(stem))
        con.register("dept_facts", _with_wage_amounts(drop.frame_or_empty("dept_facts")))
        con.execute(_MACROS)
        run_steps(con, build_steps(catalog), INPUTS,
                  {"run_date": run_date, "bank_data": "bank_assets" in drop.files})
        return con.sql("SELECT * FROM household_facts").pl()
    finally:
        con.close()
