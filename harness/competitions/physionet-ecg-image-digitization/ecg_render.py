"""Render a 12-lead record as a printed ECG page with ECG-Image-Kit's paper geometry.

Page 11 x 8.5 in at 200 dpi (2200 x 1700 px); 25 mm/s and 10 mm/mV; minor grid 1 mm,
major grid 5 mm (0.2 s, 0.5 mV). Rows I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6 of 2.5 s
each and a 10-s lead II rhythm strip; each row starts with a 0.2 s x 1 mV calibration pulse;
traces start 0.6 s after the row start, column c at 0.6 + 2.5 c s. Lead labels above each
segment, short separators between columns. Everything is drawn with numpy (anti-aliased by
pixel coverage), so a render is the same bytes on every machine.
"""

from __future__ import annotations

import functools

import numpy as np

DPI = 200
PX_PER_MM = DPI / 25.4
WIDTH, HEIGHT = 2200, 1700
MM_PER_S, MM_PER_MV = 25.0, 10.0
X0_MM = 7.0  # where each row starts (the calibration pulse's left end)
ROW_BASELINES_MM = (50.0, 95.0, 140.0, 185.0)  # top margin larger than the bottom one: orientation is visible
TRACE_START_S, COLUMN_S, PULSE_S = 0.6, 2.5, 0.2
LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
RHYTHM_LEAD = "II"
COLUMN_OF = {lead: c for row in LAYOUT for c, lead in enumerate(row)}

# (paper, minor line, major line) RGB per grid colour scheme
GRID_COLOURS = {
    "red": ((255, 252, 250), (246, 190, 190), (225, 95, 95)),
    "pink": ((255, 250, 252), (248, 205, 222), (232, 130, 170)),
    "blue": ((250, 252, 255), (190, 210, 245), (95, 130, 215)),
    "green": ((250, 255, 250), (190, 230, 195), (90, 170, 110)),
    "brown": ((252, 249, 243), (225, 205, 180), (170, 120, 75)),
    "bw": ((255, 255, 255), (215, 215, 215), (150, 150, 150)),
}

# 5 x 7 glyphs for the labels and the footer (rows top to bottom, '#' is ink)
_FONT = {
    "I": ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"],
    "V": ["#...#", "#...#", "#...#", "#...#", ".#.#.", ".#.#.", "..#.."],
    "a": [".....", ".....", ".###.", "....#", ".####", "#...#", ".####"],
    "R": ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
    "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
    "F": ["#####", "#....", "#....", "####.", "#....", "#....", "#...."],
    "m": [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"],
    "s": [".....", ".....", ".####", "#....", ".###.", "....#", "####."],
    "/": ["....#", "...#.", "...#.", "..#..", ".#...", ".#...", "#...."],
    " ": ["....."] * 7,
    "0": [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
    "1": ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
    "2": [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
    "3": ["####.", "....#", "....#", ".###.", "....#", "....#", "####."],
    "4": ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
    "5": ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
    "6": [".###.", "#....", "#....", "####.", "#...#", "#...#", ".###."],
    "V_": ["....."] * 7,
}


def mm(v: float) -> float:
    """Millimetres to pixels at 200 dpi."""
    return v * PX_PER_MM


def time_to_x(row_time_s: np.ndarray | float) -> np.ndarray:
    """Pixel x of a paper time (seconds since the row start)."""
    return np.asarray(mm(X0_MM + MM_PER_S * np.asarray(row_time_s, dtype=np.float64)))


def segments(signals: np.ndarray, fs: int, leads: list[str]) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """(lead, row, x px, y px) of each drawn piece: 12 windows of 2.5 s and the rhythm strip."""
    n_short = int(COLUMN_S * fs)
    out = []
    for r, row in enumerate(LAYOUT):
        for c, lead in enumerate(row):
            start = int(c * COLUMN_S * fs)
            v = signals[start:start + n_short, leads.index(lead)]
            t = TRACE_START_S + c * COLUMN_S + np.arange(len(v)) / fs
            out.append((lead, r, time_to_x(t), mm(ROW_BASELINES_MM[r]) - mm(MM_PER_MV) * v))
    v = signals[:, leads.index(RHYTHM_LEAD)]
    t = TRACE_START_S + np.arange(len(v)) / fs
    out.append((RHYTHM_LEAD, 3, time_to_x(t), mm(ROW_BASELINES_MM[3]) - mm(MM_PER_MV) * v))
    return out


def draw_polyline(ink: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: float, alpha: float = 1.0) -> None:
    """Add a polyline through (xs, ys) (px, xs increasing) of `width` px to `ink` (H, W) in [0, 1],
    as the pixel coverage of the vertical span the line sweeps in each pixel column."""
    h, w = ink.shape
    c0, c1 = max(int(np.floor(xs[0])), 0), min(int(np.ceil(xs[-1])), w - 1)
    if c1 <= c0:
        return
    sub = np.linspace(c0 - 0.5, c1 + 0.5, (c1 - c0 + 1) * 4 + 1)
    y = np.interp(sub, xs, ys)
    edges = y[::4]
    inner = y[:-1].reshape(c1 - c0 + 1, 4)
    lo = np.minimum(np.minimum(inner.min(axis=1), edges[:-1]), edges[1:]) - width / 2
    hi = np.maximum(np.maximum(inner.max(axis=1), edges[:-1]), edges[1:]) + width / 2
    r0, r1 = max(int(np.floor(lo.min())) - 1, 0), min(int(np.ceil(hi.max())) + 1, h - 1)
    if r1 <= r0:
        return
    rows = np.arange(r0, r1 + 1, dtype=np.float64)[:, None]
    cover = np.clip(np.minimum(rows + 0.5 - lo[None, :], hi[None, :] - (rows - 0.5)), 0.0, 1.0)
    cover = np.minimum(cover, 1.0) * alpha
    band = ink[r0:r1 + 1, c0:c1 + 1]
    np.maximum(band, cover, out=band)


def draw_text(ink: np.ndarray, text: str, x: float, y: float, scale: int = 4) -> None:
    """Write `text` with its top-left corner at (x, y) px, glyphs 5x7 cells of `scale` px."""
    cx = int(round(x))
    for ch in text:
        glyph = np.array([[c == "#" for c in line] for line in _FONT.get(ch, _FONT[" "])], dtype=np.float64)
        big = np.kron(glyph, np.ones((scale, scale)))
        y0 = int(round(y))
        h, w = big.shape
        if 0 <= y0 and y0 + h < ink.shape[0] and 0 <= cx and cx + w < ink.shape[1]:
            np.maximum(ink[y0:y0 + h, cx:cx + w], big, out=ink[y0:y0 + h, cx:cx + w])
        cx += w + scale


@functools.lru_cache(maxsize=4)
def grid_masks(h: int = HEIGHT, w: int = WIDTH, line_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(minor, major) line coverage in [0, 1] over the page: lines every 1 mm and 5 mm from the
    row start x and from the first baseline, so a baseline lies on a major line."""
    def coverage(n: int, origin: float, step_mm: float, width: float) -> np.ndarray:
        pos = (np.arange(n) - origin) / mm(step_mm)
        dist = np.abs(pos - np.round(pos)) * mm(step_mm)
        return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)

    ox, oy = mm(X0_MM), mm(ROW_BASELINES_MM[0])
    minor = np.maximum(coverage(h, oy, 1.0, line_px)[:, None], coverage(w, ox, 1.0, line_px)[None, :])
    major = np.maximum(coverage(h, oy, 5.0, line_px * 1.6)[:, None], coverage(w, ox, 5.0, line_px * 1.6)[None, :])
    return minor.astype(np.float32), major.astype(np.float32)


@functools.lru_cache(maxsize=8)
def grid_page(grid: str) -> np.ndarray:
    """The empty gridded page of a colour scheme, float32 RGB (kept: every render starts from it)."""
    paper, minor_c, major_c = (np.array(c, dtype=np.float32) for c in GRID_COLOURS[grid])
    minor, major = grid_masks()
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    img[...] = paper
    img += minor[..., None] * (minor_c - img)
    img += major[..., None] * (major_c - img)
    img.flags.writeable = False
    return img


def render(signals: np.ndarray, fs: int, leads: list[str], *, grid: str = "red", line_width: float = 1.8,
           ink_alpha: float = 1.0, labels: bool = True) -> np.ndarray:
    """The page as float32 RGB (1700, 2200, 3) in 0..255: grid, pulses, separators, labels, traces."""
    img = grid_page(grid).copy()
    ink = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    for r, base_mm in enumerate(ROW_BASELINES_MM):  # calibration pulse: 0.2 s x 1 mV after 0.2 s of baseline
        b, top = mm(base_mm), mm(base_mm - MM_PER_MV)
        xa, xb, xc, xd = (float(time_to_x(s)) for s in (0.0, 0.2, 0.2 + PULSE_S, TRACE_START_S - 0.05))
        draw_polyline(ink, np.array([xa, xb, xb + 0.01, xc, xc + 0.01, xd]), np.array([b, b, top, top, b, b]), line_width, ink_alpha)
        if r < 3:
            for c in range(1, 4):  # separators between columns
                x = float(time_to_x(TRACE_START_S + c * COLUMN_S))
                draw_polyline(ink, np.array([x - 0.6, x + 0.6]), np.array([b - mm(3), b + mm(3)]), line_width, ink_alpha)
    for _lead, _row, xs, ys in segments(signals, fs, leads):
        draw_polyline(ink, xs, ys, line_width, ink_alpha)
    text = np.zeros_like(ink)
    if labels:
        for r, row in enumerate(LAYOUT + [[RHYTHM_LEAD]]):
            for c, lead in enumerate(row):
                x = float(time_to_x(TRACE_START_S + c * COLUMN_S)) + mm(1.5)
                draw_text(text, lead, x, mm(ROW_BASELINES_MM[r] - 12.0))
    draw_text(text, "25mm/s  10mm/mV", mm(X0_MM), mm(203.0))
    cover = np.maximum(ink, text * np.float32(ink_alpha))
    ink_colour = np.array([20, 20, 25], dtype=np.float32)
    img += cover[..., None] * (ink_colour - img)
    return img
