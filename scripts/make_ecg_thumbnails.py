"""Write one small PNG of each ECG image type (the README's thumbnails) from the competition's
own generator: python scripts/make_ecg_thumbnails.py [--out docs/ecg] [--seed 7]."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "ecg")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--width", type=int, default=360)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "harness" / "competitions" / "physionet-ecg-image-digitization"))
    from PIL import Image

    import ecg_distort
    import ecg_make

    args.out.mkdir(parents=True, exist_ok=True)
    rec = ecg_make.make_record({"seed": args.seed, "types": ecg_distort.TYPES})
    for kind, png in rec["pngs"].items():
        im = Image.open(io.BytesIO(png)).convert("RGB")
        im.thumbnail((args.width, args.width))
        im = im.quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        path = args.out / f"ecg-{kind}.png"
        im.save(path, optimize=True)
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
