"""Dated policy parameters (``parameters.yaml`` in ``dibao/policy/``): which value is in force per county, area, day.

Provinces change standards mid-year and counties differ; a rule never contains a number, it names a parameter.
Loading checks the file (units, sorted and non-overlapping dates, 0/1 flags); resolving for a run date checks that
every county of the drop has a value in force. Each mistake names the file and the key.

A value is in force from its ``from`` day to its ``until`` day (open-ended without one). A figure set for one year
(the monitoring line, last year's disposable income) is written with an ``until``, so a run after it stops naming
the parameter instead of silently using an old year's figure; a parameter marked ``carry_forward: true`` keeps its
latest value past its ``until`` instead, and the run says so (``NAME__carried`` in parameters_in_force.parquet and
"沿用" in every trace that reads it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dibao.errors import ConfigError
from dibao.policy_files import PARAMETERS, shipped

DEFAULT_PARAMETERS_PATH = shipped(PARAMETERS)

UNITS = {
    "yuan_per_person_month": "元/人/月",
    "yuan_per_person_year": "元/人/年",
    "ratio": "比例",
    "multiplier": "倍",
    "months": "个月",
    "days": "天",
    "years": "周岁",
    "flag": "是(1)/否(0)",
    "yuan_per_year": "元/年",
    "yuan_per_household_year": "元/户/年",
    "homes": "套",
    "grade": "级",
}
FLAG_UNIT = "flag"
Dimension = Literal["county_code", "area"]
# A value has at most this many decimals, so the rules read it exactly as DECIMAL(38, 6) (see rules.evaluate).
PARAMETER_DECIMALS = 6


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    county_code: str | None = None
    area: Literal["城市", "农村"] | None = None
    from_: dt.date
    until: dt.date | None = None
    value: float

    @classmethod
    def parse(cls, raw: object) -> _Value:
        if isinstance(raw, dict) and "from" in raw:
            raw = {("from_" if k == "from" else k): v for k, v in raw.items()}
        return cls.model_validate(raw)


class _Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    unit: str
    reference: str
    varies_by: list[Dimension] = []
    carry_forward: bool = False
    values: list[dict[str, object]]


class _ParameterFile(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    version: str
    province: str = ""
    parameters: dict[str, _Parameter]


@dataclass(frozen=True)
class ParameterValue:
    county_code: str | None
    area: str | None
    valid_from: dt.date
    valid_until: dt.date | None
    value: float


@dataclass(frozen=True)
class Parameter:
    name: str
    label: str
    unit: str
    reference: str
    varies_by: tuple[str, ...]
    values: tuple[ParameterValue, ...]
    carry_forward: bool = False

    def in_force(self, on: dt.date, county_code: str | None = None, area: str | None = None
                 ) -> ParameterValue | None:
        """The value in force on ``on``; for a ``carry_forward`` parameter whose last value has expired, that
        value (``carried`` tells which); else None."""
        latest: ParameterValue | None = None
        for v in self.values:
            if ("county_code" in self.varies_by and v.county_code != county_code) or (
                    "area" in self.varies_by and v.area != area):
                continue
            if v.valid_from <= on and (v.valid_until is None or on <= v.valid_until):
                return v
            if v.valid_from <= on:
                latest = v
        return latest if self.carry_forward else None

    def carried(self, value: ParameterValue, on: dt.date) -> bool:
        """Whether ``value`` is in force on ``on`` only because the parameter carries it forward."""
        return value.valid_until is not None and on > value.valid_until


@dataclass(frozen=True)
class ParameterSet:
    version: str
    source: Path
    parameters: dict[str, Parameter]

    def resolve(self, on: dt.date, counties: list[str]) -> pl.DataFrame:
        """One row per (county_code, area) with every parameter's value, start date and reference in force.

        Columns: county_code, area, then per parameter ``<name>`` (value) and ``<name>__from`` (date in force),
        and for a ``carry_forward`` parameter ``<name>__carried`` (its value expired and is used on).
        Raises ConfigError naming the file and key when a county lacks a value on ``on``.
        """
        rows = []
        for county in sorted(set(counties)):
            for area in ("城市", "农村"):
                row: dict[str, object] = {"county_code": county, "area": area}
                for name, p in self.parameters.items():
                    v = p.in_force(on, county, area)
                    if v is None:
                        where = " ".join(f"{d} {x}" for d, x in (("county", county), ("area", area))
                                         if ("county_code" if d == "county" else d) in p.varies_by)
                        raise ConfigError(f"{self.source}: parameters.{name}: no value in force on {on}"
                                          + (f" for {where}" if where else "")
                                          + " (add a dated value, or mark the parameter carry_forward: true)")
                    row[name] = v.value
                    row[f"{name}__from"] = v.valid_from
                    if p.carry_forward:
                        row[f"{name}__carried"] = p.carried(v, on)
                rows.append(row)
        return pl.DataFrame(rows)


def _check_dates(source: Path, name: str, values: list[ParameterValue], varies_by: tuple[str, ...]) -> None:
    groups: dict[tuple[str | None, str | None], list[ParameterValue]] = {}
    for v in values:
        key = (v.county_code if "county_code" in varies_by else None, v.area if "area" in varies_by else None)
        groups.setdefault(key, []).append(v)
    for key, entries in groups.items():
        label = " ".join(k for k in key if k) or "(all)"
        for earlier, later in itertools.pairwise(entries):
            if later.valid_from <= earlier.valid_from:
                raise ConfigError(f"{source}: parameters.{name}: dates for {label} are not sorted "
                                  f"({earlier.valid_from} then {later.valid_from})")
            if earlier.valid_until is not None and earlier.valid_until >= later.valid_from:
                raise ConfigError(f"{source}: parameters.{name}: dates for {label} overlap "
                                  f"(until {earlier.valid_until}, next from {later.valid_from})")
        for v in entries:
            if v.valid_until is not None and v.valid_until < v.valid_from:
                raise ConfigError(f"{source}: parameters.{name}: for {label}, until {v.valid_until} is before "
                                  f"from {v.valid_from}")


def _check_exact(source: Path, key: str, value: float) -> None:
    """Refuse a value the rules could not read back exactly from its float: more than ``PARAMETER_DECIMALS``
    decimals (a YAML number's shortest text is the number as written), not finite, or 10^9 or more (beyond
    that a double no longer carries 6 decimals)."""
    exponent = Decimal(repr(value)).as_tuple().exponent if math.isfinite(value) else None
    if not isinstance(exponent, int) or exponent < -PARAMETER_DECIMALS or abs(value) >= 1e9:
        raise ConfigError(f"{source}: {key}: value {value!r} must be a number below 10^9 with at most "
                          f"{PARAMETER_DECIMALS} decimals (rules compare parameters exactly)")


def load_parameters(path: Path = DEFAULT_PARAMETERS_PATH) -> ParameterSet:
    """Load and check the parameter file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc = _ParameterFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read parameters: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: malformed parameters: {exc}") from exc
    parameters = {}
    for name, p in doc.parameters.items():
        if p.unit not in UNITS:
            raise ConfigError(f"{path}: parameters.{name}.unit: unknown unit {p.unit!r} "
                              f"(known: {', '.join(UNITS)})")
        values = []
        for i, entry in enumerate(p.values):
            try:
                v = _Value.parse(entry)
            except ValidationError as exc:
                raise ConfigError(f"{path}: parameters.{name}.values[{i}]: {exc}") from exc
            _check_exact(path, f"parameters.{name}.values[{i}]", v.value)
            if p.unit == FLAG_UNIT and v.value not in (0, 1):
                raise ConfigError(f"{path}: parameters.{name}.values[{i}]: a flag is 1 (是) or 0 (否), "
                                  f"not {v.value!r}")
            for dim in ("county_code", "area"):
                given = getattr(v, dim) is not None
                if given != (dim in p.varies_by):
                    need = "needs" if dim in p.varies_by else "must not have"
                    raise ConfigError(f"{path}: parameters.{name}.values[{i}]: {need} {dim} "
                                      f"(varies_by: {p.varies_by or 'nothing'})")
            values.append(ParameterValue(v.county_code, v.area, v.from_, v.until, v.value))
        _check_dates(path, name, values, tuple(p.varies_by))
        parameters[name] = Parameter(name, p.label, p.unit, p.reference, tuple(p.varies_by), tuple(values),
                                     p.carry_forward)
    return ParameterSet(doc.version, path, parameters)
