"""The History page's bar chart: an SVG drawn on the server, so the phone needs no script and
the unit sends a few kilobytes.

One stacked bar per day (oldest left), one colour per series (by class), a faint line at the busiest
day's height labelled with its count, and the first and last day named under the bars.
Every number and name goes through ``escape``: the chart is embedded in the page as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

WIDTH = 320
HEIGHT = 160
TOP = 18      # room for the busiest day's label
BOTTOM = 20   # room for the dates
#: Series get the classes s0, s1, ... (their colours are in style.css: the page's
#: Content-Security-Policy allows no inline styles).
SERIES_CLASSES = 3


@dataclass(frozen=True)
class Day:
    """One day's bar: its date and a count per series."""

    day: date
    counts: tuple[int, ...]


def last_days(rows: Sequence[tuple[str, Sequence[int]]], today: date, days: int) -> list[Day]:
    """``days`` days up to ``today``, oldest first, from sparse rows ``(ISO date, counts)``;
    a day without a row has zeros, a row outside the range or with a bad date is left out."""
    width = max((len(counts) for _, counts in rows), default=1)
    by_day: dict[date, tuple[int, ...]] = {}
    for iso, counts in rows:
        try:
            by_day[date.fromisoformat(iso)] = tuple(max(0, int(c)) for c in counts)
        except (TypeError, ValueError):
            continue
    return [Day(d, by_day.get(d, (0,) * width))
            for d in (today - timedelta(days=back) for back in range(days - 1, -1, -1))]


def bar_chart(days: Sequence[Day], series: Sequence[str], title: str,
              ident: str = "chart") -> str:
    """The SVG (one string) of stacked bars; ``series`` names each count, in order;
    ``ident`` is the element's id."""
    plot_height = HEIGHT - TOP - BOTTOM
    busiest = max((sum(d.counts) for d in days), default=0)
    scale = plot_height / busiest if busiest else 0.0
    slot = WIDTH / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-labelledby="{ident}-title" class="chart" id="{ident}">',
             f'<title id="{ident}-title">{escape(title)}</title>']
    baseline = TOP + plot_height
    if busiest:
        parts.append(f'<line x1="0" x2="{WIDTH}" y1="{TOP}" y2="{TOP}" class="grid"/>'
                     f'<text x="0" y="{TOP - 4}" class="label">{busiest}</text>')
    parts.append(f'<line x1="0" x2="{WIDTH}" y1="{baseline}" y2="{baseline}" class="axis"/>')
    for index, day in enumerate(days):
        x = index * slot + (slot - bar) / 2
        y = float(baseline)
        words = ", ".join(f"{count} {escape(name)}" for name, count in zip(series, day.counts,
                                                                             strict=False))
        parts.append(f'<g><title>{day.day.isoformat()}: {words}</title>')
        for number, count in enumerate(day.counts):
            if not count:
                continue
            height = count * scale
            y -= height
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                         f'height="{height:.1f}" class="s{number % SERIES_CLASSES}"/>')
        parts.append("</g>")
    if days:
        parts.append(f'<text x="0" y="{HEIGHT - 4}" class="label">'
                     f'{days[0].day.strftime("%d %b")}</text>'
                     f'<text x="{WIDTH}" y="{HEIGHT - 4}" class="label" text-anchor="end">'
                     f'{days[-1].day.strftime("%d %b")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[str]) -> list[tuple[str, str]]:
    """(class, name) per series, for the legend beside the chart."""
    return [(f"s{n % SERIES_CLASSES}", name) for n, name in enumerate(series)]
