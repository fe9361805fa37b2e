"""Render a workbook to PDF with LibreOffice and read back where every character landed on paper.

A printed work list is checked on the PDF, not on cell attributes: each page's printed grid (the lines LibreOffice
draws for the cells) gives the rows and columns, and every character's box is placed in the cell it sits in. Then:
no character sticks out of its cell (text cut off or running into the next row shows up here), no two text lines of
different rows overlap, and each cell's characters, read line by line, are the cell's whole text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
SKIP_REASON = ("LibreOffice (soffice) is not installed: `make test` installs it (Debian: libreoffice-calc-nogui) "
               "when run as root; the printed layout is not checked without it")
A4_LANDSCAPE = (841.89, 595.30)  # points
TOLERANCE = 0.75  # points: how far a glyph's box may reach past a grid line (anti-aliasing, line width)
_SPACE = re.compile(r"\s+")


def render(workbooks: Iterable[Path], out: Path) -> dict[Path, Path]:
    """PDFs of ``workbooks`` (one LibreOffice run for all of them, with a profile of its own so parallel runs do
    not share one), keyed by workbook."""
    books = list(workbooks)
    assert SOFFICE is not None, SKIP_REASON
    out.mkdir(parents=True, exist_ok=True)
    profile = out / "libreoffice-profile"
    command = [SOFFICE, f"-env:UserInstallation={profile.resolve().as_uri()}", "--headless", "--norestore",
               "--nolockcheck", "--convert-to", "pdf", "--outdir", str(out), *map(str, books)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, "HOME": str(out)})
    pdfs = {book: out / f"{book.stem}.pdf" for book in books}
    missing = [str(book) for book, pdf in pdfs.items() if not pdf.is_file()]
    assert not missing, f"soffice did not convert {missing}: {result.returncode} {result.stdout} {result.stderr}"
    return pdfs


@dataclass(frozen=True)
class Glyph:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def middle(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


@dataclass
class Page:
    """One printed page: its size, its grid (x of every column edge, y of every row edge, top first) and its
    characters inside the grid (cells) and outside it (page header and footer)."""

    width: float
    height: float
    columns: list[float]
    rows: list[float]
    cells: list[Glyph] = field(default_factory=list)
    furniture: list[Glyph] = field(default_factory=list)

    @property
    def header_text(self) -> str:
        top = self.rows[0]
        return "".join(g.text for g in sorted(self.furniture, key=lambda g: g.x0) if g.y0 > top)

    def row_of(self, glyph: Glyph) -> int:
        y = glyph.middle[1]
        return next(i for i in range(len(self.rows) - 1) if self.rows[i + 1] <= y <= self.rows[i])

    def column_of(self, glyph: Glyph) -> int:
        x = glyph.middle[0]
        return next(i for i in range(len(self.columns) - 1) if self.columns[i] <= x <= self.columns[i + 1])


def _glyph(text: str, x0: float, x1: float, baseline: float, size: float) -> Glyph:
    """A character's box: across, its advance; up and down, what its font draws around the baseline. pdfminer's
    own box is the em square standing on the baseline when a subset font names no descent (LibreOffice's do not),
    so it would put a Latin letter's top ~1 pt higher than drawn. Chinese glyphs fill 0.12 em below to 0.88 em
    above the baseline; Latin letters at most 0.22 em below (descenders) to 0.75 em above (ascenders)."""
    below, above = (0.22, 0.75) if text.isascii() else (0.12, 0.88)
    return Glyph(text, x0, baseline - below * size, x1, baseline + above * size)


def _merge(values: Iterable[float], within: float = 1.0) -> list[float]:
    """Coordinates of grid lines, near-duplicates (a bordered header cell's edge drawn over the grid) as one."""
    merged: list[float] = []
    for value in sorted(values):
        if merged and value - merged[-1] <= within:
            continue
        merged.append(value)
    return merged


def read_pages(pdf: Path) -> list[Page]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTLine, LTRect

    pages = []
    for layout in extract_pages(str(pdf)):
        glyphs: list[Glyph] = []
        xs: list[float] = []
        ys: list[float] = []

        def walk(item: object, glyphs: list[Glyph] = glyphs, xs: list[float] = xs, ys: list[float] = ys) -> None:
            if isinstance(item, LTChar):
                if item.get_text().strip():
                    glyphs.append(_glyph(item.get_text(), item.x0, item.x1, item.matrix[5], item.size))
            elif isinstance(item, LTLine | LTRect):
                if item.height < 0.5 < item.width:
                    ys.append(item.y0)
                elif item.width < 0.5 < item.height:
                    xs.append(item.x0)
            elif isinstance(item, Iterable):
                for child in item:
                    walk(child)

        walk(layout)
        columns, rows = _merge(xs), sorted(_merge(ys), reverse=True)
        assert len(columns) >= 2 and len(rows) >= 2, f"{pdf}: page {len(pages) + 1} has no printed grid"
        page = Page(layout.width, layout.height, columns, rows)
        for glyph in glyphs:
            x, y = glyph.middle
            inside = columns[0] <= x <= columns[-1] and rows[-1] <= y <= rows[0]
            (page.cells if inside else page.furniture).append(glyph)
        pages.append(page)
    return pages


@dataclass(frozen=True)
class TextLine:
    """One printed line of a cell's text."""

    page: int
    row: int
    column: int
    y0: float
    y1: float
    text: str


def text_lines(pages: list[Page]) -> Iterator[TextLine]:
    """Each cell's characters grouped into lines by their baseline, top line first, left to right."""
    for number, page in enumerate(pages):
        groups: dict[tuple[int, int, float], list[Glyph]] = defaultdict(list)
        for glyph in page.cells:
            row, column = page.row_of(glyph), page.column_of(glyph)
            key = next((k for k in groups if k[:2] == (row, column) and abs(k[2] - glyph.y0) < 1.5),
                       (row, column, glyph.y0))
            groups[key].append(glyph)
        for (row, column, _), members in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1],
                                                                                    -item[0][2])):
            members.sort(key=lambda g: g.x0)
            yield TextLine(number, row, column, min(g.y0 for g in members), max(g.y1 for g in members),
                           "".join(g.text for g in members))


def overflowing(page: Page, merged: str = "") -> list[str]:
    """Characters whose box reaches out of the cell they sit in (text cut off, or running into a neighbour).
    A row whose whole text is ``merged`` is one cell across the row (the row '今日无' of an empty list)."""
    problems = []
    row_text: dict[int, str] = defaultdict(str)
    for glyph in sorted(page.cells, key=lambda g: g.x0):
        row_text[page.row_of(glyph)] += glyph.text
    for glyph in page.cells:
        row, column = page.row_of(glyph), page.column_of(glyph)
        top, bottom = page.rows[row], page.rows[row + 1]
        if merged and row_text[row] == merged:
            left, right = page.columns[0], page.columns[-1]
        else:
            left, right = page.columns[column], page.columns[column + 1]
        if glyph.y1 > top + TOLERANCE or glyph.y0 < bottom - TOLERANCE:
            problems.append(f"{glyph.text!r} at y {glyph.y0:.1f}–{glyph.y1:.1f} outside row {row} "
                            f"({bottom:.1f}–{top:.1f})")
        if glyph.x0 < left - TOLERANCE or glyph.x1 > right + TOLERANCE:
            problems.append(f"{glyph.text!r} at x {glyph.x0:.1f}–{glyph.x1:.1f} outside column {column} "
                            f"({left:.1f}–{right:.1f})")
    return problems


def overlapping_lines(lines: list[TextLine]) -> list[str]:
    """Pairs of text lines of different rows (of one page) whose vertical extents overlap."""
    problems = []
    by_page: dict[int, list[TextLine]] = defaultdict(list)
    for line in lines:
        by_page[line.page].append(line)
    for page_lines in by_page.values():
        page_lines.sort(key=lambda line: -line.y1)
        for index, line in enumerate(page_lines):
            for other in page_lines[index + 1:]:
                if other.y1 <= line.y0 + 0.01:
                    break  # sorted by top: this one and every later line lie wholly below ``line``
                if other.row != line.row and min(line.y1, other.y1) - max(line.y0, other.y0) > 0.01:
                    problems.append(f"page {line.page + 1}: {line.text!r} (row {line.row}) overlaps "
                                    f"{other.text!r} (row {other.row})")
    return problems


def printed_rows(pages: list[Page], lines: list[TextLine], sheets: Iterable[str]) -> dict[str, list[list[str]]]:
    """The printed text of every row of every sheet (pages named by the sheet in their header, the header row
    repeated on each page left out after its first), each cell's lines joined, spaces removed."""
    cells: dict[tuple[int, int, int], str] = defaultdict(str)
    for line in lines:
        cells[line.page, line.row, line.column] += _SPACE.sub("", line.text)
    names = list(sheets)
    printed: dict[str, list[list[str]]] = defaultdict(list)
    for number, page in enumerate(pages):
        rows = [[cells.get((number, row, column), "") for column in range(len(page.columns) - 1)]
                for row in range(len(page.rows) - 1)]
        name = sheet_of(page.header_text, names)
        if printed[name]:  # a later page of the sheet: it begins with the header row again
            assert rows[0] == printed[name][0], f"page {number + 1} repeats {rows[0]}, not the header row"
            rows = rows[1:]
        printed[name] += rows
    return dict(printed)


def expected_rows(workbook: Path) -> dict[str, list[list[str]]]:
    """Every sheet's rows as the workbook holds them (header first), as printed text: dates as yyyy-mm-dd,
    whole numbers without a decimal point, spaces removed."""
    reader = fastexcel.read_excel(workbook)
    sheets = {}
    for name in reader.sheet_names:
        frame = reader.load_sheet(name, header_row=None, dtypes="string").to_polars()
        sheets[name] = [[_printed(value) for value in row] for row in frame.iter_rows()]
    return sheets


def _printed(value: str | None) -> str:
    if value is None:
        return ""
    value = re.sub(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1", value)
    value = re.sub(r"^(\d+)\.0$", r"\1", value)
    return _SPACE.sub("", value)


def sheet_of(header: str, sheets: Iterable[str]) -> str:
    """The sheet a page belongs to: its name is printed in the page header (&A)."""
    found = [name for name in sheets if name in header]
    assert len(found) == 1, f"page header {header!r} names no single sheet of {list(sheets)}"
    return found[0]
