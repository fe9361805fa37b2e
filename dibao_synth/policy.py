"""The sample province's parameters on the run date, read from the shipped parameter file.

Only the values are borrowed from the engine's policy (``dibao/policy/parameters.yaml``, resolved per county and
area); the truth is computed here from the generator's own data, never by calling the engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao.rules.params import load_parameters
from dibao_synth.params import COUNTIES


@dataclass(frozen=True)
class Policy:
    """Parameter values in force on ``as_of``: one row per county and area (``table``)."""

    as_of: dt.date
    table: pl.DataFrame

    def value(self, name: str) -> float:
        """A parameter that is the same everywhere (the sample province sets them province-wide)."""
        values = self.table[name].unique()
        if values.len() != 1:
            raise ValueError(f"{name} differs by county or area; read it with per_household()")
        return float(values[0])

    def per_household(self, name: str, county_code: pl.Series, area: pl.Series) -> np.ndarray:
        """A parameter per household (county and area as given, 农村 when blank)."""
        keys = pl.DataFrame({"county_code": county_code, "area": area.fill_null("农村")})
        joined = keys.join(self.table.select("county_code", "area", name), on=["county_code", "area"], how="left",
                           maintain_order="left")
        return joined[name].to_numpy()


def load_policy(as_of: dt.date) -> Policy:
    return Policy(as_of, load_parameters().resolve(as_of, [c.code for c in COUNTIES]))
