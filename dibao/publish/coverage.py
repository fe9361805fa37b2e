"""Coverage-rate statistics per county, city and province (docs/POLICY.md#coverage-rates).

Analysts compare these across counties and over time: rural 低保 coverage (rural 低保 persons / rural household-
register population), the share of escaped-poverty, monitored and edge persons covered by 低保 or 特困, and the
exit and inclusion candidates per 10,000 covered persons. Persons are counted once per county
(by person key, as its number); city and province figures add up their counties' numerators and denominators.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dibao import duck
from dibao.errors import ConfigError
from dibao.ingest import Drop
from dibao.link.keys import numbered_links
from dibao.policy_files import COVERAGE, shipped
from dibao.publish.contract import COVERAGE_MEASURES as MEASURES
from dibao.publish.contract import COVERAGE_SCHEMA

DEFAULT_COVERAGE_PATH = shipped(COVERAGE)


class _Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float
    label: str
    source: str


class _CoverageDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    version: str
    reference_rates: dict[str, _Reference] = {}
    area_names: dict[str, str] = {}


def load_coverage_config(path: Path = DEFAULT_COVERAGE_PATH) -> _CoverageDoc:
    try:
        doc = _CoverageDoc.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: malformed coverage configuration: {exc}") from exc
    for measure in doc.reference_rates:
        if measure not in MEASURES:
            raise ConfigError(f"{path}: reference_rates.{measure}: unknown measure (known: {', '.join(MEASURES)})")
    return doc


_SQL = """
WITH roll_person AS (
  SELECT DISTINCT r.county_code, l.person_number, r.area, r.assistance_type
  FROM dibao_roll r JOIN links l ON l.source = 'dibao_roll' AND l."row" = r."row"
  WHERE coalesce(r.member_covered, TRUE)  -- a co-resident member listed as not covered is not a covered person
), covered AS (SELECT DISTINCT person_number FROM roll_person),
registry_person AS (
  SELECT DISTINCT r.county_code, l.person_number
  FROM registry r JOIN links l ON l.source = 'registry' AND l."row" = r."row"
), monitored_person AS (
  SELECT DISTINCT m.county_code, l.person_number, m.monitoring_category
  FROM monitoring m JOIN links l ON l.source = 'monitoring' AND l."row" = m."row"
), per_county AS (
  SELECT c.county_code, 'rural_dibao_coverage' AS measure,
         (SELECT count(DISTINCT person_number) FROM roll_person p
          WHERE p.county_code = c.county_code AND p.area = '农村' AND p.assistance_type = '低保') AS numerator,
         c.rural_population AS denominator
  FROM counties c
  UNION ALL
  SELECT county_code, 'escaped_poverty_covered_share', count(*) FILTER (WHERE person_number IN (SELECT * FROM covered)),
         count(*) FROM registry_person GROUP BY county_code
  UNION ALL
  SELECT county_code, 'monitored_covered_share', count(*) FILTER (WHERE person_number IN (SELECT * FROM covered)),
         count(*) FROM (SELECT DISTINCT county_code, person_number FROM monitored_person) GROUP BY county_code
  UNION ALL
  SELECT county_code, 'edge_covered_share', count(*) FILTER (WHERE person_number IN (SELECT * FROM covered)),
         count(*) FROM monitored_person WHERE monitoring_category = '边缘易致贫户' GROUP BY county_code
  UNION ALL
  SELECT c.county_code, 'exit_candidates_per_10k',
         (SELECT count(*) FROM exits e WHERE e.county_code = c.county_code),
         (SELECT count(DISTINCT person_number) FROM roll_person p WHERE p.county_code = c.county_code)
  FROM counties c
  UNION ALL
  SELECT c.county_code, 'inclusion_candidates_per_10k',
         (SELECT count(*) FROM inclusions i WHERE i.county_code = c.county_code),
         (SELECT count(DISTINCT person_number) FROM roll_person p WHERE p.county_code = c.county_code)
  FROM counties c
), levels AS (
  SELECT 'county' AS level, county_code AS area_code, measure, numerator, denominator FROM per_county
  UNION ALL
  SELECT 'city', substr(county_code, 1, 4) || '00', measure, sum(numerator), sum(denominator)
  FROM per_county GROUP BY 2, 3
  UNION ALL
  SELECT 'province', substr(county_code, 1, 2) || '0000', measure, sum(numerator), sum(denominator)
  FROM per_county GROUP BY 2, 3
)
SELECT level, area_code, measure, numerator::DOUBLE AS numerator, denominator::DOUBLE AS denominator,
       CASE WHEN denominator > 0 THEN numerator / denominator
                                       * CASE WHEN measure LIKE '%per_10k' THEN 10000 ELSE 1 END END AS rate
FROM levels ORDER BY level, area_code, measure
"""


def coverage(drop: Drop, links: pl.DataFrame, exits: pl.DataFrame, inclusions: pl.DataFrame, run_date: dt.date,
             config: _CoverageDoc | None = None) -> pl.DataFrame:
    """coverage.parquet: one row per (level, area, measure) with numerator, denominator, rate and reference."""
    config = config or load_coverage_config()
    counties = drop.frame_or_empty("counties")
    con = duck.connect()
    try:
        # Persons by number (numbered_links: one per person key), counted distinct over 11 million records
        duck.register(con, "links", numbered_links(links).select("source", "row", "person_number"))
        duck.register(con, "counties", counties.select("county_code", "rural_population"))
        duck.register(con, "exits", exits.select("county_code"))
        duck.register(con, "inclusions", inclusions.select("county_code"))
        for stem in ("dibao_roll", "registry", "monitoring"):
            drop.register(con, stem)
        table = con.sql(_SQL).pl()
    finally:
        con.close()
    names = dict(zip(counties["county_code"], counties["county_name"], strict=True)) | config.area_names
    references = {m: r.rate for m, r in config.reference_rates.items()}
    return table.with_columns(
        pl.col("area_code").replace_strict(names, default=None, return_dtype=pl.String).alias("area_name"),
        pl.col("measure").replace_strict(MEASURES, return_dtype=pl.String).alias("label"),
        pl.col("measure").replace_strict(references, default=None, return_dtype=pl.Float64).alias("reference_rate"),
        pl.lit(run_date).alias("run_date"),
    ).select(list(COVERAGE_SCHEMA)).cast(COVERAGE_SCHEMA)
