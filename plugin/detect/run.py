"""``radiofind detect``: image in, catalogue and network output map out, in bounded memory.

The image is never read whole: its blocks stream from disk (:func:`radiofind.io.images.open_image`)
through the noise estimate, the network (dask ``map_overlap``) and into the output map, written
chunk by chunk, with the network's input beside it in a scratch file (removed at the end; both
are the size of the network's grid in float32); blob detection then reads both back tile by
tile. Peak memory is set by the chunk size, not the image size.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from radiofind.detect.artefacts import (BRIGHT_SNR, DEFAULT_T, MIRROR_SIGMA, artefacts,
                                        bright_sources)
from radiofind.errors import RadiofindError
from radiofind.io.catalog import (
    FORMATS,
    check_formats,
    make_catalog,
    output_names,
    read_catalog,
    write_catalog,
)
from radiofind.io.images import (
    FitsMapWriter,
    FitsPlane,
    Image,
    background_subtracted,
    binned,
    binned_pixels,
    check_another,
    negated,
    open_image,
    psf_beside,
    tapered,
    unbinned_pixels,
    whitened_image,
)
from radiofind.io.outputs import staged_outputs
from radiofind.noise import MIN_BOX, local_background

log = logging.getLogger("radiofind.detect")

MIN_CHUNK = 64
CONFIRM_SNR = 4.0  # least SNR in --confirm-image (see confirmation_snr; README)
WHITENED = "whitened"  # confirm_with: the searched image whitened by its own noise (--psf)
RMS_BOX_BEAMS = 30  # default local-rms cell, in beams (BANE's default box is ~30 beams)
BKG_BOX_BEAMS = 3  # default background cell, beams (benchmarks/background_box.py chose it)
# With one global noise, detect warns when the noise in the image's corners is more than this
# factor of that at its centre, and more than sampling alone would give (noise_spread), as in a
# primary-beam-corrected image: 1.42-1.79 on the 2048² MeerKAT and ASKAP ones of the
# generalisation benchmark, at most 1.19 on 622 uncorrected images (test, training and every
# generalisation variant, on the networks' grids).
NOISE_SPREAD_WARN = 1.3


def noise_spread(data, beam_pixels: float) -> tuple[float, float]:
    """How much noisier an image's corners are than its centre, and how far sampling alone
    would take that ratio.

    The image is cut into 4 x 4 cells (see :func:`radiofind.noise.local_rms`, whose rounding to
    the blocks may make them more); the ratio is the median noise of the cells farther from the
    centre than three quarters of the farthest over that of the cells nearer than a quarter (a
    primary-beam-corrected image's noise rises outward; a flat image's cells differ at random,
    and natural-weighting ones by their sources' sidelobes). The limit is ``1 + 4 e``, with
    ``e = 1 / sqrt(0.74 n)`` the relative error of a clipped-MAD noise estimate from ``n``
    independent values, here the beams in a cell (the MAD's efficiency is 0.37). (1, inf) for an
    image too small to cut.
    """
    from radiofind.noise import local_rms

    side = min(data.shape) // 4
    if side < 16:
        return 1.0, math.inf
    cells, box = local_rms(data, box=side)[1:]
    ny, nx = cells.shape
    cy, cx = np.mgrid[0:ny, 0:nx]
    r = np.hypot((cy + 0.5) * box - data.shape[0] / 2, (cx + 0.5) * box - data.shape[1] / 2)
    outer, inner = cells[r >= 0.75 * r.max()], cells[r <= 0.25 * r.max() + box / 2]
    beams = box * box / (math.pi / (4 * math.log(2)) * beam_pixels**2)
    return (float(np.median(outer) / np.median(inner)),
            1.0 + 4.0 / math.sqrt(0.74 * beams))


def input_noise(img, grid, grid_sigma: float) -> float:
    """The noise of the input image ``img`` whose network grid ``grid`` has noise ``grid_sigma``:
    what catalogue SNRs are measured against (the global noise mode)."""
    from radiofind.noise import robust_rms

    return grid_sigma if grid is img else robust_rms(img.data, max_samples=1_000_000)


def confirmation_snr(other, img, x, y) -> tuple[np.ndarray, float]:
    """SNR in image ``other`` at the sky positions of pixels (x, y) of ``img``, and its noise.

    ``other`` is another image of the same field, e.g. the natural-weighted one for a uniform
    search: a true source is in both, while most noise peaks of one weighting are not in the
    other. The value is read at the nearest pixel; NaN outside ``other``.
    """
    from radiofind.noise import robust_rms

    noise = robust_rms(other.data)
    return sky_snr(other, *img.pixel_to_world(np.asarray(x, float), np.asarray(y, float)),
                   noise), noise


def sky_snr(other, ra, dec, noise: float) -> np.ndarray:
    """The value of image ``other`` at sky positions (ra, dec) (degrees; nearest pixel, NaN
    outside it) over ``noise``."""
    from radiofind.noise import pixel_values

    ox, oy = other.world_to_pixel(ra, dec)
    with np.errstate(invalid="ignore"):
        return pixel_values(other.pixels, ox, oy) / noise


def _kept(keep: np.ndarray, *per_detection):
    """Each argument restricted to the detections where ``keep`` is True: arrays are indexed,
    dicts of arrays indexed value by value, scalars (one noise for all) passed through."""
    def cut(v):
        if isinstance(v, dict):
            return {k: cut(a) for k, a in v.items()}
        return v[keep] if np.ndim(v) else v

    return tuple(cut(v) for v in per_detection)


def _negatives(table, negative_snr) -> dict:
    """Add the ``reliability`` column and the negative counts (header) to ``table`` from the SNRs
    of the detections in the negated image; returns them for the summary."""
    from radiofind.detect.reliability import (
        MIN_NEGATIVES,
        PURITY_SNRS,
        purity_estimate,
        reliability,
    )

    snr = np.asarray(table["snr"], dtype=float)
    neg = np.asarray(negative_snr, dtype=float)
    if neg.size < MIN_NEGATIVES:
        log.warning("only %d detections in the image times -1: the reliability and purity "
                    "estimates rest on them and are rough (a larger image holds more)", neg.size)
    table["reliability"] = reliability(snr, neg)
    snrs = {f"{s:g}": s for s in PURITY_SNRS}
    above = {k: int((neg >= s).sum()) for k, s in snrs.items()}
    purity = {k: purity_estimate(snr, neg, s) for k, s in snrs.items()}
    table.meta["NEGDET"] = int(neg.size)
    for k in snrs:
        table.meta[f"NEGGE{k}"] = above[k]
        if purity[k] is not None:
            table.meta[f"EPURE{k}"] = round(purity[k], 4)
    return {"n": int(neg.size), "above": above, "purity": purity}


def minus_background(img: Image, box: int | None) -> Image:
    """``img`` less its local background (clipped medians of ``box``-pixel cells, default
    :data:`BKG_BOX_BEAMS` beams but at least :data:`MIN_BOX` pixels, interpolated;
    :func:`radiofind.noise.local_background`)."""
    box = box or max(MIN_BOX, int(round(BKG_BOX_BEAMS * img.beam_pixels)))
    try:
        bkg, cells, box = local_background(img.data, box=box)
    except RadiofindError as err:
        raise RadiofindError(f"{img.path}: {err}") from None
    log.info("background in %d-pixel cells: %.3g to %.3g", box, cells.min(), cells.max())
    return background_subtracted(img, bkg, box)


def detect(*, image: str, outdir: str, model: str | None = None, delta_max: int | None = None,
           a_min: int | None = None, centre: str | None = None, threshold: float | None = None,
           deblend: float | None = None, noise: str = "global", rms_box: int | None = None,
           background: str = "none", bkg_box: int | None = None, chunk: int = 1024,
           scheduler: str | None = None, progress: bool = False,
           refine_snr: float | None = None, response_snr: float | None = None,
           min_response: float | None = None, confirm_image: str | None = None,
           confirm_snr: float = CONFIRM_SNR, psf: str | None = None,
           whiten_snr: float | None = None, symmetries: int | None = None,
           taper: float | None = None, taper_snr: float | None = None,
           shape_cut: float | None = None, shape_snr: float | None = None,
           artefact_check: float | None = None, negatives: bool = False,
           formats=tuple(FORMATS), overwrite: bool = False) -> dict:
    """Detect point sources in ``image`` and write the catalogue and the output map.

    Parameters are those of the ``radiofind.detect`` cab. Returns a summary dict (model used,
    threshold, number of sources, output paths, timings).
    """
    return _detect(**locals())


def _detect(*, image: str, outdir: str, model: str | None, delta_max: int | None,
            a_min: int | None, centre: str | None, threshold: float | None,
            deblend: float | None, noise: str, rms_box: int | None, background: str,
            bkg_box: int | None, chunk: int,
            scheduler: str | None, progress: bool, refine_snr: float | None,
            response_snr: float | None, min_response: float | None, confirm_image: str | None,
            confirm_snr: float, psf: str | None, whiten_snr: float | None,
            symmetries: int | None, taper: float | None,
            taper_snr: float | None, shape_cut: float | None, shape_snr: float | None,
            artefact_check: float | None, negatives: bool, formats, overwrite: bool,
            negate: bool = False,
            whitened: Image | None = None,
            subtracted: tuple[Image, Image | None] | None = None) -> dict:
    """:func:`detect`; ``negate``: search the image (and the confirming one) times -1, for
    --negatives (the search, its checks and its threshold as given, nothing printed);
    ``whitened``: with it, the image already whitened for the whitening check (the positive
    search's), negated here instead of whitened again; ``subtracted``: the image and the
    confirming one already less their backgrounds (``background`` local), likewise."""
    params = {k: v for k, v in locals().items()
              if k not in ("negate", "whitened", "subtracted")}
    import dask.array as da

    from radiofind.detect.blobs import DEBLEND_BEAMS, find_blobs, split_levels, weak_response
    from radiofind.detect.inference import SymmetrisedBlock, check_symmetries, predict_map
    from radiofind.detect.models import resolve_model, select_model, uniform_field_warning
    from radiofind.detect.photometry import flux_and_shape
    from radiofind.detect.positions import (default_refine_snr, position_errors,
                                            refine_bright)
    from radiofind.detect.shape import ShapeClassifier, dropped
    from radiofind.detect.shape import check_values as check_shape_values
    from radiofind.noise import (WHITEN_CAP, gradient_covariance, local_rms, pixel_values,
                                 robust_rms)
    from radiofind.parallel import dask_scheduler, release_memory

    formats = check_formats(formats)
    for name, value, low in (("delta_max", delta_max, 1), ("a_min", a_min, 1),
                             ("chunk", chunk, MIN_CHUNK)):
        if value is not None and value < low:
            raise RadiofindError(f"{name} must be >= {low}, got {value}")
    if deblend is not None and deblend < 0:
        raise RadiofindError(f"deblend must be >= 0 beams, got {deblend}")
    if refine_snr is not None and not refine_snr >= 0:
        raise RadiofindError(f"refine_snr must be >= 0 (inf keeps every network position), got "
                             f"{refine_snr}")
    for name, value in (("response_snr", response_snr), ("min_response", min_response),
                        ("taper", taper), ("taper_snr", taper_snr), ("whiten_snr", whiten_snr)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise RadiofindError(f"{name} must be a number >= 0, got {value}")
    check_shape_values(shape_cut, shape_snr)
    if not (math.isfinite(confirm_snr) and confirm_snr >= 0):
        raise RadiofindError(f"confirm_snr must be a number >= 0, got {confirm_snr}")
    if symmetries is not None:
        check_symmetries(symmetries)
    if noise not in ("global", "local"):
        raise RadiofindError(f"noise must be 'global' or 'local', got {noise!r}")
    if background not in ("none", "local"):
        raise RadiofindError(f"background must be 'none' or 'local', got {background!r}")
    t_artefact = DEFAULT_T if artefact_check is None else float(artefact_check)
    if not (math.isfinite(t_artefact) and t_artefact >= 0):
        raise RadiofindError(f"--artefact-check must be a number >= 0 (0: off), got "
                             f"{artefact_check}")
    t0 = time.perf_counter()
    img = open_image(image, chunk=chunk)
    other = None
    if confirm_image:
        check_another(confirm_image, image, "--confirm-image")
        other = open_image(confirm_image, chunk=chunk)
        if psf:
            raise RadiofindError("--psf whitens the searched image to confirm its detections: "
                                 "give it or --confirm-image, not both")
    elif psf:
        check_another(psf, image, "--psf")
        open_image(psf, require_beam=False)  # a clear error for a missing or non-image file
    if background == "local":
        img, other = subtracted or (minus_background(img, bkg_box),
                                    None if other is None else minus_background(other, bkg_box))
    searched = (img, other)  # before negation and whitening: what --negatives searches again
    if negate:
        img = negated(img)
        other = None if other is None else negated(other)
    names = output_names(image, formats, "radiofind")
    map_name = names["base"] + "-map.fits"
    negatives_name = names["base"] + "-negatives"
    planned = [names[f] for f in formats] + [map_name] + (
        [negatives_name + ".fits"] if negatives else [])
    if model:
        mdl, why = resolve_model(model), "--model"
    else:
        mdl, why = select_model(img.telescope, img.beam.size_deg * 3600.0, img.beam_pixels,
                                str(img.header.get("WSCWEIGH", "")))
    log.info("using model %s (%s)", mdl.name, why)
    if background == "local" and mdl.card.get("weighting") == "uniform" and not negate:
        log.warning("--background local with the uniform model %s: uniform weighting resolves most "
                    "diffuse emission out, and the background's cells, a few beams wide, carry "
                    "their own noise into every SNR (on flat uniform test images it lowered PC4 "
                    "from 0.31-0.42 to 0.08-0.23); it is meant for natural-weighting images",
                    mdl.name)
    field_warning = uniform_field_warning(mdl, img.data.shape[-2:], img.pixel_scale_deg * 3600)
    if field_warning and not negate:  # the negated search is the same image: said once
        log.warning(field_warning)
    tbd = {"deblend_beams": DEBLEND_BEAMS, **mdl.tbd}
    # The whitening check: the image whitened by its own noise confirms its detections, with
    # the PSF given, or WSClean's beside the image where the card holds settings for it.
    confirm_name = Path(confirm_image).name if confirm_image else None
    if other is None and (whiten_snr is None or whiten_snr > 0):
        psf_path = psf or (psf_beside(image) if mdl.tbd_whitened else None)
        if psf_path is None and mdl.tbd_whitened and not negate:
            log.warning("model %s whitens the image to confirm its detections, but there is no "
                        "PSF beside it (<name>-psf.fits): the whitening check is off; give --psf",
                        mdl.name)
        if psf_path is not None and not psf and field_warning:
            # Searched on the training images' field of view: on a larger one (finer uv cells)
            # it dropped 4 % of the sources above SNR 5 (README, "The whitening check").
            if not negate:
                log.warning("the whitening check is off: model %s's settings for it were searched "
                            "on images of the training fields' size; --psf turns it on", mdl.name)
            psf_path = None
        if psf_path is not None:
            # The negated search takes the whitened image times -1 (whitening is odd in the
            # image: the cap and the clip are symmetric), rather than whitening again.
            other = negated(whitened) if whitened is not None else whitened_image(img, psf_path)
            confirm_name = f"{Path(image).name} whitened with {Path(psf_path).name}"
            confirm_snr = float(whiten_snr if whiten_snr is not None else
                                (mdl.tbd_whitened or {}).get("confirm_snr") or CONFIRM_SNR)
            if not negate:
                log.info("whitening check: %s", confirm_name)
    # With a confirmation image, the TBD settings searched with one confirming, if the card has
    # them (radiofind train --confirm-with): the other image removes most noise peaks, so they
    # reach lower. Options given on the command line still win.
    whitening = other is not None and not confirm_image
    settings = mdl.tbd_whitened if whitening else mdl.tbd_confirmed
    tbd_for = ("search" if other is None or not settings else
               WHITENED if whitening else "confirmation")
    if tbd_for != "search":
        tbd.update({k: v for k, v in settings.items() if k != "confirm_snr"})
        log.info("TBD settings for confirmation by %s (model card's %s)",
                 "the whitened image" if whitening else
                 f"a {mdl.card['tbd_confirmed'].get('confirm_with', 'second')} image",
                 "tbd_whitened" if whitening else "tbd_confirmed")
    tbd.update({k: v for k, v in (("delta_max", delta_max), ("a_min", a_min), ("centre", centre),
                                  ("deblend_beams", deblend), ("response_snr", response_snr),
                                  ("min_response", min_response), ("symmetries", symmetries),
                                  ("taper", taper), ("taper_snr", taper_snr),
                                  ("shape_cut", shape_cut), ("shape_snr", shape_snr))
                if v is not None})
    # The taper check: the model's (searched with its rule), none in older cards; 0 turns it off.
    taper_fwhm = float(tbd.get("taper") or 0.0)
    if taper_fwhm > 0 and tbd.get("taper_snr") is None:
        raise RadiofindError("--taper needs --taper-snr (the model card has none)")
    # The shape check: the model's (its classifier fitted on the training fields, the cut and SNR
    # searched with its rule), none in older cards; --shape-snr 0 turns it off.
    shape = None
    if tbd.get("shape_cut") is not None and (tbd.get("shape_snr") or 0) > 0:
        if "shape_classifier" not in mdl.card:
            raise RadiofindError(f"model {mdl.name}'s card has no shape classifier (radiofind "
                                 "train --shape-check fits one): the shape check needs it")
        shape = ShapeClassifier.from_card(mdl.card["shape_classifier"])
    # The map averaged over this many orientations of the image (card: searched with the rule).
    n_sym = int(tbd.get("symmetries") or 1)
    if n_sym > 1:
        log.info("network answers averaged over %d orientations of the image", n_sym)
    # The response check: the model's, searched with its TBD settings; none in older cards.
    demand = mdl.card.get("demand", {})
    check = {"alpha": float(demand.get("alpha", 1.0)), "b_n": float(demand.get("b_n", 0.0)),
             "response_snr": float(tbd.get("response_snr") or 0.0),
             "min_response": float(tbd.get("min_response") or 0.0)}
    if check["min_response"] > 0 and not {"alpha", "b_n"} <= set(demand):
        raise RadiofindError(f"model {mdl.name}'s card has no demand image (alpha, b_n): the "
                             "response check needs it; give --min-response 0")
    # The threshold rule: --threshold (fixed), else --delta-max (dynamic), else the model's own,
    # which its TBD search chose: a fixed map threshold if the card has one, else dynamic.
    if threshold is None and delta_max is None:
        threshold = tbd.get("threshold")
    if threshold is None and not tbd.get("delta_max"):
        raise RadiofindError(f"model {mdl.name} has neither a delta_max nor a threshold in its "
                             "card: give --delta-max or --threshold")
    progress = progress or sys.stderr.isatty()
    # The network sees the image on its own grid, where the beam spans about as many pixels as
    # in training: oversampled beams are averaged in blocks, narrow ones interpolated onto a finer
    # grid (catalogue positions come back to the input's pixels).
    factor = mdl.bin_factor(img.beam_pixels)
    grid = binned(img, factor, chunk=chunk)
    if factor > 1:
        log.info("beam %.1f px: averaging %d x %d pixel blocks for the network (beam %.1f px)",
                 img.beam_pixels, factor, factor, grid.beam_pixels)
    elif factor < 1:
        log.info("beam %.1f px: interpolating onto %.3g-pixel steps for the network (beam %.1f "
                 "px)", img.beam_pixels, factor, grid.beam_pixels)
    ny, nx = grid.data.shape

    with staged_outputs(outdir, planned, overwrite=overwrite) as stage, \
            dask_scheduler(scheduler, progress=progress) as where:
        log.info("%d x %d image in %d chunks of %d², on %s", nx, ny, grid.data.npartitions,
                 chunk, where)
        data = grid.data
        finite = da.isfinite(data)
        try:
            if noise == "local":
                box = rms_box or int(round(RMS_BOX_BEAMS * grid.beam_pixels))
                rms, cells, box = local_rms(data, box=box)
                sigma = float(np.median(cells))
                log.info("local noise in %d-pixel cells: median %.3g, range %.3g-%.3g",
                         box, sigma, cells.min(), cells.max())
            else:
                rms = sigma = robust_rms(data)
                log.info("noise %.3g", sigma)
                spread, limit = noise_spread(data, grid.beam_pixels)
                if spread > max(NOISE_SPREAD_WARN, limit):
                    log.warning("the noise in the corners of %s is %.2f times that at its "
                                "centre (a primary-beam-corrected image?), and one global noise "
                                "is used: --noise local follows it", Path(image).name, spread)
        except RadiofindError as err:
            raise RadiofindError(f"{image}: {err}") from None
        normalised = da.where(finite, data / rms, 0.0).astype(np.float32)
        t1 = time.perf_counter()
        tmap = da.where(finite, predict_map(
            SymmetrisedBlock(mdl.block(), n_sym), mdl.architecture, normalised), np.nan)
        map_path = stage.path(map_name)
        # RFTHRESH is reserved now and filled in after TBD, so the header keeps its size and the
        # update is in place (a header that grows would make astropy rewrite the whole map).
        header = {"BUNIT": "", "RFMODEL": mdl.name, "RFTHRESH": 0.0,
                  "HISTORY": "radiofind network output map (SNR-boosted)"}
        # The network's input is kept too, in a scratch file written in the same pass (blob
        # detection reads it back tile by tile; recomputing it would read and average the image
        # again: blob detection took 41-44 s on a 32768² image, 33 s with the input kept).
        input_path = stage.scratch("network-input.fits")
        da.store([tmap.astype(np.float32), normalised],
                 [FitsMapWriter(map_path, (ny, nx), grid, header),
                  FitsMapWriter(input_path, (ny, nx), grid, {"BUNIT": ""})], lock=False)
        t2 = time.perf_counter()
        written, network_input = (
            da.from_array(FitsPlane(str(path)), chunks=(chunk, chunk), lock=False, asarray=False,
                          meta=np.empty((0, 0), dtype=np.float32))
            for path in (map_path, input_path))
        blobs = find_blobs(written, delta_max=tbd["delta_max"], a_min=int(tbd["a_min"]),
                           centre=tbd["centre"], threshold=threshold,
                           n_steps=int(tbd.get("n_steps", 50)),
                           deblend=tbd["deblend_beams"] * grid.beam_pixels,
                           snr=network_input, **split_levels(check["alpha"], check["b_n"]))
        release_memory()
        t3 = time.perf_counter()
        src_noise = sigma if noise == "global" else pixel_values(rms, blobs.x, blobs.y)
        if factor != 1:
            # Averaging lowers the noise a little, and so does interpolating: SNRs in the
            # catalogue use the input's own.
            grid_sigma = sigma if noise == "global" else robust_rms(data)
            src_noise = src_noise * (input_noise(img, grid, grid_sigma) / grid_sigma)
        x, y = unbinned_pixels(blobs.x, blobs.y, factor)
        peak_x, peak_y = unbinned_pixels(blobs.input_x, blobs.input_y, factor)
        extra = {"score": blobs.score, "area": blobs.area.astype(np.int32)}
        with np.errstate(invalid="ignore", divide="ignore"):
            blob_snr = pixel_values(img.pixels, x, y) / src_noise
        weak = weak_response(blobs.score, blob_snr, **check)
        x, y, blob_snr, src_noise, peak_x, peak_y, extra = _kept(
            ~weak, x, y, blob_snr, src_noise, peak_x, peak_y, extra)
        if check["min_response"] > 0:
            log.info("%d detections with SNR >= %g dropped: network response below %g of a "
                     "point source's", int(weak.sum()), check["response_snr"],
                     check["min_response"])
        if refine_snr is None:
            refine_snr = default_refine_snr(factor)
        x, y, n_refined, n_to_peak = refine_bright(
            img.pixels, x, y, src_noise, beam_pixels=img.beam_pixels, refine_snr=refine_snr,
            snr=blob_snr, blob_x=peak_x, blob_y=peak_y)
        log.info("%d detections with SNR >= %s placed on the image's peak; %d fainter ones moved "
                 "to a peak that bright in their blob", n_refined, refine_snr, n_to_peak)
        n_shape = 0
        if shape is not None:
            gx, gy = binned_pixels(x, y, factor)
            s_score, s_snr = shape.scores(network_input, gx, gy, grid.beam_pixels)
            keep = ~dropped(s_score, s_snr, cut=tbd["shape_cut"], below_snr=tbd["shape_snr"])
            n_shape = int((~keep).sum())
            extra["shape_score"] = s_score
            x, y, src_noise, extra = _kept(keep, x, y, src_noise, extra)
            log.info("%d detections below SNR %g dropped by the shape check (score below %g)",
                     n_shape, tbd["shape_snr"], tbd["shape_cut"])
        n_untapered = 0
        if taper_fwhm > 0:
            smooth = tapered(img, taper_fwhm)
            t_snr, t_noise = confirmation_snr(smooth, img, x, y)
            keep = ~(t_snr < tbd["taper_snr"])
            n_untapered = int((~keep).sum())
            extra["taper_snr"] = t_snr
            x, y, src_noise, extra = _kept(keep, x, y, src_noise, extra)
            log.info("%d detections below SNR %g in the image tapered to %g beams dropped (its "
                     "noise %.3g)", n_untapered, tbd["taper_snr"], taper_fwhm, t_noise)
        n_unconfirmed = n_outside = 0
        if other is not None:
            other_snr, other_noise = confirmation_snr(other, img, x, y)
            # NaN (outside the other image) is kept; confirm_snr 0 keeps all, recording the SNR.
            keep = ~(other_snr < confirm_snr) | (confirm_snr == 0)
            if whitening:  # the whitened image is capped: brighter detections are not checked
                with np.errstate(invalid="ignore", divide="ignore"):
                    keep |= pixel_values(img.pixels, x, y) / src_noise >= WHITEN_CAP
            n_unconfirmed = int((~keep).sum())
            extra["confirm_snr"] = other_snr
            x, y, src_noise, extra = _kept(keep, x, y, src_noise, extra)
            log.info("%d detections below SNR %g in %s dropped (its noise %.3g)", n_unconfirmed,
                     confirm_snr, confirm_name, other_noise)
            n_outside = int(np.isnan(other_snr).sum())
            if n_outside:
                log.warning("%d detections lie outside %s (or on its blanks) and are kept "
                            "unconfirmed: the confirmation image should cover the searched one",
                            n_outside, confirm_name)
        n_artefacts = 0
        if t_artefact > 0 and len(x):
            # Calibration artefacts are odd about the bright source: the image plus its
            # reflection through it cancels them (radiofind.detect.artefacts); the |value|
            # peaks serve the negated search too.
            typical = float(np.median(np.atleast_1d(src_noise)))
            bright = bright_sources(img.data, typical, img.beam_pixels)
            if len(bright[0]):
                flagged, mirror, sum_z = artefacts(img.pixels, x, y, None, src_noise, bright,
                                                   img.beam_pixels, t_artefact)
                extra["mirror_snr"] = mirror
                extra["reflection_z"] = sum_z
                x, y, src_noise, extra = _kept(~flagged, x, y, src_noise, extra)
                n_artefacts = int(flagged.sum())
                log.info("%d detections dropped as artefacts of %d source(s) above SNR %g: the "
                         "image plus its reflection through the source reads below %g times "
                         "its spread there, and the mirror point at most -%g times the image's",
                         n_artefacts, len(bright[0]), BRIGHT_SNR, t_artefact, MIRROR_SIGMA)
        table = make_catalog(img, x, y, src_noise, finder="radiofind", extra=extra)
        if len(table):  # position errors from the image's own noise (positions.position_errors)
            errors = position_errors(img, x, y, np.asarray(table["snr"]),
                                     gradient_covariance(img.data))
            table["ra_err"][:], table["dec_err"][:] = errors
        # Integrated flux densities and fitted sizes (photometry.flux_and_shape).
        for name, values in flux_and_shape(img, x, y, np.asarray(table["snr"]),
                                           src_noise).items():
            table[name][:] = values
        if noise == "local":
            table["rms"] = src_noise
        table.meta.update({"MODEL": mdl.name, "THRESH": blobs.threshold,
                           "THRRULE": "fixed" if threshold is not None else "dynamic",
                           "AMIN": int(tbd["a_min"]), "CENTRE": tbd["centre"],
                           "NOISEMAP": noise, "BIN": factor, "SYMMETRY": n_sym,
                           "RESPSNR": check["response_snr"], "MINRESP": check["min_response"],
                           # FITS headers hold no inf: "off" when no detection may move.
                           "REFSNR": (float(refine_snr) if refine_snr is not None
                                      and math.isfinite(refine_snr) else "off")})
        if threshold is None:
            table.meta["DELTAMAX"] = tbd["delta_max"]
        if negate:
            table.meta["NEGATED"] = (True, "the image times -1 searched")
        if background == "local":
            table.meta["BKGBOX"] = (int(img.header["RFBKGBOX"]), "background cell, pixels")
        table.meta["ARTEFT"] = (float(t_artefact), "artefact check's t (0: off)")
        if t_artefact > 0:
            table.meta["ARTEFM"] = (MIRROR_SIGMA, "artefact check's mirror cut, spreads")
        if taper_fwhm > 0:
            table.meta.update({"TAPER": taper_fwhm, "TAPERSNR": float(tbd["taper_snr"])})
        if shape is not None:
            table.meta.update({"SHAPECUT": float(tbd["shape_cut"]),
                               "SHAPESNR": float(tbd["shape_snr"])})
        if other is not None:
            table.meta.update({"CONFIRM": confirm_name if confirm_image else WHITENED,
                               "CONFSNR": float(confirm_snr), "TBDFOR": tbd_for})
            if not confirm_image:
                table.meta["PSF"] = Path(other.header["RFWHITE"]).name
        negative = None
        if negatives:
            # The same search on the image times -1, cut at this map threshold: its detections
            # count the noise peaks this one keeps at each SNR (reliability.py).
            found = _detect(**{**params, "outdir": str(stage.scratch("negatives")),
                               "model": model or mdl.name, "threshold": blobs.threshold,
                               "delta_max": None, "progress": False, "negatives": False,
                               "formats": ["fits"], "overwrite": True, "negate": True,
                               "whitened": other if whitening else None,
                               "subtracted": searched if background == "local" else None})
            if other is not None:
                log.warning("--negatives with a confirming image (--confirm-image, or the "
                            "whitened image): a noise peak that a source in the confirming image "
                            "confirms has no counterpart in the images times -1, so the estimates "
                            "are optimistic (README, 'Reliability')")
            negative_table = read_catalog(found["catalog"])
            negative = _negatives(table, negative_table["snr"])
            write_catalog(negative_table, stage, negatives_name, ["fits"])
        write_catalog(table, stage, names["base"], formats)
        fits.setval(map_path, "RFTHRESH", value=blobs.threshold)
    summary = {"image": image, "model": mdl.name, "model_reason": why, "n_sources": len(table),
               "threshold": blobs.threshold,
               "threshold_rule": "fixed" if threshold is not None else "dynamic",
               "noise": sigma, "noise_mode": noise, "tbd": tbd, "tbd_for": tbd_for,
               "n_refined": n_refined, "n_to_blob_peak": n_to_peak,
               "response_check": check, "n_weak_response": int(weak.sum()),
               "symmetries": n_sym, "taper": taper_fwhm, "n_untapered": n_untapered,
               "n_shape_dropped": n_shape,
               "confirmed_by": confirm_name if other is not None else None,
               "n_unconfirmed": n_unconfirmed, "n_outside_confirmation": n_outside,
               "artefact_check": t_artefact, "n_artefacts": n_artefacts,
               "negatives": negative,
               "catalog": str(Path(outdir) / names.get("fits", names[formats[0]])),
               "map": str(Path(outdir) / map_name), "chunk": chunk,
               "negatives_catalog": (str(Path(outdir) / (negatives_name + ".fits"))
                                     if negatives else None), "bin": factor,
               "scheduler": where,
               "seconds": {"noise": t1 - t0, "network": t2 - t1, "tbd": t3 - t2,
                           "total": time.perf_counter() - t0}}
    log.info("timings: noise %.1f s, network + map %.1f s, blob detection %.1f s, total %.1f s",
             *summary["seconds"].values())
    if negate:
        return summary
    print(f"radiofind detect: {len(table)} sources in {Path(image).name} (model {mdl.name}, "
          f"{why}; noise {sigma:.3g}{' (local)' if noise == 'local' else ''}, threshold "
          f"{blobs.threshold:.3g}) -> {outdir}")
    if negative is not None:
        snrs = " / ".join(negative["above"])
        print(f"radiofind detect --negatives: {negative['n']} detections in the image times -1, "
              f"{' / '.join(str(v) for v in negative['above'].values())} above SNR {snrs}; "
              f"estimated purity above SNR {snrs}: "
              + " / ".join("-" if v is None else f"{v:.2f}" for v in negative["purity"].values()))
    return summary
