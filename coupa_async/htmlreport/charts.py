"""The run over time as inline SVG, drawn in Python: no script is needed to see the charts.

Three charts share one time axis: POs settled per minute (from the ``settled`` deltas, over a
sliding window), workers active against the target, and memory against its budget (when the
memory watch measured it). Events are vertical markers on every chart, each with a ``<title>``
tooltip. Samples are irregular (old ones thinned), so every series is bucketed onto at most
MAX_POINTS points per chart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from coupa_async.running.metrics import MetricSample, RunEvent

MAX_POINTS = 600
RATE_WINDOW_S = 30.0
MAX_HOVER_COLUMNS = 120
NO_SAMPLES = "No metrics were recorded for this run, so there are no charts."
EVENT_LABELS = {
    "scaled": "workers scaled",
    "session_renewed": "session renewed",
    "browser_relaunched": "browser relaunched",
    "host_paused": "Coupa asked to wait",
    "unreachable": "Coupa unreachable",
}

_WIDTH, _HEIGHT = 900, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 10, 24
_TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: its points, its legend label and its CSS class."""

    label: str
    css: str
    points: list[Point]


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps times and values onto the chart's drawing area."""

    t0: float
    t1: float
    y_max: float

    def x(self, at: float) -> float:
        return _LEFT + (at - self.t0) / (self.t1 - self.t0) * (_WIDTH - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return _HEIGHT - _BOTTOM - value / self.y_max * (_HEIGHT - _TOP - _BOTTOM)


def render_charts(samples: Sequence[MetricSample], events: Sequence[RunEvent]) -> str:
    """The charts section's body: the charts and their legends, or a sentence when no samples."""
    if not samples:
        return f'<p class="no-charts">{escape(NO_SAMPLES)}</p>'
    times = [s.at for s in samples] + [e.at for e in events]
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1:
        t1 = t0 + 1
    paused = _paused_spans(samples, (t1 - t0) / MAX_POINTS)
    parts = [_event_legend(events)]
    rate = Series("POs per minute", "s-rate", per_minute(samples, RATE_WINDOW_S))
    parts.append(_chart("POs settled per minute", "POs/min", [rate], events, t0, t1, paused))
    workers = [
        Series("workers active", "s-workers", [(s.at, s.workers) for s in samples]),
        Series("target", "s-target", [(s.at, s.target_workers) for s in samples]),
    ]
    parts.append(_chart("Workers", "workers", workers, events, t0, t1, paused))
    memory = [(s.at, float(s.pss_mb)) for s in samples if s.pss_mb is not None]
    if memory:
        budget = [(s.at, float(s.budget_mb)) for s in samples if s.budget_mb is not None]
        lines = [Series("memory (PSS)", "s-memory", memory)]
        if budget:
            lines.append(Series("budget", "s-budget", budget))
        parts.append(_chart("Memory", "MB", lines, events, t0, t1, paused, peak=True))
    return "\n".join(parts)


def per_minute(samples: Sequence[MetricSample], window_s: float) -> list[Point]:
    """POs settled per minute at each sample, over the last ``window_s`` seconds (or over the
    gap to the previous sample, where samples are further apart than that)."""
    points: list[Point] = []
    start = 0
    for index in range(1, len(samples)):
        now = samples[index]
        while start + 1 < index and now.at - samples[start + 1].at >= window_s:
            start += 1
        before = samples[start]
        span = now.at - before.at
        if span > 0:
            points.append((now.at, max(0.0, (now.settled - before.settled) * 60.0 / span)))
    return points


def downsample(
    points: Sequence[Point], t0: float, t1: float, limit: int, pick: Callable[[list[float]], float]
) -> list[Point]:
    """At most ``limit`` points: one per equal slice of ``[t0, t1]`` that holds any, its time the
    slice's mean time and its value ``pick`` of the slice's values."""
    if len(points) <= limit:
        return list(points)
    width = (t1 - t0) / limit
    out: list[Point] = []
    bucket: list[float] = []
    times: list[float] = []
    current = -1
    for at, value in points:
        index = min(limit - 1, int((at - t0) / width))
        if index != current and bucket:
            out.append((sum(times) / len(times), pick(bucket)))
            bucket, times = [], []
        current = index
        bucket.append(value)
        times.append(at)
    if bucket:
        out.append((sum(times) / len(times), pick(bucket)))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _chart(
    title: str,
    unit: str,
    series: list[Series],
    events: Sequence[RunEvent],
    t0: float,
    t1: float,
    paused: list[tuple[float, float]],
    *,
    peak: bool = False,
) -> str:
    """One chart: a figure with a caption, a legend and the SVG."""
    pick = max if peak else _mean
    lines = [Series(s.label, s.css, downsample(s.points, t0, t1, MAX_POINTS, pick)) for s in series]
    top = max((value for line in lines for _, value in line.points), default=0.0)
    y_max, y_step = _nice_scale(top * 1.05)
    frame = _Frame(t0, t1, y_max)
    svg = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        _paused_bands(frame, paused),
        _y_axis(frame, y_step, unit),
        _x_axis(frame),
    ]
    for line in lines:
        svg.append(_polyline(frame, line))
    svg.append(_hover_columns(frame, lines, unit))
    svg.extend(_event_marker(frame, event) for event in events)
    svg.append("</svg>")
    legend = "".join(
        f'<span class="key {line.css}"><i></i>{escape(line.label)}</span>' for line in lines
    )
    if paused:
        legend += '<span class="key s-paused"><i></i>paused (Coupa asked to wait)</span>'
    return (
        f'<figure class="chart-box"><figcaption>{escape(title)}'
        f'<span class="legend">{legend}</span></figcaption>{"".join(svg)}</figure>'
    )


def _polyline(frame: _Frame, line: Series) -> str:
    if not line.points:
        return ""
    coords = " ".join(f"{frame.x(at):.1f},{frame.y(value):.1f}" for at, value in line.points)
    label = escape(line.label)
    return f'<polyline class="line {line.css}" points="{coords}"><title>{label}</title></polyline>'


def _hover_columns(frame: _Frame, lines: list[Series], unit: str) -> str:
    """Invisible columns whose tooltips give the values at that time."""
    count = min(MAX_HOVER_COLUMNS, max((len(line.points) for line in lines), default=0))
    if count == 0:
        return ""
    step = (frame.t1 - frame.t0) / count
    width = frame.x(frame.t0 + step) - frame.x(frame.t0)
    cursors = [0] * len(lines)
    out = ['<g class="hover">']
    for column in range(count):
        end = frame.t0 + (column + 1) * step
        values = []
        for index, line in enumerate(lines):
            cursor = cursors[index]
            while cursor + 1 < len(line.points) and line.points[cursor + 1][0] <= end:
                cursor += 1
            cursors[index] = cursor
            if line.points and line.points[cursor][0] <= end:
                values.append(f"{line.label} {_number(line.points[cursor][1])}")
        if not values:
            continue
        tip = f"{_clock(end, seconds=True)}: {', '.join(values)} {unit}"
        x = frame.x(end - step)
        out.append(
            f'<rect x="{x:.1f}" y="{_TOP}" width="{width:.1f}" height="{_HEIGHT - _TOP - _BOTTOM}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    out.append("</g>")
    return "".join(out)


def _event_marker(frame: _Frame, event: RunEvent) -> str:
    x = frame.x(event.at)
    kind = event.kind if event.kind in EVENT_LABELS else "other"
    label = EVENT_LABELS.get(event.kind, str(event.kind))
    tip = f"{_clock(event.at, seconds=True)} {label}" + (
        f": {event.detail}" if event.detail else ""
    )
    line = f'x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_HEIGHT - _BOTTOM}"'
    return (
        f'<g class="event-marker ev-{kind}"><title>{escape(tip)}</title>'
        f'<line class="hit" {line}/><line class="mark" {line}/></g>'
    )


def _event_legend(events: Sequence[RunEvent]) -> str:
    if not events:
        return '<p class="legend events-legend">No events in this run.</p>'
    counts: dict[str, int] = {}
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
    keys = "".join(
        f'<span class="key ev-{kind if kind in EVENT_LABELS else "other"}"><i></i>'
        f"{escape(EVENT_LABELS.get(kind, kind))} ({count})</span>"
        for kind, count in counts.items()
    )
    return f'<p class="legend events-legend">Events (markers on every chart): {keys}</p>'


def _paused_spans(samples: Sequence[MetricSample], gap: float) -> list[tuple[float, float]]:
    """Times the host was paused, joined where less than ``gap`` apart."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for before, after in itertools.pairwise(samples):
        if before.paused and start is None:
            start = before.at
        if start is not None and not after.paused:
            spans.append((start, after.at))
            start = None
    if start is not None:
        spans.append((start, samples[-1].at))
    joined: list[tuple[float, float]] = []
    for span in spans:
        if joined and span[0] - joined[-1][1] < gap:
            joined[-1] = (joined[-1][0], span[1])
        else:
            joined.append(span)
    return joined


def _paused_bands(frame: _Frame, paused: list[tuple[float, float]]) -> str:
    bands = []
    for start, end in paused:
        x0, x1 = frame.x(start), frame.x(end)
        bands.append(
            f'<rect class="paused" x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{_HEIGHT - _TOP - _BOTTOM}"/>'
        )
    return "".join(bands)


def _y_axis(frame: _Frame, step: float, unit: str) -> str:
    out = ['<g class="axis y">']
    for index in range(round(frame.y_max / step) + 1):
        value = index * step
        y = frame.y(value)
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    out.append(f'<text class="unit" x="{_LEFT + 4}" y="{_TOP + 10}">{escape(unit)}</text></g>')
    return "".join(out)


def _x_axis(frame: _Frame) -> str:
    span = frame.t1 - frame.t0
    step = next((s for s in _TIME_STEPS if span / s <= 8), _TIME_STEPS[-1])
    offset = datetime.fromtimestamp(frame.t0).astimezone().utcoffset()
    shift = offset.total_seconds() if offset else 0.0
    tick = math.ceil((frame.t0 + shift) / step) * step - shift
    out = ['<g class="axis x">']
    base = _HEIGHT - _BOTTOM
    while tick <= frame.t1:
        x = frame.x(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}"/>'
            f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
            f"{_clock(tick, seconds=step < 60)}</text>"
        )
        tick += step
    out.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{base}" y2="{base}"/></g>')
    return "".join(out)


def _nice_scale(top: float) -> tuple[float, float]:
    """The top of the value axis and its tick step: a step of 1, 2 or 5 × 10ⁿ (at least 1),
    four to six ticks, the top a whole number of steps at or above ``top``."""
    rough = max(top, 1.0) / 5
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(f * magnitude for f in (1, 2, 5, 10) if f * magnitude >= rough)
    step = max(1.0, step)
    return max(step, math.ceil(top / step) * step), step


def _number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _clock(at: float, *, seconds: bool = False) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S" if seconds else "%H:%M")
