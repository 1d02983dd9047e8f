#!/usr/bin/env python
"""How far the whitening check can tell a uniform image's noise peaks from its sources.

detect's whitening check (radiofind.noise.whitened) reweighs a uniformly weighted image's Fourier
transform by its own noise power, estimated from the image, to read each detection in something
like the naturally weighted image of the same visibilities. The natural image itself separates
noise peaks from sources far better (README, "The whitening check"). This asks whether a better
estimate of the weights would close that gap, or whether the uniform image does not hold it.

On the detection benchmark's held-out uniform images (run benchmarks/detection.py first; nothing
is simulated), every 3 x 3 local maximum of SNR >= 3.5 is labelled as detect's shape check labels
its training peaks (a source's: within a third of a beam of a true source of true SNR >= 2;
noise: more than 1.5 beams from every true source; the rest left out), and in bins of the peak's
SNR (4, 4.5, 5; 0.5 wide) the area under the ROC curve is computed for each of these scores at
the peak's position, each image over its robust noise:

- ``uniform``: the uniform image itself (the peak's own height, so near 0.5 within a bin);
- ``whitened``: radiofind.noise.whitened, as detect runs it;
- ``transfer-weighted``: the matched filter T / P with the PSF's transfer function T in the
  numerator (the signal of a point source in cell u is T(u); whitened takes T as flat), P the
  same smoothed noise power estimated as P / T over the cells;
- ``noise from residual``: whitened with the noise power taken from WSClean's residual image
  (the sources CLEAN removed are not in it);
- ``exact transfer ratio``: the uniform image's transform times the natural PSF's transfer
  function over the uniform PSF's, cell by cell (weights no estimate from one image could beat:
  they use WSClean's natural PSF of the same visibilities);
- ``natural``: the field's natural image at the peak's sky position.

    python benchmarks/whitening.py --telescope meerkat --fields 12
    python benchmarks/whitening.py --telescope meerkat --fields 12 --uncleaned

Writes benchmarks/results/whitening-TELESCOPE.json and .md. ``--uncleaned`` scores the same
skies imaged without cleaning (WSClean niter 0, simulated on first use into
WORK/TELESCOPE-uncleaned, a few seconds a field), to tell whether CLEAN's Gaussian restoring beam
is what keeps the reweighed uniform image from the natural one; it writes
whitening-TELESCOPE-uncleaned.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import fft

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from detection import (  # noqa: E402
    FIRST_TEST_SEED,
    N_SOURCES,
    SIZE,
    SNR_SCALE,
    field_truth,
    fmt,
    simulate_fields,
)
from noise_peaks import auc, far_from_truth, snr_map  # noqa: E402

from radiofind.detect.shape import FROM_SNR, peak_labels  # noqa: E402
from radiofind.noise import (  # noqa: E402
    WHITEN_CAP,
    WHITEN_CLIP,
    WHITEN_OCCUPANCY,
    WHITEN_SMOOTH,
    capped,
    inverse_power,
    pixel_values,
    quiet_power,
    robust_rms,
    transfer_function,
    uv_mean,
    whitened,
)
from radiofind.training.dataset import local_maxima  # noqa: E402

BINS = (4.0, 4.5, 5.0)  # bin centres, 0.5 wide
SCORES = ("uniform", "whitened", "transfer-weighted", "noise from residual",
          "exact transfer ratio", "natural")


def filtered(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The image with its Fourier transform multiplied by ``weights``."""
    return fft.ifft2(fft.fft2(image) * weights).real


def transfer_weighted(data: np.ndarray, psf: np.ndarray, smooth: float = WHITEN_SMOOTH
                      ) -> np.ndarray:
    """The matched filter T / P over the cells whitened uses, P = T times the smoothed P / T
    (``smooth``: as whitened's)."""
    image, sigma = capped(data, WHITEN_CAP)
    t = transfer_function(psf)
    sampled = t > WHITEN_OCCUPANCY
    ts = np.where(sampled, t, 1.0)
    power = uv_mean(quiet_power(image, WHITEN_CLIP * sigma) / ts, sampled * 1.0, smooth)
    return filtered(image, inverse_power(power, sampled))


def residual_noise(data: np.ndarray, residual: np.ndarray, psf: np.ndarray,
                   smooth: float = WHITEN_SMOOTH) -> np.ndarray:
    """whitened's filter with the noise power estimated from the residual image."""
    image, _ = capped(data, WHITEN_CAP)
    res, sigma = capped(residual, WHITEN_CAP)
    sampled = transfer_function(psf) > WHITEN_OCCUPANCY
    power = uv_mean(quiet_power(res, WHITEN_CLIP * sigma), sampled * 1.0, smooth)
    return filtered(image, inverse_power(power, sampled))


def transfer_ratio(data: np.ndarray, psf: np.ndarray, natural_psf: np.ndarray) -> np.ndarray:
    """The uniform image's transform times T_natural / T_uniform where T_uniform > 1 %."""
    image, _ = capped(data, WHITEN_CAP)
    t, tn = transfer_function(psf), transfer_function(natural_psf)
    return filtered(image, np.where(t > 0.01, tn / np.maximum(t, 1e-12), 0.0))


def field_scores(folder: Path) -> dict:
    """Every labelled peak of one field's uniform image, its SNR and each score."""
    from radiofind.io.images import open_image, read_image

    image, ra, dec, snr, noise = field_truth(folder, "uniform")
    filled = snr_map(image, noise)
    peaks = local_maxima(filled, FROM_SNR)
    y, x = np.nonzero(peaks)
    tx, ty = image.world_to_pixel(ra, dec)
    label = peak_labels(x, y, tx, ty, snr, image.beam_pixels, far_from_truth(folder, "uniform"))
    keep = label >= 0
    x, y, label = x[keep], y[keep], label[keep]
    data = np.asarray(image.data).squeeze()

    def psf_of(weighting):
        return np.asarray(open_image(folder / f"{weighting}-psf.fits", require_beam=False,
                                     chunk=None).data[:, :], dtype=np.float64)

    psf = psf_of("uniform")
    residual = np.asarray(read_image(folder / "uniform-residual.fits").data).squeeze()
    maps = {"uniform": data, "whitened": whitened(data, psf),
            "transfer-weighted": transfer_weighted(data, psf),
            "noise from residual": residual_noise(data, residual, psf),
            "exact transfer ratio": transfer_ratio(data, psf, psf_of("natural"))}
    out = {"snr": filled[y, x], "label": label}
    for name, m in maps.items():
        out[name] = pixel_values(m, x, y) / robust_rms(m)
    natural = read_image(folder / "natural-image.fits")
    nx, ny = natural.world_to_pixel(*image.pixel_to_world(x.astype(float), y.astype(float)))
    nat = np.asarray(natural.data).squeeze()
    out["natural"] = pixel_values(nat, nx, ny) / robust_rms(nat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescope", default="meerkat", choices=("meerkat", "askap"))
    ap.add_argument("--fields", type=int, default=12, help="held-out test fields")
    ap.add_argument("--work", default=str(HERE / "work"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--uncleaned", action="store_true",
                    help="the same skies imaged without cleaning (simulated on first use)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    seeds = list(range(FIRST_TEST_SEED, FIRST_TEST_SEED + args.fields))
    if args.uncleaned:
        # The detection benchmark's held-out skies (its default size, sources and SNR scale).
        folders = simulate_fields(Path(args.work) / f"{args.telescope}-uncleaned",
                                  args.telescope, seeds, SIZE, N_SOURCES, SNR_SCALE, niter=0)
    else:
        folders = [Path(args.work) / args.telescope / f"{args.telescope}-{s}" for s in seeds]
    missing = [f.name for f in folders if not (f / "uniform-psf.fits").exists()]
    if missing:
        sys.exit(f"no simulated fields {', '.join(missing)}: run benchmarks/detection.py "
                 f"--telescope {args.telescope} --fields {args.fields} first")
    per_field = [field_scores(f) for f in folders]
    cat = {k: np.concatenate([p[k] for p in per_field]) for k in per_field[0]}
    rows = []
    for centre in BINS:
        inbin = (cat["snr"] >= centre - 0.25) & (cat["snr"] < centre + 0.25)
        src, noi = inbin & (cat["label"] == 1), inbin & (cat["label"] == 0)
        rows.append({"snr": centre, "sources": int(src.sum()), "noise_peaks": int(noi.sum()),
                     "auc": {k: auc(cat[k][src], cat[k][noi]) for k in SCORES},
                     "median_source": {k: float(np.median(cat[k][src])) if src.any() else None
                                       for k in SCORES}})
    result = {"telescope": args.telescope, "cleaned": not args.uncleaned,
              "fields": [f.name for f in folders], "bins": rows,
              "seconds": time.perf_counter() - t0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"whitening-{args.telescope}{'-uncleaned' if args.uncleaned else ''}"
    tmp = stem.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(stem.with_suffix(".json"))

    lines = [f"{args.telescope} uniform, {len(folders)} held-out fields"
             f"{' imaged without cleaning' if args.uncleaned else ''}: ROC area between the "
             "peaks of true sources and noise peaks of the same uniform SNR, by each score "
             "(median score of the sources in brackets).", "",
             "| SNR bin | sources / noise peaks | " + " | ".join(SCORES) + " |",
             "|---" * (len(SCORES) + 2) + "|"]
    for r in rows:
        lines.append(f"| {r['snr']:g} | {r['sources']} / {r['noise_peaks']} | " + " | ".join(
            f"{fmt(r['auc'][k], 3)} ({fmt(r['median_source'][k])})" for k in SCORES) + " |")
    tmp = stem.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(stem.with_suffix(".md"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
