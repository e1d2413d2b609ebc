"""Small, pure functions that draw accessible SVG charts on the server.

The security dashboard must load nothing from outside (no CDN, no charting script), so its charts are
inline SVG strings built here. Each chart:

* is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>`` (screen readers read both),
* writes every number it shows as text too (axis labels, bar values), and a ``<title>`` per mark so a
  pointer shows the exact figure,
* escapes every label, so data from login events (user agents, network names) cannot inject markup.

The functions take plain values and return a :class:`~django.utils.safestring.SafeString`; they read no
settings and no database, so they are tested with plain data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: Colours of the three decisions, used by every chart that splits by action (colour-blind safe pairs,
#: and each also named in the legend and in every mark's title, so colour is never the only cue).
ACTION_COLOURS: dict[str, str] = {"allow": "#2b8a3e", "step_up": "#e67700", "deny": "#c92a2a"}
DEFAULT_COLOUR = "#1c7ed6"
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_ID_RE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Series:
    """One named row of values in a stacked chart (e.g. the ``deny`` count of every day)."""

    name: str
    values: tuple[float, ...]
    colour: str = DEFAULT_COLOUR


def _slug(text: str) -> str:
    return _ID_RE.sub("-", text.lower()).strip("-") or "chart"


def _num(value: float) -> str:
    """A figure as people read it: integers without decimals, others with one."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` (so axis ticks are round numbers)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def _open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    cid = escape(_slug(chart_id))
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="authguard-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{cid}-title {cid}-desc" id="{cid}">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(description)}</desc>',
    ]


def _close(parts: list[str]) -> SafeString:
    parts.append("</svg>")
    # Every interpolated label above went through escape(); the rest is our own fixed markup.
    return mark_safe("".join(parts))  # noqa: S308


def _short(label: str, limit: int = 38) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _empty(chart_id: str, title: str, message: str, width: int) -> SafeString:
    parts = _open(chart_id, title, message, width, 40)
    parts.append(f'<text x="8" y="24" {_FONT} fill="#555">{escape(message)}</text>')
    return _close(parts)


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    width: int = 640,
    bar_height: int = 22,
    label_width: int = 260,
    colour: str = DEFAULT_COLOUR,
    empty: str = "No data",
) -> SafeString:
    """Horizontal bars, one per ``(label, value)``, longest scale first as given; values printed."""
    if not bars:
        return _empty(chart_id, title, empty, width)
    top = max(max(value for _label, value in bars), 1)
    plot = width - label_width - 70
    height = 12 + len(bars) * (bar_height + 6)
    summary = "; ".join(f"{label}: {_num(value)}" for label, value in bars)
    parts = _open(chart_id, title, f"{title}. {summary}", width, height)
    for index, (label, value) in enumerate(bars):
        y = 6 + index * (bar_height + 6)
        length = max(plot * value / top, 1 if value else 0)
        text_y = y + bar_height * 0.7
        parts.append(
            f'<text x="{label_width - 8}" y="{text_y:.1f}" text-anchor="end" {_FONT}>'
            f"{escape(_short(label))}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{colour}">'
            f"<title>{escape(label)}: {_num(value)}</title></rect>"
            f'<text x="{label_width + length + 6:.1f}" y="{text_y:.1f}" {_FONT}>{_num(value)}</text>'
        )
    return _close(parts)


def column_chart(
    title: str,
    columns: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    width: int = 640,
    height: int = 220,
    colour: str = DEFAULT_COLOUR,
    x_title: str = "",
    empty: str = "No data",
) -> SafeString:
    """Vertical columns (a histogram when the labels are bins), each with its value above it."""
    if not columns:
        return _empty(chart_id, title, empty, width)
    series = Series(title, tuple(value for _label, value in columns), colour)
    return stacked_columns(
        title,
        [label for label, _value in columns],
        [series],
        chart_id=chart_id,
        width=width,
        height=height,
        x_title=x_title,
        legend=False,
        empty=empty,
    )


def stacked_columns(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    chart_id: str,
    width: int = 640,
    height: int = 240,
    x_title: str = "",
    legend: bool = True,
    empty: str = "No data",
) -> SafeString:
    """Columns per category (e.g. per day), each stacked from the series in order, with a legend.

    Long category lists label every n-th column only, so the labels never overlap.
    """
    if not categories or not series or not any(any(s.values) for s in series):
        return _empty(chart_id, title, empty, width)
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(categories)} categories")
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top = nice_ceiling(max(totals))
    left, right, bottom = 48, 12, 40 + (8 if x_title else 0)
    legend_height = 22 if legend else 0
    plot_top = 14 + legend_height
    plot_height = height - plot_top - bottom
    plot_width = width - left - right
    step = plot_width / len(categories)
    column = max(step * 0.75, 1.0)
    label_every = max(1, round(len(categories) / max(plot_width // 70, 1)))
    summary = "; ".join(
        f"{cat}: " + ", ".join(f"{s.name} {_num(s.values[i])}" for s in series)
        for i, cat in enumerate(categories)
    )
    parts = _open(chart_id, title, f"{title}. {summary}", width, height)
    if legend:
        legend_x = left
        for s in series:
            parts.append(
                f'<rect x="{legend_x}" y="6" width="12" height="12" fill="{escape(s.colour)}"/>'
                f'<text x="{legend_x + 16}" y="16" {_FONT}>{escape(s.name)}</text>'
            )
            legend_x += 24 + 8 * len(s.name)
    axis_y = plot_top + plot_height
    for fraction in (0, 0.5, 1):
        y = axis_y - plot_height * fraction
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{_num(top * fraction)}</text>'
        )
    for i, category in enumerate(categories):
        x = left + i * step + (step - column) / 2
        y = float(axis_y)
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_height * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{column:.1f}" height="{h:.1f}" '
                f'fill="{escape(s.colour)}"><title>{escape(category)}: {escape(s.name)} {_num(value)}'
                f"</title></rect>"
            )
        if len(series) == 1 and totals[i] and len(categories) <= 24:
            parts.append(
                f'<text x="{x + column / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" {_FONT}>'
                f"{_num(totals[i])}</text>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + column / 2:.1f}" y="{axis_y + 16}" text-anchor="middle" {_FONT}>'
                f"{escape(category)}</text>"
            )
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333"/>')
    if x_title:
        parts.append(
            f'<text x="{left + plot_width / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>'
            f"{escape(x_title)}</text>"
        )
    return _close(parts)


def rate_gauge(
    title: str, rate: float | None, *, chart_id: str, detail: str = "", width: int = 320
) -> SafeString:
    """A single share (0..1) as a filled bar with its percentage; ``None`` draws "no data"."""
    if rate is None:
        return _empty(chart_id, title, detail or "No data", width)
    rate = min(max(rate, 0.0), 1.0)
    text = f"{rate * 100:.1f} %"
    bar = width - 70
    parts = _open(chart_id, title, f"{title}: {text}. {detail}", width, 56)
    parts.append(
        f'<rect x="0" y="8" width="{bar}" height="22" fill="#e9ecef"/>'
        f'<rect x="0" y="8" width="{bar * rate:.1f}" height="22" fill="{ACTION_COLOURS["allow"]}">'
        f"<title>{escape(title)}: {text}</title></rect>"
        f'<text x="{bar + 6}" y="24" {_FONT} font-weight="bold">{text}</text>'
        f'<text x="0" y="48" {_FONT}>{escape(detail)}</text>'
    )
    return _close(parts)
