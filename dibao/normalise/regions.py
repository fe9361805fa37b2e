"""Administrative division codes (GB/T 2260) that the first six digits of an ID number may carry.

The table is python-stdnum's ``cn/loc.dat``, which keeps every edition's codes, historical ones included (a
person born in 崇文区 before 2010 still carries 110103), so an ID whose area code is in *no* edition is not a
person's real number: an audit looks for exactly such fabricated IDs on the roll. Residence permits of 香港,
澳门 and 台湾 residents (GB/T 2260 has no such codes) begin with 81, 82 and 83.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

PERMIT_PREFIXES = ("81", "82", "83")  # 港澳台居民居住证


@lru_cache(maxsize=1)
def known_area_codes() -> frozenset[str]:
    """Every six-digit code of every GB/T 2260 edition: provinces, prefectures and counties."""
    text = files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    codes: set[str] = set()
    province = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code = line.split()[0]
        if not line.startswith((" ", "\t")):
            province = code
            codes.add(f"{province}0000")
        else:
            codes.add(f"{province}{code}")
    return frozenset(c for c in codes if len(c) == 6 and c.isdigit())


def is_known_area(code: str) -> bool:
    """A code some edition of GB/T 2260 assigned, or a 港澳台 residence-permit prefix."""
    return code.startswith(PERMIT_PREFIXES) or code in known_area_codes()
