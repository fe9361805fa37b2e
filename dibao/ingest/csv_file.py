"""Reading a CSV export: encoding (UTF-8, BOM, GB18030, UTF-16), delimiter, the header row with the CSV reader's
own quoting, and faults located at their physical line or byte (an unclosed quote at the line that opened it).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import AnyStr, TypeVar

import numpy as np
import polars as pl

from dibao.errors import FileFault
from dibao.ingest.table import (
    HEADER_SEARCH_ROWS,
    MIN_HEADER_FIELDS,
    FileBytes,
    HeaderScore,
    RawTable,
    best_header,
    check_duplicate_headers,
    drop_layout_rows,
    is_blank,
    placeholder_headers,
    settle_headers,
    stack_rows,
    tidy,
)

# Encodings we accept, with their Python codec name. Auto-detection tries them in this order.
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030", "gbk": "gb18030",
             "gb2312": "gb18030", "utf-16": "utf-16"}


_DELIMITERS = (",", "\t", "|", ";")
_HEAD_BYTES = 256 * 1024  # enough for HEADER_SEARCH_ROWS records of any real export
_UTF8_EVIDENCE = 20  # multi-byte UTF-8 characters decoded before a bad byte: the file is UTF-8, not GB18030
_LINES_CHUNK = 32 * 1024 * 1024  # bytes scanned at a time when locating multi-line records
_TRANSCODE_PIECE = 16 * 1024 * 1024  # bytes of a GB18030 (or other non-UTF-8) file decoded at a time
_BOM = b"\xef\xbb\xbf"
# Binary data, never text: a run of NUL bytes. (A lone NUL inside a value is a control character that
# validation cleans away, as copy-pasted names sometimes carry.)
_NUL_RUN = b"\x00" * 4
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _line_of_byte(data: bytes, offset: int) -> int:
    """The 1-based physical line a byte offset falls on (UTF-16 counts its two-byte newlines)."""
    if data.startswith(_UTF16_BOMS):
        return data[:offset].decode("utf-16", errors="replace").count("\n") + 1
    return data.count(b"\n", 0, offset) + 1


def byte_context(data: bytes, offset: int) -> str:
    """``byte 1234 (line 5): 61 62 [ff] 00 9a …``: a bad byte located, with its neighbours in hex."""
    low, high = max(0, offset - 4), min(len(data), offset + 8)
    cells = [f"[{b:02x}]" if low + i == offset else f"{b:02x}" for i, b in enumerate(data[low:high])]
    return (f"byte {offset} (line {_line_of_byte(data, offset)}): {'… ' if low else ''}{' '.join(cells)}"
            f"{' …' if high < len(data) else ''}")


def _utf8_evidence(prefix: bytes) -> int:
    """How many multi-byte UTF-8 characters a validly decoded prefix holds (lead bytes ≥ 0xC0)."""
    return len(prefix) - len(prefix.translate(None, bytes(range(0xC0, 0x100))))


def _codec_key(forced: str | None) -> str | None:
    """An encoding override in the form ``ENCODINGS`` is keyed by (``UTF_8`` / ``utf8`` → ``utf-8``)."""
    if forced is None:
        return None
    key = forced.lower().replace("_", "-")
    return {"utf8": "utf-8", "utf8-sig": "utf-8-sig"}.get(key, key)


def decode_text(path: Path, data: bytes, forced: str | None) -> tuple[str, str]:
    """Decode CSV bytes. Returns (text, encoding name). UTF-8 (with or without BOM), GB18030 or UTF-16 (BOM).

    A file that decodes as UTF-8 for a while (many multi-byte characters) and then hits a bad byte is a damaged
    UTF-8 file, not GB18030: it is refused at that byte rather than read as mojibake.
    """
    return _decode(path, data, forced, bytes.decode)


def transcode_to_utf8(path: Path, data: bytes, forced: str | None) -> tuple[bytes, str]:
    """``decode_text``, encoded as UTF-8 (what Polars reads), without ever holding the whole text as a Python
    string: the same encodings, detection and faults."""
    return _decode(path, data, forced, _to_utf8)


def _to_utf8(data: bytes, codec: str) -> bytes:
    """``data.decode(codec).encode("utf-8")``, about 16 MB at a time.

    The whole text as a Python string takes 2 to 4 bytes a character, beside the file's bytes and its UTF-8: the
    largest thing a GB18030 file's reading held. Pieces end just after a line feed, which no multi-byte GB18030
    or UTF-8 character contains, so each piece decodes exactly as it would within the whole; a decoding error
    reports its offset in ``data``. UTF-16 (rare, small exports) is decoded whole.
    """
    if codec == "utf-16":
        return data.decode(codec).encode("utf-8")
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        cut = data.find(b"\n", start + _TRANSCODE_PIECE)
        end = len(data) if cut < 0 else cut + 1
        piece_codec = "utf-8" if codec == "utf-8-sig" and start > 0 else codec  # the BOM is only at the start
        try:
            pieces.append(data[start:end].decode(piece_codec).encode("utf-8"))
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(exc.encoding, data, start + exc.start, start + exc.end, exc.reason) from None
        start = end
    return b"".join(pieces)


_Decoded = TypeVar("_Decoded", str, bytes)


def _decode(path: Path, data: bytes, forced: str | None,
            convert: Callable[[bytes, str], _Decoded]) -> tuple[_Decoded, str]:
    """``convert(data, codec)`` with the codec forced or detected (see ``decode_text``); faults in the operator's
    words, at the offending byte."""
    if forced:
        key = _codec_key(forced)
        codec = ENCODINGS.get(key or "")
        if codec is None:
            raise FileFault(path.name, f"未知的编码 (unknown encoding {forced!r}; known: {', '.join(ENCODINGS)})")
        try:
            return convert(data, codec), forced.lower()
        except UnicodeDecodeError as exc:
            raise FileFault(path.name, f"文件不是有效的 {forced} 编码 (is not valid {forced}: "
                                       f"{byte_context(data, exc.start)}); check the encoding override") from exc
    if data.startswith(_BOM):
        candidates = ["utf-8-sig"]
    elif data.startswith(_UTF16_BOMS):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    furthest = 0
    for name in candidates:
        try:
            return convert(data, ENCODINGS[name]), name
        except UnicodeDecodeError as exc:
            furthest = max(furthest, exc.start)
            if name.startswith("utf-8") and _utf8_evidence(data[:exc.start]) >= _UTF8_EVIDENCE:
                raise FileFault(path.name, f"文件中有无效的 UTF-8 字节 (the file is UTF-8 but holds bytes that are "
                                           f"not: {byte_context(data, exc.start)}; part of it was saved in another "
                                           f"encoding, or it is damaged)") from exc
    raise FileFault(path.name, f"无法识别文件编码 (unreadable encoding: the file is neither UTF-8 nor GB18030; "
                               f"{byte_context(data, furthest)}); re-export as CSV UTF-8, or name the encoding "
                               f"with --encoding")


def _refuse_binary(path: Path, data: bytes, forced: str | None) -> None:
    """A workbook or other binary file under a CSV name is refused with what it looks like, not parsed as text."""
    if data.startswith(b"PK\x03\x04"):
        raise FileFault(path.name, "这是 Excel 工作簿而不是 CSV (the file is a ZIP archive, as an .xlsx workbook is, "
                                   "not CSV text: rename it .xlsx, or save it as CSV)")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileFault(path.name, "这是旧版 Excel 工作簿而不是 CSV (the file is an old-style .xls workbook, not "
                                   "CSV text: rename it .xls, or save it as CSV)")
    if data.startswith(_UTF16_BOMS):
        return
    nul = data.find(b"\x00")  # one memchr over the file; the run is only looked for when there is a NUL at all
    if nul < 0:
        return
    head = data[:200]
    utf16 = head.count(b"\x00") * 3 >= len(head)
    nul = nul if utf16 else data.find(_NUL_RUN, nul)
    if nul >= 0:
        decode_text(path, data, forced)  # undecodable as well: the encoding fault, at its byte, says more
        hint = "; it looks like UTF-16 without a byte-order mark: re-export as CSV UTF-8" if utf16 else ""
        raise FileFault(path.name, f"文件含有二进制数据 (binary data, not text: NUL bytes at "
                                   f"{byte_context(data, nul)}{hint})")


@dataclass(frozen=True)
class _Record:
    """One CSV record near the top of the file, with where it is."""

    cells: list[str]
    first_line: int  # 1-based physical line where the record starts
    last_line: int  # where it ends (a quoted line break makes a record span lines)
    start: int  # byte offset of the record in the UTF-8 text
    end: int  # byte offset just after it


def _split_keepends(text: AnyStr, newline: AnyStr) -> list[AnyStr]:
    """Lines with their endings, split on line feeds only (``str.splitlines`` also splits on \\x1c, \\u2028…)."""
    parts = text.split(newline)
    lines = [part + newline for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _head_records(lines: Sequence[str], sizes: Sequence[int], delimiter: str) -> list[_Record]:
    """The first ``HEADER_SEARCH_ROWS`` records, parsed by the CSV rules (a quoted cell may hold a line break)."""
    offsets = [0, *accumulate(sizes)]
    reader = csv.reader(iter(lines), delimiter=delimiter)
    records: list[_Record] = []
    while len(records) < HEADER_SEARCH_ROWS:
        before = reader.line_num
        try:
            cells = next(reader)
        except (StopIteration, csv.Error):
            break
        records.append(_Record(cells, before + 1, reader.line_num, offsets[before], offsets[reader.line_num]))
    return records


def _choose_header(path: Path, lines: Sequence[str], sizes: Sequence[int],
                   score: HeaderScore | None) -> tuple[_Record, int, str]:
    """The header (as one record), the line it starts on, and the delimiter.

    The header is the record (of the first 30, under any of the delimiters), or two consecutive records, naming
    the most contract fields, the earliest on a tie; with fewer than 2 named anywhere, the first non-blank line is
    the header, split on the delimiter it holds most of, so that validation reports the columns that are missing.
    The record returned is the (last) header record, whose offsets Polars starts from, with the stacked cells.
    """
    if score is not None:
        best: tuple[int, int, _Record, int, str] | None = None
        for delimiter in _DELIMITERS:
            records = _head_records(lines, sizes, delimiter)
            index, height, points = best_header([[c.strip() for c in r.cells] for r in records], score)
            if points < MIN_HEADER_FIELDS or (best is not None and (points, -records[index].first_line) <= best[:2]):
                continue
            last = records[index + height - 1]
            cells = stack_rows(*[records[i].cells for i in (index, index + 1)]) if height == 2 else last.cells
            header = _Record(cells, last.first_line, last.last_line, last.start, last.end)
            best = (points, -records[index].first_line, header, records[index].first_line, delimiter)
        if best is not None:
            return best[2], best[3], best[4]
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise FileFault(path.name, "空文件 (empty file: no header row)")
    delimiter = max(_DELIMITERS, key=first.count)
    for record in _head_records(lines, sizes, delimiter):
        if not is_blank(record.cells):
            return record, record.first_line, delimiter
    raise FileFault(path.name, "空文件 (empty file: no header row)")


def _odd_quote_line(lines: Sequence[str], first: int, last: int) -> int:
    """Index of the first line in ``first..last`` with an odd number of quotes: where a quote was left open."""
    for index in range(first, min(last, len(lines) - 1) + 1):
        if lines[index].count('"') % 2:
            return index
    return first


def _unclosed_quote(path: Path, line: int) -> FileFault:
    return FileFault(path.name, f"引号未闭合 (line {line}: a value opens a quote '\"' that is never closed, so the "
                                f"lines after it were read as part of that value; close or remove the quote)")


def _csv_fault(path: Path, exc: csv.Error, lines: Sequence[str], before: int, after: int, data_line: int,
               delimiter: str) -> FileFault:
    """Python's ``csv`` error for the record starting at line index ``before``, in the operator's words."""
    message = str(exc)
    line = data_line + before
    if after - 1 > before or "unexpected end of data" in message or "field limit" in message:
        return _unclosed_quote(path, data_line + _odd_quote_line(lines, before, after - 1))
    if "expected after" in message:
        return FileFault(path.name, f"引号使用错误 (line {line}: a value starts with a quote but has more text after "
                                    f"its closing quote, before the next {delimiter!r}; quote the whole value and "
                                    f"double the quotes inside it)")
    if "new-line character" in message:
        return FileFault(path.name, f"换行符错误 (line {line}: a carriage return (\\r) alone inside the line; the "
                                    f"file mixes line endings: re-export it)")
    return FileFault(path.name, f"CSV 格式错误 (line {line}: cannot be split into fields: {message})")


def _csv_records(path: Path, text: str, delimiter: str, width: int,
                 data_line: int) -> tuple[pl.DataFrame, pl.Series]:
    """Parse the body with Python's ``csv`` (only when Polars could not), tracking physical lines.

    Python's reader treats a quote inside an unquoted value as a literal character, as Excel and most writers
    mean it (``林"蝶萱``); a record that runs over lines because a quote never closed, or that has more fields
    than the header, is refused at the line where it starts.
    """
    lines = _split_keepends(text, "\n")
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    while True:
        before = reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_fault(path, exc, lines, before, reader.line_num, data_line, delimiter) from exc
        last = reader.line_num - 1
        if last > before and any("\n" in c and c.count(delimiter) >= max(width - 1, 1) for c in record):
            raise _unclosed_quote(path, data_line + _odd_quote_line(lines, before, last))  # it swallowed rows
        if len(record) > width:
            spans = f" (the row runs over lines {data_line + before}–{data_line + last})" if last > before else ""
            raise FileFault(path.name, f"字段数与表头不符 (line {data_line + before} has {len(record)} fields but the "
                                       f"header has {width}{spans}; an unquoted {delimiter!r} inside a value?)")
        records.append(record + [""] * (width - len(record)))
        starts.append(data_line + before)
    names = placeholder_headers(width)
    frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
    return frame, pl.Series("line", starts, dtype=pl.UInt32)


def _record_starts(utf8: bytes, offset: int) -> np.ndarray:
    """0-based line (counted from ``offset``) where each record starts, from newline positions and quote parity.

    A line feed ends a record when an even number of quotes precede it (escaped quotes come in pairs). NumPy,
    a chunk at a time: no per-row Python work, and memory bounded by the chunk.
    """
    array = np.frombuffer(utf8, dtype=np.uint8, offset=offset)
    ends: list[np.ndarray] = []
    quotes = lines = 0
    for low in range(0, len(array), _LINES_CHUNK):
        part = array[low:low + _LINES_CHUNK]
        newlines = np.flatnonzero(part == 10)
        quote_positions = np.flatnonzero(part == 34)
        before = np.searchsorted(quote_positions, newlines) + quotes
        ends.append(np.flatnonzero(before % 2 == 0) + lines)
        quotes += len(quote_positions)
        lines += len(newlines)
    total = lines + (1 if len(array) and array[-1] != 10 else 0)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), *[e + 1 for e in ends]])
    return starts[starts < total]


def _swallowed_rows(frame: pl.DataFrame, delimiter: str) -> bool:
    """Does a value hold a line break and a row's worth of delimiters (an open quote swallowed whole lines)?

    Delimiters are counted only in the few values that hold a line break.
    """
    most = frame.select(pl.col(c).filter(pl.col(c).str.contains("\n", literal=True))
                        .str.count_matches(delimiter, literal=True).max() for c in frame.columns).row(0)
    return any(n is not None and n >= max(frame.width - 1, 1) for n in most)


def _field_quote(delimiter: str) -> re.Pattern[bytes]:
    """A quote opening a field: at the start of a line or right after a delimiter."""
    return re.compile(rb'(?m)(?:^|' + re.escape(delimiter.encode()) + rb')"')


def _parse_body(path: Path, utf8: bytes, header: _Record, delimiter: str,
                width: int) -> tuple[pl.DataFrame, pl.Series | None] | None:
    """Parse from the header record on; Polars on the bytes in the usual case (no Python work per row).

    Returns (frame, line of each row or None when row *i* is on line ``data_line + i``), or None when the bytes
    are not UTF-8 after all. Polars' errors never reach the operator: on a failure the body is read again the way
    Excel means it (literal quotes inside values) or diagnosed with Python's ``csv`` at a physical line.
    """
    data_line = header.last_line + 1
    names = placeholder_headers(width)
    source = utf8 if header.start == 0 else utf8[header.start:]
    try:
        frame = pl.read_csv(source, separator=delimiter, has_header=True, new_columns=names, infer_schema=False,
                            encoding="utf8")
    except pl.exceptions.PolarsError:
        frame = None
    if frame is not None:
        if utf8.find(b'"', header.end) < 0:
            return frame, None  # no quote, so no record spans lines: row i is line data_line + i (one memchr)
        lines = utf8.count(b"\n", header.end) + (1 if len(utf8) > header.end and not utf8.endswith(b"\n") else 0)
        if lines == frame.height:
            return frame, None
        if not _swallowed_rows(frame, delimiter):
            starts = _record_starts(utf8, header.end)
            if len(starts) == frame.height:
                return frame, pl.Series("line", starts + data_line, dtype=pl.UInt32)
    try:
        text = utf8[header.end:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if frame is None and not _field_quote(delimiter).search(utf8, header.end):
        # No value starts with a quote, so every quote is a character of its value: Polars can read it as such.
        synthetic = (delimiter.join(names) + "\n").encode() + utf8[header.end:]
        try:
            literal = pl.read_csv(synthetic, separator=delimiter, has_header=True, infer_schema=False,
                                  quote_char=None, encoding="utf8")
            if literal.height == text.count("\n") + (0 if text.endswith("\n") or not text else 1):
                return literal, None
        except pl.exceptions.PolarsError:
            pass
    return _csv_records(path, text, delimiter, width, data_line)


def _csv_table(path: Path, sha: str, utf8: bytes, lines: Sequence[str], sizes: Sequence[int],
               encoding: str, score: HeaderScore | None) -> RawTable | None:
    """One CSV, given as UTF-8 bytes (perhaps starting with a byte-order mark) and its first lines decoded, with
    the hash of the file as read. None: the bytes are not UTF-8 after all."""
    header, first_line, delimiter = _choose_header(path, lines, sizes, score)
    headers = [c.strip() for c in header.cells]
    lines_text = f"line {first_line}" if first_line == header.first_line else f"lines {first_line}–{header.first_line}"

    def where(position: int) -> str:
        return f"column {position + 1} of {lines_text}"

    check_duplicate_headers(path, headers, where)
    parsed = _parse_body(path, utf8, header, delimiter, len(headers))
    if parsed is None:
        return None
    frame, row_lines = parsed
    notes = []
    if first_line != header.first_line:
        notes.append(f"two-row header on {lines_text}: a lower cell names its column, the upper one where it is blank")
    if first_line > 1:
        notes.append(f"header found on line {first_line}; {first_line - 1} title/blank line(s) above it skipped")
    raw = RawTable(path, "csv", encoding, sha, headers, tidy(frame), notes=notes,
                   header_line=first_line, data_line=header.last_line + 1, row_lines=row_lines)
    drop_layout_rows(raw)
    settle_headers(raw, where)
    return raw


def _line_feeds(utf8: bytes, start: int = 0) -> bytes:
    """A file whose lines end in a carriage return alone (Excel for Mac's "CSV (Macintosh)") gets line feeds;
    Polars and the line numbers count line feeds. Any other file is returned as it is, without a copy. ``start``:
    where the text begins (after a byte-order mark)."""
    head = utf8[start:start + _HEAD_BYTES]
    if b"\n" in head or b"\r" not in head:
        return utf8
    return utf8.replace(b"\r", b"\n")


def _head_lines(utf8: bytes, start: int = 0) -> tuple[list[str], list[int]]:
    """The first lines (about 256 KB from ``start``, cut at a line end), decoded, and their sizes in bytes.

    ``start`` skips a byte-order mark: it is not in the first line's text but counts in its size, so offsets
    summed from the sizes are offsets in ``utf8``. Raises UnicodeDecodeError when the lines are not UTF-8.
    """
    head = utf8[start:start + _HEAD_BYTES]
    if len(utf8) - start > _HEAD_BYTES:
        cut = head.rfind(b"\n")
        head = head[:cut + 1] if cut >= 0 else head
    raw_lines = _split_keepends(head, b"\n")
    sizes = [len(line) for line in raw_lines]
    if sizes:
        sizes[0] += start
    return [line.decode("utf-8") for line in raw_lines], sizes


_NOT_ASCII_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c\x1c-\x1f]")


def _only_whitespace(utf8: bytes) -> bool:
    """``not text or text.isspace()`` for the text of these UTF-8 bytes, without decoding them all: the first
    character that is not ASCII whitespace decides, unless it is other Unicode whitespace (U+3000…)."""
    position = 0
    while (found := _NOT_ASCII_SPACE.search(utf8, position)) is not None:
        char = utf8[found.start():found.start() + 4].decode("utf-8", errors="ignore")[:1]
        if not char.isspace():
            return False
        position = found.start() + len(char.encode("utf-8"))
    return True


def read_csv(path: Path, source: FileBytes, forced_encoding: str | None,
             header_score: HeaderScore | None = None) -> RawTable:
    """CSV in UTF-8 (with or without BOM), GB18030 or UTF-16.

    UTF-8 bytes go to Polars as they are (it checks the encoding itself, and skips a byte-order mark); other
    encodings are transcoded to UTF-8 through Python, a piece at a time, and the file's own bytes let go of
    before the table is parsed.
    """
    data = source.data
    sha = source.sha256
    _refuse_binary(path, data, forced_encoding)
    forced = _codec_key(forced_encoding)
    utf16 = data.startswith(_UTF16_BOMS)
    if forced in (None, "utf-8", "utf-8-sig") and not utf16:
        bom = 3 if data.startswith(_BOM) else 0
        encoding = "utf-8-sig" if bom else (forced_encoding or "utf-8").lower()
        if not data[bom:bom + 4096].strip() and not data[bom:].strip():
            raise FileFault(path.name, "空文件 (empty file)")
        utf8 = _line_feeds(data, bom)  # a byte-order mark stays: offsets count from the file's first byte
        try:
            lines, sizes = _head_lines(utf8, bom)
        except UnicodeDecodeError:
            lines, sizes = [], []  # not UTF-8 (a GB18030 export): transcoded below
        if lines:
            table = _csv_table(path, sha, utf8, lines, sizes, encoding, header_score)
            if table is not None:
                return table
        del utf8
    utf8, encoding = transcode_to_utf8(path, data, forced_encoding)
    if _only_whitespace(utf8):
        raise FileFault(path.name, "空文件 (empty file)")
    if utf16 and _NUL_RUN in utf8:  # other encodings: checked on the bytes
        offset = len(utf8[:utf8.index(_NUL_RUN)].decode("utf-8").encode("utf-16"))
        raise FileFault(path.name, f"文件含有二进制数据 (binary data, not text: NUL characters at "
                                   f"{byte_context(data, offset)})")
    del data
    source.release()  # from here on only the UTF-8 is read
    utf8 = _line_feeds(utf8)
    lines, sizes = _head_lines(utf8)
    table = _csv_table(path, sha, utf8, lines, sizes, encoding, header_score)
    if table is None:  # cannot happen: the text was encoded to UTF-8 just above
        raise FileFault(path.name, "无法读取 (cannot be read as CSV text)")
    return table
