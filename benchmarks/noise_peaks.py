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

Whether any finder could tell them apart: a noise peak and a point source of the same height
differ only where the noise's autocorrelation differs from the point-spread function. At natural
weighting (every visibility weighted by its inverse noise variance) the two are the same function,
so the image value at a peak is all the image says about whether a source is there; at uniform
weighting the noise is narrower than the beam. The script measures both sides of that:

- the area above half maximum of the noise's autocorrelation (the residual image far from every
  truth source) over that of the PSF WSClean made, as a ratio of widths;
- a linear shape classifier: Fisher's discriminant (Ledoit-Wolf shrinkage) on the image around
  every 3 x 3 local maximum from SNR 3.5, divided by the peak's value, between peaks within a
  third of a beam of a truth source and peaks more than 1.5 beams from every one. It is trained on
  half of the test fields and scored on the other half, and the other way round. In each SNR bin
  of the peak's height: the area under the ROC curve (0.5: no better than chance), the share of
  the noise peaks it keeps when it keeps 90 % of the sources, and the purity that gives with the
  noise peaks of the whole image (those far from truth scaled to the whole area). S90 needs 0.9.

With --training-data, the same question is asked of the classifier detect's shape check uses
(radiofind.detect.shape: logistic regression on the network's input around each peak) fitted as
radiofind train --shape-check fits it, on the bundled uniform model's training fields (~16,000
peaks, against ~1,600 for the Fisher discriminant's half of the test fields), and scored on all
the test fields.

Reads the fields benchmarks/detection.py simulated (run it first; radiofind's catalogues are its
cached ones); simulates nothing.

    python benchmarks/noise_peaks.py                       # meerkat and askap, 24 test fields
    python benchmarks/noise_peaks.py --training-data 'data/{telescope}'   # + the shape check's

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

from radiofind.detect.shape import (  # noqa: E402
    FROM_SNR,
    HALF_BEAMS,
    NOISE_BEAMS,
    SOURCE_BEAMS,
    peak_labels,
)
from radiofind.training.dataset import far_from, local_maxima  # noqa: E402

SNR = 5.0
EXCLUDE_BEAMS = NOISE_BEAMS  # peaks (and area) this close to a truth source are not noise
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
    peaks = local_maxima(filled, SNR) & far
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
    return far_from(np.shape(np.asarray(image.data).squeeze()), tx, ty,
                    EXCLUDE_BEAMS * image.beam_pixels)


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


SHAPE_FROM = FROM_SNR  # the shape classifier's lowest peak (as the shape check's)
SHAPE_BINS = (4.0, 4.5, 5.0)  # peak-height bins (0.5 wide) the classifier is scored in
SOURCE_WITHIN = SOURCE_BEAMS  # a peak this close to a truth source (beams) is that source's
KEEP_SOURCES = 0.9  # the classifier's cut keeps this share of the sources of a bin
PATCH_BEAMS = HALF_BEAMS  # the classifier sees the image this many beams either side of a peak


def half_max_width(a: np.ndarray) -> float:
    """The square root of the area (pixels) of the connected region above half of ``a``'s central
    value around its centre: a width that does not depend on how the beam is turned."""
    c = tuple(n // 2 for n in a.shape)
    regions, _ = ndimage.label(a >= 0.5 * a[c])
    return float(math.sqrt((regions == regions[c]).sum()))


def noise_over_psf_width(folder: Path, weighting: str) -> float:
    """The noise's autocorrelation width over the PSF's, in one field (see half_max_width)."""
    from astropy.io import fits

    residual = np.asarray(fits.getdata(folder / f"{weighting}-residual.fits"), float).squeeze()
    psf = np.asarray(fits.getdata(folder / f"{weighting}-psf.fits"), float).squeeze()
    far = far_from_truth(folder, weighting) & np.isfinite(residual)
    x = np.where(far, residual - residual[far].mean(), 0.0)
    shape = (2 * x.shape[0], 2 * x.shape[1])  # zero-padded: no wrap-around
    power = np.abs(np.fft.rfft2(x, s=shape)) ** 2
    overlap = np.abs(np.fft.rfft2(far.astype(float), s=shape)) ** 2  # pairs behind each lag
    acf = np.fft.fftshift(np.fft.irfft2(power, s=shape))
    pairs = np.fft.fftshift(np.fft.irfft2(overlap, s=shape))
    acf = acf / np.maximum(pairs, 1.0)
    half = int(4 * image_beam(folder, weighting)) + 1
    cy, cx = shape[0] // 2, shape[1] // 2
    return half_max_width(acf[cy - half:cy + half + 1, cx - half:cx + half + 1]) / \
        half_max_width(psf)


def image_beam(folder: Path, weighting: str) -> float:
    return float(field_truth(folder, weighting)[0].beam_pixels)


def peak_shapes(folder: Path, weighting: str, half: int) -> dict:
    """Every 3 x 3 local maximum >= SHAPE_FROM in one field at least ``half`` pixels inside the
    image: its SNR, the (2 half + 1)^2 pixels around it over its value, its label (1 within
    SOURCE_WITHIN beam of a truth source of true SNR >= 2, 0 far from every one, -1 between), and
    whether radiofind's catalogue has a detection within the match radius (2/3 beam) of it, with
    that detection's SNR (the image at the catalogue position); and the share of the image far
    from truth."""
    from radiofind.evaluate.run import table_radec
    from radiofind.io.catalog import read_catalog
    from radiofind.noise import pixel_values

    image, ra, dec, snr, noise = field_truth(folder, weighting)
    filled = snr_map(image, noise)
    peaks = local_maxima(filled, SHAPE_FROM)
    peaks[:half], peaks[-half:], peaks[:, :half], peaks[:, -half:] = False, False, False, False
    y, x = np.nonzero(peaks)
    beam = image.beam_pixels

    def nearest(px, py):
        """Distance (beams) from each peak to the nearest of the points, and which it is."""
        if not px.size:
            return np.full(y.size, np.inf), np.zeros(y.size, int)
        dist = np.hypot(x[:, None] - px[None], y[:, None] - py[None])
        return dist.min(1) / beam, dist.argmin(1)

    tx, ty = image.world_to_pixel(ra, dec)
    far = far_from_truth(folder, weighting)
    label = peak_labels(x, y, tx, ty, snr, beam, far)

    d_ra, d_dec = table_radec(read_catalog(run_radiofind(folder, weighting)[0]), "catalogue")
    dx, dy = image.world_to_pixel(d_ra, d_dec)
    ok = np.isfinite(dx) & np.isfinite(dy)
    dx, dy = dx[ok], dy[ok]
    d_dist, d_near = nearest(dx, dy)
    d_snr = pixel_values(image.data, dx, dy) / noise if dx.size else np.zeros(0)

    window = np.lib.stride_tricks.sliding_window_view(filled, (2 * half + 1, 2 * half + 1))
    valid = np.isfinite(filled)
    return {"snr": filled[y, x], "label": label,
            "shapes": window[y - half, x - half].reshape(y.size, -1) / filled[y, x][:, None],
            "found": d_dist < 2.0 / 3.0,
            "found_snr": d_snr[d_near] if dx.size else np.full(y.size, np.nan),
            "far_share": np.full(y.size, (far & valid).sum() / valid.sum())}


def fisher(x: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Fisher's discriminant direction between label 1 and 0, the pooled covariance shrunk
    towards a multiple of the identity by the Ledoit-Wolf estimate of the best amount."""
    groups = [x[label == k] for k in (0, 1)]
    centred = np.concatenate([g - g.mean(0) for g in groups])
    n, p = centred.shape
    cov = centred.T @ centred / n
    mu = np.trace(cov) / p
    delta = np.sum((cov - mu * np.eye(p)) ** 2) / p
    beta = (np.sum(np.sum(centred ** 2, 1) ** 2) - n * np.sum(cov ** 2)) / (n * n * p)
    shrink = min(beta, delta) / delta if delta > 0 else 1.0
    cov = (1.0 - shrink) * cov + shrink * mu * np.eye(p)
    return np.linalg.solve(cov, groups[1].mean(0) - groups[0].mean(0))


def auc(score_true: np.ndarray, score_false: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance that a source scores above a noise peak."""
    if not score_true.size or not score_false.size:
        return None
    ranks = stats.rankdata(np.concatenate([score_true, score_false]))
    n1 = score_true.size
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * score_false.size))


def shape_scores(folders: list[Path], weighting: str) -> dict:
    """In the SHAPE_BINS bins of peak height: the sources and noise peaks (whole image), the share
    of each radiofind finds and how far its detection's SNR lies below the peak's, and the linear
    shape classifier, trained on every other field and scored on the rest (and the other way
    round)."""
    half = max(2, int(round(PATCH_BEAMS * np.median([image_beam(f, weighting)
                                                     for f in folders]))))
    fields = [peak_shapes(f, weighting, half) for f in folders]
    scored = []  # the labelled peaks of each field, with their out-of-fold classifier score
    for fold in (0, 1):
        train = [f for i, f in enumerate(fields) if i % 2 != fold]
        x = np.concatenate([f["shapes"][f["label"] >= 0] for f in train])
        y = np.concatenate([f["label"][f["label"] >= 0] for f in train])
        w = fisher(x, y)
        for i, f in enumerate(fields):
            if i % 2 == fold:
                keep = f["label"] >= 0
                scored.append({**{k: v[keep] for k, v in f.items() if k != "shapes"},
                               "score": f["shapes"][keep] @ w})
    p = {k: np.concatenate([f[k] for f in scored]) for k in scored[0]}
    out = {"patch_px": 2 * half + 1}
    for b in SHAPE_BINS:
        k = (p["snr"] >= b - 0.25) & (p["snr"] < b + 0.25)
        src, noise = k & (p["label"] == 1), k & (p["label"] == 0)
        noise_image = float(np.sum(1.0 / p["far_share"][noise]))  # scaled to the whole image
        row = {"sources": int(src.sum()), "noise_peaks": int(noise.sum()),
               "noise_peaks_image": noise_image,
               "auc": auc(p["score"][src], p["score"][noise])}
        if src.any() and noise.any():
            cut = np.quantile(p["score"][src], 1.0 - KEEP_SOURCES)
            kept = float(np.mean(p["score"][noise] >= cut))
            row["noise_kept"] = kept
            row["purity"] = KEEP_SOURCES * src.sum() / (KEEP_SOURCES * src.sum()
                                                        + kept * noise_image)
            row["purity_every_peak"] = src.sum() / (src.sum() + noise_image)
            for name, sel in (("sources", src), ("noise", noise)):
                found = sel & p["found"]
                row[f"radiofind_finds_{name}"] = float(found.sum() / sel.sum())
                row[f"radiofind_snr_drop_{name}"] = (float(np.median(p["snr"][found]
                                                                     - p["found_snr"][found]))
                                                     if found.any() else None)
        out[f"{b:g}"] = row
    return out


def trained_shape_scores(folders: list[Path], weighting: str, telescope: str, data: str,
                         noise_image: dict) -> dict:
    """The shape check's classifier fitted on the bundled model's training fields in ``data``
    (radiofind.training.train.fit_shape) and scored on the test fields' labelled peaks on the
    model's grid, in the SHAPE_BINS bins of the peak's height: ROC area, the share of noise
    peaks kept with KEEP_SOURCES of the sources, and the purity that gives with ``noise_image``
    (each bin's noise peaks scaled to the whole image, from :func:`shape_scores`)."""
    from radiofind.detect import shape
    from radiofind.detect.models import resolve_model
    from radiofind.training.dataset import load_field
    from radiofind.training.train import fit_shape

    mdl = resolve_model(f"{telescope}-{weighting}")
    names = mdl.card["training"]["fields"]
    missing = [n for n in names if not (Path(data) / n / f"{weighting}-image.fits").is_file()]
    if missing:
        sys.exit(f"error: {len(missing)} of {mdl.name}'s training fields are not in {data} (first: "
                 f"{missing[0]}); scripts/train_bundled_models.sh simulates them")
    classifier, fitted = fit_shape([load_field(Path(data) / n, weighting, bin=mdl.trained_bin)
                                    for n in names])
    parts = []
    for f in folders:
        field = load_field(f, weighting, bin=mdl.trained_bin)
        parts.append(shape.labelled_peaks(field.normalised, field.truth_x, field.truth_y,
                                          field.grid.beam_pixels, classifier.half))
    feats = np.concatenate([p[0] for p in parts])
    label = np.concatenate([p[1] for p in parts])
    score, snr = classifier.score(feats), feats[:, -1] * 5.0
    out = {"model": mdl.name, "training_peaks": fitted["training_peaks"],
           "patch_px": 2 * classifier.half + 1}
    for b in SHAPE_BINS:
        k = (snr >= b - 0.25) & (snr < b + 0.25)
        src, noise = score[k & (label == 1)], score[k & (label == 0)]
        row = {"sources": int(src.size), "noise_peaks": int(noise.size), "auc": auc(src, noise)}
        if src.size and noise.size:
            kept = float(np.mean(noise >= np.quantile(src, 1.0 - KEEP_SOURCES)))
            n_img = noise_image[f"{b:g}"]["noise_peaks_image"]
            row |= {"noise_kept": kept, "purity": KEEP_SOURCES * src.size
                    / (KEEP_SOURCES * src.size + kept * n_img * src.size
                       / max(noise_image[f"{b:g}"]["sources"], 1))}
        out[f"{b:g}"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescopes", default="meerkat,askap")
    ap.add_argument("--fields", type=int, default=24, help="test fields per telescope")
    ap.add_argument("--work", default=str(HERE / "work"), help="benchmarks/detection.py's work")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--training-data", help="folder of the bundled uniform models' training "
                    "fields ('{telescope}' is replaced, e.g. 'data/{telescope}'): also score the "
                    "shape check's classifier fitted on them")
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
            r["noise_over_psf_width"] = float(np.mean([noise_over_psf_width(f, w)
                                                       for f in folders]))
            r["shape"] = shape_scores(folders, w)
            if args.training_data and w == "uniform":
                r["shape_trained"] = trained_shape_scores(
                    folders, w, tel, args.training_data.format(telescope=tel), r["shape"])
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
              "whole image; the true sources in each bin; radiofind's false detections (binned "
              "by the image at the detection, not at the peak: see the last table).", "",
              f"| telescope | weighting | noise peaks at {bins} | true sources | radiofind false "
              "|", "|---|---|---|---|---|"]
    for r in rows:
        n, rf = r["noise_peaks_in_bins"], r["radiofind"]
        lines.append(f"| {r['telescope']} | {r['weighting']} | "
                     + " / ".join(f"{n[f'{b:g}']:.0f}" for b in BIN_SNRS) + " | "
                     + " / ".join(f"{rf[f'{b:g}']['true_sources']}" for b in BIN_SNRS) + " | "
                     + " / ".join(f"{rf[f'{b:g}']['false']}" for b in BIN_SNRS) + " |")
    sb = " / ".join(f"{b:g}" for b in SHAPE_BINS)
    lines += ["", "Could any finder tell them apart? Peaks (3 x 3 local maxima) within "
              f"{SOURCE_WITHIN:.2g} beam of a truth source and more than {EXCLUDE_BEAMS:g} beams "
              f"from every one, in bins of the peak's height centred on {sb}: their numbers "
              "(noise peaks scaled to the whole image); the noise's autocorrelation width over "
              "the PSF's (1: a noise peak has a point source's shape on average); a linear shape "
              "classifier (Fisher's discriminant on the peak-normalised image around each peak, "
              "trained on half the fields and scored on the other half): the area under its ROC "
              f"curve (0.5: chance) and the purity it gives keeping {KEEP_SOURCES:.0%} of the "
              "sources, beside that of keeping every peak; and the share of the sources and of "
              "the noise peaks radiofind has a detection within 2/3 beam of.", "",
              f"| telescope | weighting | sources : noise peaks at {sb} | noise / PSF width | "
              f"classifier ROC area | purity: classifier at {KEEP_SOURCES:.0%} of sources | "
              "every peak | radiofind finds: sources | noise peaks |",
              "|---|---|---|---|---|---|---|---|---|"]

    def shape_col(sh: dict, key: str, form: str) -> str:
        return " / ".join("-" if sh[f"{b:g}"].get(key) is None else format(sh[f"{b:g}"][key], form)
                          for b in SHAPE_BINS)

    for r in rows:
        sh = r["shape"]
        counts = " / ".join(f"{sh[f'{b:g}']['sources']} : {sh[f'{b:g}']['noise_peaks_image']:.0f}"
                            for b in SHAPE_BINS)
        lines.append(f"| {r['telescope']} | {r['weighting']} | {counts} | "
                     f"{r['noise_over_psf_width']:.2f} | {shape_col(sh, 'auc', '.2f')} | "
                     f"{shape_col(sh, 'purity', '.2f')} | "
                     f"{shape_col(sh, 'purity_every_peak', '.2f')} | "
                     f"{shape_col(sh, 'radiofind_finds_sources', '.2f')} | "
                     f"{shape_col(sh, 'radiofind_finds_noise', '.2f')} |")
    trained = [r for r in rows if "shape_trained" in r]
    if trained:
        lines += ["", "The shape check's classifier (logistic regression, radiofind.detect.shape) "
                  "fitted on the bundled uniform model's training fields and scored on every test "
                  f"field's peaks, in the same bins: ROC area, the share of the noise peaks it "
                  f"keeps with {KEEP_SOURCES:.0%} of the sources, and the purity that gives.", "",
                  "| telescope | weighting | model | training peaks (sources / noise) | patch px | "
                  f"ROC area at {sb} | noise peaks kept | purity |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in trained:
            sh = r["shape_trained"]
            tp = sh["training_peaks"]
            lines.append(f"| {r['telescope']} | {r['weighting']} | {sh['model']} | "
                         f"{tp['sources']} / {tp['noise']} | {sh['patch_px']} | "
                         f"{shape_col(sh, 'auc', '.2f')} | {shape_col(sh, 'noise_kept', '.2f')} | "
                         f"{shape_col(sh, 'purity', '.2f')} |")
    lines += ["", "How far below the peak's height radiofind's detection of it reads (median SNR "
              "drop; the benchmark bins a detection by the image at its catalogue position), "
              "sources / noise peaks, in the same bins:", "",
              f"| telescope | weighting | {' | '.join(f'bin {b:g}' for b in SHAPE_BINS)} |",
              "|---|---|" + "---|" * len(SHAPE_BINS)]
    for r in rows:
        sh = r["shape"]
        cells = []
        for b in SHAPE_BINS:
            v = [sh[f"{b:g}"].get(f"radiofind_snr_drop_{k}") for k in ("sources", "noise")]
            cells.append(" / ".join("-" if x is None else f"{x:.2f}" for x in v))
        lines.append(f"| {r['telescope']} | {r['weighting']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "noise-peaks.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
