"""GB 11643 identity numbers: property-based checks of the MOD 11-2 check digit, 15→18 upgrade and statuses."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.normalise import ids as ids_module
from dibao.normalise.ids import IdStatus, check_chars_for, check_id, expected_check_char, normalise_ids

TODAY = dt.date(2026, 11, 20)

regions = st.sampled_from(["340402", "340421", "422827", "429005", "110105", "440305"])
births_1900s = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31))
births_any = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")


def build_id(region: str, birth: dt.date, seq: str) -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + expected_check_char(first17)


def statuses(ids: list[str]) -> list[str]:
    frame = normalise_ids(pl.DataFrame({"v": ids}, schema={"v": pl.String}), "v", prefix="", today=TODAY)
    assert isinstance(frame, pl.DataFrame)
    return frame["status"].to_list()


@settings(max_examples=150, deadline=None)
@given(regions, births_any, sequences)
def test_every_single_substitution_and_adjacent_transposition_is_detected(
    region: str, birth: dt.date, seq: str
) -> None:
    good = build_id(region, birth, seq)
    variants = []
    for i in range(18):
        for ch in "0123456789X":
            if ch != good[i] and (ch != "X" or i == 17):
                variants.append(good[:i] + ch + good[i + 1:])
    for i in range(17):
        if good[i] != good[i + 1]:
            variants.append(good[:i] + good[i + 1] + good[i] + good[i + 2:])
    result = statuses([good, *variants])
    assert result[0] == IdStatus.VALID
    assert all(s not in (IdStatus.VALID, IdStatus.UPGRADED) for s in result[1:]), [
        v for v, s in zip(variants, result[1:], strict=True) if s == IdStatus.VALID
    ]


@settings(max_examples=200, deadline=None)
@given(regions, births_1900s, sequences)
def test_15_digit_ids_upgrade_to_the_18_digit_form(region: str, birth: dt.date, seq: str) -> None:
    full = build_id(region, birth, seq)
    old = full[:6] + full[8:17]  # the 15-digit form drops the century and the check character
    checked = check_id(old, today=TODAY)
    assert checked.status is IdStatus.UPGRADED
    assert checked.id == full
    assert checked.birth_date == birth
    assert checked.sex == ("男" if int(seq[-1]) % 2 else "女")
    assert checked.region == region
    # …and the upgraded form is itself a valid 18-digit ID.
    assert check_id(checked.id, today=TODAY).status is IdStatus.VALID


@settings(max_examples=100, deadline=None)
@given(regions, births_any, sequences, st.sampled_from(["full_width", "lower_x", "spaces", "hyphens"]))
def test_formatting_noise_normalises_to_the_same_id(region: str, birth: dt.date, seq: str, noise: str) -> None:
    good = build_id(region, birth, seq)
    messy = {
        "full_width": good.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
        "lower_x": good.lower(),
        "spaces": f"  {good[:6]} {good[6:14]}\u3000{good[14:]} ",
        "hyphens": f"{good[:6]}-{good[6:14]}-{good[14:]}",
    }[noise]
    checked = check_id(messy, today=TODAY)
    assert (checked.id, checked.status) == (good, IdStatus.VALID)


def test_statuses_and_their_messages() -> None:
    good = build_id("340402", dt.date(1980, 1, 1), "123")
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases = {
        good: IdStatus.VALID,
        wrong_check: IdStatus.BAD_CHECK_DIGIT,
        "34040219801301123X": IdStatus.BAD_DATE,  # month 13
        "340402" + "20991231" + "123" + "4": IdStatus.BAD_DATE,  # in the future
        "3404021980010112": IdStatus.BAD_LENGTH,
        "34040219800101A23X": IdStatus.BAD_FORMAT,
        "": IdStatus.BLANK,
        "   ": IdStatus.BLANK,
    }
    for raw, expected in cases.items():
        assert check_id(raw, today=TODAY).status is expected, raw
    assert "check digit is" in (check_id(wrong_check, today=TODAY).problem() or "")
    assert "16 characters" in (check_id("3404021980010112", today=TODAY).problem() or "")
    assert check_id(good, today=TODAY).problem() is None


def test_vectorised_check_chars_agree_with_the_scalar_ones() -> None:
    rng = np.random.default_rng(7)
    digits = rng.integers(0, 10, size=(500, 17))
    vectorised = check_chars_for(digits)
    scalar = [expected_check_char("".join(map(str, row))) for row in digits]
    assert vectorised.tolist() == scalar


def test_sex_and_region_are_derived() -> None:
    checked = check_id(build_id("422827", dt.date(1955, 6, 30), "071"), today=TODAY)
    assert (checked.sex, checked.region, checked.birth_date) == ("男", "422827", dt.date(1955, 6, 30))


def test_a_column_checked_a_block_at_a_time_gives_what_each_id_gives_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids_module, "_BLOCK", 3)  # blocks of three IDs: every kind falls in more than one block
    valid = build_id("340402", dt.date(1980, 1, 1), "123")
    old = "340402800101123"  # 15 digits: upgraded
    ids = [valid, None, old, valid[:-1] + "0", "abc", "340402198013011234", valid.lower(), "810000198001011230",
           "999999198001011234", "34040219800101A011", old, valid]
    frame = normalise_ids(pl.DataFrame({"v": ids}, schema={"v": pl.String}), "v", prefix="", today=TODAY)
    alone = [check_id(v, today=TODAY) for v in ids]
    assert frame.select("norm", "status", "birth_date", "sex", "region").rows() == [
        (c.id, c.status.value, c.birth_date, c.sex, c.region) for c in alone]
    assert frame["status"][2] == "upgraded" and frame["norm"][2] == build_id("340402", dt.date(1980, 1, 1), "123")
