"""``report --html FILE``: one self-contained page of what result logs say.

The counts by outcome, the sessions whose latest outcome failed (or was invalid) with their
reasons, and a timeline of results per second by outcome, drawn as inline SVG from the
records' timestamps. Nothing is fetched: no script, no stylesheet or font from elsewhere,
and a Content-Security-Policy that forbids loading anything. The outcomes are told apart by
fill patterns and labels, not colour alone. Every string from a log is hostile: it is
escaped, and characters that are not printable (controls, bidi overrides, noncharacters)
become spaces. The page stays small whatever the logs hold: the list stops at
``MAX_LISTED`` entries and the timeline has at most ``MAX_BUCKETS`` bars.
"""

from __future__ import annotations

import calendar
import html
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from worker.outcomes import OUTCOMES
from worker.output.report import COUNTED_ONLY, Entry, Summary

MAX_LISTED = 1000
MAX_BUCKETS = 120
_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
_W, _H, _LEFT, _BOTTOM = 900, 240, 60, 40  # the chart's size and margins, in SVG units
# one pattern per outcome: shape and shade both differ, so print and colour-blind eyes read it
_LOOKS = {
    "terminated": ("#1b6e3a", ""),
    "archived": ("#2f5f9e", '<path d="M0 8L8 0" stroke="#fff" stroke-width="2"/>'),
    "already_terminated": ("#6b8e23", '<circle cx="4" cy="4" r="1.6" fill="#fff"/>'),
    "not_found": ("#8a8a8a", '<path d="M0 4H8" stroke="#fff" stroke-width="2"/>'),
    "failed": ("#b22222", '<path d="M0 0L8 8M8 0L0 8" stroke="#fff" stroke-width="1.5"/>'),
    "cancelled": ("#c77c00", '<path d="M4 0V8" stroke="#fff" stroke-width="2"/>'),
    "invalid": ("#7a3e9d", '<rect x="2" y="2" width="4" height="4" fill="#fff"/>'),
    "would_terminate": ("#444", '<path d="M0 0L8 8" stroke="#fff" stroke-width="2"/>'),
}
_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#111}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.2em .6em;"
    "text-align:left;vertical-align:top}td.n{text-align:right}svg{max-width:100%;height:auto}"
    ".reason{max-width:40em;overflow-wrap:anywhere}"
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def clean(text: object, limit: int = 500) -> str:
    """``text`` safe to place in the page: printable characters only, cut, escaped."""
    line = "".join(c if c.isprintable() else " " for c in str(text)[:limit])
    return html.escape(line, quote=True)


def render_page(summary: Summary, entries: Sequence[Entry], title: str) -> str:
    """The whole page; ``entries``: the sessions to list (the latest failed, say)."""
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>",
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            f"<title>{clean(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{clean(title)}</h1>",
            *_overview(summary),
            *_counts(summary),
            "<h2>Timeline</h2>",
            *timeline_svg(summary.timeline or Counter()),
            *_entries(entries),
            "</body></html>\n",
        ]
    )


def _overview(summary: Summary) -> Iterator[str]:
    yield "<p>" + ", ".join(
        [
            f"{len(summary.logs)} result log(s): " + "; ".join(clean(p) for p in summary.logs),
            f"{len(summary.runs)} run(s) ({summary.finished_runs} finished)",
            f"{len(summary.latest)} distinct session(s)",
            f"{summary.unreadable_lines} unreadable line(s)",
        ]
    )
    yield "</p>"


def _counts(summary: Summary) -> Iterator[str]:
    latest = summary.latest_counts()
    yield "<h2>Counts by outcome</h2><table id=counts><thead><tr><th>outcome</th>"
    yield "<th>records (sum of the runs)</th><th>latest per session</th></tr></thead><tbody>"
    for name in (*OUTCOMES, *COUNTED_ONLY):
        shown = str(latest[name]) if name in OUTCOMES else "-"
        yield (
            f"<tr data-outcome={name}><th>{name}</th><td class=n data-records>"
            f"{summary.counts[name]}</td><td class=n data-latest>{shown}</td></tr>"
        )
    yield "</tbody></table>"


def _entries(entries: Sequence[Entry]) -> Iterator[str]:
    shown = entries[:MAX_LISTED]
    yield f"<h2>Sessions listed: {len(entries)}</h2>"
    if len(entries) > len(shown):
        yield (
            f"<p>The first {len(shown)} are shown; every one: "
            "<code>report RESULTS --outcome failed --format csv</code>.</p>"
        )
    if not shown:
        return
    yield "<table id=sessions><thead><tr><th>outcome</th><th>session</th><th>reason</th>"
    yield "<th>attempts</th><th>time</th><th>run</th></tr></thead><tbody>"
    for e in shown:
        who = e.session_id or f"{e.source or '?'} {e.input or ''}"
        yield (
            f"<tr><td>{clean(e.outcome, 40)}</td><td>{clean(who, 200)}</td>"
            f"<td class=reason>{clean(e.reason or '')}</td><td class=n>{e.attempts}</td>"
            f"<td>{clean(e.time, 40)}</td><td>{clean(e.run_id, 40)}</td></tr>"
        )
    yield "</tbody></table>"


def _seconds(stamps: Iterable[tuple[str, str]]) -> Iterator[tuple[int, str, str]]:
    """(Unix second, outcome, stamp) of each readable ``YYYY-MM-DDTHH:MM:SS`` stamp (UTC)."""
    for stamp, outcome in stamps:
        try:
            yield calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")), outcome, stamp
        except ValueError:
            continue


def buckets(timeline: Counter[tuple[str, str]]) -> tuple[int, int, list[Counter[str]]]:
    """(first second, bucket width in seconds, counts by outcome per bucket)."""
    dated = [(s, o, timeline[stamp, o]) for s, o, stamp in _seconds(timeline)]
    if not dated:
        return 0, 1, []
    first = min(s for s, _, _ in dated)
    span = max(s for s, _, _ in dated) - first + 1
    need = span / MAX_BUCKETS
    width = next((w for w in _WIDTHS if w >= need), math.ceil(need / 86400) * 86400)
    bars: list[Counter[str]] = [Counter() for _ in range(math.ceil(span / width))]
    for second, outcome, count in dated:
        bars[(second - first) // width][outcome] += count
    return first, width, bars


def timeline_svg(timeline: Counter[tuple[str, str]]) -> Iterator[str]:
    first, width, bars = buckets(timeline)
    if not bars:
        yield "<p>No dated results.</p>"
        return
    names = [n for n in OUTCOMES if any(bar[n] for bar in bars)]
    top = max(sum(bar.values()) for bar in bars) / width
    yield (
        f'<svg role=img viewBox="0 0 {_W} {_H + _BOTTOM + 30 + 20 * len(names)}" '
        f'aria-label="results per second by outcome, {len(bars)} bars of {width} s">'
    )
    yield "<defs>" + "".join(_pattern(n) for n in names) + "</defs>"
    yield from _axes(first, width, len(bars), top)
    step = (_W - _LEFT) / len(bars)
    for i, bar in enumerate(bars):
        yield from _bar(bar, names, _LEFT + i * step, step, top, width, first + i * width)
    for row, name in enumerate(names):
        y = _H + _BOTTOM + 20 * row
        yield f'<rect x="{_LEFT}" y="{y}" width="24" height="14" fill="url(#p-{name})"/>'
        yield f'<text x="{_LEFT + 32}" y="{y + 12}">{name}</text>'
    yield "</svg>"


def _pattern(name: str) -> str:
    fill, mark = _LOOKS[name]
    return (
        f'<pattern id="p-{name}" width="8" height="8" patternUnits="userSpaceOnUse">'
        f'<rect width="8" height="8" fill="{fill}"/>{mark}</pattern>'
    )


def _axes(first: int, width: int, count: int, top: float) -> Iterator[str]:
    start, end = _utc(first), _utc(first + count * width)
    yield f'<path d="M{_LEFT} 0V{_H}H{_W}" fill="none" stroke="#000"/>'
    yield f'<text x="{_LEFT - 4}" y="12" text-anchor="end">{top:.3g}/s</text>'
    yield f'<text x="{_LEFT - 4}" y="{_H}" text-anchor="end">0</text>'
    yield f'<text x="{_LEFT}" y="{_H + 16}">{start}</text>'
    yield f'<text x="{_W}" y="{_H + 16}" text-anchor="end">{end} ({width} s a bar)</text>'


def _bar(
    bar: Counter[str], names: Sequence[str], x: float, step: float, top: float, width: int, at: int
) -> Iterator[str]:
    y = float(_H)
    for name in names:
        if not bar[name]:
            continue
        height = _H * bar[name] / width / top
        y -= height
        yield (
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(step - 1, 0.5):.2f}" '
            f'height="{height:.2f}" fill="url(#p-{name})"><title>{_utc(at)}: {name} '
            f"{bar[name]} ({bar[name] / width:.3g}/s)</title></rect>"
        )


def _utc(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(second))
