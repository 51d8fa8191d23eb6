"""Image types (Kaggle's suffixes) as distortions of a rendered page, in the spirit of
ECG-Image-Kit's augmentations and Rahimi et al.'s synthetic sets. Every parameter is drawn
from the `rng` passed in and returned, so the private folder can record it.

0001 clean render; 0003 colour scan, 0004 black-and-white scan (slight rotation and scale on
the scanner bed, blur, noise, JPEG-like 8x8 DCT quantisation, faded ink); 0005 phone photo of
a print (perspective, rotation by up to 8 deg plus 0/90/180/270, a background around the
page, uneven lighting, vignetting, colour temperature); 0006 photo of a screen (moire, gamma,
glare); 0009 stained print; 0010 creased and damaged print (folds, wrinkles, a torn-off
corner or a hole); 0011 / 0012 mouldy scan (colour / black-and-white). Scans and photos may
also be low resolution (downscaled), and labels may be missing (decided at render time).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

TYPES = ["0001", "0003", "0004", "0005", "0006", "0009", "0010", "0011", "0012"]
GRAYSCALE_TYPES = {"0004", "0012"}
Params = dict[str, Any]


def render_options(kind: str, rng: np.random.Generator) -> Params:
    """Keyword arguments for `ecg_render.render` of an image of type `kind`."""
    grid = "bw" if kind in GRAYSCALE_TYPES else str(rng.choice(["red", "pink", "blue", "green", "brown", "bw"],
                                                            p=[0.35, 0.2, 0.15, 0.1, 0.1, 0.1]))
    faded = kind in ("0003", "0004", "0011", "0012") and rng.random() < 0.4
    return dict(grid=grid, line_width=round(float(rng.uniform(1.4, 2.4)), 2),
                ink_alpha=round(float(rng.uniform(0.45, 0.7)) if faded else 1.0, 2),
                labels=bool(kind == "0001" or rng.random() > 0.2))


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel (float32 planes)."""
    return np.stack([ndimage.gaussian_filter(np.ascontiguousarray(img[..., c], dtype=np.float32), sigma, truncate=3.0)
                     for c in range(img.shape[2])], axis=-1)


def _gray(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _sample(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    """Bilinear samples of img (H, W, C) at float coordinates; `fill` outside the page."""
    h, w = img.shape[:2]
    inside = (ys >= 0) & (ys <= h - 1) & (xs >= 0) & (xs <= w - 1)
    out = np.stack([ndimage.map_coordinates(img[..., c], [ys, xs], order=1, mode="nearest") for c in range(img.shape[2])], axis=-1)
    fill_arr = np.broadcast_to(np.asarray(fill, dtype=np.float32), out.shape)
    return np.where(inside[..., None], out, fill_arr).astype(np.float32)


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with H @ [x, y, 1] ~ dst for the four point pairs (x, y)."""
    a = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.array(a, dtype=np.float64))
    return vt[-1].reshape(3, 3) / vt[-1, -1]


def _warp_onto(img: np.ndarray, corners: np.ndarray, out_h: int, out_w: int, background: np.ndarray) -> np.ndarray:
    """The page `img` mapped so its corners (TL, TR, BR, BL as x, y) land at `corners` on a
    canvas of out_h x out_w over `background` (a colour or an (out_h, out_w, 3) image).
    Bilinear, with Pillow's perspective transform (one C pass per channel)."""
    from PIL import Image

    h, w = img.shape[:2]
    page = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    inv = _homography(corners, page)  # output pixel -> page pixel, as Pillow wants it
    coeffs = tuple(float(c) for c in (inv / inv[2, 2]).ravel()[:8])
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), "F").transform(
        (out_w, out_h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR, fillcolor=-1.0)) for c in range(3)]
    out = np.stack(chans, axis=-1)
    inside = out[..., :1] >= 0
    return np.where(inside, out, np.broadcast_to(np.asarray(background, dtype=np.float32), out.shape)).astype(np.float32)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """A smooth random field in about [-1, 1] with `cells` bumps across the width."""
    from PIL import Image

    small = rng.standard_normal((max(2, cells * h // w + 2), cells + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def _jpeg_like(img: np.ndarray, quality_step: float) -> np.ndarray:
    """8x8 DCT quantisation of each channel (steps growing with frequency), as JPEG does."""
    h, w = img.shape[:2]
    hh, ww = h // 8 * 8, w // 8 * 8
    u = np.arange(8)
    q = (quality_step * (1 + (u[:, None] + u[None, :]) / 2)).astype(np.float32)
    out = img.copy()
    for c in range(img.shape[2]):
        blocks = img[:hh, :ww, c].reshape(hh // 8, 8, ww // 8, 8).transpose(0, 2, 1, 3)
        coef = sfft.dctn(blocks, axes=(2, 3), norm="ortho")
        coef = np.round(coef / q) * q
        out[:hh, :ww, c] = sfft.idctn(coef, axes=(2, 3), norm="ortho").transpose(0, 2, 1, 3).reshape(hh, ww)
    return out


def _scan(img: np.ndarray, rng: np.random.Generator, p: Params, bw: bool) -> np.ndarray:
    h, w = img.shape[:2]
    angle = float(rng.uniform(-2.0, 2.0))
    scale = float(rng.uniform(0.94, 0.99))
    dx, dy = float(rng.uniform(-15, 15)), float(rng.uniform(-15, 15))
    th = np.radians(angle)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    page = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    corners = (page - [cx, cy]) @ rot.T * scale + [cx + dx, cy + dy]
    lid = float(rng.uniform(90, 160))
    out = _warp_onto(img, corners, h, w, np.array([lid, lid, lid * 1.02], dtype=np.float32))
    blur = float(rng.uniform(0.4, 1.1))
    noise = float(rng.uniform(0.8, 2.0))
    out += noise * rng.standard_normal(out.shape[:2], dtype=np.float32)[..., None]
    out = _blur(out, blur)
    out = out * float(rng.uniform(0.93, 1.0)) + float(rng.uniform(0, 8))
    q = float(rng.uniform(4, 12))
    out = _jpeg_like(out, q)
    p.update(scan_angle_deg=round(angle, 3), scan_scale=round(scale, 4), scan_shift_px=[round(dx, 1), round(dy, 1)],
             lid_gray=round(lid, 1), blur_sigma_px=round(blur, 2), noise_sigma=round(noise, 2), jpeg_step=round(q, 2),
             page_corners_px=np.round(corners, 2).tolist())
    return out


def _photo_corners(rng: np.random.Generator, w: int, h: int, fill: tuple[float, float]) -> np.ndarray:
    """Page corners on a canvas of w x h: the page covers `fill` of it, with perspective and a tilt."""
    s = float(rng.uniform(*fill))
    cw, ch = w * s, h * s
    cx, cy = w / 2 + rng.uniform(-0.04, 0.04) * w, h / 2 + rng.uniform(-0.04, 0.04) * h
    base = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    th = np.radians(rng.uniform(-8, 8))
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    jitter = rng.uniform(-0.035, 0.035, (4, 2)) * [cw, ch]
    return (base + jitter) @ rot.T + [cx, cy]


def _lighting(out: np.ndarray, rng: np.random.Generator, p: Params) -> np.ndarray:
    h, w = out.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    grad = 1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vig = float(rng.uniform(0.1, 0.35))
    light = grad * (1 - vig * r2 / 2)
    temp = rng.uniform(-0.08, 0.08)
    gains = np.array([1 + temp, 1.0, 1 - temp], dtype=np.float32)
    p.update(light_gradient=[round(float(gx), 3), round(float(gy), 3)], vignetting=round(vig, 3),
             colour_temperature=round(float(temp), 3))
    return out * light[..., None] * gains


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(40, 150, 3).astype(np.float32)
    tex = _smooth_field(rng, h, w, 30)[..., None] * 12 + _smooth_field(rng, h, w, 6)[..., None] * 20
    return base + tex


def _photo(img: np.ndarray, rng: np.random.Generator, p: Params) -> np.ndarray:
    h, w = img.shape[:2]
    corners = _photo_corners(rng, w, h, (0.78, 0.92))
    bg = _background(rng, h, w)
    out = _warp_onto(img, corners, h, w, bg)
    out = _lighting(out, rng, p)
    blur = float(rng.uniform(0.5, 1.0))
    out = _blur(out + float(rng.uniform(1, 3)) * rng.standard_normal((h, w, 1), dtype=np.float32), blur)
    quarter = int(rng.choice([0, 0, 1, 2, 3]))
    p.update(page_corners_px=np.round(corners, 2).tolist(), blur_sigma_px=round(blur, 2), quarter_turns=quarter)
    return np.rot90(out, quarter).copy()


def _screen(img: np.ndarray, rng: np.random.Generator, p: Params) -> np.ndarray:
    h, w = img.shape[:2]
    corners = _photo_corners(rng, w, h, (0.8, 0.92))
    bezel = np.full(3, float(rng.uniform(10, 40)), dtype=np.float32)
    gamma = float(rng.uniform(0.7, 1.5))
    page = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma
    out = _warp_onto(page.astype(np.float32), corners, h, w, bezel)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(3.0, 7.0))
    ang = np.radians(rng.uniform(-20, 20))
    depth = float(rng.uniform(0.04, 0.1))
    moire = 1 + depth * np.cos(2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy) / period) * (0.6 + 0.4 * np.cos(2 * np.pi * xx / w * 3))
    gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    gs = float(rng.uniform(0.1, 0.25)) * w
    glare = float(rng.uniform(40, 110)) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * gs ** 2))
    out = out * moire[..., None] + glare[..., None]
    out = _lighting(out, rng, p)
    out = _blur(out + 2.0 * rng.standard_normal((h, w, 1), dtype=np.float32), 0.7)
    p.update(page_corners_px=np.round(corners, 2).tolist(), gamma=round(gamma, 3), moire_period_px=round(period, 2),
             moire_depth=round(depth, 3), glare_centre_px=[round(float(gx), 1), round(float(gy), 1)], glare_sigma_px=round(gs, 1))
    return out


def _stains(img: np.ndarray, rng: np.random.Generator, p: Params) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = img.copy()
    stains = []
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        r = float(rng.uniform(80, 260))
        wobble = 1 + 0.15 * _smooth_field(rng, h, w, 8)
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (r * wobble)
        body = np.clip(1 - d, 0, 1) ** 0.5 * 0.35 + np.exp(-((d - 1) / 0.04) ** 2) * 0.45
        colour = np.array(rng.choice([[150, 100, 50], [120, 80, 40], [170, 140, 60]]), dtype=np.float32)
        out += body[..., None] * (colour - out) * float(rng.uniform(0.5, 0.9))
        stains.append([round(cx, 1), round(cy, 1), round(r, 1)])
    p.update(stains_xyr_px=stains)
    return out


def _creased(img: np.ndarray, rng: np.random.Generator, p: Params) -> np.ndarray:
    h, w = img.shape[:2]
    amp = float(rng.uniform(0.5, 1.5))
    relief = amp * _smooth_field(rng, h, w, 7)  # wrinkles: shading from a smooth relief
    shade = 1 + 0.06 * np.gradient(relief, axis=0) * 8 + 0.06 * np.gradient(relief, axis=1) * 8
    out = img.copy()
    folds = []
    for _ in range(int(rng.integers(1, 3))):
        vertical = bool(rng.random() < 0.6)
        size = w if vertical else h
        pos = int(rng.uniform(0.25, 0.75) * size)
        shift = int(rng.integers(-3, 4))  # the paper on one side of the fold moved by a few pixels
        if shift:
            if vertical:
                out[:, pos:] = np.roll(out[:, pos:], shift, axis=0)
            else:
                out[pos:, :] = np.roll(out[pos:, :], shift, axis=1)
        dist = (np.arange(size, dtype=np.float32) - pos)
        line = (1 - 0.3 * np.exp(-(dist / 3.0) ** 2)) * (1 + 0.05 * np.tanh(dist / 40.0))
        shade = shade * (line[None, :] if vertical else line[:, None])
        folds.append(["vertical" if vertical else "horizontal", pos, shift])
    out = out * shade[..., None]
    yy, xx = np.ogrid[0:h, 0:w]
    damage = str(rng.choice(["corner", "hole", "edge"]))
    if damage == "corner":
        cut = float(rng.uniform(120, 300))
        corner = int(rng.integers(0, 4))
        ux = xx if corner in (0, 3) else (w - 1 - xx)
        uy = yy if corner in (0, 1) else (h - 1 - yy)
        gone = ux + uy < cut * (1 + 0.1 * _smooth_field(rng, h, w, 20))
        extra: list[float] = [corner, round(cut, 1)]
    elif damage == "hole":
        cx, cy, r = float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h), float(rng.uniform(25, 70))
        gone = np.hypot(xx - cx, yy - cy) < r * (1 + 0.2 * _smooth_field(rng, h, w, 30))
        extra = [round(cx, 1), round(cy, 1), round(r, 1)]
    else:
        depth = float(rng.uniform(20, 60))
        gone = yy > h - depth * (1 + 0.6 * _smooth_field(rng, h, w, 25))
        extra = [round(depth, 1)]
    out = np.where(gone[..., None], np.float32(235.0), out)
    p.update(wrinkle_amplitude=round(amp, 2), folds=folds, damage=[damage, *extra])
    return out


def _mould(img: np.ndarray, rng: np.random.Generator, p: Params, bw: bool) -> np.ndarray:
    h, w = img.shape[:2]
    out = _scan(img, rng, p, bw)
    field = _smooth_field(rng, h, w, 14) + 0.5 * _smooth_field(rng, h, w, 60)
    level = float(rng.uniform(1.1, 1.6))
    spots = np.clip((field - level) * 2.5, 0, 1) * (0.6 + 0.4 * _smooth_field(rng, h, w, 200).clip(-1, 1))
    colour = np.array([90, 110, 60] if not bw else [80, 80, 80], dtype=np.float32)
    out += np.clip(spots, 0, 1)[..., None] * (colour - out)
    p.update(mould_level=round(level, 3), mould_cover=round(float((spots > 0.1).mean()), 4))
    return out


DISTORT: dict[str, Callable[[np.ndarray, np.random.Generator, Params], np.ndarray]] = {
    "0001": lambda img, rng, p: img,
    "0003": lambda img, rng, p: _scan(img, rng, p, False),
    "0004": lambda img, rng, p: _scan(img, rng, p, True),
    "0005": _photo,
    "0006": _screen,
    "0009": _stains,
    "0010": _creased,
    "0011": lambda img, rng, p: _mould(img, rng, p, False),
    "0012": lambda img, rng, p: _mould(img, rng, p, True),
}


def distort(img: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """The image of type `kind` from a clean page: uint8 (H, W, 3), or (H, W) for the
    black-and-white types, and the parameters drawn."""
    from PIL import Image

    p: Params = {"type": kind}
    out = np.clip(np.round(DISTORT[kind](img, rng, p)), 0, 255).astype(np.uint8)
    if kind in GRAYSCALE_TYPES:
        out = np.clip(np.round(_gray(out.astype(np.float32))), 0, 255).astype(np.uint8)
    if kind in ("0003", "0004", "0005", "0006", "0011", "0012") and rng.random() < 0.2:
        factor = float(rng.uniform(0.5, 0.75))  # low resolution
        size = (int(round(out.shape[1] * factor)), int(round(out.shape[0] * factor)))
        out = np.asarray(Image.fromarray(out).resize(size, Image.Resampling.BILINEAR))
        p["low_resolution_factor"] = round(factor, 3)
    return out, p
