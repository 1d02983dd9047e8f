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

Below SNR 5 it also scores, with the detection benchmark's own matching and bins, a finder that
returns every local maximum of the image (over a disc of half the beam's FWHM, from SNR 2.75: one
peak per point source) beside radiofind's bundled model. A finder that cannot tell a noise peak
from a point source of the same height has the every-peak purity in each SNR bin; what radiofind
gains over it is what the network tells apart. To say how far it tells them apart, it counts the
noise peaks of each bin (the every-peak finder's peaks more than 1.5 beams from every truth
source, scaled from that area to the whole image) and sets radiofind's false detections in the
bin beside them.

Reads the fields benchmarks/detection.py simulated (run it first; radiofind's catalogues are its
cached ones); simulates nothing.

    python benchmarks/noise_peaks.py                       # meerkat and askap, 24 test fields

Writes benchmarks/results/noise-peaks.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from detection import FIRST_TEST_SEED, field_match, field_truth, run_radiofind  # noqa: E402

SNR = 5.0
EXCLUDE_BEAMS = 1.5  # peaks (and area) this close to a truth source are not counted as noise
PEAK_FROM = 2.75  # the every-peak finder's lowest peak: the lower edge of the SNR-3 bin
BIN_SNRS = (4.0, 4.5, 5.0)  # bins whose purity is reported


def snr_map(image, noise: float) -> np.ndarray:
    """The image over the noise, blanks at -inf (never a peak)."""
    data = np.asarray(image.data, dtype=np.float64).squeeze() / noise
    return np.where(np.isfinite(data), data, -np.inf)


def field_peaks(folder: Path, weighting: str) -> dict:
    """Noise peaks >= SNR in one field, the Gaussian-field expectation, true sources >= SNR."""
    image, ra, dec, snr, noise = field_truth(folder, weighting)
    filled = snr_map(image, noise)
    beam = image.beam_pixels
    far = far_from_truth(folder, weighting)  # peaks and area near a truth source are not counted
    peaks = (filled == ndimage.maximum_filter(filled, size=3)) & (filled >= SNR) & far
    area = int((far & np.isfinite(filled)).sum())
    lam2 = (2.0 * math.sqrt(2.0 * math.log(2.0)) / beam) ** 2
    expect = area * lam2 / (2.0 * math.pi) ** 1.5 * SNR * math.exp(-SNR ** 2 / 2.0)
    values = filled[far & np.isfinite(filled)]  # in units of the evaluation noise
    return {"noise_peaks": int(peaks.sum()), "expected": expect, "area_px": area,
            "std_over_noise": float(values.std()),
            "excess_kurtosis": float(stats.kurtosis(values)),
            "true_ge5": int(np.sum(np.nan_to_num(snr, nan=-1.0) >= SNR)),
            "beam_px": float(beam)}


@functools.cache
def far_from_truth(folder: Path, weighting: str) -> np.ndarray:
    """Pixels more than EXCLUDE_BEAMS beams from every truth source (where the noise is alone)."""
    image, ra, dec, _, _ = field_truth(folder, weighting)
    tx, ty = image.world_to_pixel(ra, dec)
    placed = np.isfinite(tx) & np.isfinite(ty)
    shape = np.shape(np.asarray(image.data).squeeze())
    seeds = np.ones(shape, bool)
    seeds[np.clip(np.round(ty[placed]).astype(int), 0, shape[0] - 1),
          np.clip(np.round(tx[placed]).astype(int), 0, shape[1] - 1)] = False
    return ndimage.distance_transform_edt(seeds) > EXCLUDE_BEAMS * image.beam_pixels


def disc_peaks(filled: np.ndarray, beam_pixels: float) -> np.ndarray:
    """Image peaks >= PEAK_FROM, the highest pixel of each disc of half the beam's FWHM."""
    r = max(1, int(round(0.5 * beam_pixels)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = xx ** 2 + yy ** 2 <= r * r
    return (filled == ndimage.maximum_filter(filled, footprint=disc)) & (filled >= PEAK_FROM)


def every_peak(folder: Path, weighting: str):
    """The crossmatch of every image peak >= PEAK_FROM (one per half-FWHM disc) in one field, and
    the SNRs of its noise peaks (those far from every truth source) with the share of the image
    they were counted in."""
    from radiofind.evaluate.run import match_field

    image, ra, dec, snr, noise = field_truth(folder, weighting)
    filled = snr_map(image, noise)
    peaks = disc_peaks(filled, image.beam_pixels)
    y, x = np.nonzero(peaks)
    p_ra, p_dec = image.pixel_to_world(x.astype(float), y.astype(float))
    far = far_from_truth(folder, weighting)
    valid = np.isfinite(filled)
    return (match_field(image, ra, dec, snr, noise, p_ra, p_dec), filled[peaks & far],
            (far & valid).sum() / valid.sum())


def bin_scores(matches: list) -> dict:
    """Purity and completeness in the BIN_SNRS bins, and S90, of several fields scored together."""
    from radiofind.evaluate.run import score_fields

    res = score_fields(matches)
    centre = np.asarray(res["bins"]["centre"])
    out = {"s90": res["s90"]}
    for snr in BIN_SNRS:
        k = int(np.argmin(np.abs(centre - snr)))
        out[f"{snr:g}"] = {"purity": res["purity"][k], "completeness": res["completeness"][k],
                           "detections": res["tp_det"][k] + res["fp"][k], "false": res["fp"][k],
                           "true_sources": res["tp_true"][k] + res["fn"][k]}
    return out


def noise_peaks_in_bins(per_field: list) -> dict:
    """Noise peaks in the BIN_SNRS bins over several fields: each field's count far from every
    truth source divided by the share of the image that is (an estimate for the whole image)."""
    from radiofind.evaluate.metrics import SnrBins

    bins = SnrBins.make(0.5, 20.0)
    total = np.zeros(bins.n_bins)
    for snrs, share in per_field:
        total += bins.count(snrs) / share
    return {f"{snr:g}": float(total[int(bins.index(snr))]) for snr in BIN_SNRS}


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
                         "every_peak_p_ge5": n_true / (n_true + n_peaks) if n_true else None,
                         "std_over_noise": [min(p["std_over_noise"] for p in per),
                                            max(p["std_over_noise"] for p in per)],
                         "excess_kurtosis": [min(p["excess_kurtosis"] for p in per),
                                             max(p["excess_kurtosis"] for p in per)]})
            r = rows[-1]
            peaks = [every_peak(f, w) for f in folders]
            r["every_peak"] = bin_scores([m for m, _, _ in peaks])
            r["noise_peaks_in_bins"] = noise_peaks_in_bins([(s, a) for _, s, a in peaks])
            r["radiofind"] = bin_scores([field_match(f, w, run_radiofind(f, w)[0])
                                         for f in folders])
            print(f"{tel} {w}: {n_peaks} noise peaks >= {SNR:g} (Gaussian field: "
                  f"{r['expected_gaussian']:.1f}), {n_true} true sources >= {SNR:g}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from radiofind.evaluate.run import json_safe

    (out / "noise-peaks.json").write_text(json.dumps(json_safe(
        {"snr": SNR, "exclude_beams": EXCLUDE_BEAMS, "peak_from": PEAK_FROM, "rows": rows}),
        indent=1, allow_nan=False) + "\n")
    lines = [f"Noise peaks with SNR >= {SNR:g} more than {EXCLUDE_BEAMS:g} beams from any truth "
             "source in the detection benchmark's test fields, the count a Gaussian random field "
             "of the beam's width predicts, and the P(≥5) of a finder that returned every peak.",
             "The image far from the sources: its standard deviation over the evaluation "
             "noise and its excess kurtosis (0 for Gaussian noise), lowest–highest of the fields.",
             "", "| telescope | weighting | fields | beam px | noise std / noise | excess kurtosis "
             "| noise peaks ≥ 5 | Gaussian field | true sources ≥ 5 | P(≥5) taking every peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["every_peak_p_ge5"]
        sd, ku = r["std_over_noise"], r["excess_kurtosis"]
        lines.append(f"| {r['telescope']} | {r['weighting']} | {r['fields']} | {r['beam_px']} | "
                     f"{sd[0]:.3f}–{sd[1]:.3f} | {ku[0]:.2f}–{ku[1]:.2f} | "
                     f"{r['noise_peaks_ge5']} | {r['expected_gaussian']:.1f} | {r['true_ge5']} | "
                     f"{'-' if p is None else f'{p:.2f}'} |")
    bins = " / ".join(f"{b:g}" for b in BIN_SNRS)
    lines += ["", "Purity in the SNR bins centred on " + bins + " (0.5 wide) and S90, of a finder "
              "that returns every image peak (one per half-FWHM disc, from SNR "
              f"{PEAK_FROM:g}) and of radiofind, with the detection benchmark's matching.", "",
              f"| telescope | weighting | purity at {bins}: every peak | radiofind | "
              "S90: every peak | radiofind |", "|---|---|---|---|---|---|"]

    def purities(res: dict) -> str:
        return " / ".join(f"{res[f'{b:g}']['purity']:.2f}" for b in BIN_SNRS)

    for r in rows:
        lines.append(f"| {r['telescope']} | {r['weighting']} | {purities(r['every_peak'])} | "
                     f"{purities(r['radiofind'])} | {r['every_peak']['s90']:g} | "
                     f"{r['radiofind']['s90']:g} |")
    lines += ["", "Noise peaks in the same bins: the every-peak finder's peaks more than "
              f"{EXCLUDE_BEAMS:g} beams from every truth source, scaled from that area to the "
              "whole image; the true sources in each bin; radiofind's false detections, and the "
              "share of the noise peaks they come to.", "",
              f"| telescope | weighting | noise peaks at {bins} | true sources | radiofind false "
              "| false / noise peaks |", "|---|---|---|---|---|---|"]
    for r in rows:
        n, rf = r["noise_peaks_in_bins"], r["radiofind"]
        lines.append(f"| {r['telescope']} | {r['weighting']} | "
                     + " / ".join(f"{n[f'{b:g}']:.0f}" for b in BIN_SNRS) + " | "
                     + " / ".join(f"{rf[f'{b:g}']['true_sources']}" for b in BIN_SNRS) + " | "
                     + " / ".join(f"{rf[f'{b:g}']['false']}" for b in BIN_SNRS) + " | "
                     + " / ".join(f"{rf[f'{b:g}']['false'] / n[f'{b:g}']:.2f}"
                                  if n[f"{b:g}"] else "-" for b in BIN_SNRS) + " |")
    table = "\n".join(lines) + "\n"
    (out / "noise-peaks.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
