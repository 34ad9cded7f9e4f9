"""Server-rendered SVG charts: the funnel and the daily series, with no JavaScript build step.

Colours come from classes in admin.css (the page's CSP forbids inline styles); every chart has a
<title> and an aria-label, and the same figures are in a table beside it for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from campaigns.reports import DailyPoint, people_share


def _text(x: float, y: float, body: str, css: str = "", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{css}" text-anchor="{anchor}">{escape(body)}</text>'
    )


def funnel_svg(stages: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """Horizontal bars of people, each with its count and its share of the first stage (the
    people enrolled): never messages over people, never above 100% (reports.people_share)."""
    width, label_w, row_h, gap = 640, 110, 30, 8
    height = len(stages) * (row_h + gap) + gap
    top = max((value for _, value in stages), default=0) or 1
    first = stages[0][1] if stages else 0
    parts = [
        f'<svg class="chart funnel" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    bar_space = width - label_w - 150
    for row, (label, value) in enumerate(stages):
        y = gap + row * (row_h + gap)
        bar = max(value / top * bar_space, 2 if value else 0)
        fraction = people_share(value, first) if row else None
        share = f" ({fraction:.0%})" if fraction is not None else ""
        parts.append(_text(0, y + row_h * 0.68, label.capitalize(), "label"))
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{bar:.1f}" height="{row_h}" rx="3" '
            f'class="bar stage-{escape(label)}"/>'
        )
        parts.append(_text(label_w + bar + 8, y + row_h * 0.68, f"{value:,}{share}", "value"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _tick_step(peak: int, ticks: int = 4) -> int:
    """1, 2 or 5 x 10^n such that `ticks` steps reach the peak: the axis reads in round numbers."""
    need = max(1, -(-peak // ticks))
    magnitude: int = 10 ** (len(str(need)) - 1)
    for step in (1, 2, 5, 10):
        if need <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def daily_svg(points: Sequence[DailyPoint], series: Sequence[str], *, title: str) -> Markup:
    """One line per series over the days, a y axis in round numbers, a legend below."""
    width, height = 720, 260
    left, right, top, bottom = 56, 28, 12, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _tick_step(max((getattr(p, s) for p in points for s in series), default=0))
    peak = step * 4
    parts = [
        f'<svg class="chart daily" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(5):
        value = step * tick
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(_text(left - 6, y + 4, f"{value:,.0f}", "axis", "end"))
    count = len(points)
    step_x = plot_w / max(count - 1, 1)
    label_every = max(1, count // 8)
    for index, point in enumerate(points):
        if index % label_every == 0 or index == count - 1:
            x = left + index * step_x
            parts.append(_text(x, top + plot_h + 16, point.day.strftime("%d %b"), "axis", "middle"))
    for name in series:
        coords = " ".join(
            f"{left + i * step_x:.1f},{top + plot_h - getattr(p, name) / peak * plot_h:.1f}"
            for i, p in enumerate(points)
        )
        parts.append(f'<polyline points="{coords}" class="line series-{escape(name)}"/>')
    for slot, name in enumerate(series):
        x = left + slot * 120
        y = height - 14
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="12" class="key series-{escape(name)}"/>'
        )
        parts.append(_text(x + 18, y + 1, name.capitalize(), "label"))
    parts.append("</svg>")
    return Markup("".join(parts))
