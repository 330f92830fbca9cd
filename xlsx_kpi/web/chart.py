"""The line chart of a unit's totals by year, drawn on the server as SVG (no script on the page)."""

from __future__ import annotations

from decimal import Decimal

from markupsafe import Markup

__all__ = ["chart_svg"]


def chart_svg(series: dict[str, list[tuple[int, Decimal]]], width: int = 640, height: int = 240) -> Markup:
    """A line chart of totals by year, one line per workbook kind/project (server-drawn, no script)."""
    years = sorted({y for points in series.values() for y, _ in points})
    if not years:
        return Markup("")
    colours = ["#2f6db5", "#c0504d", "#4e9a5b", "#e0a526", "#7a5195", "#555555"]
    left, right, top, bottom = 48, 160, 16, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for points in series.values() for _, v in points]
    low = min(Decimal(60), min(values))
    high = Decimal(100) if max(values) <= 100 else max(values)
    span = (high - low) or Decimal(1)

    def x(year: int) -> float:
        return left + (plot_w / 2 if len(years) == 1 else plot_w * years.index(year) / (len(years) - 1))

    def y(v: Decimal) -> float:
        return top + float((high - v) / span) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="历年自评合计得分">'
    ]
    for k in range(5):
        v = low + span * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>'
        )
    for year in years:
        parts.append(f'<text x="{x(year):.1f}" y="{height - 10}" text-anchor="middle">{year}</text>')
    for n, (label, points) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        pts = " ".join(f"{x(yr):.1f},{y(v):.1f}" for yr, v in sorted(points))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for yr, v in points:
            # Labels of alternate lines go above and below their points, so equal years do not overprint.
            dy = -8 if n % 2 == 0 else 16
            parts.append(
                f'<circle cx="{x(yr):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"/>'
                f'<text x="{x(yr):.1f}" y="{y(v) + dy:.1f}" text-anchor="middle" fill="{colour}">{v:.2f}</text>'
            )
        ly = top + 14 + 18 * n
        short = label if len(label) <= 12 else label[:11] + "…"
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}">{Markup.escape(short)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
