"""Printed work lists read cleanly on A4 landscape (issue 14, item 6): checked on paper, not on cell attributes.

Each workbook is rendered to PDF by LibreOffice headless (Debian's libreoffice-calc-nogui, installed by `make test`
as root) and read back with pdfminer.six (tests/printed_pdf.py): every page is A4 landscape; no character reaches
out of its printed cell; no two text lines of different rows overlap; every cell's text is printed whole, the
header row repeated on every page; rows are not needlessly tall. Before the row heights, 340422_寿县.xlsx printed
one line of each 核查依据与数据 and lost the rest.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dibao.pipeline import run_daily
from dibao.publish.contract import DIFF_SCHEMA, EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA
from dibao.publish.print_layout import FONT_POINTS, LINE_POINTS
from dibao.publish.store import RunStore
from dibao.publish.worklist_rows import EMPTY_TEXT, PROVINCE_FILE
from dibao.publish.worklists import write_worklists
from dibao_synth.nextday import next_day
from tests.printed_pdf import (
    A4_LANDSCAPE,
    SKIP_REASON,
    SOFFICE,
    Page,
    TextLine,
    expected_rows,
    overflowing,
    overlapping_lines,
    printed_rows,
    read_pages,
    render,
    text_lines,
)

pytestmark = pytest.mark.skipif(SOFFICE is None, reason=SKIP_REASON)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "drop"
DAY1, DAY2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)  # as `make demo`


def check_printed(workbook: Path, pdf: Path) -> tuple[list[Page], list[TextLine]]:
    """Every check of the printed pages of ``workbook`` (see the module's docstring)."""
    pages = read_pages(pdf)
    for number, page in enumerate(pages, start=1):
        size = (page.width, page.height)
        assert size == pytest.approx(A4_LANDSCAPE, abs=0.5), f"page {number} is {size}, not A4 landscape"
    problems = [f"page {number}: {problem}" for number, page in enumerate(pages, start=1)
                for problem in overflowing(page, EMPTY_TEXT)]
    assert not problems, f"{workbook.name}: text outside its printed cell:\n" + "\n".join(problems[:20])
    lines = list(text_lines(pages))
    overlaps = overlapping_lines(lines)
    assert not overlaps, f"{workbook.name}: text lines of different rows overlap:\n" + "\n".join(overlaps[:20])
    expected = expected_rows(workbook)
    printed = printed_rows(pages, lines, expected)
    assert set(printed) == set(expected), f"{workbook.name}: sheets printed {sorted(printed)}"
    for sheet, rows in expected.items():
        got = printed[sheet]
        assert len(got) == len(rows), f"{workbook.name} {sheet}: {len(got)} rows printed of {len(rows)}"
        for index, (want, have) in enumerate(zip(rows, got, strict=True)):
            if want[0] == EMPTY_TEXT and not any(want[1:]):  # one merged cell across the row
                assert "".join(have) == EMPTY_TEXT, f"{workbook.name} {sheet} row {index + 1}: {have}"
            else:
                assert have == want, f"{workbook.name} {sheet} row {index + 1}: printed {have}, holds {want}"
    return pages, lines


def needlessly_tall(pages: list[Page], lines: list[TextLine]) -> Iterator[str]:
    """Rows with more empty space below their lowest text line than 1.5 lines and 15% of their text's lines: the
    measure counts a Chinese character 2 units wide where LibreOffice needs 1.8 (room for Excel's and WPS's
    fonts), so a long text may leave a line or two free, but never half a row."""
    by_row: dict[tuple[int, int], list[TextLine]] = defaultdict(list)
    for line in lines:
        by_row[line.page, line.row].append(line)
    for (number, row), members in by_row.items():
        size = statistics.median(line.y1 - line.y0 for line in members)  # a line is about 1 em tall
        pitch = size * LINE_POINTS / FONT_POINTS  # one line of the row-height measure, at the printed scale
        spare = (min(line.y0 for line in members) - pages[number].rows[row + 1]) / pitch
        most = max(Counter(line.column for line in members).values())
        if spare > 1.5 + 0.15 * most:
            yield f"page {number + 1} row {row}: {spare:.1f} empty lines below {most} lines of text"


# ---------------------------------------------------------------------------------------------- the samples


@pytest.fixture(scope="module")
def sample_lists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The work lists of `make demo`'s second day: the bundled samples, then the next morning's drop."""
    root = tmp_path_factory.mktemp("print")
    store = RunStore(root / "store")
    run_daily(SAMPLES, DAY1, store)
    next_day(SAMPLES, root / "day2", seed=1)
    run_daily(root / "day2", DAY2, store)
    return root / "store" / "runs" / DAY2.isoformat() / "worklists"


@pytest.fixture(scope="module")
def sample_pdfs(sample_lists: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """Every county workbook, the province summary and the largest township workbook, rendered in one run."""
    towns = sorted(sample_lists.glob("*/*.xlsx"), key=lambda path: path.stat().st_size)
    books = [*sorted(sample_lists.glob("*.xlsx")), towns[-1]]
    return render(books, tmp_path_factory.mktemp("pdf"))


def test_the_issue_county_prints_every_word_of_every_row(sample_lists: Path, sample_pdfs: dict[Path, Path]) -> None:
    book = sample_lists / "340422_寿县.xlsx"
    pages, lines = check_printed(book, sample_pdfs[book])
    lines_per_cell = Counter((line.page, line.row, line.column) for line in lines)
    assert max(lines_per_cell.values()) >= 5, "no cell printed five lines: the wrapped text is not shown"
    assert not list(needlessly_tall(pages, lines))


def test_every_sample_workbook_prints_cleanly(sample_lists: Path, sample_pdfs: dict[Path, Path]) -> None:
    assert len(sample_pdfs) >= 10  # nine counties, the province, a township
    for book, pdf in sample_pdfs.items():
        pages, lines = check_printed(book, pdf)
        assert not list(needlessly_tall(pages, lines)), book.name
    assert (sample_lists / PROVINCE_FILE) in sample_pdfs


# ---------------------------------------------------------------------------------------------- long reasons

RUN = dt.date(2026, 11, 20)
HAN = ("收入超过低保标准家庭月人均救助类型保障方式整户数据来源脱贫口信息核定成员住房套数规金融资产限额"
       "死亡重复纳县乡镇村社区机动车辆不予豁免财产符合未特困供养")
WORDS = st.one_of(
    st.text(alphabet=HAN, min_size=1, max_size=14),
    st.from_regex(r"=-?[0-9]{1,7}(\.[0-9]{1,2})?", fullmatch=True),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzMWX@%()-./", min_size=1, max_size=24),
    st.sampled_from(["：", "；", "，", "、", "（", "）", "。", "\n", " "]),
    st.text(alphabet="0123456789", min_size=12, max_size=44),  # a run no line may break
)
LONG = st.tuples(st.sampled_from(["", "", "=", "-", "+", "@"]), st.lists(WORDS, max_size=160)).map(
    lambda parts: parts[0] + "".join(parts[1]))
LABEL = st.text(alphabet=HAN + "、（）", min_size=2, max_size=40)
NAME = st.text(alphabet=HAN, min_size=1, max_size=10)
ID = st.one_of(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True), st.text(alphabet="0123456789ABX", min_size=5,
                                                                        max_size=34))
EXIT_ROW = st.fixed_dictionaries({
    "dibao_household_id": ID, "town": st.sampled_from(["寿春镇", "陶店回族乡", "八公山街道办事处"]),
    "village": NAME, "head_name": NAME, "head_id": ID, "reason_labels": st.lists(LABEL, min_size=1, max_size=6),
    "detail": LONG,
})


def exit_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    fixed = {"county_code": "340422", "reasons": ["income_above_standard"], "first_seen": RUN,
             "grace_until": dt.date(2027, 4, 30)}
    return pl.DataFrame([{name: {**fixed, **row}.get(name) for name in EXIT_SCHEMA} for row in rows],
                        schema=EXIT_SCHEMA)


VERY_LONG = {"dibao_household_id": "DB340422000001", "town": "寿春镇", "village": "新庄村", "head_name": "张伟",
             "head_id": "34040219800101123X", "reason_labels": ["收入超过低保标准"],
             "detail": "=" + "\n".join(f"收入超过低保标准：家庭月人均收入={i}1064.57；低保标准=760；" * 3
                                       for i in range(40))}


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(EXIT_ROW, min_size=1, max_size=10))
@example(rows=[VERY_LONG])  # far past Excel's 409-point row: carried on in continuation rows
def test_long_reasons_of_any_length_print_whole(rows: list[dict[str, object]]) -> None:
    empty = {name: pl.DataFrame(schema=schema) for name, schema in
             (("inclusion_candidates", INCLUSION_SCHEMA), ("flags", FLAG_SCHEMA), ("diff", DIFF_SCHEMA))}
    counties = pl.DataFrame({"county_code": ["340422"], "county_name": ["寿县"]})
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        write_worklists(out, RUN, exit_frame(rows), counties=counties, **empty)
        book = out / "worklists" / "340422_寿县.xlsx"
        check_printed(book, render([book], out / "pdf")[book])
