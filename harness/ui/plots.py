"""Server-side SVG plots. Every colour and size is a presentation attribute (no CSS), so the
same SVG renders alike in the page, as a downloaded .svg, and drawn onto a canvas for PNG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence
from xml.sax.saxutils import escape, quoteattr

MEDAL_COLOURS = {"gold": "#d4a017", "silver": "#8c8c8c", "bronze": "#b0703c", "": "#2f6fb0"}
THRESHOLD_COLOURS = {"gold": "#d4a017", "silver": "#8c8c8c", "bronze": "#b0703c", "median": "#444444"}
INVALID_COLOUR = "#c0392b"


@dataclass(frozen=True)
class AttemptMark:
    """One attempt on the plot: its score (None when it has no valid score) and medal name."""

    attempt_id: str
    seed: int
    score: Optional[float]
    medal: str
    href: str
    status: str = "succeeded"


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks: list[float] = []
    t = start
    while t <= hi + step * 1e-9 and len(ticks) < 20:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _num(x: float) -> str:
    return f"{x:.4g}"


def leaderboard_plot(title: str, leaderboard: Sequence[float], thresholds: dict[str, Optional[float]],
                     marks: Sequence[AttemptMark], lower_is_better: Optional[bool],
                     width: int = 680, height: int = 250) -> str:
    """An SVG: the leaderboard's score distribution as a histogram, the median and medal
    thresholds as vertical lines, one mark per attempt (invalid attempts in a strip at the left).

    `thresholds` maps gold/silver/bronze/median to a score (or None). Scores are in the
    competition's own units; the x axis runs from low to high whatever the metric's direction."""
    left, right, top, bottom = 58, 16, 34, 58
    inv_w = 46 if any(m.score is None for m in marks) else 0
    x0, x1 = left + inv_w, width - right
    hist_top, hist_base = top + 14, height - bottom - 34
    strip_y = height - bottom - 16
    values = [float(v) for v in leaderboard if v is not None and math.isfinite(float(v))]
    values += [float(m.score) for m in marks if m.score is not None and math.isfinite(m.score)]
    values += [float(v) for v in thresholds.values() if v is not None and math.isfinite(float(v))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def sx(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="lb-plot" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
           f'aria-label={quoteattr(title)}>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>']
    direction = "lower is better ←" if lower_is_better else "→ higher is better" if lower_is_better is not None else ""
    out.append(f'<text x="{width - right}" y="16" text-anchor="end" fill="#555">{escape(direction)}</text>')
    # leaderboard histogram
    lb = [float(v) for v in leaderboard if v is not None and math.isfinite(float(v))]
    if lb:
        bins = 30
        counts = [0] * bins
        for v in lb:
            i = min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))
            counts[i] += 1
        peak = max(counts)
        bw = (x1 - x0) / bins
        for i, c in enumerate(counts):
            if not c:
                continue
            h = (hist_base - hist_top) * c / peak
            out.append(f'<rect class="lb-bar" x="{x0 + i * bw:.1f}" y="{hist_base - h:.1f}" width="{max(bw - 1, 1):.1f}" '
                       f'height="{h:.1f}" fill="#c9d6e3"><title>{c} leaderboard team(s)</title></rect>')
        out.append(f'<text x="{x0}" y="{hist_top - 4}" fill="#555">leaderboard: {len(lb)} teams</text>')
    else:
        out.append(f'<text x="{x0}" y="{hist_top + 20}" fill="#888">no leaderboard for this competition</text>')
    # axis
    out.append(f'<line x1="{x0}" y1="{hist_base}" x2="{x1}" y2="{hist_base}" stroke="#888"/>')
    axis_y = height - bottom
    out.append(f'<line x1="{x0}" y1="{axis_y}" x2="{x1}" y2="{axis_y}" stroke="#444"/>')
    for t in _nice_ticks(lo, hi):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#444"/>'
                   f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#333">{_num(t)}</text>')
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{axis_y + 32}" text-anchor="middle" fill="#333">score</text>')
    # thresholds: lines, named in one legend row (labels beside close lines would overlap)
    legend = []
    for name in ("median", "bronze", "silver", "gold"):
        tv = thresholds.get(name)
        if tv is None or not math.isfinite(float(tv)):
            continue
        v = float(tv)
        x = sx(v)
        colour = THRESHOLD_COLOURS[name]
        dash = ' stroke-dasharray="4 3"' if name == "median" else ""
        out.append(f'<line class="threshold threshold-{name}" data-score="{v!r}" x1="{x:.1f}" y1="{hist_top}" '
                   f'x2="{x:.1f}" y2="{axis_y}" stroke="{colour}" stroke-width="2"{dash}>'
                   f'<title>{name}: {_num(v)}</title></line>')
        legend.append(f'<tspan fill="{colour}" font-weight="bold">{name}</tspan><tspan fill="#333"> {_num(v)}   </tspan>')
    if legend:
        out.append(f'<text x="{width - right}" y="{hist_top - 4}" text-anchor="end" xml:space="preserve">{"".join(legend)}</text>')
    # attempts
    if inv_w:
        out.append(f'<text x="{left}" y="{strip_y - 12}" fill="{INVALID_COLOUR}">invalid</text>')
    invalid_i = 0
    for i, m in enumerate(sorted(marks, key=lambda m: (m.seed, m.attempt_id))):
        jitter = (i % 3 - 1) * 6
        tip = f"{m.attempt_id}: " + (f"score {_num(m.score)}" if m.score is not None else f"no valid score ({m.status})")
        tip += f", {m.medal}" if m.medal else ""
        if m.score is None:
            x = left + 6 + (invalid_i % 4) * 9
            y = strip_y + (invalid_i // 4 % 3 - 1) * 7
            invalid_i += 1
            out.append(f'<a href={quoteattr(m.href)}><path class="attempt-mark attempt-invalid" data-attempt={quoteattr(m.attempt_id)} '
                       f'd="M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y + 4:.1f} M{x - 4:.1f},{y + 4:.1f} L{x + 4:.1f},{y - 4:.1f}" '
                       f'stroke="{INVALID_COLOUR}" stroke-width="2"><title>{escape(tip)}</title></path></a>')
            continue
        colour = MEDAL_COLOURS.get(m.medal, MEDAL_COLOURS[""])
        out.append(f'<a href={quoteattr(m.href)}><circle class="attempt-mark" data-attempt={quoteattr(m.attempt_id)} '
                   f'data-score="{m.score!r}" cx="{sx(m.score):.1f}" cy="{strip_y + jitter:.1f}" r="5" fill="{colour}" '
                   f'fill-opacity="0.85" stroke="#1d1d1d" stroke-width="1"><title>{escape(tip)}</title></circle></a>')
    out.append(f'<text x="{left - 6}" y="{strip_y + 4}" text-anchor="end" fill="#333">attempts</text>')
    out.append("</svg>")
    return "".join(out)
