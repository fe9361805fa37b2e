"""Person linkage and household cross-walk: each kind of noise real data has, with the expected link or review."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from dibao.ingest import ingest_drop
from dibao.link import link_persons, person_records
from dibao.link.persons import LinkResult
from tests.conftest import COUNTY_HEADERS, REGISTRY_HEADERS, ROLL_HEADERS, county_rows, make_id, write_csv

FATHER = make_id(birth="19700101", seq="011")
MOTHER = make_id(birth="19720202", seq="022")
CHILD = make_id(birth="20150303", seq="031")
TWIN_A = make_id(birth="20200404", seq="041")
TWIN_B = make_id(birth="20200404", seq="051")


def reg(household: str, name: str, id_number: str, relation: str = "户主") -> list[str]:
    return ["340402", "洛河镇", "新庄村", household, name, id_number, relation, "脱贫户", "2019", "3000", "3",
            "6000", "1200", "0", "0"]


def roll(household: str, name: str, id_number: str, county: str = "340402", relation: str = "户主") -> list[str]:
    return [county, "洛河镇", "新庄村", household, name, id_number, relation, "农村", "低保", "420", "2023-05-01",
            "300", "3"]


FAMILY = [reg("H1", "张伟", FATHER), reg("H1", "李丽", MOTHER, "配偶"), reg("H1", "张小明", CHILD, "之子")]


def link(tmp_path: Path, registry: list[list[str]], roll_rows: list[list[str]],
         bank: list[list[str]] | None = None) -> LinkResult:
    folder = tmp_path / "drop"
    folder.mkdir(exist_ok=True)
    write_csv(folder / "registry.csv", REGISTRY_HEADERS, registry, "gb18030")
    write_csv(folder / "dibao_roll.csv", ROLL_HEADERS, roll_rows)
    write_csv(folder / "counties.csv", COUNTY_HEADERS, county_rows())
    if bank:
        write_csv(folder / "bank_assets.csv", ["证件号码", "姓名", "金融机构", "余额", "查询日期"], bank)
    return link_persons(person_records(ingest_drop(folder)))


def roll_link(result: LinkResult, row: int) -> dict[str, object]:
    return result.links.filter((pl.col("source") == "dibao_roll") & (pl.col("row") == row)).row(0, named=True)


def typo(id_number: str, pos: int) -> str:
    return id_number[:pos] + str((int(id_number[pos]) + 3) % 10) + id_number[pos + 1:]


def swap(id_number: str, pos: int) -> str:
    assert id_number[pos] != id_number[pos + 1]
    return id_number[:pos] + id_number[pos + 1] + id_number[pos] + id_number[pos + 2:]


@pytest.mark.parametrize(
    ("roll_id", "method", "edit"),
    [
        (FATHER, "exact", None),
        (FATHER.replace("0", "０"), "exact", None),  # full-width digits
        (f" {FATHER[:6]} {FATHER[6:]} ", "exact", None),  # stray spaces
        (FATHER[:6] + FATHER[8:17], "upgraded_15", None),  # the old 15-digit ID
        (typo(FATHER, 14), "repaired_id", "id_one_edit:digit_typo"),  # one wrong digit
        (typo(FATHER, 3), "repaired_id", "id_one_edit:digit_typo"),
        (swap(FATHER, 13), "repaired_id", "id_one_edit:digit_swap"),  # two neighbours swapped
        (FATHER[:17] + ("0" if FATHER[17] != "0" else "1"), "repaired_id", "id_one_edit:check_digit"),
    ],
)
def test_id_noise_links_to_the_registry_person(tmp_path: Path, roll_id: str, method: str, edit: str | None) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", roll_id)])
    linked = roll_link(result, 1)
    assert linked["person_key"] == FATHER
    assert linked["method"] == method
    if edit:
        assert edit in linked["evidence"] and "county" in linked["evidence"]  # type: ignore[operator]
    assert result.review.is_empty()


@pytest.mark.parametrize(
    ("name", "evidence"),
    [("李力", "name_pinyin"), ("李麗", "name"), ("李 丽", "name")],  # homophone, traditional, inner space
)
def test_name_noise_with_a_mistyped_id_is_still_repaired(tmp_path: Path, name: str, evidence: str) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", name, typo(MOTHER, 12))])
    linked = roll_link(result, 1)
    assert (linked["person_key"], linked["method"]) == (MOTHER, "repaired_id")
    assert evidence in linked["evidence"]  # type: ignore[operator]


def test_repair_is_refused_when_the_name_disagrees(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "赵敏", typo(FATHER, 14))])
    linked = roll_link(result, 1)
    assert linked["method"] == "internal" and linked["person_key"] != FATHER


def test_repair_is_refused_across_counties(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", typo(FATHER, 14), county="422827")])
    assert roll_link(result, 1)["method"] == "internal"


def _valid_neighbour(bad: str, avoid: str) -> str:
    """A valid ID (not ``avoid``) that differs from ``bad`` in one sequence digit."""
    from dibao.normalise.ids import expected_check_char

    for pos in (14, 15, 16):
        for digit in "0123456789":
            candidate = bad[:pos] + digit + bad[pos + 1:]
            if candidate not in (bad, avoid) and expected_check_char(candidate[:17]) == candidate[17]:
                return candidate
    raise AssertionError("no neighbour found")


def test_two_known_ids_one_edit_away_go_to_review(tmp_path: Path) -> None:
    bad = typo(FATHER, 14)
    other = _valid_neighbour(bad, FATHER)  # another real person, also one edit away, with the same name
    registry = [*FAMILY, reg("H9", "张伟", other)]
    result = link(tmp_path, registry, [roll("DB1", "张伟", bad)])
    assert roll_link(result, 1)["method"] == "internal"
    review = result.review.row(0, named=True)
    assert review["reason"] == "ambiguous_id_repair" and set(review["candidates"]) == {FATHER, other}


def test_blank_id_infant_is_matched_by_name_within_the_household(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "张小明", "")])
    child = roll_link(result, 2)
    assert (child["person_key"], child["method"]) == (CHILD, "name_match")
    assert "household" in child["evidence"]  # type: ignore[operator]


def test_dropped_character_with_blank_id_is_matched_in_household(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "张明", "")])
    assert roll_link(result, 2)["person_key"] == CHILD


def test_a_namesake_outside_the_household_is_never_taken(tmp_path: Path) -> None:
    registry = [*FAMILY, reg("H2", "王芳", make_id(birth="19800101", seq="062"))]
    result = link(tmp_path, registry, [roll("DB7", "王芳", "")])  # nobody of DB7 links to H2 by ID
    assert roll_link(result, 1)["method"] == "internal"


def test_twins_with_the_same_name_and_birth_date_go_to_review_not_merged(tmp_path: Path) -> None:
    registry = [*FAMILY, reg("H1", "张乐", TWIN_A, "之子"), reg("H1", "张乐", TWIN_B, "之子")]
    # 长子/次子: two lines that differ (ingestion keeps one copy of a line repeated exactly).
    result = link(tmp_path, registry, [roll("DB1", "张伟", FATHER), roll("DB1", "张乐", "", relation="长子"),
                                       roll("DB1", "张乐", "", relation="次子")])
    twins = result.links.filter((pl.col("source") == "dibao_roll") & (pl.col("row") > 1))
    assert twins["method"].to_list() == ["internal", "internal"]
    assert twins["person_key"].n_unique() == 2  # two children, never one
    assert result.review["reason"].to_list() == ["ambiguous_name_match"] * 2
    assert set(result.review["candidates"][0].to_list()) == {TWIN_A, TWIN_B}
    registry_twins = result.links.filter(pl.col("source") == "registry")["person_key"].to_list()[3:]
    assert registry_twins == [TWIN_A, TWIN_B]  # both valid IDs: two persons


def test_two_different_valid_ids_are_never_merged(tmp_path: Path) -> None:
    same_name = make_id(birth="19700101", seq="013")
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", same_name)])
    assert roll_link(result, 1)["person_key"] == same_name


def test_bank_record_with_typo_is_repaired_without_household(tmp_path: Path) -> None:
    bank = [[typo(MOTHER, 10), "李丽", "中国农业银行", "12000", "2026-11-01"]]
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER)], bank=bank)
    record = result.links.filter(pl.col("source") == "bank_assets").row(0, named=True)
    assert (record["person_key"], record["method"]) == (MOTHER, "repaired_id")


def test_household_crosswalk_follows_splits_and_newborns(tmp_path: Path) -> None:
    # The registry family H1 is on the roll as two households (a split): DB1 (parents), DB2 (the son, now adult).
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "李丽", MOTHER),
                                     roll("DB2", "张小明", CHILD), roll("DB1", "张欣", "")])
    groups = result.households.filter(pl.col("household").is_in(["registry:H1", "dibao_roll:DB1",
                                                                 "dibao_roll:DB2"]))
    assert groups["household_group"].n_unique() == 1
    newborn = roll_link(result, 4)  # on the roll, not (yet) in the registry: an internal key in the family
    assert newborn["method"] == "internal" and str(newborn["person_key"]).startswith("H:")


def test_every_record_gets_exactly_one_link_row(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "张小明", "")])
    assert result.links.height == 5  # three registry records, two roll records
    assert result.links.select("source", "row").is_unique().all()
    assert result.links["person_key"].null_count() == 0


def test_two_records_with_differently_damaged_check_digits_are_one_person(tmp_path: Path) -> None:
    # Nobody has this person's valid ID, so repair cannot reach it; both records agree on the first 17 digits.
    person = make_id(birth="19790831", seq="820")
    roll_id = person[:17] + ("1" if person[17] != "1" else "2")
    bank_id = person[:17] + ("3" if person[17] != "3" else "4")
    bank = [[bank_id, "郝秀", "中国农业银行", "12000", "2026-11-01"], [FATHER[:17] + "0", "王五", "邮储银行", "5",
                                                                   "2026-11-01"]]
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "郝秀", roll_id)], bank=bank)
    roll_key = roll_link(result, 2)["person_key"]
    bank_rows = result.links.filter(pl.col("source") == "bank_assets")
    assert bank_rows["person_key"][0] == roll_key and str(roll_key).startswith("H:")
    assert bank_rows["person_key"][1] != roll_key  # another name: not the same person


# --- null and blank keys never make two records one person ----------------------------------------------------

def test_a_nameless_record_is_not_repaired_to_a_nameless_person(tmp_path: Path) -> None:
    # Bank files may omit the name: two missing names are no evidence (rapidfuzz rates "" vs "" as 100).
    stranger = make_id(region="340403", birth="19880808", seq="071")
    bank = [[stranger, "", "邮储银行", "10", "2026-11-01"],
            [typo(stranger, 14), "", "邮储银行", "900000", "2026-11-01"]]
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER)], bank=bank)
    rows = result.links.filter(pl.col("source") == "bank_assets")
    assert rows["method"].to_list() == ["exact", "internal"]
    assert rows["person_key"].to_list() == [stranger, "R:bank_assets:2"]


def test_a_nameless_exact_link_says_so_and_is_not_a_name_mismatch(tmp_path: Path) -> None:
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER)], bank=[[FATHER, "", "邮储银行", "10", "2026-11-01"]])
    record = result.links.filter(pl.col("source") == "bank_assets").row(0, named=True)
    assert (record["person_key"], record["evidence"]) == (FATHER, ["id", "no_name"])
    assert result.review.is_empty()


def test_two_records_of_one_household_never_take_the_same_person_by_name(tmp_path: Path) -> None:
    # The roll lists two children, the registry one: which one it is, nobody can say from the names.
    result = link(tmp_path, FAMILY, [roll("DB1", "张伟", FATHER), roll("DB1", "张小明", ""), roll("DB1", "张晓明", "")])
    children = result.links.filter((pl.col("source") == "dibao_roll") & (pl.col("row") > 1))
    assert children["method"].to_list() == ["internal", "internal"]
    assert CHILD not in children["person_key"].to_list() and children["person_key"].n_unique() == 2
    assert result.review["reason"].to_list() == ["ambiguous_name_match"] * 2


def test_a_name_two_persons_of_the_family_bear_joins_no_records(tmp_path: Path) -> None:
    # H1 has twins named 张乐; each parent's roll household lists one 张乐 without an ID. Either twin may be
    # either record, so the name is no evidence that the two records are one person.
    registry = [*FAMILY, reg("H1", "张乐", TWIN_A, "之子"), reg("H1", "张乐", TWIN_B, "之子")]
    result = link(tmp_path, registry, [roll("DB1", "张伟", FATHER), roll("DB1", "张乐", ""),
                                       roll("DB2", "李丽", MOTHER), roll("DB2", "张乐", "")])
    twins = result.links.filter((pl.col("source") == "dibao_roll") & (pl.col("name") == "张乐"))
    assert twins["household_group"].n_unique() == 1 and twins["method"].to_list() == ["internal", "internal"]
    assert twins["person_key"].to_list() == ["R:dibao_roll:2", "R:dibao_roll:4"]


def test_household_numbers_with_a_colon_stay_two_households_in_the_crosswalk(tmp_path: Path) -> None:
    from dibao.link import crosswalk_table

    registry = [reg("A:1", "张伟", FATHER), reg("A:2", "王芳", make_id(birth="19800101", seq="062"))]
    table = crosswalk_table(link(tmp_path, registry, [roll("DB1", "张伟", FATHER)]).links)
    assert sorted(table.filter(pl.col("source") == "registry")["household_id"].to_list()) == ["A:1", "A:2"]


def _frame(rows: list[tuple[str | None, str, str | None, str | None]]) -> pl.DataFrame:
    """Records (id, status, name, household) as a hand-built frame might carry them, blanks as ``""``."""
    from dibao.link.records import RECORD_SCHEMA

    return pl.DataFrame(
        [("bank_assets", i + 1, id_, status, None, None, name, name, None, household)
         for i, (id_, status, name, household) in enumerate(rows)],
        schema=list(RECORD_SCHEMA), orient="row",
    ).cast(RECORD_SCHEMA)  # type: ignore[arg-type]


def test_blank_names_and_households_are_gaps_not_shared_values() -> None:
    damaged = FATHER[:17] + ("0" if FATHER[17] != "0" else "1")
    records = _frame([(damaged, "bad_check_digit", "", None), (damaged[:17] + "X", "bad_check_digit", "", None),
                      (None, "blank", "张乐", ""), (None, "blank", "张乐", "")])
    keys = link_persons(records).links["person_key"].to_list()
    assert keys == [f"R:bank_assets:{i}" for i in range(1, 5)]


def test_person_records_treat_a_blank_household_number_as_no_household() -> None:
    from dibao.link.records import RECORD_SCHEMA

    frame = pl.DataFrame({c: pl.Series([None, None], dtype=t) for c, t in RECORD_SCHEMA.items()
                          if c not in ("source", "household")}).with_columns(
        pl.Series("row", [1, 2], dtype=pl.UInt32), pl.Series("household_id", ["  ", "H1"]))

    class OneFile:
        files: ClassVar[dict[str, None]] = {"registry": None}

        def scan(self, stem: str) -> pl.LazyFrame:
            return frame.lazy()

    records = person_records(OneFile())
    assert records["household"].to_list() == [None, "registry:H1"]
