"""Workbooks as dibao writes them (dibao/publish/xlsx.py): every part deflated at ZIP_LEVEL, and the same rows
always give the same bytes."""

from __future__ import annotations

import io
import zipfile
import zlib

from dibao.publish.xlsx import ZIP_LEVEL, new_workbook


def _written(text: str) -> bytes:
    out = io.BytesIO()
    workbook = new_workbook(out, {"title": "清单", "author": "dibao"})
    sheet = workbook.add_worksheet("应退尽退")
    for row in range(200):
        sheet.write_string(row, 0, f"{text} {row}")
    workbook.close()
    return out.getvalue()


def _deflated(data: bytes, level: int) -> int:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return len(compressor.compress(data) + compressor.flush())


def test_every_part_is_deflated_at_the_quick_level() -> None:
    with zipfile.ZipFile(io.BytesIO(_written("收入超过低保标准"))) as archive:
        parts = archive.infolist()
        assert parts
        for part in parts:
            assert part.compress_type == zipfile.ZIP_DEFLATED
            assert part.compress_size == _deflated(archive.read(part), ZIP_LEVEL), part.filename


def test_text_is_never_taken_for_a_number_formula_or_link() -> None:
    out = io.BytesIO()
    workbook = new_workbook(out, {"title": "t"})
    sheet = workbook.add_worksheet("s")
    for row, text in enumerate(["0012", "=1+1", "http://example.org"]):
        sheet.write(row, 0, text)
    workbook.close()
    with zipfile.ZipFile(out) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "hyperlink" not in xml and 't="s"' in xml


def test_the_same_rows_give_the_same_bytes() -> None:
    assert _written("家庭") == _written("家庭")
