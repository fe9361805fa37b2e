"""The sample province (docs/POLICY.md#sample-province) and the rates that shape a synthetic drop.

Everything the generator draws is tuned here, in one place, so a reader can see what "realistic" means without
reading the drawing code. Rates are per household or per record as named; counts with a ``MIN_`` prefix make
sure a small drop (a few hundred households) still contains at least one of every problem case.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class County:
    """One county of the sample province (§4): codes, 低保 standards (yuan/person/month), population weight."""

    code: str
    name: str
    rural_standard: int  # 农村低保标准
    urban_standard: int  # 城市低保标准
    rural_population: int  # §4 figure; only used as the weight for placing households
    plate_prefix: str  # 机动车号牌 prefix of the prefecture


COUNTIES: tuple[County, ...] = (
    County("340402", "大通区", 760, 860, 120_000, "皖D"),
    County("340403", "田家庵区", 760, 860, 90_000, "皖D"),
    County("340404", "谢家集区", 760, 860, 150_000, "皖D"),
    County("340405", "八公山区", 760, 860, 60_000, "皖D"),
    County("340406", "潘集区", 760, 860, 330_000, "皖D"),
    County("340421", "凤台县", 760, 860, 560_000, "皖D"),
    County("340422", "寿县", 760, 860, 1_050_000, "皖D"),
    County("422827", "来凤县", 560, 650, 250_000, "鄂Q"),
    County("429005", "潜江市", 640, 750, 520_000, "鄂N"),
)

# Birth places of people born outside the nine counties (their ID keeps the birth region, a real-life nuisance).
OTHER_REGIONS: tuple[str, ...] = (
    "340102", "340104", "340321", "340323", "341221", "341226", "341522", "320382", "410526", "411527",
    "420102", "420606", "421022", "422801", "422822", "429004", "429006", "500101",
)

# §4 income formula and asset limit.
EMPLOYMENT_COST_SHARE = 0.20  # 必要就业成本
ASSET_MONTHS = 24  # per-capita financial assets must stay below 24 × monthly standard
EDGE_MULTIPLIER = 1.5  # 低保边缘家庭
DESTITUTE_FACTOR = 1.3  # 特困 basic living standard = 1.3 × 低保 standard
MONITORING_LINE_YEAR = 7900  # 防返贫 monitoring income line of 2026, yuan per person per year (parameters.yaml)

DEFAULT_AS_OF = dt.date(2026, 11, 20)
XLSX_MAX_ROWS = 200_000  # above this an XLSX file is written as CSV GB18030 instead (xlsxwriter is slow)
XLSX_CREATED = dt.datetime(2026, 1, 1, 8, 0, 0)  # fixed workbook property: byte-identical output

# Membership segments: (in registry, in monitoring, on roll, share of households). Roll ≈ 40 %,
# registry ≈ 60 %, monitoring ≈ 20 %; 17 % of escaped-poverty and 30 % of monitored households are covered.
SEGMENTS: tuple[tuple[bool, bool, bool, float], ...] = (
    (True, False, False, 0.46),
    (True, True, False, 0.04),
    (True, True, True, 0.04),
    (True, False, True, 0.06),
    (False, True, False, 0.10),
    (False, True, True, 0.02),
    (False, False, True, 0.28),
)

# Household size distribution (1..6 persons) of the families these programmes see: many single elderly.
SIZE_WEIGHTS = np.array([0.26, 0.25, 0.18, 0.15, 0.10, 0.06])

# Income bands: (name, share, low, high) where low/high are multiples of the monthly standard of the true
# per-capita monthly income. "boundary" is exactly 1.0 × standard (income not *below* the standard).
INCOME_BANDS_ROLL: tuple[tuple[str, float, float, float], ...] = (
    ("eligible", 0.85, 0.10, 0.97),
    ("boundary", 0.02, 1.0, 1.0),
    ("just_above", 0.08, 1.01, 1.25),  # 渐退 territory
    ("well_above", 0.05, 1.3, 3.0),
)
INCOME_BANDS_DESTITUTE: tuple[tuple[str, float, float, float], ...] = (
    ("eligible", 0.95, 0.0, 0.6),
    ("well_above", 0.05, 1.2, 2.0),
)
INCOME_BANDS_OFF_ROLL: tuple[tuple[str, float, float, float], ...] = (
    ("eligible", 0.05, 0.30, 0.97),  # 漏保 candidates
    ("boundary", 0.01, 1.0, 1.0),
    ("edge", 0.12, 1.01, 1.49),  # 低保边缘
    ("well_above", 0.82, 1.5, 6.0),
)
INCOME_BANDS_MONITORED_ONLY: tuple[tuple[str, float, float, float], ...] = (
    ("eligible", 0.15, 0.30, 0.97),
    ("boundary", 0.01, 1.0, 1.0),
    ("edge", 0.30, 1.01, 1.49),
    ("well_above", 0.54, 1.5, 4.0),
)

# 单人保 (民发〔2021〕57号 第八条): the family is an edge family, one member (severely disabled or seriously ill)
# is covered alone. Per-capita income of the whole family, × the standard (most in the edge band, some above it).
INCOME_BANDS_SINGLE: tuple[tuple[str, float, float, float], ...] = (
    ("edge", 0.85, 1.01, 1.45),
    ("well_above", 0.15, 1.6, 2.5),
)

# Roll entries that do not list the whole registry 户 (per 低保 household in the registry or monitoring).
SINGLE_ONLY_SHARE = 0.05  # 单人保 listing only its covered member
SINGLE_LISTED_SHARE = 0.05  # 单人保 listing the others as 是否保障对象=否
SINGLE_SEVERE_SHARE = 0.8  # of 单人保 members: a severe disability or a 重病 record (the rest: a flag)
CHILD_APART_SHARE = 0.03  # 整户保 without an adult child who lives apart (still in the registry 户)
INSTITUTION_SHARE = 0.01  # of registry households: one member 特困 集中供养, the 户 well off
CENTRALISED_SHARE = 0.2  # of 特困 singles: 集中供养 (in an institution)
MINOR_TURNING_ADULT = 2  # 特困 17-year-olds turning 18 within 30 days of the run date, in any drop
ROLL_REVIEW_OVERDUE_SHARE = 0.03  # roll households whose 最近核查日期 is more than a year old
ROLL_MEMBER_COVERED_WRITTEN = 0.4  # roll households writing 是否保障对象=是 (the others leave it blank: 是)
COMPONENTS_BLANK_SHARE = 0.15  # registry/monitoring households whose export leaves the 其中 components blank

# Assets and other departments' facts (per household unless noted).
ROLL_RICH_SHARE = 0.03  # roll households with per-capita assets above the limit
ROLL_VEHICLE_SHARE = 0.035
OFF_ROLL_VEHICLE_SHARE = 0.08
# 机动车 classes (eligibility.yaml asset_kinds) and their shares among vehicle records; "untyped" is a plate alone.
VEHICLE_CLASS_WEIGHTS: dict[str, float] = {
    "car": 0.45, "operating": 0.05, "disability": 0.12, "motorcycle": 0.14, "tricycle": 0.07, "farm": 0.07,
    "untyped": 0.10}
ROLL_BUSINESS_SHARE = 0.015
OFF_ROLL_BUSINESS_SHARE = 0.03
CLOSED_BUSINESS_SHARE = 0.25  # of 工商登记 facts: 注销 (not a failure)
BUSINESS_REVENUE_SHARE = 0.6  # of active businesses: a 经营收入 report (the others: registration only)
BUSINESS_HIGH_REVENUE_SHARE = 0.4  # of revenue reports: above the limit (an exit)
HOME_FACT_SHARE = 0.35
# 不动产 situations among households with a home record.
HOME_SITUATION_WEIGHTS: dict[str, float] = {
    "one": 0.86, "counted_two": 0.04, "two_members": 0.03, "dilapidated_and_new": 0.04, "relocated": 0.03}
ROLL_DEATH_SHARE = 0.012
OFF_ROLL_DEATH_SHARE = 0.003
ROLL_EXCLUDED_SHARE = 0.01  # roll households with a member 服刑 / 强制隔离戒毒 / 失踪 (out of the family)
OFF_ROLL_EXCLUDED_SHARE = 0.002
EXCLUSION_ENDED_SHARE = 0.15  # of those records: the sentence ended before the run date (back in the family)
SERIOUS_ILLNESS_SHARE = 0.01  # persons with a 重病 record besides the 单人保 members
WAGE_FACT_SHARE = 0.2  # of households with wages: a 人社局 wage record for one worker
PUBLIC_PAYROLL_SHARE = 0.003  # 财政供养
BANK_PERSON_SHARE = 0.45  # adults with at least one account checked
SEVERE_DISABILITY_RATE = 0.025  # grade 1–2 per person
MILD_DISABILITY_RATE = 0.03  # grade 3–4 per person

# Problem cases (per roll household) and their minimum counts in any drop.
DUPLICATE_ENROLMENT_SHARE = 0.004
DUPLICATE_OTHER_COUNTY_SHARE = 0.3
DIBAO_AND_DESTITUTE_SHARE = 0.003
TWIN_SHARE = 0.01  # of households with two children of one generation
MIN_CASES = 2

# Monitoring (防返贫).
RISK_ELIMINATED_SHARE = 0.45
RISK_ELIMINATED_BELOW_LINE_SHARE = 0.25  # of monitored households below the line: wrongly marked eliminated
RISK_ELIMINATED_TOO_SOON_SHARE = 0.02  # identified within the last month and already marked eliminated
MONITORED_NO_WORK_CAPACITY_SHARE = 0.05  # of monitored off-roll households: a member severely disabled

# Relatives of staff (近亲属备案).
STAFF_PER_HOUSEHOLDS = 60
STAFF_MIN, STAFF_MAX = 5, 600
STAFF_FROM_POPULATION_SHARE = 0.3
RELATIVE_FILED_SHARE = 0.82  # in file with 是
RELATIVE_FILED_NO_SHARE = 0.08  # in file with 否; the rest are not in the file at all
RELATIVE_OFF_ROLL_SHARE = 0.15  # relatives picked from off-roll households (filed 是, harmless)

# Record noise: family rate per source (id, name). The registry is the cleaner side.
NOISE_RATES: dict[str, tuple[float, float]] = {
    "registry": (0.010, 0.008),
    "monitoring": (0.020, 0.015),
    "dibao_roll": (0.035, 0.030),
    "bank_assets": (0.030, 0.030),
    "dept_facts": (0.030, 0.030),
}
# Relative weights of ID noise kinds within the family (lower_x and blank are drawn separately).
ID_KIND_WEIGHTS: dict[str, float] = {
    "bad_check_digit": 0.16,
    "digit_typo": 0.20,
    "digit_swap": 0.16,
    "old_15": 0.16,
    "full_width": 0.12,
    "spaces": 0.20,
}
LOWER_X_RATE = 0.06  # of X-ending IDs in a noisy source, scaled by the source's id rate / 0.035
INFANT_BLANK_RATE = 0.5  # of under-2s in registry/monitoring/roll: ID not yet issued
ADULT_BLANK_RATE = 0.0005
NAME_KIND_WEIGHTS: dict[str, float] = {
    "homophone": 0.35,
    "traditional": 0.25,
    "dropped_char": 0.15,
    "inner_space": 0.25,
}
DOT_VARIANT_RATE = 0.3  # of minority names in a noisy source, scaled like LOWER_X_RATE
ROW_FAULT_RATE = 0.0005  # per row of registry and roll, per fault kind family
DATE_SLASH_RATE = 0.03
DATE_COMPACT_RATE = 0.02


def county_weights() -> np.ndarray:
    """Households are placed in counties in proportion to their rural population."""
    w = np.array([c.rural_population for c in COUNTIES], dtype=np.float64)
    return w / w.sum()


def staff_count(households: int) -> int:
    return int(np.clip(households // STAFF_PER_HOUSEHOLDS, STAFF_MIN, STAFF_MAX))
