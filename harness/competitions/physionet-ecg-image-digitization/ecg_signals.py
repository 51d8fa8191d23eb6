"""Synthetic 10-s 12-lead ECGs from a vectorcardiogram (VCG) model.

Why a VCG: the heart's electrical activity is modelled as one moving dipole in 3-D (x to
the patient's left, y down, z to the front); every lead is that dipole projected on the
lead's direction. The limb leads then obey Einthoven and Goldberger by construction, and we
enforce them exactly by deriving III, aVR, aVL, aVF from I and II after the noise is added.
The precordial progression comes from the geometry: V1 looks from the right front at a QRS
that points left, down and back (mostly negative), V5/V6 look from the left (positive).

Each beat is a sum of Gaussian bumps in time, each with a 3-D direction: P, a septal q/r,
the main R, a late S, an ST plateau and an asymmetric T (two bumps). Per record the seed draws
heart rate 45-120 bpm (with respiratory variability), electrical axis -30..+100 deg,
posterior tilt, QRS width 70-140 ms, PR, QT (Bazett-scaled), ST level and T polarity; 15 % of
records are atrial fibrillation (irregular RR, no P, fibrillatory waves) and 20 % have ectopic
(ventricular) beats: wide, differently oriented, early, with a compensatory pause. Noise per
lead: baseline wander (respiration), powerline (50 or 60 Hz) and muscle noise (band-limited).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS_CHOICES = [250, 256, 500, 512, 1000, 1025]
SECONDS = 10.0

# lead directions (x left, y down, z front); precordials mostly in the horizontal plane
_LIMB = {"I": (1.0, 0.0, 0.0), "II": (0.5, np.sqrt(3) / 2, 0.0)}
_PRECORDIAL_DEG = {"V1": 120.0, "V2": 95.0, "V3": 72.0, "V4": 55.0, "V5": 28.0, "V6": 5.0}


@dataclass
class Record:
    """One synthetic ECG: `signals` (10*fs, 12) in mV, columns in LEADS order, and what drew it."""

    fs: int
    signals: np.ndarray
    params: dict[str, object] = field(default_factory=dict)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """A unit vector in the frontal angle `azimuth` (0 = left, 90 = down) tilted `elevation` to the back."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), -np.sin(e)])


def lead_matrix() -> np.ndarray:
    """(3, 8) projection of the dipole onto I, II, V1..V6."""
    cols = [np.array(_LIMB["I"]), np.array(_LIMB["II"])]
    for name in ["V1", "V2", "V3", "V4", "V5", "V6"]:
        th = np.radians(_PRECORDIAL_DEG[name])
        cols.append(_unit(np.array([np.cos(th), 0.25, np.sin(th)])))
    return np.stack(cols, axis=1)


def derive_limb(i: np.ndarray, ii: np.ndarray) -> dict[str, np.ndarray]:
    """III, aVR, aVL, aVF from I and II (Einthoven and Goldberger)."""
    return {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}


def _beat_times(rng: np.random.Generator, hr: float, af: bool, ectopic: bool) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s, from -1.5 to 11.5 so edges are full) and whether each beat is ectopic."""
    rr0 = 60.0 / hr
    times, kinds = [], []
    t = -1.5 + rng.uniform(0, rr0)
    k = 0
    while t < SECONDS + 1.5:
        times.append(t)
        is_pvc = ectopic and k > 0 and kinds[-1] == 0 and rng.random() < 0.18
        kinds.append(1 if is_pvc else 0)
        if af:
            rr = rr0 * rng.uniform(0.65, 1.35)
        else:
            rr = rr0 * (1 + 0.04 * np.sin(2 * np.pi * 0.25 * t) + 0.015 * rng.standard_normal())
        if is_pvc:
            rr = rr0 * 1.45  # compensatory pause after an early beat
        nxt_pvc = ectopic and rng.random() < 0.12
        if nxt_pvc and kinds[-1] == 0:
            rr = rr0 * 0.62
            times.append(t + rr)
            kinds.append(1)
            rr = rr0 * 1.38
        t = times[-1] + rr
        k += 1
    return np.array(times), np.array(kinds)


def synthesize(seed: int, fs: int | None = None) -> Record:
    """One 12-lead record of 10 s from `seed` (and its sampling rate, drawn from FS_CHOICES
    when None). Values in mV, rounded to 1e-4 mV before the limb leads are derived."""
    rng = np.random.default_rng(seed)
    fs = int(fs if fs is not None else rng.choice(FS_CHOICES))
    n = int(round(SECONDS * fs))
    t = np.arange(n) / fs
    hr = float(rng.uniform(45, 120))
    af = bool(rng.random() < 0.15)
    ectopic = bool(not af and rng.random() < 0.2)
    axis = float(rng.uniform(-30, 100))
    tilt = float(rng.uniform(15, 45))
    qrs = float(rng.uniform(0.07, 0.14))
    pr = float(rng.uniform(0.12, 0.21))
    rr = 60.0 / hr
    qt = float(rng.uniform(0.36, 0.44)) * np.sqrt(rr)
    r_amp = float(rng.uniform(0.8, 2.2))
    st = float(rng.normal(0, 0.06))
    t_amp = float(rng.uniform(0.15, 0.5)) * (1 if rng.random() > 0.1 else -1)
    beats, kinds = _beat_times(rng, hr, af, ectopic)

    r_dir = _direction(axis, tilt)
    waves_normal = [  # (offset s, width s, amplitude mV, direction)
        (-pr, 0.025, float(rng.uniform(0.08, 0.22)) * (0 if af else 1), _direction(float(rng.uniform(40, 70)), -10)),
        (-0.32 * qrs, 0.09 * qrs, 0.25, _unit(np.array([-0.6, 0.1, 0.8]))),  # septal: q laterally, r in V1
        (0.0, 0.12 * qrs, r_amp, r_dir),
        (0.30 * qrs, 0.10 * qrs, float(rng.uniform(0.3, 0.9)), _unit(np.array([-0.35, -0.2, -0.9]))),
        (0.5 * qt, 0.06, st, r_dir),
        (0.78 * qt, 0.055, t_amp, _unit(r_dir + np.array([0.0, 0.2, 0.5]))),
        (0.88 * qt, 0.035, 0.6 * t_amp, _unit(r_dir + np.array([0.0, 0.2, 0.5]))),
    ]
    pvc_dir = _direction(float(rng.uniform(-120, 180)), float(rng.uniform(-40, 40)))
    waves_pvc = [
        (0.0, 0.035, float(rng.uniform(1.2, 2.5)), pvc_dir),
        (0.06, 0.03, 0.6, -pvc_dir),
        (0.36 * np.sqrt(rr), 0.07, 0.5, -pvc_dir),
    ]
    dipole = np.zeros((n, 3))
    for waves, kind in ((waves_normal, 0), (waves_pvc, 1)):
        bt = beats[kinds == kind]
        if not len(bt):
            continue
        for off, width, amp, direction in waves:
            if amp == 0:
                continue
            # each wave's bumps: one window per beat, summed (vectorised over beats and time)
            bump = np.exp(-0.5 * ((t[None, :] - (bt[:, None] + off)) / width) ** 2).sum(axis=0)
            dipole += amp * bump[:, None] * direction[None, :]
    if af:  # fibrillatory waves, mostly visible in the inferior leads and V1
        f = float(rng.uniform(4, 8))
        fib = 0.05 * np.sin(2 * np.pi * f * t + 1.5 * np.sin(2 * np.pi * 0.3 * t))
        dipole += fib[:, None] * _unit(np.array([0.2, 0.7, 0.6]))[None, :]
    base = dipole @ lead_matrix()  # (n, 8): I, II, V1..V6

    def noise() -> np.ndarray:
        wander = float(rng.uniform(0.02, 0.15)) * np.sin(2 * np.pi * float(rng.uniform(0.12, 0.4)) * t + rng.uniform(0, 6.3))
        wander += float(rng.uniform(0, 0.05)) * np.sin(2 * np.pi * float(rng.uniform(0.02, 0.1)) * t + rng.uniform(0, 6.3))
        mains = float(rng.uniform(0, 0.012)) * np.sin(2 * np.pi * line_hz * t + rng.uniform(0, 6.3))
        white = rng.standard_normal(n)
        k = max(1, int(fs / 80))  # muscle noise band-limited to about 40 Hz
        muscle = np.convolve(white, np.ones(k) / np.sqrt(k), mode="same") * float(rng.uniform(0.002, 0.012))
        return wander + mains + muscle

    line_hz = 50.0 if rng.random() < 0.5 else 60.0
    noisy = base + np.stack([noise() for _ in range(base.shape[1])], axis=1)
    noisy = np.round(noisy, 4)
    i, ii = noisy[:, 0], noisy[:, 1]
    limb = derive_limb(i, ii)
    cols = {"I": i, "II": ii, **limb, **{f"V{k}": noisy[:, 1 + k] for k in range(1, 7)}}
    signals = np.stack([cols[name] for name in LEADS], axis=1)
    params: dict[str, object] = dict(fs=fs, heart_rate_bpm=round(hr, 2), atrial_fibrillation=af, ectopic_beats=ectopic,
                                     n_ectopic=int(kinds[(beats >= 0) & (beats < SECONDS)].sum()), axis_deg=round(axis, 1),
                                     posterior_tilt_deg=round(tilt, 1), qrs_s=round(qrs, 3), pr_s=round(pr, 3),
                                     qt_s=round(float(qt), 3), r_amp_mv=round(r_amp, 3), st_mv=round(st, 3),
                                     t_amp_mv=round(t_amp, 3), powerline_hz=line_hz)
    return Record(fs=fs, signals=signals, params=params)
