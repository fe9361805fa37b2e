"""Charts drawn by the server: no chart library in the browser, no script, nothing fetched.

A chart is first laid out as a list of shapes (``Rect``, ``Line``, ``Text``, ``Dot``) in pixels; the same layout is
then written as SVG (inline in the page, with ``<title>`` and ``<desc>`` for screen readers) or drawn as PNG with
Pillow (the download). Chinese text in the PNG needs a CJK font on the server: ``DIBAO_UI_CHART_FONT`` names one,
else the usual Debian/Windows places are tried (Debian: ``fonts-noto-cjk``); without any, the PNG labels areas by
their codes and measures by their codes, so it never prints boxes instead of characters.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

ENV_FONT = "DIBAO_UI_CHART_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "C:/Windows/Fonts/msyh.ttc",
)
BAR, REFERENCE, AXIS, INK, MUTED, BELOW = "#0b5cad", "#d97706", "#767676", "#1a1a1a", "#555555", "#a4261d"
SERIES = ("#0b5cad", "#1f6f2b", "#8a5a00", "#6b3fa0", "#a4261d", "#00707a")
WIDTH = 900


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float = 1.0
    dashed: bool = False


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float = 13.0
    anchor: str = "start"  # start | middle | end
    fill: str = INK
    fallback: str | None = None  # what the PNG prints without a CJK font


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float
    fill: str


Shape = Rect | Line | Text | Dot


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    title: str
    description: str
    shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class Bar:
    label: str
    code: str
    value: float | None  # None: withheld (small cell) or not computable
    withheld: bool = False


def value_text(value: float, percent: bool) -> str:
    return f"{value * 100:.1f}%" if percent else f"{value:,.1f}"


def _scale_top(values: Sequence[float]) -> float:
    top = max([v for v in values if v > 0], default=1.0) * 1.1
    return top if top > 0 else 1.0


def bar_chart(title: str, bars: Sequence[Bar], reference: float | None, *, percent: bool,
              reference_label: str = "全国参考值") -> Chart:
    """Horizontal bars, one per area, with the reference as a dashed vertical line; a withheld value is said in
    words where its bar would be."""
    left, right, top, row = 170.0, 90.0, 56.0, 28.0
    plot = WIDTH - left - right
    height = top + row * max(1, len(bars)) + 40
    scale = _scale_top([b.value for b in bars if b.value is not None] + ([reference] if reference else []))
    shapes: list[Shape] = [Text(left, 24, title, 16, fallback="")]
    axis_y = top + row * max(1, len(bars))
    shapes.append(Line(left, top - 6, left, axis_y, AXIS))
    shapes.append(Line(left, axis_y, left + plot, axis_y, AXIS))
    for tick in range(5):
        value = scale * tick / 4
        x = left + plot * tick / 4
        shapes.append(Line(x, axis_y, x, axis_y + 4, AXIS))
        shapes.append(Text(x, axis_y + 18, value_text(value, percent), 11, "middle", MUTED))
    for i, bar in enumerate(bars):
        y = top + row * i
        shapes.append(Text(left - 8, y + 18, bar.label, 13, "end", fallback=bar.code))
        if bar.value is None:
            shapes.append(Text(left + 6, y + 18, "数值过小，已隐去" if bar.withheld else "无数据", 12, fill=MUTED,
                               fallback="withheld" if bar.withheld else "n/a"))
            continue
        width = max(1.0, plot * bar.value / scale)
        below = reference is not None and percent and bar.value < reference
        shapes.append(Rect(left, y + 5, width, row - 10, BELOW if below else BAR))
        shapes.append(Text(left + width + 6, y + 18, value_text(bar.value, percent), 12))
    if reference is not None:
        x = left + plot * reference / scale
        shapes.append(Line(x, top - 10, x, axis_y, REFERENCE, 2.0, dashed=True))
        shapes.append(Text(x, top - 14, f"{reference_label} {value_text(reference, percent)}", 12, "middle",
                           REFERENCE, fallback=f"reference {value_text(reference, percent)}"))
    described = "；".join(f"{b.label} {value_text(b.value, percent) if b.value is not None else '已隐去'}"
                         for b in bars)
    ref = f"；{reference_label} {value_text(reference, percent)}" if reference is not None else ""
    return Chart(WIDTH, height, title, described + ref, tuple(shapes))


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[dt.date, float | None], ...]


def trend_chart(title: str, series: Sequence[Series], reference: float | None, *, percent: bool) -> Chart:
    """One line per area across runs (a withheld run leaves a gap), the reference as a dashed line."""
    left, right, top, bottom = 70.0, 170.0, 40.0, 50.0
    height = 300.0
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    dates = sorted({d for s in series for d, _ in s.points})
    values = [v for s in series for _, v in s.points if v is not None]
    scale = _scale_top(values + ([reference] if reference else []))
    shapes: list[Shape] = [Text(left, 22, title, 16, fallback="")]
    shapes += [Line(left, top, left, top + plot_h, AXIS), Line(left, top + plot_h, left + plot_w, top + plot_h, AXIS)]

    def x_of(day: dt.date) -> float:
        if len(dates) == 1:
            return left + plot_w / 2
        return left + plot_w * dates.index(day) / (len(dates) - 1)

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / scale

    for tick in range(5):
        value = scale * tick / 4
        shapes.append(Line(left - 4, y_of(value), left, y_of(value), AXIS))
        shapes.append(Text(left - 8, y_of(value) + 4, value_text(value, percent), 11, "end", MUTED))
    step = max(1, len(dates) // 8)
    for i, day in enumerate(dates):
        if i % step == 0 or i == len(dates) - 1:
            shapes.append(Text(x_of(day), top + plot_h + 18, day.isoformat(), 11, "middle", MUTED))
    if reference is not None:
        shapes.append(Line(left, y_of(reference), left + plot_w, y_of(reference), REFERENCE, 2.0, dashed=True))
        shapes.append(Text(left + plot_w + 8, y_of(reference) + 4, f"全国参考值 {value_text(reference, percent)}",
                           12, fill=REFERENCE, fallback="reference"))
    for n, line in enumerate(series):
        colour = SERIES[n % len(SERIES)]
        known = [(x_of(d), y_of(v)) for d, v in line.points if v is not None]
        previous: tuple[float, float] | None = None
        for d, v in line.points:
            if v is None:
                previous = None
                continue
            point = (x_of(d), y_of(v))
            if previous is not None:
                shapes.append(Line(previous[0], previous[1], point[0], point[1], colour, 2.0))
            shapes.append(Dot(point[0], point[1], 3.5, colour))
            previous = point
        if known:
            shapes.append(Text(left + plot_w + 8, known[-1][1] + 4 + 14 * (n % 2), line.label, 12, fill=colour,
                               fallback=""))
    described = "；".join(
        f"{s.label}：" + "，".join(f"{d.isoformat()} {value_text(v, percent) if v is not None else '已隐去'}"
                                  for d, v in s.points) for s in series)
    return Chart(WIDTH, height, title, described, tuple(shapes))


# --- SVG -------------------------------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def to_svg(chart: Chart, element_id: str) -> str:
    """The chart as an inline ``<svg>`` element: presentation attributes only (no ``style``: the pages' CSP
    allows no inline styles), a title and a description read by screen readers."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{_num(chart.width)}" '
             f'height="{_num(chart.height)}" viewBox="0 0 {_num(chart.width)} {_num(chart.height)}" '
             f'aria-labelledby="{element_id}-t {element_id}-d" id="{element_id}">',
             f'<title id="{element_id}-t">{escape(chart.title)}</title>',
             f'<desc id="{element_id}-d">{escape(chart.description)}</desc>',
             f'<rect x="0" y="0" width="{_num(chart.width)}" height="{_num(chart.height)}" fill="#ffffff"/>']
    for s in chart.shapes:
        if isinstance(s, Rect):
            parts.append(f'<rect x="{_num(s.x)}" y="{_num(s.y)}" width="{_num(s.w)}" height="{_num(s.h)}" '
                         f'fill="{s.fill}"/>')
        elif isinstance(s, Line):
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            parts.append(f'<line x1="{_num(s.x1)}" y1="{_num(s.y1)}" x2="{_num(s.x2)}" y2="{_num(s.y2)}" '
                         f'stroke="{s.stroke}" stroke-width="{_num(s.width)}"{dash}/>')
        elif isinstance(s, Dot):
            parts.append(f'<circle cx="{_num(s.x)}" cy="{_num(s.y)}" r="{_num(s.r)}" fill="{s.fill}"/>')
        else:
            parts.append(f'<text x="{_num(s.x)}" y="{_num(s.y)}" font-size="{_num(s.size)}" '
                         f'text-anchor="{s.anchor}" fill="{s.fill}">{escape(s.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- PNG -------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A font file with Chinese characters: ``DIBAO_UI_CHART_FONT``, else the first of ``FONT_CANDIDATES``."""
    configured = os.environ.get(ENV_FONT, "").strip()
    for candidate in ([configured] if configured else []) + list(FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def to_png(chart: Chart, scale: float = 2.0) -> bytes:
    """The chart drawn with Pillow at ``scale`` × its size (sharp on paper and high-density screens)."""
    from PIL import Image, ImageDraw, ImageFont

    font_file = cjk_font()
    fonts: dict[float, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        if size not in fonts:
            fonts[size] = (ImageFont.truetype(font_file, round(size * scale)) if font_file
                           else ImageFont.load_default(round(size * scale)))
        return fonts[size]

    image = Image.new("RGB", (round(chart.width * scale), round(chart.height * scale)), "#ffffff")
    draw = ImageDraw.Draw(image)
    for s in chart.shapes:
        if isinstance(s, Rect):
            draw.rectangle([s.x * scale, s.y * scale, (s.x + s.w) * scale, (s.y + s.h) * scale], fill=s.fill)
        elif isinstance(s, Line):
            _line(draw, s, scale)
        elif isinstance(s, Dot):
            draw.ellipse([(s.x - s.r) * scale, (s.y - s.r) * scale, (s.x + s.r) * scale, (s.y + s.r) * scale],
                         fill=s.fill)
        else:
            text = s.text if font_file or s.fallback is None else s.fallback
            if not text:
                continue
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[s.anchor]
            draw.text((s.x * scale, s.y * scale), text, fill=s.fill, font=font(s.size), anchor=anchor)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _line(draw: object, s: Line, scale: float) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    width = max(1, round(s.width * scale))
    x1, y1, x2, y2 = (v * scale for v in (s.x1, s.y1, s.x2, s.y2))
    if not s.dashed:
        draw.line([x1, y1, x2, y2], fill=s.stroke, width=width)
        return
    length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
    if length == 0:
        return
    on, off = 6 * scale, 4 * scale
    position = 0.0
    while position < length:
        end = min(position + on, length)
        draw.line([x1 + (x2 - x1) * position / length, y1 + (y2 - y1) * position / length,
                   x1 + (x2 - x1) * end / length, y1 + (y2 - y1) * end / length], fill=s.stroke, width=width)
        position += on + off
