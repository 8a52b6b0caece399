"""Inline SVG charts for the HTML report: no scripts, no external assets, deterministic output.

Each function takes plain numbers and returns one ``<svg>`` element as text. Every label goes through
``html.escape``; the caller marks the result safe for Jinja.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from aigw_harness.report.stats import percentile

__all__ = ["histogram", "line_series", "overshoot_vs_concurrency", "pass_fail_overview", "token_arrival"]

_W, _H = 640, 260
_L, _R, _T, _B = 56, 150, 28, 40  # margins: room for axis labels on the left and a legend on the right
_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")
_STATUS_COLOURS = {
    "passed": "#16a34a",
    "failed": "#dc2626",
    "error": "#7c2d12",
    "not_applicable": "#a16207",
    "skipped": "#9ca3af",
}


def _n(value: float) -> str:
    """Compact, stable number formatting for coordinates."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _open(title: str, description: str, height: int = _H) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="chart" font-family="system-ui, sans-serif" '
        'font-size="11">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(description)}</desc>",
        f'<text x="{_L}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
    ]


def _axes(x_label: str, y_label: str, x_max: float, y_max: float, height: int = _H) -> list[str]:
    plot_w, plot_h = _W - _L - _R, height - _T - _B
    out = [
        f'<line x1="{_L}" y1="{height - _B}" x2="{_W - _R}" y2="{height - _B}" stroke="#374151"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{height - _B}" stroke="#374151"/>',
        f'<text x="{_L + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{_T + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {_T + plot_h / 2:.0f})">{escape(y_label)}</text>',
    ]
    for i in range(5):
        fraction = i / 4
        x = _L + fraction * plot_w
        y = height - _B - fraction * plot_h
        out.append(
            f'<text x="{_n(x)}" y="{height - _B + 14}" text-anchor="middle">{_n(x_max * fraction)}</text>'
        )
        out.append(f'<text x="{_L - 4}" y="{_n(y + 4)}" text-anchor="end">{_n(y_max * fraction)}</text>')
        if i:
            out.append(f'<line x1="{_L}" y1="{_n(y)}" x2="{_W - _R}" y2="{_n(y)}" stroke="#e5e7eb"/>')
    return out


def _legend(labels: Sequence[str], colours: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i, (label, colour) in enumerate(zip(labels, colours, strict=True)):
        y = _T + 6 + i * 16
        out.append(f'<rect x="{_W - _R + 10}" y="{y - 8}" width="10" height="10" fill="{colour}"/>')
        short = label if len(label) <= 22 else label[:21] + "…"
        out.append(f'<text x="{_W - _R + 24}" y="{y + 1}">{escape(short)}</text>')
    return out


def _empty(title: str, message: str) -> str:
    parts = _open(title, message, 80)
    parts.append(f'<text x="{_L}" y="50" fill="#6b7280">{escape(message)}</text></svg>')
    return "".join(parts)


def histogram(title: str, values: Sequence[float], unit: str, bins: int = 20) -> str:
    """Distribution of ``values`` (for example time to first token across all streams)."""
    if not values:
        return _empty(title, "no samples in this run")
    top = _nice_max(max(values))
    width = top / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value / width))] += 1
    y_max = _nice_max(max(counts))
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    parts = _open(title, f"{len(values)} samples; bins of {_n(width)} {unit}")
    parts += _axes(unit, "count", top, y_max)
    for i, count in enumerate(counts):
        if not count:
            continue
        h = count / y_max * plot_h
        x = _L + i * plot_w / bins
        parts.append(
            f'<rect class="bar" x="{_n(x + 1)}" y="{_n(_H - _B - h)}" width="{_n(plot_w / bins - 2)}" '
            f'height="{_n(h)}" fill="{_PALETTE[0]}">'
            f"<title>{_n(i * width)}–{_n((i + 1) * width)} {escape(unit)}: {count}</title></rect>"
        )
    # The percentiles are drawn as lines in their legend colours, so each swatch has its mark.
    marks = [("p50", percentile(values, 0.50), _PALETTE[1]), ("p95", percentile(values, 0.95), _PALETTE[2])]
    for label, value, colour in marks:
        x = _L + min(value, top) / top * plot_w
        parts.append(
            f'<line class="marker" x1="{_n(x)}" y1="{_T}" x2="{_n(x)}" y2="{_H - _B}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="4 3">'
            f"<title>{label}: {_n(value)} {escape(unit)}</title></line>"
        )
    parts += _legend([f"{label} {_n(value)} {unit}" for label, value, _ in marks], [c for *_, c in marks])
    parts.append(
        f'<text x="{_W - _R + 10}" y="{_T + 6 + 2 * 16 + 1}" fill="#374151">n = {len(values)}</text></svg>'
    )
    return "".join(parts)


def token_arrival(title: str, streams: Mapping[str, Sequence[float]]) -> str:
    """Cumulative data events against time since the request, one line per stream."""
    streams = {label: times for label, times in streams.items() if times}
    if not streams:
        return _empty(title, "no streamed responses in this scenario")
    x_max = _nice_max(max(max(times) for times in streams.values()))
    y_max = _nice_max(max(len(times) for times in streams.values()))
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    parts = _open(title, f"{len(streams)} streams; x: ms since the request, y: data events received")
    parts += _axes("ms since request", "events", x_max, y_max)
    labels = list(streams)[: len(_PALETTE)]
    for label, colour in zip(labels, _PALETTE, strict=False):
        points = [f"{_L},{_H - _B}"]
        for count, t in enumerate(streams[label], start=1):
            x = _L + t / x_max * plot_w
            points.append(f"{_n(x)},{_n(_H - _B - (count - 1) / y_max * plot_h)}")
            points.append(f"{_n(x)},{_n(_H - _B - count / y_max * plot_h)}")
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(points)}"><title>{escape(label)}</title></polyline>'
        )
    parts += _legend(labels, _PALETTE[: len(labels)])
    parts.append("</svg>")
    return "".join(parts)


def overshoot_vs_concurrency(title: str, series: Mapping[str, Sequence[tuple[int, int]]]) -> str:
    """Tokens over budget (y) for each burst size (x), one line per budget store."""
    series = {label: sorted(points) for label, points in series.items() if points}
    if not series:
        return _empty(title, "no budget bursts in this run")
    x_max = _nice_max(max(x for points in series.values() for x, _ in points))
    y_max = _nice_max(max(y for points in series.values() for _, y in points))
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    parts = _open(title, "x: concurrent requests in the burst; y: tokens charged beyond the budget")
    parts += _axes("concurrent requests", "tokens over budget", x_max, y_max)
    labels = list(series)[: len(_PALETTE)]
    for label, colour in zip(labels, _PALETTE, strict=False):
        coords = [(_L + x / x_max * plot_w, _H - _B - y / y_max * plot_h, x, y) for x, y in series[label]]
        path = " ".join(f"{_n(cx)},{_n(cy)}" for cx, cy, _, _ in coords)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        for cx, cy, x, y in coords:
            parts.append(
                f'<circle class="point" cx="{_n(cx)}" cy="{_n(cy)}" r="3.5" fill="{colour}">'
                f"<title>{escape(label)}: {x} concurrent → {y} tokens over</title></circle>"
            )
    parts += _legend(labels, _PALETTE[: len(labels)])
    parts.append("</svg>")
    return "".join(parts)


def pass_fail_overview(title: str, rows: Mapping[str, Mapping[str, int]]) -> str:
    """One horizontal stacked bar per group (area): passed, failed, error, skipped scenarios."""
    if not rows:
        return _empty(title, "no scenarios in this run")
    bar_h, gap = 18, 8
    height = _T + len(rows) * (bar_h + gap) + 40
    total_max = max(sum(counts.values()) for counts in rows.values()) or 1
    plot_w = _W - _L - _R - 40
    parts = _open(title, "scenarios per area by outcome", height)
    for i, (group, counts) in enumerate(rows.items()):
        y = _T + 8 + i * (bar_h + gap)
        parts.append(f'<text x="{_L + 40 - 4}" y="{y + 13}" text-anchor="end">{escape(group)}</text>')
        x = float(_L + 40)
        for status, colour in _STATUS_COLOURS.items():
            count = counts.get(status, 0)
            if not count:
                continue
            w = count / total_max * plot_w
            parts.append(
                f'<rect class="seg {status}" x="{_n(x)}" y="{y}" width="{_n(w)}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(group)}: {count} {status}</title></rect>'
            )
            if w >= 14:
                parts.append(
                    f'<text x="{_n(x + w / 2)}" y="{y + 13}" text-anchor="middle" fill="#fff">{count}</text>'
                )
            x += w
    present = [s for s in _STATUS_COLOURS if any(counts.get(s) for counts in rows.values())]
    parts += _legend(present, [_STATUS_COLOURS[s] for s in present])  # only statuses that have a bar
    parts.append("</svg>")
    return "".join(parts)


def line_series(
    title: str, x_label: str, y_label: str, series: Mapping[str, Sequence[tuple[float, float]]]
) -> str:
    """Lines of (x, y) points, one per series, each point marked (for example figures over time)."""
    series = {label: sorted(points) for label, points in series.items() if points}
    if not series:
        return _empty(title, "no data points in this run")
    x_max = _nice_max(max(x for points in series.values() for x, _ in points))
    y_max = _nice_max(max(y for points in series.values() for _, y in points))
    y_min = min(0.0, min(y for points in series.values() for _, y in points))
    span = y_max - y_min or 1.0
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    parts = _open(title, f"x: {x_label}; y: {y_label}; {len(series)} series")
    parts += _axes(x_label, y_label, x_max, y_max)
    labels = list(series)[: len(_PALETTE)]
    for label, colour in zip(labels, _PALETTE, strict=False):
        coords = [
            (_L + x / x_max * plot_w, _H - _B - (y - y_min) / span * plot_h, x, y) for x, y in series[label]
        ]
        path = " ".join(f"{_n(cx)},{_n(cy)}" for cx, cy, _, _ in coords)
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
        )
        for cx, cy, x, y in coords:
            parts.append(
                f'<circle class="point" cx="{_n(cx)}" cy="{_n(cy)}" r="2.5" fill="{colour}">'
                f"<title>{escape(label)}: {_n(x)} {escape(x_label)} → {_n(y)}</title></circle>"
            )
    parts += _legend(labels, _PALETTE[: len(labels)])
    parts.append("</svg>")
    return "".join(parts)
