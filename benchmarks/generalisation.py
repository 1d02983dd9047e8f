#!/usr/bin/env python
"""Generalisation benchmark: one telescope's bundled models on images unlike their training fields.

The bundled MeerKAT and ASKAP models were trained on 1024² images at 1.5" of 1 h fields (Dec
-70° to +10°, the telescope's SEFD, WSClean to 3 sigma with no mask). Here held-out fields of
``--telescope`` (seeds 800000+; no training run or other benchmark uses them) are simulated as a
baseline like those and as variants that each change one thing a user's image may differ in,
then searched with `radiofind detect`, the model chosen from the image header as a user's run
would, and scored with radiofind's evaluation code (the same crossmatch and metrics as
`radiofind evaluate` and benchmarks/detection.py).

Variants share the fields' seeds, so each is the baseline sky changed in one way only:

- `dec+5`, `dec-80`: the same sky at another declination (+5 lies inside the training range,
  near its northern edge; -80 lies outside it).
- `noise x3`, `noise x0.3`: the telescope's SEFD times 3 or 0.3 with the sky kept in Jy
  (snr_scale and snr_min divided by the factor, same seed): the same sources observed shallower
  or deeper. (Scaling the SEFD at a fixed SNR distribution would scale the whole image and change
  nothing, since detect divides by the image noise.)
- `size 2048`: a 2048² image at 1.5", n_sources scaled by the area (600).
- `weights 4096`: the baseline's 1024² image made with WSClean's uniform (and Briggs) weights of a
  4096² image (`simulate --super-weight 0.25`): WSClean counts the weights per uv cell of the
  image, so a survey-size image has a broader uniform beam (MeerKAT 10.2" × 6.2" against
  7.4" × 5.4") and differently correlated noise than the 1024² training images.
- `scale 2.0"`: 2.0" pixels, 768² (the same field of view), so the beam spans fewer pixels.
- `synthesis-8h`: an 8-h track instead of 1 h, as most MeerKAT and ASKAP observations are:
  fuller uv coverage, a cleaner PSF, and noise 2.8 times lower, with the sky's SNRs kept (they
  are in units of the theoretical noise). `wideband`: 16 channels of 50 MHz (1.0-1.8 GHz)
  instead of 10 of 2.1 MHz, as an L-band continuum image is made (WSClean's multi-frequency
  synthesis; flat-spectrum sources), so the uv tracks spread radially.
- `niter 100`: light cleaning; `deep clean`: auto-threshold 1; `auto-mask 5`: auto-mask 5 sigma
  then auto-threshold 1.
- `strong source`: one extra source of SNR 2000 (simulate --bright-source; the other sources
  are those of the baseline). Reported too: whether it was found, and the unmatched detections
  within 10 beams of it, beside the same count at the same position in the baseline image.
- `strong-phase-1`, `strong-phase-3`: the strong source's fields with antenna-based phase
  errors of 1° and 3° rms that drift over 30 min (simulate --phase-error), as calibration leaves
  them: around the source they make artefacts (at 3°, up to ~6σ) that CLEAN cannot remove, the
  real images' main source of false detections near bright sources. Reported as for the strong
  source.
- `resolved`: half the baseline's sources made elliptical Gaussians (simulate --resolved
  0.5), major FWHM 3-12" (half to two uniform beams; at natural weighting barely resolved),
  axis ratio 0.3-1, keeping their flux, now integrated, so they peak lower: real skies hold
  resolved galaxies, which the training fields' points do not. Reported too: the share of
  resolved and of point sources above SNR 5 found, and the fragments, unmatched detections
  around each resolved source, beside the same count around the same positions in the baseline
  (the same sky with every source a point), for radiofind and PyBDSF. `resolved-bright`: the
  same with SNR scale 10 instead of 2.5, so that many resolved sources are bright enough to
  break up into several detections, if they do; its fragments are compared with the same
  bright sky of points (simulated for this, `resolved-bright-without-resolved` in the work
  folder).
- `diffuse`: a round halo of diffuse emission at the pointing, as a cluster's radio halo
  (simulate --diffuse 300: FWHM 3', about 7 sigma at its peak in a MeerKAT natural image and
  1.5 in a uniform one), searched with `detect --background local`, and with detect's defaults
  beside it. Every score of this variant reads the SNRs in the baseline's image (the same sky
  and noise without the halo: each source's and detection's own height, where the image's
  value would count the halo under it). Reported too: the sources above SNR 5 on the halo
  found, and the unmatched detections on it, beside the same place in the baseline image.
- `robust-0.5`, `robust0`, `robust0.5`, `robust1`: the baseline imaged at Briggs robust -0.5,
  0, 0.5 and 1 (simulate --weightings briggs<r>), which users pick more often than the training
  images' ±1.5. detect picks the model from the beam; where it refuses (MeerKAT robust 0.5 falls
  between the uniform and natural models' beams), the telescope's model whose beam range lies
  nearest is forced, as a user would pass --model.
- `pb-corrected`: the 2048² sky seen through the telescope's primary beam (simulate
  --primary-beam) and corrected for it, as WSClean's `-pb.fits` images are, so that the noise
  rises away from the pointing (MeerKAT x2.7 in the corners); searched with `detect --noise
  local` and scored in the uncorrected image, where each source's SNR is against the noise
  where it lies. The same images searched with one global noise, detect's default, are
  reported beside it.

Scores (all fields of a variant and weighting together, counts summed): PC3/4/5 and S90 as in
`radiofind evaluate`; C(>=5): the fraction of true sources with true SNR >= 5 that were matched;
P(>=5): of the detections whose SNR (the image value at the detection over the noise, as
purity's bins) is >= 5, the fraction matched to a true source (radiofind.evaluate.run.above_five).
PyBDSF with its default thresholds (3/5) is scored on the same images (--no-pybdsf skips it):
where both finders drop, the image changed, not the network's grasp of it.
Resumable: fields, catalogues and detect summaries already in benchmarks/work/generalisation/
are reused.

    python benchmarks/generalisation.py --fields 2
    python benchmarks/generalisation.py --telescope askap --fields 2 --variants baseline

Writes benchmarks/results/generalisation-TELESCOPE.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detection import (  # noqa: E402
    field_match,
    field_truth,
    fmt,
    model_digest,
    model_for,
    pointing,
    run_bdsf,
    summary,
)

WEIGHTINGS = ("natural", "uniform")
FIRST_SEED = 800000
# Fields the settings searches use (artefact_check.py, background_box.py); no table reports them.
VALIDATION_SEEDS = list(range(800006, 800012))
SIZE, SCALE, N_SOURCES, SNR_SCALE, SNR_MIN = 1024, 1.5, 150, 2.5, 0.1
BDSF_THRESHOLDS = (3.0, 5.0)  # PyBDSF's defaults (thresh_isl, thresh_pix): the reference column
SPUR_BEAMS = 10.0  # radius, in beams, searched for spurious detections around the strong source

# name -> (what changes, changes to the baseline's simulate() parameters)
VARIANTS: dict[str, tuple[str, dict]] = {
    "baseline": ("as trained: 1024² at 1.5\", training pointings' Dec range", {}),
    "dec+5": ("pointing at Dec +5°", {"dec": 5.0}),
    "dec-80": ("pointing at Dec -80°", {"dec": -80.0}),
    "noise-x3": ("SEFD x3, same sky in Jy", {"noise": 3.0}),
    "noise-x0.3": ("SEFD x0.3, same sky in Jy", {"noise": 0.3}),
    "size-2048": ("2048² at 1.5\", 600 sources", {"size": 2048}),
    "weights-4096": ("WSClean's weights of a 4096² image (super-weight 0.25)",
                     {"super_weight": 0.25}),
    "scale-2.0": ("2.0\" pixels, 768² (same field of view)", {"scale": 2.0}),
    "scale-2.5": ("2.5\" pixels, 614² (same field of view)", {"scale": 2.5}),
    "synthesis-8h": ("an 8-h track instead of 1 h (the same dumps of 300 s)",
                     {"synthesis_time": 8.0}),
    "wideband": ("16 channels of 50 MHz (1.0-1.8 GHz, an L-band's width) instead of 10 of "
                 "2.1 MHz", {"n_channels": 16, "channel_width": 50e6}),
    "niter-100": ("light cleaning: niter 100", {"niter": 100}),
    "deep-clean": ("deep cleaning: auto-threshold 1", {"auto_threshold": 1.0}),
    "auto-mask": ("auto-mask 5, auto-threshold 1", {"auto_mask": 5.0, "auto_threshold": 1.0}),
    "strong-source": ("one extra source of SNR 2000", {"bright_source": 2000.0}),
    "resolved": ("half the sources elliptical Gaussians, major FWHM 3-12\" (0.5-2 uniform "
                 "beams, 0.1-0.6 natural ones), axis ratio 0.3-1, flux as drawn (integrated)",
                 {"resolved": 0.5}),
    "diffuse": ("a round halo of diffuse emission at the pointing, FWHM 3', flux 300 SNR units "
                "(peak ~7 sigma natural, ~1.5 uniform, at MeerKAT); detect --background local",
                {"diffuse": 300.0}),
    "resolved-bright": ("as resolved, SNR scale 10 instead of 2.5: many resolved sources bright "
                        "enough to break up", {"resolved": 0.5, "snr_scale": 10.0}),
    **{f"strong-phase-{e}": (f"the SNR-2000 source with {e}° rms antenna phase errors "
                             "(30-min drift)", {"bright_source": 2000.0, "phase_error": float(e)})
       for e in (1, 3)},
    **{f"robust{r}": (f"Briggs robust {r} (WSClean -weight briggs {r}) instead of ±1.5",
                      {"weightings": [f"briggs{r}"]}) for r in ("-0.5", "0", "0.5", "1")},
    "pb-corrected": ("2048² at 1.5\", primary-beam corrected: noise x1.6 (MeerKAT) and x1.5 "
                     "(ASKAP) at the edges' midpoints, x2.7 and x2.3 in the corners; "
                     "detect --noise local", {"size": 2048, "primary_beam": True}),
}
# Variants searched in another image than <weighting>-image.fits, or with other detect options:
# name -> (image name suffix, detect keyword arguments). They are scored in <weighting>-image.fits
# all the same: for pb-corrected that is the uncorrected image, where a source's SNR is the one
# against the noise where it lies (simulate --primary-beam).
SEARCHED: dict[str, tuple[str, dict]] = {
    "pb-corrected": ("image-pb", {"noise": "local"}),
    "diffuse": ("image", {"background": "local"}),
}


def simulate_params(variant: str, seed: int, telescope: str, change: dict | None = None) -> dict:
    """simulate() keyword arguments of one field of a variant (outdir excluded); ``change``:
    the changes to the baseline, instead of the variant's own."""
    from radiofind.simulation.telescopes import get_telescope

    change = dict(VARIANTS[variant][1] if change is None else change)
    ra, dec = pointing(seed)
    dec = change.pop("dec", dec)
    scale = change.pop("scale", SCALE)
    # A new pixel scale keeps the field of view (even size); a new size keeps the source density.
    size = change.pop("size", 2 * round(SIZE * SCALE / scale / 2))
    area = (size * scale / (SIZE * SCALE)) ** 2
    params = dict(telescope=telescope, ra=f"{ra:.4f}", dec=f"{dec:.4f}", size=size, scale=scale,
                  n_sources=int(round(N_SOURCES * area)), snr_scale=SNR_SCALE, snr_min=SNR_MIN,
                  seed=seed, drop_ms=True)
    noise = change.pop("noise", None)
    if noise:
        # SNRs are in units of the theoretical noise: dividing them by the factor keeps the
        # fluxes in Jy those of the baseline (the exponential draws scale exactly).
        params.update(sefd=get_telescope(telescope).sefd * noise, snr_scale=SNR_SCALE / noise,
                      snr_min=SNR_MIN / noise)
    params.update(change)
    return params


def simulate_field(work: Path, variant: str, seed: int, telescope: str,
                   change: dict | None = None) -> tuple[Path, float]:
    from radiofind.simulation.run import simulate

    folder = work / variant / f"{telescope}-{seed}"
    t0 = time.perf_counter()
    if not (folder / "simulation.json").exists():
        simulate(outdir=str(folder), overwrite=True,
                 **simulate_params(variant, seed, telescope, change))
        return folder, time.perf_counter() - t0
    return folder, 0.0


def detect_field(folder: Path, weighting: str, threshold: float | None = None, *,
                 image: str = "image", **options) -> tuple[Path, dict]:
    """Run detect with the model chosen from the header; if it refuses, say why and force one.

    ``threshold``: detect's fixed ``--threshold`` instead of the model's dynamic one; ``image``:
    search ``<weighting>-<image>.fits``; ``options``: more detect keyword arguments (e.g. noise).
    Results are cached per model version (card + weights digest, as benchmarks/detection.py
    does), so a retuned bundled model is run again.
    """
    from radiofind.detect.models import resolve_model
    from radiofind.detect.run import detect
    from radiofind.errors import RadiofindError
    from radiofind.io.catalog import current_catalogue

    name = f"{weighting}-{image}"
    path = folder / f"{name}.fits"
    refused = None
    try:
        model, digest = model_for(path)
    except RadiofindError as err:  # the header matches no model: force the telescope's own
        refused, model = str(err), nearest_model(path, folder.name.split("-")[0])
        digest = model_digest(resolve_model(model).path)
    tag = (("" if image == "image" else f"-{image}") + f"-{model}-{digest}"
           + ("" if threshold is None else f"-thr{threshold:g}")
           + "".join(f"-{k}-{v}" for k, v in sorted(options.items())))
    out = folder / f"{weighting}-radiofind{tag}"
    cat = out / f"{name}.radiofind.fits"
    info_path = folder / f"{weighting}-detect{tag}.json"
    if current_catalogue(cat) and info_path.exists():
        info = json.loads(info_path.read_text())
        info["seconds_this_run"] = 0.0
        return cat, info
    if refused:
        print(f"    detect refused {folder.name} {weighting}: {refused}", flush=True)
    t0 = time.perf_counter()
    res = detect(image=str(path), outdir=str(out), formats=["fits"], overwrite=True,
                 threshold=threshold, model=model if refused else None, **options)
    info = {"refused": refused} if refused else {}
    info.update(model=res["model"], model_version=digest, model_reason=res["model_reason"],
                n_sources=res["n_sources"], threshold=res["threshold"],
                seconds=round(time.perf_counter() - t0, 2))
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    info["seconds_this_run"] = info["seconds"]
    return cat, info


def nearest_model(image: Path, telescope: str) -> str:
    """The telescope's bundled model whose beam range lies nearest the image's beam (in log),
    which a user whose image detect refuses would pass as --model."""
    from radiofind.detect.models import bundled_models
    from radiofind.io.images import open_image

    beam = open_image(image).beam.size_deg * 3600.0

    def distance(m) -> float:
        lo, hi = m.beam_range_arcsec()
        return max(math.log(lo / beam), math.log(beam / hi), 0.0)

    own = [m for m in bundled_models().values() if m.card["telescope"].lower() == telescope]
    return min(own, key=distance).name


def unmatched_near(catalog: Path, match, ra, dec, radius_deg, least: float = -math.inf, *,
                   snr: np.ndarray | None = None) -> int:
    """Detections of ``catalog`` that ``match`` left unmatched, with SNR >= ``least`` (the
    match's, the image's value over the noise, or ``snr``), within ``radius_deg`` (one, or one
    per centre) of any of the centres ``ra``, ``dec`` (degrees)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from radiofind.evaluate.run import table_radec
    from radiofind.io.catalog import read_catalog

    d_ra, d_dec = table_radec(read_catalog(catalog), "catalogue")
    centres = SkyCoord(np.atleast_1d(ra) * u.deg, np.atleast_1d(dec) * u.deg)
    if not len(d_ra) or not len(centres):
        return 0
    sep = SkyCoord(d_ra * u.deg, d_dec * u.deg)[:, None].separation(centres[None, :]).deg
    near = (sep <= np.broadcast_to(radius_deg, sep.shape[1:])[None, :]).any(axis=1)
    snr = match.det_snr if snr is None else snr
    return int(np.sum(near & ~match.det_is_tp & (np.nan_to_num(snr, nan=-np.inf) >= least)))


def strong_source_check(folder: Path, baseline: Path, weighting: str, catalog: Path, match,
                        base_catalog: Path) -> dict:
    """Was the strong source (the truth's last row) found; unmatched detections near it, here
    and at the same place in the baseline field (the same sky without it)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from radiofind.evaluate.run import table_radec
    from radiofind.io.catalog import read_catalog

    image, t_ra, t_dec, snr, _ = field_truth(folder, weighting)
    where = SkyCoord(t_ra[-1] * u.deg, t_dec[-1] * u.deg)
    radius = SPUR_BEAMS * image.beam.size_deg
    d_ra, d_dec = table_radec(read_catalog(catalog), "catalogue")
    nearest = (where.separation(SkyCoord(d_ra * u.deg, d_dec * u.deg)).deg.min()
               / image.beam.size_deg if len(d_ra) else math.nan)
    base = field_match(baseline, weighting, base_catalog)
    spot = (t_ra[-1], t_dec[-1], radius)
    return {"snr": float(snr[-1]), "found": bool(match.truth_found[-1]),
            "nearest_detection_beams": float(nearest),
            "unmatched_within": unmatched_near(catalog, match, *spot),
            "unmatched_within_ge5": unmatched_near(catalog, match, *spot, 5.0),
            "baseline_unmatched_within": unmatched_near(base_catalog, base, *spot),
            "baseline_unmatched_within_ge5": unmatched_near(base_catalog, base, *spot, 5.0)}


def resolved_check(folder: Path, baseline: Path, weighting: str, catalog: Path, match,
                   base_catalog: Path) -> dict:
    """Resolved sources against points: the share found of each above SNR 5, and the
    fragments, unmatched detections within half the source's major FWHM plus one beam of a
    resolved source, here and around the same positions in the baseline field (the same sky
    with every source a point)."""
    from radiofind.io.catalog import read_catalog

    truth = read_catalog(folder / "truth.fits")
    image = field_truth(folder, weighting)[0]
    shaped = np.asarray(truth["maj"]) > 0
    true5 = np.nan_to_num(match.truth_snr, nan=-1.0) >= 5
    ra, dec = np.asarray(truth["ra"])[shaped], np.asarray(truth["dec"])[shaped]
    radius = np.asarray(truth["maj"])[shaped] / 7200.0 + image.beam.size_deg
    base = field_match(baseline, weighting, base_catalog)
    return {"n_resolved5": int((shaped & true5).sum()),
            "found_resolved5": int(match.truth_found[shaped & true5].sum()),
            "n_point5": int((~shaped & true5).sum()),
            "found_point5": int(match.truth_found[~shaped & true5].sum()),
            "fragments": unmatched_near(catalog, match, ra, dec, radius),
            "fragments_ge5": unmatched_near(catalog, match, ra, dec, radius, 5.0),
            "baseline_fragments": unmatched_near(base_catalog, base, ra, dec, radius),
            "baseline_fragments_ge5": unmatched_near(base_catalog, base, ra, dec, radius, 5.0)}


def diffuse_check(folder: Path, baseline: Path, weighting: str, catalog: Path, match,
                  base_catalog: Path) -> dict:
    """``match``: the catalogue scored in the baseline's image (:data:`SCORED_WITHOUT`).

    On the diffuse halo (within its FWHM of its centre): the true sources of SNR >= 5 there
    (read in the baseline's image, the same sky and noise without the halo: a source's own
    height) and those found, and the unmatched detections there: all; of SNR >= 5 in this image
    (halo included), in the baseline's (their height above the halo), and as the catalogue reads
    them (its ``snr``, above the background where the finder subtracts one); and the same in
    the baseline field searched the same way; and the halo's peak SNR in this image."""
    from radiofind.io.catalog import read_catalog

    truth = read_catalog(folder / "truth.fits")
    image = field_truth(folder, weighting)[0]
    cx, cy, fwhm = truth.meta["DIFFX"], truth.meta["DIFFY"], truth.meta["DIFFFWHM"]
    ra, dec = image.pixel_to_world(np.array([float(cx)]), np.array([float(cy)]))
    tx, ty = np.asarray(truth["x"]), np.asarray(truth["y"])
    scale = image.pixel_scale_deg * 3600.0
    here = field_match(folder, weighting, catalog)  # SNRs with the halo; match's without it
    on = (np.hypot(tx - cx, ty - cy) * scale <= fwhm) & (
        np.nan_to_num(match.truth_snr, nan=-1.0) >= 5)
    sim = json.loads((folder / "simulation.json").read_text())
    base = field_match(baseline, weighting, base_catalog)
    spot = (ra, dec, fwhm / 3600.0)

    def claimed(cat: Path) -> np.ndarray:
        return np.asarray(read_catalog(cat)["snr"], dtype=float)

    return {"halo_peak_snr": sim["images"][weighting].get("diffuse_peak_snr"),
            "n_true5": int(on.sum()), "found_true5": int(match.truth_found[on].sum()),
            "unmatched": unmatched_near(catalog, match, *spot),
            "unmatched_ge5": unmatched_near(catalog, here, *spot, 5.0),
            "unmatched_above_ge5": unmatched_near(catalog, match, *spot, 5.0),
            "unmatched_claimed_ge5": unmatched_near(catalog, match, *spot, 5.0,
                                                    snr=claimed(catalog)),
            "baseline_unmatched": unmatched_near(base_catalog, base, *spot),
            "baseline_unmatched_ge5": unmatched_near(base_catalog, base, *spot, 5.0),
            "baseline_unmatched_claimed_ge5": unmatched_near(base_catalog, base, *spot, 5.0,
                                                             snr=claimed(base_catalog))}


@dataclass(frozen=True)
class SameSky:
    """The check of the variants that make one change to the baseline's sky."""

    check: Callable  # (folder, reference, weighting, catalogue, match, reference catalogue)
    name: str  # its results' key
    keeps: tuple[str, ...] = ()  # the variant's other changes its reference field keeps
    every_finder: bool = True  # also for detect's defaults and PyBDSF, not radiofind alone


# simulate() parameter -> its check. The reference is the field without the change (the
# baseline's, where it keeps nothing): the strong source's fields are compared with the
# baseline, phase errors or not; the bright resolved sky with the same bright sky of points.
SAME_SKY_CHECKS = {"bright_source": SameSky(strong_source_check, "strong_source",
                                            every_finder=False),
                   "resolved": SameSky(resolved_check, "resolved", keeps=("snr_scale",)),
                   "diffuse": SameSky(diffuse_check, "diffuse")}
# variant -> the change whose reference field's image scores its catalogues: a source's SNR on
# a diffuse halo is its own height, not the halo's under it.
SCORED_WITHOUT = {"diffuse": "diffuse"}


def baseline_threshold(work: Path, seeds: list[int], weighting: str, telescope: str) -> float:
    """Mean TBD threshold detect chooses on the baseline fields (made if missing)."""
    thresholds = [detect_field(simulate_field(work, "baseline", seed, telescope)[0],
                               weighting)[1]["threshold"] for seed in seeds]
    return round(float(np.mean(thresholds)), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescope", default="meerkat", choices=("meerkat", "askap"),
                    help="whose fields are simulated (the header then picks its models)")
    ap.add_argument("--fields", type=int, default=2, help="fields per variant")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    ap.add_argument("--work", default=str(HERE / "work" / "generalisation"),
                    help="simulated fields and catalogues (reused)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-fixed-threshold", action="store_true",
                    help="skip the second detect run at the baseline's TBD threshold")
    ap.add_argument("--no-pybdsf", action="store_true",
                    help="skip the PyBDSF (default 3/5 thresholds) reference on each variant")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    from radiofind.detect.models import bundled_models
    from radiofind.evaluate.run import above_five, json_safe, score_fields

    work = Path(args.work)
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.fields))
    valid = {m.name: list(m.beam_range_arcsec()) for m in bundled_models().values()}
    results: dict = {"telescope": args.telescope, "fields": args.fields, "seeds": seeds,
                     "spur_radius_beams": SPUR_BEAMS, "model_valid_beam_arcsec": valid,
                     "variants": {}}
    t_all = time.perf_counter()

    def reference_of(folder: Path, variant: str, key: str) -> Path:
        """The field of the same seed with the variant's change ``key`` undone, and those
        :data:`SAME_SKY_CHECKS` does not keep: the same sky without it."""
        rest = {k: v for k, v in VARIANTS[variant][1].items() if k in SAME_SKY_CHECKS[key].keeps}
        name = f"{variant}-without-{key.replace('_', '-')}" if rest else "baseline"
        return simulate_field(work, name, int(folder.name.split("-")[1]), args.telescope,
                              rest)[0]

    for variant in variants:
        t_var = time.perf_counter()

        def scored_in(folder: Path) -> Path:
            """The field whose image scores a catalogue of ``folder``: itself, or for a variant
            of :data:`SCORED_WITHOUT` the same sky without the change (whose image holds each
            source's and detection's own height, the noise the same)."""
            key = SCORED_WITHOUT.get(variant)
            return reference_of(folder, variant, key) if key else folder

        folders, sim_s = [], 0.0
        for seed in seeds:
            folder, dt = simulate_field(work, variant, seed, args.telescope)
            folders.append(folder)
            sim_s += dt
            if dt:
                print(f"  {variant}: simulated {folder.name} in {dt:.0f} s", flush=True)
        sims = [json.loads((f / "simulation.json").read_text()) for f in folders]
        vres: dict = {"what": VARIANTS[variant][0],
                      "simulate": {k: v for k, v in sims[0]["parameters"].items()
                                   if k not in ("outdir", "seed", "ra", "dec", "overwrite")},
                      "pointings_deg": [[s["observation"]["ra_deg"], s["observation"]["dec_deg"]]
                                        for s in sims],
                      "seconds": {"simulate": round(sim_s, 1)}, "weightings": {}}
        image, options = SEARCHED.get(variant, ("image", {}))
        key = next((k for k in VARIANTS[variant][1] if k in SAME_SKY_CHECKS), None)
        same = SAME_SKY_CHECKS.get(key)

        def same_sky(w: str, cats: list[Path], matches: list, **finder) -> list[dict]:
            """The variant's same-sky check of each field's catalogue, against its reference
            field searched by the same finder (``finder``: run_bdsf's thresholds, or detect's
            options)."""
            checks = []
            for f, c, m in zip(folders, cats, matches, strict=True):
                base = reference_of(f, variant, key)
                base_cat = (run_bdsf(base, w, finder["bdsf"])[0] if "bdsf" in finder
                            else detect_field(base, w, **finder)[0])
                checks.append(same.check(f, base, w, c, m, base_cat))
            return checks

        for w in sims[0]["parameters"]["weightings"]:
            matches, infos, cats = [], [], []
            for folder in folders:
                cat, info = detect_field(folder, w, image=image, **options)
                infos.append(info)
                cats.append(cat)
                matches.append(field_match(scored_in(folder), w, cat))
            strong = same_sky(w, cats, matches, **options) if same else []
            full = score_fields(matches)
            res = summary(full)
            res.update(above_five(matches))
            beams = [field_truth(f, w)[0].beam_pixels for f in folders]
            versions = sorted({f"{i['model']}-{i['model_version']}" for i in infos})
            if len(versions) > 1:
                print(f"    WARNING: {variant} {w} scored with several model versions {versions}",
                      flush=True)
            wres = {"scores": res, "models": sorted({i["model"] for i in infos}),
                    "model_versions": versions,
                    "model_reasons": [i["model_reason"] for i in infos],
                    "refused": [i["refused"] for i in infos if "refused" in i],
                    "tbd_thresholds": [round(i["threshold"], 3) for i in infos],
                    "beam_pixels": [round(b, 2) for b in beams],
                    "beam_arcsec": [[round(s["images"][w]["beam_arcsec"][k], 2)
                                     for k in ("bmaj", "bmin")] for s in sims],
                    "detect_seconds": round(sum(i["seconds_this_run"] for i in infos), 1)}
            if strong:
                wres[same.name] = strong
            if not args.no_fixed_threshold and w in WEIGHTINGS:  # the baseline's weightings
                thr = baseline_threshold(work, seeds, w, args.telescope)
                # The same network output cut at the baseline's threshold: tells the network's
                # generalisation apart from that of the dynamic threshold finder.
                fixed = []
                for folder, match, info in zip(folders, matches, infos, strict=True):
                    if abs(info["threshold"] - thr) < 1e-9:  # e.g. a model's fixed threshold
                        fixed.append(match)
                        continue
                    cat, info = detect_field(folder, w, threshold=thr, image=image, **options)
                    fixed.append(field_match(scored_in(folder), w, cat))
                    wres["detect_seconds"] = round(wres["detect_seconds"]
                                                   + info["seconds_this_run"], 1)
                wres["at_baseline_threshold"] = {"threshold": thr,
                                                 **summary(score_fields(fixed))}
            if options:
                # The same image searched with detect's defaults: what the options are for.
                plain_cats = [detect_field(f, w, image=image)[0] for f in folders]
                plain = [field_match(scored_in(f), w, c)
                         for f, c in zip(folders, plain_cats, strict=True)]
                wres["detect_defaults"] = {**summary(score_fields(plain)), **above_five(plain)}
                if same and same.every_finder:
                    wres["detect_defaults"][same.name] = same_sky(w, plain_cats, plain)
            if not args.no_pybdsf:
                # PyBDSF on the same images: tells a finder's weakness apart from a change in the
                # image itself (e.g. deep cleaning turning noise peaks into restored components).
                cats = [run_bdsf(f, w, BDSF_THRESHOLDS, image=image)[0] for f in folders]
                bd = [field_match(scored_in(f), w, c) for f, c in zip(folders, cats, strict=True)]
                wres["pybdsf_default"] = {"thresholds": list(BDSF_THRESHOLDS),
                                          **summary(score_fields(bd)), **above_five(bd)}
                if same and same.every_finder:
                    wres["pybdsf_default"][same.name] = same_sky(
                        w, cats, bd, bdsf=BDSF_THRESHOLDS)
            vres["weightings"][w] = wres
            vres["seconds"][f"detect_{w}"] = wres["detect_seconds"]
            print(f"{variant:14s} {w:8s} model {','.join(wres['models'])}"
                  f"{' (forced: header refused)' if wres['refused'] else ''} beam "
                  f"{np.mean(beams):.1f} px | PC3 {fmt(res['pc3'])} PC4 {fmt(res['pc4'])} "
                  f"PC5 {fmt(res['pc5'])} S90 {fmt(res['s90'])} C>=5 {fmt(res['c_ge5'])} "
                  f"P>=5 {fmt(res['p_ge5'])} det {res['n_detections']}"
                  + (f" | strong: {strong}" if strong else ""), flush=True)
        vres["seconds"]["total_this_run"] = round(time.perf_counter() - t_var, 1)
        results["variants"][variant] = vres
        print(f"  {variant}: timings (s) {vres['seconds']}", flush=True)
    results["seconds_total_this_run"] = round(time.perf_counter() - t_all, 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"generalisation-{args.telescope}"
    (out / f"{stem}.json").write_text(
        json.dumps(json_safe(results), indent=1, allow_nan=False) + "\n")
    table = markdown(results)
    (out / f"{stem}.md").write_text(table)
    sys.stdout.write(table)
    print(f"total {results['seconds_total_this_run']:.0f} s this run")


def summed(checks: list[dict]) -> dict:
    """The counts of a same-sky check's fields, summed (its numbers that are not counts left
    out)."""
    return {k: sum(c[k] for c in checks) for k, v in checks[0].items() if isinstance(v, int)}


def markdown(results: dict) -> str:
    name = {"meerkat": "MeerKAT", "askap": "ASKAP"}[results.get("telescope", "meerkat")]
    lines = [f"Held-out {name} fields ({results['fields']} per variant, seeds "
             f"{results['seeds'][0]}-{results['seeds'][-1]}; baseline 1024² at 1.5\", "
             f"{N_SOURCES} sources, SNR scale {SNR_SCALE}); bundled model chosen from the header. "
             "C(≥5): true SNR ≥ 5 found; P(≥5): detections with SNR ≥ 5 that are "
             "true; N≥5: true sources with SNR ≥ 5.", "",
             "PC3/4/5, S90 @ base thr: the same network maps cut at the baseline's mean TBD "
             "threshold instead of the dynamic one. PyBDSF 3/5: PyBDSF with its default "
             "thresholds on the same images (PC4, S90, C(≥5)/P(≥5)), to tell a finder's "
             "weakness from a change in the image.", "",
             "| variant | weighting | model | beam px | TBD thr | PC3 | PC4 | PC5 | S90 | C(≥5) "
             "| P(≥5) | N≥5 | detections | PC3/4/5, S90 @ base thr | PyBDSF 3/5 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    strong_rows, default_rows, resolved_rows, diffuse_rows = [], [], [], []
    for name, v in results["variants"].items():
        for w, r in v["weightings"].items():
            s = r["scores"]
            d = r.get("detect_defaults")
            if d:
                default_rows.append(f"| {name} | {w} | {SEARCHED[name][1]} | "
                                    + " | ".join(fmt(d[k]) for k in ("pc3", "pc4", "pc5", "s90",
                                                                     "c_ge5", "p_ge5"))
                                    + f" | {d['n_detections']} |")
            model = ",".join(r["models"]) + (" (forced)" if r["refused"] else "")
            b = r.get("at_baseline_threshold")
            fixed = ("/".join(fmt(b[k]) for k in ("pc3", "pc4", "pc5")) + f", {fmt(b['s90'])}"
                     if b else "-")
            p = r.get("pybdsf_default")
            bdsf = (f"{fmt(p['pc4'])}, {fmt(p['s90'])}, {fmt(p['c_ge5'])}/{fmt(p['p_ge5'])}"
                    if p else "-")
            lines.append(f"| {name} | {w} | {model} | {np.mean(r['beam_pixels']):.1f} | "
                         f"{fmt(float(np.mean(r['tbd_thresholds'])))} | {fmt(s['pc3'])} | "
                         f"{fmt(s['pc4'])} | {fmt(s['pc5'])} | {fmt(s['s90'])} "
                         f"| {fmt(s['c_ge5'])} | {fmt(s['p_ge5'])} | {s['n_true5']} | "
                         f"{s['n_detections']} | {fixed} | {bdsf} |")
            finders = [("radiofind", r.get("resolved")),
                       ("PyBDSF 3/5", (r.get("pybdsf_default") or {}).get("resolved"))]
            for finder, checks in finders:
                if checks:
                    t = summed(checks)
                    resolved_rows.append(
                        f"| {name} | {w} | {finder} | {t['found_resolved5']} / "
                        f"{t['n_resolved5']} | {t['found_point5']} / {t['n_point5']} | "
                        f"{t['fragments']} ({t['fragments_ge5']}) | {t['baseline_fragments']} "
                        f"({t['baseline_fragments_ge5']}) |")
            finders = [(f"radiofind, {SEARCHED.get(name, ('', {}))[1] or 'defaults'}",
                        r.get("diffuse")),
                       ("radiofind, defaults", (r.get("detect_defaults") or {}).get("diffuse")),
                       ("PyBDSF 3/5", (r.get("pybdsf_default") or {}).get("diffuse"))]
            for finder, checks in finders:
                if checks:
                    t = summed(checks)
                    peak = np.mean([c["halo_peak_snr"] for c in checks])
                    diffuse_rows.append(
                        f"| {name} | {w} | {finder} | {peak:.1f} | {t['found_true5']} / "
                        f"{t['n_true5']} | {t['unmatched']} ({t['unmatched_ge5']}; "
                        f"{t['unmatched_above_ge5']}; {t['unmatched_claimed_ge5']}) | "
                        f"{t['baseline_unmatched']} "
                        f"({t['baseline_unmatched_ge5']}; "
                        f"{t['baseline_unmatched_claimed_ge5']}) |")
            for k, st in enumerate(r.get("strong_source", [])):
                strong_rows.append(
                    f"| {name} | {w} | {results['seeds'][k]} | {st['snr']:.0f} | "
                    f"{'yes' if st['found'] else 'no'} | {st['nearest_detection_beams']:.2f} | "
                    f"{st['unmatched_within']} ({st.get('unmatched_within_ge5', '-')}) | "
                    f"{st.get('baseline_unmatched_within', '-')} "
                    f"({st.get('baseline_unmatched_within_ge5', '-')}) |")
    if default_rows:
        lines += ["", "The same images searched with detect's defaults instead of the variant's "
                      "options (e.g. one global noise on a primary-beam-corrected image):", "",
                  "| variant | weighting | options not given | PC3 | PC4 | PC5 | S90 | C(≥5) "
                  "| P(≥5) | detections |", "|---|---|---|---|---|---|---|---|---|---|",
                  *default_rows]
    if resolved_rows:
        lines += ["", "Resolved sources: true sources of SNR >= 5 (the image's peak over the "
                      "noise) found, resolved and point-like; fragments: unmatched detections "
                      "within half a resolved source's major FWHM plus one beam of it (of SNR "
                      ">= 5 in brackets), and the same around the same positions in the "
                      "reference image (the same sky, every source a point: the baseline's "
                      "field for resolved, the bright sky's for resolved-bright).", "",
                  "| variant | weighting | finder | resolved found (SNR ≥ 5) | points found "
                  "(SNR ≥ 5) | fragments | reference |", "|---|---|---|---|---|---|---|",
                  *resolved_rows]
    if diffuse_rows:
        lines += ["", "Diffuse halo: its peak SNR in the image (mean of the fields); the true "
                      "sources within its FWHM of its centre whose own SNR (read in the "
                      "baseline's image: the same sky and noise without the halo) is >= 5, "
                      "found; the unmatched detections there (in brackets, those of SNR >= 5: "
                      "the image's value over the noise, halo included; their own height, read "
                      "in the baseline's image; as the catalogue reads them, above the "
                      "background where the finder subtracts one), and at the same place in "
                      "the baseline image searched the same way (of SNR >= 5 in it; as its "
                      "catalogue reads them). The variant's other scores read every SNR in the "
                      "baseline's image too.", "",
                  "| variant | weighting | finder | halo peak SNR | true ≥ 5 on it found | "
                  "unmatched on it | baseline |", "|---|---|---|---|---|---|---|",
                  *diffuse_rows]
    if strong_rows:
        lines += ["", f"Strong source (SNR 2000): unmatched detections within "
                      f"{results['spur_radius_beams']:g} beams of it (of SNR >= 5 in brackets), "
                      "and at the same place in the baseline image (the same sky without it).",
                  "", "| variant | weighting | seed | measured SNR | found | nearest detection "
                  "(beams) | unmatched near it | baseline |",
                  "|---|---|---|---|---|---|---|---|", *strong_rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
