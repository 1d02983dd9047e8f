#!/usr/bin/env python
"""How many noise peaks reach SNR 5 in the detection benchmark's held-out images.

Purity above SNR 5 cannot exceed what the images allow: a noise peak of 5 sigma looks like a
5-sigma point source to any finder. For each telescope and weighting this counts the local maxima
of the test images (3 x 3 neighbourhood) whose value is >= 5 times the evaluation noise and which
lie more than 1.5 beams from every truth source, and sets beside it:

- the count a Gaussian random field predicts (expected Euler characteristic of the excursion
  above u = 5, lambda2 / (2 pi)^1.5 * u * exp(-u^2 / 2) per pixel, with lambda2 = 1 / s^2 for a
  Gaussian correlation of the restoring beam's width s = FWHM / 2.355; the noise-only area only);
- the true sources with SNR >= 5, and the purity above SNR 5 of a finder that returned every one
  of them and every such noise peak (the P(>=5) of "take every peak").

Reads the fields benchmarks/detection.py simulated (run it first); simulates nothing.

    python benchmarks/noise_peaks.py                       # meerkat and askap, 24 test fields

Writes benchmarks/results/noise-peaks.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from detection import FIRST_TEST_SEED, field_truth  # noqa: E402

SNR = 5.0
EXCLUDE_BEAMS = 1.5  # peaks (and area) this close to a truth source are not counted as noise


def field_peaks(folder: Path, weighting: str) -> dict:
    """Noise peaks >= SNR in one field, the Gaussian-field expectation, true sources >= SNR."""
    image, ra, dec, snr, noise = field_truth(folder, weighting)
    data = np.asarray(image.data, dtype=np.float64).squeeze() / noise
    tx, ty = image.world_to_pixel(ra, dec)
    placed = np.isfinite(tx) & np.isfinite(ty)
    tx, ty = tx[placed], ty[placed]
    beam = image.beam_pixels
    # Distance of every pixel to the nearest truth source: peaks and area near one are excluded.
    seeds = np.ones(data.shape, bool)
    iy = np.clip(np.round(ty).astype(int), 0, data.shape[0] - 1)
    ix = np.clip(np.round(tx).astype(int), 0, data.shape[1] - 1)
    seeds[iy, ix] = False
    far = ndimage.distance_transform_edt(seeds) > EXCLUDE_BEAMS * beam
    finite = np.isfinite(data)
    filled = np.where(finite, data, -np.inf)
    peaks = (filled == ndimage.maximum_filter(filled, size=3)) & (filled >= SNR) & far
    area = int((far & finite).sum())
    lam2 = (2.0 * math.sqrt(2.0 * math.log(2.0)) / beam) ** 2
    expect = area * lam2 / (2.0 * math.pi) ** 1.5 * SNR * math.exp(-SNR ** 2 / 2.0)
    return {"noise_peaks": int(peaks.sum()), "expected": expect, "area_px": area,
            "true_ge5": int(np.sum(np.nan_to_num(snr, nan=-1.0) >= SNR)),
            "beam_px": float(beam)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescopes", default="meerkat,askap")
    ap.add_argument("--fields", type=int, default=24, help="test fields per telescope")
    ap.add_argument("--work", default=str(HERE / "work"), help="benchmarks/detection.py's work")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    rows = []
    for tel in [t.strip() for t in args.telescopes.split(",") if t.strip()]:
        folders = [Path(args.work) / tel / f"{tel}-{FIRST_TEST_SEED + i}"
                   for i in range(args.fields)]
        missing = [str(f) for f in folders if not (f / "truth.fits").exists()]
        if missing:
            sys.exit(f"error: {len(missing)} test fields are missing (first: {missing[0]}); run "
                     f"benchmarks/detection.py --telescope {tel} --fields {args.fields} first")
        for w in ("natural", "uniform"):
            per = [field_peaks(f, w) for f in folders]
            n_peaks = sum(p["noise_peaks"] for p in per)
            n_true = sum(p["true_ge5"] for p in per)
            rows.append({"telescope": tel, "weighting": w, "fields": len(per),
                         "beam_px": round(float(np.mean([p["beam_px"] for p in per])), 2),
                         "noise_peaks_ge5": n_peaks,
                         "expected_gaussian": round(sum(p["expected"] for p in per), 2),
                         "true_ge5": n_true,
                         "every_peak_p_ge5": n_true / (n_true + n_peaks) if n_true else None})
            r = rows[-1]
            print(f"{tel} {w}: {n_peaks} noise peaks >= {SNR:g} (Gaussian field: "
                  f"{r['expected_gaussian']:.1f}), {n_true} true sources >= {SNR:g}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "noise-peaks.json").write_text(json.dumps(
        {"snr": SNR, "exclude_beams": EXCLUDE_BEAMS, "rows": rows}, indent=1) + "\n")
    lines = [f"Noise peaks with SNR >= {SNR:g} more than {EXCLUDE_BEAMS:g} beams from any truth "
             "source in the detection benchmark's test fields, the count a Gaussian random field "
             "of the beam's width predicts, and the P(≥5) of a finder that returned every peak.",
             "", "| telescope | weighting | fields | beam px | noise peaks ≥ 5 | Gaussian field "
             "| true sources ≥ 5 | P(≥5) taking every peak |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["every_peak_p_ge5"]
        lines.append(f"| {r['telescope']} | {r['weighting']} | {r['fields']} | {r['beam_px']} | "
                     f"{r['noise_peaks_ge5']} | {r['expected_gaussian']:.1f} | {r['true_ge5']} | "
                     f"{'-' if p is None else f'{p:.2f}'} |")
    table = "\n".join(lines) + "\n"
    (out / "noise-peaks.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
