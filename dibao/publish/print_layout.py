"""How many lines a wrapped cell takes on paper, so a printed work list's rows are tall enough for their text.

xlsxwriter cannot autofit row heights, and Excel, WPS and LibreOffice do not grow a row when they open a file:
a row without a height keeps the default (one line) and its wrapped text is cut off or runs into the next row on
the printed sheet. So the work lists set every row's height from its text, measured the way a spreadsheet lays it
out, and measured generously: a row a little too tall wastes a few millimetres of paper, a row too short loses
words a caseworker needs on a home visit.

The measure, in column-width units (the unit of ``set_column``: the width of "0" in the workbook's default font,
Calibri 11): a Chinese character or any other non-ASCII character counts 2 units at the work lists' 10-point font
(measured 1.8 in LibreOffice; about 1.9 in Excel), a digit or lower-case letter 1, an upper-case letter 1.1, and M, W,
m, w, @, % 1.75. Text is broken where a spreadsheet may break it (UAX #14, roughly): after any Chinese character,
never inside a run of ASCII letters and digits, never before closing punctuation (，。；：、）…) and never after
opening punctuation (（《“…); a run wider than the column is broken between characters on lines of its own; every
"\\n" starts a new line. Each line takes ``LINE_POINTS`` (LibreOffice sets 10-point Chinese text 14.5 points apart),
a row ``PAD_POINTS`` more, rounded up to a whole pixel. A row is at most ``MAX_ROW_POINTS`` (Excel's limit, 409
points): a cell needing more than ``MAX_LINES`` lines is split by ``split_cell`` into pieces for continuation rows.

``count_lines`` measures a whole column at once with NumPy, a million characters at a time (160,000 long 核查依据
cells, 36 million characters, in under 4 s on a busy two-core machine); ``wrap`` is the same measure for one text,
giving the lines themselves (tests/test_print_layout.py checks that the two agree).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

FONT_POINTS = 10  # the work lists' font size
LINE_POINTS = 15.0  # one printed line of 10-point text (Chinese text is set 14.5 points apart)
PAD_POINTS = 4.0  # the cell's top and bottom margins together
PIXEL_POINTS = 0.75  # row heights are kept in whole pixels (96 per inch): a height is rounded up to one
MAX_ROW_POINTS = 408.75  # the tallest row Excel allows (409 points), in whole pixels
MAX_LINES = int((MAX_ROW_POINTS - PAD_POINTS) // LINE_POINTS)  # 26 lines: more go on a continuation row

# Widths in twentieths of a column unit: whole numbers, so sums are exact however many characters are added.
STEPS = 20  # per column unit
WIDE_STEPS = 40  # Chinese characters, fullwidth punctuation, any non-ASCII character: 2 units
ASCII_STEPS = 20  # digits, lower-case letters, most punctuation, space: 1 unit
UPPER_STEPS = 22  # upper-case letters other than M and W: 1.1 units
BROAD_STEPS = 35  # M W m w @ %: 1.75 units

_OPENING = "（《〈「『【〔［｛“‘"  # no line break after these
_CLOSING = "，。；：、！？）》〉」』】〕］｝”’…·～"  # nor before these
_BROAD = "MWmw@%"
_UPPER = "ABCDEFGHIJKLNOPQRSTUVXYZ"
_SPACES = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)  # U+3000 is the last


def char_steps(char: str) -> int:
    """The width of one character in twentieths of a column unit (see the module's docstring); a line break
    takes none."""
    if char == "\n":
        return 0
    if not char.isascii() or not (char.isprintable() or char.isspace()):  # control characters: as wide
        return WIDE_STEPS
    if char in _BROAD:
        return BROAD_STEPS
    if char in _UPPER:
        return UPPER_STEPS
    return ASCII_STEPS


def text_steps(text: str) -> int:
    return sum(char_steps(char) for char in text)


def _steps(width: float) -> int:
    """A column ``width`` (in column units) in twentieths."""
    return round(width * STEPS)


def _graphic_ascii(char: str) -> bool:
    return "!" <= char <= "~"


def may_break(before: str, after: str) -> bool:
    """Whether a line may end between ``before`` and ``after`` (two characters of one paragraph): never before a
    space (spaces hang at the line's end) or closing punctuation, never after opening punctuation, never inside a
    run of ASCII letters, digits and signs nor between such a run and the opening punctuation after it
    (LibreOffice keeps ``iqsp（7989`` together, as UAX 14's rule 30 does); anywhere else (Chinese text breaks
    between any two characters)."""
    return not (after.isspace() or after in _CLOSING or before in _OPENING
                or (_graphic_ascii(before) and (_graphic_ascii(after) or after in _OPENING)))


def tokens(paragraph: str) -> list[str]:
    """``paragraph`` cut where a line may end."""
    pieces: list[str] = []
    start = 0
    for index in range(1, len(paragraph)):
        if may_break(paragraph[index - 1], paragraph[index]):
            pieces.append(paragraph[start:index])
            start = index
    if paragraph:
        pieces.append(paragraph[start:])
    return pieces


def _pieces(token: str, room: int) -> list[str]:
    """A token wider than the column (``room`` steps), broken between characters into lines that fit."""
    pieces: list[str] = []
    current, used = "", 0
    for char in token:
        steps = char_steps(char)
        if current and used + steps > room:
            pieces.append(current)
            current, used = "", 0
        current += char
        used += steps
    if current:
        pieces.append(current)
    return pieces


def wrap(text: str, width: float) -> list[list[str]]:
    """The lines of each paragraph of ``text`` in a column ``width`` units wide, filled greedily as a spreadsheet
    fills them. Each paragraph's lines join back to the paragraph exactly; an empty paragraph is one empty line."""
    room = _steps(width)
    paragraphs: list[list[str]] = []
    for paragraph in text.split("\n"):
        lines: list[str] = []
        current, used = "", 0
        for token in tokens(paragraph):
            steps = text_steps(token)
            if steps > room:  # broken between characters, on lines of its own
                if current:
                    lines.append(current)
                lines += _pieces(token, room)
                current, used = "", 0
            elif current and used + steps > room:
                lines.append(current)
                current, used = token, steps
            else:
                current += token
                used += steps
        if current or not lines:
            lines.append(current)
        paragraphs.append(lines)
    return paragraphs


def line_count(text: str | None, width: float) -> int:
    """How many lines ``text`` takes in a column ``width`` units wide (an empty cell: 1)."""
    return sum(len(lines) for lines in wrap(text or "", width))


def split_cell(text: str, width: float, max_lines: int = MAX_LINES) -> list[str]:
    """``text`` cut at line ends into pieces of at most ``max_lines`` lines each, for a row and its continuation
    rows. The pieces put together give the text back, less the line breaks that fell between two pieces."""
    pieces: list[str] = []
    lines_in_piece: list[str] = []
    for paragraph in wrap(text, width):
        for index, line in enumerate(paragraph):
            if len(lines_in_piece) == max_lines:
                pieces.append("".join(lines_in_piece).removesuffix("\n"))
                lines_in_piece = []
            lines_in_piece.append(line + ("\n" if index == len(paragraph) - 1 else ""))
    pieces.append("".join(lines_in_piece).removesuffix("\n"))
    return pieces


BATCH_CHARS = 1 << 20  # characters measured at once: arrays that stay small and in cache


def count_lines(texts: pl.Series | Sequence[str | None], width: float) -> np.ndarray:
    """``line_count`` of every text of a column at once (null: an empty cell), in batches of about
    ``BATCH_CHARS`` characters. The column stays in Polars until a batch is joined into one string: a Python
    string per cell, its length and whether it ends a line were most of the measure at province scale."""
    column = (texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String))
    column = column.cast(pl.String).fill_null("")
    lengths = column.str.len_chars().to_numpy().astype(np.int64)
    batch_of_cell = np.cumsum(lengths) // BATCH_CHARS
    cuts = np.flatnonzero(np.diff(batch_of_cell)) + 1
    room = _steps(width)
    parts = [_count_batch(column.slice(start, end - start), lengths[start:end], room)
             for start, end in zip([0, *cuts], [*cuts, column.len()], strict=True) if end > start]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _count_batch(texts: pl.Series, lengths: np.ndarray, room: int) -> np.ndarray:
    """Lines of each text in lines of ``room`` steps. All texts are laid end to end as one array of code points;
    each character's class (one table look-up) gives its width and where a line may end, and ``_greedy_lines``
    fills the lines of every paragraph together."""
    lines = np.zeros(len(lengths), dtype=np.int64)
    joined = str(texts.str.join("").item())
    if joined:
        ends = np.cumsum(lengths)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        classes = _CLASS_OF[codes]
        paragraph_start = np.zeros(codes.size, dtype=bool)
        paragraph_start[(ends - lengths)[lengths > 0]] = True  # each cell starts a paragraph, so does each line
        paragraph_start[1:] |= classes[:-1] == _NEWLINE
        graphic = classes <= _BROAD_ASCII
        no_break = classes >= _SPACE  # spaces, line breaks and closing punctuation: never a line's first
        no_break[1:] |= (classes[:-1] == _OPEN) | (graphic[:-1] & (graphic[1:] | (classes[1:] == _OPEN)))
        token_start = np.flatnonzero(paragraph_start | ~no_break)
        before = np.concatenate(([0], np.cumsum(_STEPS_OF[classes], dtype=np.int64)))  # steps before each char
        cumulative = before[np.append(token_start, codes.size)]  # steps before each token, then the total
        paragraph_at = np.flatnonzero(paragraph_start)
        token_paragraph = np.searchsorted(paragraph_at, token_start, side="right") - 1
        per_paragraph = np.maximum(_greedy_lines(cumulative, token_paragraph, paragraph_at.size, room), 1)
        for index in np.flatnonzero(np.diff(cumulative) > room):  # rare: broken between characters, own lines
            end = token_start[index + 1] if index + 1 < token_start.size else codes.size
            per_paragraph[token_paragraph[index]] += len(_pieces(joined[token_start[index]:end], room)) - 1
        paragraph_cell = np.searchsorted(ends, paragraph_at, side="right")
        lines += np.bincount(paragraph_cell, weights=per_paragraph, minlength=len(lengths)).astype(np.int64)
        filled = lengths > 0  # a text that ends with a line break has an empty last line
        lines[filled] += classes[ends[filled] - 1] == _NEWLINE
    return np.maximum(lines, 1)


# Character classes for ``count_lines``: ASCII letters, digits and signs by width (they never break among
# themselves), other characters (wide, break anywhere), opening punctuation (no break after), and the classes no
# line may start with: spaces, the line break, closing punctuation.
_NORMAL_ASCII, _UPPER_ASCII, _BROAD_ASCII, _OTHER, _OPEN, _SPACE, _WIDE_SPACE, _NEWLINE, _CLOSE = range(9)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Every code point's class, and each class's width in steps (as ``char_steps``)."""
    classes = np.full(0x110000, _OTHER, dtype=np.uint8)
    classes[ord("!"):ord("~") + 1] = _NORMAL_ASCII
    classes[[ord(char) for char in _UPPER]] = _UPPER_ASCII
    classes[[ord(char) for char in _BROAD]] = _BROAD_ASCII
    classes[[ord(char) for char in _OPENING]] = _OPEN
    classes[[ord(char) for char in _CLOSING]] = _CLOSE
    classes[_SPACES] = np.where(_SPACES < 0x80, _SPACE, _WIDE_SPACE)
    classes[ord("\n")] = _NEWLINE
    steps = np.zeros(9, dtype=np.int32)
    steps[[_NORMAL_ASCII, _UPPER_ASCII, _BROAD_ASCII, _OTHER, _OPEN, _SPACE, _WIDE_SPACE, _NEWLINE, _CLOSE]] = [
        ASCII_STEPS, UPPER_STEPS, BROAD_STEPS, WIDE_STEPS, WIDE_STEPS, ASCII_STEPS, WIDE_STEPS, 0, WIDE_STEPS]
    return classes, steps


_CLASS_OF, _STEPS_OF = _tables()


def _greedy_lines(cumulative: np.ndarray, owner: np.ndarray, paragraphs: int, room: int) -> np.ndarray:
    """Lines per paragraph when tokens (``cumulative``: the steps before each token, then the total; ``owner``:
    each token's paragraph, in order) are set greedily in lines of ``room`` steps, every paragraph at once: each
    pass takes one line of every unfinished paragraph. A token wider than a line is alone on its line here
    (``count_lines`` adds its extra lines)."""
    start = np.searchsorted(owner, np.arange(paragraphs), side="left")
    end = np.searchsorted(owner, np.arange(paragraphs), side="right")
    lines = np.zeros(paragraphs, dtype=np.int64)
    position = start.copy()
    open_ = np.flatnonzero(position < end)
    while open_.size:
        at = position[open_]
        fits = np.searchsorted(cumulative, cumulative[at] + room, side="right") - 1  # last token end on the line
        following = np.minimum(np.maximum(fits, at + 1), end[open_])
        lines[open_] += 1
        position[open_] = following
        open_ = open_[following < end[open_]]
    return lines


def row_lines(frame: pl.DataFrame, widths: dict[str, float]) -> np.ndarray:
    """Lines of each row: the most any of the named text columns (``widths``: column → width) needs; at least 1."""
    most = np.ones(frame.height, dtype=np.int64)
    for name, width in widths.items():
        most = np.maximum(most, count_lines(frame[name].cast(pl.String), width))
    return most


def row_points(lines: int) -> float:
    """The height in points of a row of ``lines`` lines, rounded up to a whole pixel (xlsxwriter would round it
    down) and never above Excel's limit."""
    points = PAD_POINTS + LINE_POINTS * max(1, lines)
    return min(MAX_ROW_POINTS, math.ceil(points / PIXEL_POINTS) * PIXEL_POINTS)
