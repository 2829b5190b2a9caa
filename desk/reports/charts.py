"""Small server-side SVG charts: a line chart, a bar chart and a stacked bar chart.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``, drawn with
presentation attributes only (the Content-Security-Policy allows no inline style), in the
Okabe–Ito palette, which stays distinguishable with the common colour-vision deficiencies.
Lines also differ by dash pattern and marker shape, and stacked segments are separated by a
white edge, so no chart depends on colour alone. The page shows every chart's numbers in a table
beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Okabe & Ito, "Color Universal Design" (2008).
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
INK = "#1d2327"
GRID = "#d5dadd"

WIDTH = 640
HEIGHT = 320
MARGIN_LEFT = 72
MARGIN_RIGHT = 16
MARGIN_TOP = 48
MARGIN_BOTTOM = 44
FONT_SIZE = 14


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]
    colour: str
    #: stroke-dasharray of a line ("" for solid).
    dash: str = ""
    #: "circle", "square" or "diamond": the line's point markers.
    marker: str = "circle"


def nice_scale(value: float, intervals: int = 5) -> tuple[float, int]:
    """A round step (1, 2, 2.5 or 5 × 10^k) and how many of them reach ``value``.

    About ``intervals`` steps; the axis then ends at step × count, at or just above ``value``.
    """
    if value <= 0 or math.isnan(value):
        return 1.0, 1
    rough = value / intervals
    exponent = math.floor(math.log10(rough))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * 10.0**exponent
        if step >= rough * (1 - 1e-9):
            return step, max(1, math.ceil(value / step - 1e-9))
    raise AssertionError("unreachable")


def _number(value: float) -> str:
    """A coordinate or tick value without needless decimals."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


class _Plot:
    """The frame shared by the charts: title, axes, grid and category labels."""

    def __init__(self, chart_id: str, title: str, description: str, y_label: str) -> None:
        self.chart_id = chart_id
        self.title = title
        self.description = description
        self.y_label = y_label
        self.parts: list[str] = []
        self.left = MARGIN_LEFT
        self.right = WIDTH - MARGIN_RIGHT
        self.top = MARGIN_TOP
        self.bottom = HEIGHT - MARGIN_BOTTOM
        self.y_max = 1.0

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * value / self.y_max

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def text(self, x: float, y: float, content: str, **attributes: str) -> None:
        extra = "".join(
            f' {name.replace("_", "-")}="{escape(v)}"' for name, v in attributes.items()
        )
        self.add(
            f'<text x="{_number(x)}" y="{_number(y)}" font-size="{FONT_SIZE}" fill="{INK}"'
            f"{extra}>{escape(content)}</text>"
        )

    def axes(self, y_max: float, categories: Sequence[str], centres: Sequence[float]) -> None:
        step, count = nice_scale(y_max)
        self.y_max = step * count
        for i in range(count + 1):
            value = step * i
            y = self.y(value)
            self.add(
                f'<line x1="{self.left}" x2="{self.right}" y1="{_number(y)}" y2="{_number(y)}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            self.text(self.left - 6, y + 4, _number(value), text_anchor="end")
        self.add(
            f'<line x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{self.bottom}" '
            f'stroke="{INK}" stroke-width="1"/>'
            f'<line x1="{self.left}" x2="{self.right}" y1="{self.bottom}" y2="{self.bottom}" '
            f'stroke="{INK}" stroke-width="1"/>'
        )
        step = max(1, math.ceil(len(categories) / 7))
        for index, (label, x) in enumerate(zip(categories, centres, strict=True)):
            if index % step == 0:
                self.text(x, self.bottom + 18, label, text_anchor="middle")
        middle = (self.top + self.bottom) / 2
        self.text(
            14, middle, self.y_label, text_anchor="middle", transform=f"rotate(-90 14 {middle})"
        )

    def legend(self, entries: Sequence[tuple[str, str]]) -> None:
        """Swatches across the top: (markup of the swatch at the origin, label)."""
        x = self.left
        for swatch, label in entries:
            self.add(f'<g transform="translate({_number(x)} 18)">{swatch}</g>')
            self.text(x + 26, 23, label)
            x += 44 + 8 * len(label)

    def render(self) -> Markup:
        title_id = f"{self.chart_id}-title"
        desc_id = f"{self.chart_id}-desc"
        return Markup(
            f'<svg class="chart" id="{escape(self.chart_id)}" role="img" '
            f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
            f'font-family="system-ui, sans-serif">'
            f'<title id="{escape(title_id)}">{escape(self.title)}</title>'
            f'<desc id="{escape(desc_id)}">{escape(self.description)}</desc>'
            + "".join(self.parts)
            + "</svg>"
        )


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return (
            f'<rect x="{_number(x - 4)}" y="{_number(y - 4)}" width="8" height="8" '
            f'fill="{colour}"/>'
        )
    if shape == "diamond":
        points = f"{_number(x)},{_number(y - 5)} {_number(x + 5)},{_number(y)} "
        points += f"{_number(x)},{_number(y + 5)} {_number(x - 5)},{_number(y)}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    return f'<circle cx="{_number(x)}" cy="{_number(y)}" r="4" fill="{colour}"/>'


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    reference: tuple[float, str] | None = None,
) -> Markup:
    """Lines over categories (months); a None value leaves a gap in its line.

    ``reference``: a (value, label) drawn as a thin dotted line across, e.g. a target.
    """
    plot = _Plot(chart_id, title, description, y_label)
    count = max(len(categories), 1)
    width = (plot.right - plot.left) / count
    centres = [plot.left + width * (i + 0.5) for i in range(len(categories))]
    values = [v for s in series for v in s.values if v is not None]
    if reference is not None:
        values.append(reference[0])
    plot.axes(max(values, default=0.0), categories, centres)
    if reference is not None:
        y = _number(plot.y(reference[0]))
        plot.add(
            f'<line x1="{plot.left}" x2="{plot.right}" y1="{y}" y2="{y}" stroke="{INK}" '
            f'stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
        plot.text(plot.right - 4, float(y) - 6, reference[1], text_anchor="end")
    for s in series:
        commands, drawing = [], False
        for x, value in zip(centres, s.values, strict=True):
            if value is None:
                drawing = False
                continue
            commands.append(f"{'L' if drawing else 'M'}{_number(x)} {_number(plot.y(value))}")
            drawing = True
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        if commands:
            plot.add(
                f'<path d="{" ".join(commands)}" fill="none" stroke="{s.colour}" '
                f'stroke-width="2.5"{dash}/>'
            )
        for x, value in zip(centres, s.values, strict=True):
            if value is not None:
                plot.add(_marker(s.marker, x, plot.y(value), s.colour))
    plot.legend(
        [
            (
                f'<line x1="0" x2="20" y1="0" y2="0" stroke="{s.colour}" stroke-width="2.5"'
                + (f' stroke-dasharray="{s.dash}"' if s.dash else "")
                + "/>"
                + _marker(s.marker, 10, 0, s.colour),
                s.label,
            )
            for s in series
        ]
    )
    return plot.render()


def stacked_bar_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_label: str,
) -> Markup:
    """One bar per category, its series stacked from the bottom in the order given."""
    plot = _Plot(chart_id, title, description, y_label)
    count = max(len(categories), 1)
    slot = (plot.right - plot.left) / count
    bar = min(slot * 0.7, 56)
    centres = [plot.left + slot * (i + 0.5) for i in range(len(categories))]
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    plot.axes(max(totals, default=0.0), categories, centres)
    for i, x in enumerate(centres):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            top, bottom = plot.y(base + value), plot.y(base)
            plot.add(
                f'<rect x="{_number(x - bar / 2)}" y="{_number(top)}" width="{_number(bar)}" '
                f'height="{_number(bottom - top)}" fill="{s.colour}" stroke="#ffffff" '
                f'stroke-width="1"/>'
            )
            base += value
    plot.legend(
        [
            (f'<rect x="0" y="-6" width="20" height="12" fill="{s.colour}"/>', s.label)
            for s in series
        ]
    )
    return plot.render()


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    values: Sequence[float],
    y_label: str,
    colour: str = OKABE_ITO["blue"],
) -> Markup:
    """One bar per category."""
    return stacked_bar_chart(
        chart_id, title, description, categories, [Series(y_label, values, colour)], y_label
    )
