"""``radiofind train``: train a DeepSource network on simulated fields and tune its TBD settings.

1. Fields are split (seeded) into training and validation sets.
2. The network learns to map noise-normalised images to demand images (MSE loss, Adam) from random
   crops with flips and 90° rotations.
3. On the validation fields, the full detection path (chunked inference + TBD) runs over a grid of
   (threshold rule, a_min, centre), the rule being DeepSource's dynamic threshold with a given
   delta_max or one fixed map threshold; the combination with the best PC3 (DeepSource section
   4.3) is written into the model card with all the scores of the search.

The result is a model folder (``card.json`` + ``weights.npz``) usable with ``--model`` or, copied
into ``radiofind/models/``, bundled. Everything is seeded: the same data and seed give the same
model.
"""

from __future__ import annotations

import itertools
import json
import logging
import platform
import time

import numpy as np

from radiofind import __version__
from radiofind.detect.models import TBD_KEYS
from radiofind.errors import RadiofindError
from radiofind.io.outputs import staged_outputs

log = logging.getLogger("radiofind.train")

DELTA_MAX_GRID = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200)
# Fixed thresholds, in the network map's units (the map of an image divided by its noise), in
# steps of sqrt(2): the alternative to Delta_max's dynamic threshold that the search may choose.
# The top reaches past the demand image's value at an SNR-5 source's peak ((1 + b_n) 5^alpha = 3.5
# for the defaults): askap-uniform v2 chose 1.6 when that was the top of the grid.
FIXED_THRESHOLD_GRID = (0.025, 0.035, 0.05, 0.07, 0.1, 0.14, 0.2, 0.28, 0.4, 0.57, 0.8, 1.13,
                        1.6, 2.26, 3.2, 4.5, 6.4)
A_MIN_GRID = (1, 3, 5, 10, 20, 40, 80)
# Centre rules searched by default. The unweighted mean is left out: at low thresholds a blob
# covers many pixels and its mean drifts off the source, and the score rewards that drift, since
# a detection's SNR is the image value at its position, and a bright source detected off its peak
# lands, as a true detection, in a fainter purity bin. A 7-layer meerkat-uniform chose the mean at
# threshold 0.1 / A_min 40: validation PC3 0.077 (0.052 with the centroid), but its held-out
# positions were 0.24 beam off the truth (median; 0.17 with the centroid, 0.14 for v1.1).
SEARCH_CENTRES = ("centroid", "peak")
# The response check (radiofind.detect.blobs.weak_response), searched on request
# (--response-check) once the rule, a_min and centre are chosen: detections at least
# RESPONSE_SNR bright in the image whose network response is below MIN_RESPONSE of a point
# source's. The SNRs are the edges of the 0.5-wide purity bins S90 is decided in on the held-out
# fields; MIN_RESPONSE 0 is no check. Not searched by default: on the four bundled networks the
# checks it chose on validation lost more true sources than false ones on the held-out fields
# (docs/models.md).
RESPONSE_SNR_GRID = (3.75, 4.25, 4.75)
MIN_RESPONSE_GRID = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
PC3_TOLERANCE = 0.0005  # validation PC3 a response or taper check may cost
# The taper check (detect --taper, --taper-snr): Gaussian FWHMs in beams, least SNRs there.
TAPER_GRID = (1.0, 1.5, 2.0, 3.0)
TAPER_SNR_GRID = (2.0, 2.5, 3.0, 3.5, 4.0)
# The shape check (detect --shape-cut, --shape-snr): cuts on the classifier's log-odds, and the
# SNRs below which detections are checked.
SHAPE_CUT_GRID = (-2.0, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0)
SHAPE_SNR_GRID = (5.5, 6.5)
# Least SNR in the whitened image searched for the whitening check (confirm_with "whitened").
WHITEN_SNR_GRID = (2.5, 3.0, 3.5, 4.0, 4.5)
# The least validation completeness above SNR 5 a confirmation's TBD settings may keep (the
# issue's target for bright sources).
MIN_C_GE5 = 0.98


def search_grid(centres, response_check: bool = False, taper_check: bool = False,
                shape_check: bool = False) -> dict:
    """The TBD grid searched, as recorded in model cards."""
    grid = {"delta_max": list(DELTA_MAX_GRID), "threshold": list(FIXED_THRESHOLD_GRID),
            "a_min": list(A_MIN_GRID), "centre": list(centres)}
    if response_check:
        grid |= {"response_snr": list(RESPONSE_SNR_GRID), "min_response": list(MIN_RESPONSE_GRID)}
    if taper_check:
        grid |= {"taper": list(TAPER_GRID), "taper_snr": list(TAPER_SNR_GRID)}
    if shape_check:
        grid |= {"shape_cut": list(SHAPE_CUT_GRID), "shape_snr": list(SHAPE_SNR_GRID)}
    return grid


def tbd_settings(best: dict, centres, response_check: bool = False,
                 taper_check: bool = False, shape_check: bool = False) -> dict:
    """A model card's TBD choice from the search's best trial, with the grid it was chosen from."""
    return {k: best[k] for k in TBD_KEYS} | {
        "searched": search_grid(centres, response_check, taper_check, shape_check)}


def validation_record(best: dict) -> dict:
    """A model card's validation scores from the search's best trial."""
    return {"PC3": best["pc3"], "PC4": best["pc4"], "PC5": best["pc5"], "S90": best["s90"],
            "C_ge5": best["c_ge5"], "P_ge5": best["p_ge5"]}


def confirmed_tbd(best: dict, centres, confirm_with: str, fields=None) -> dict:
    """A model card's ``tbd_confirmed``: the TBD settings detect uses when the searched image
    comes with a --confirm-image, chosen by :func:`search_confirmed`, with their validation
    scores and the grid searched."""
    from radiofind.detect.run import CONFIRM_SNR, WHITENED

    return {"confirm_with": confirm_with, "confirm_snr": best.get("confirm_snr", CONFIRM_SNR),
            **{k: best[k] for k in TBD_KEYS},
            "validation": validation_record(best) | ({"fields": list(fields)} if fields else {}),
            "searched": search_grid(centres) | (
                {"confirm_snr": list(WHITEN_SNR_GRID)} if confirm_with == WHITENED else {})}


def confirmed_keys(confirm_with: str) -> tuple[str, str]:
    """The card's and the history's keys of the TBD search with ``confirm_with`` confirming:
    ``tbd_whitened``/``tbd_search_whitened`` for the searched image whitened by its own noise
    (detect --psf), else ``tbd_confirmed``/``tbd_search_confirmed`` (detect --confirm-image)."""
    from radiofind.detect.run import WHITENED

    kind = "whitened" if confirm_with == WHITENED else "confirmed"
    return f"tbd_{kind}", f"tbd_search_{kind}"


def confirming_file(folder, confirm_with: str, weighting: str):
    """The file a validation field needs for ``confirm_with``: the other weighting's image, or,
    for ``whitened``, the searched image's PSF."""
    from pathlib import Path

    from radiofind.detect.run import WHITENED

    name = f"{weighting}-psf.fits" if confirm_with == WHITENED else f"{confirm_with}-image.fits"
    return Path(folder) / name


def check_confirm_with(confirm_with: str | None, weighting: str, folders) -> None:
    """Refuse a confirmation weighting that is the searched one or that a field lacks."""
    if confirm_with is None:
        return
    if confirm_with == weighting:
        raise RadiofindError(f"confirm_with must be another weighting than the searched "
                             f"{weighting}")
    missing = [confirming_file(f, confirm_with, weighting) for f in folders]
    missing = [f for f in missing if not f.is_file()]
    if missing:
        raise RadiofindError(f"confirm_with {confirm_with}: {len(missing)} validation field(s) "
                             f"have no {missing[0].name} (e.g. {missing[0].parent.name})")


def search_confirmed(fields, tmaps, folders, *, confirm_with: str, n_steps: int,
                     centres=SEARCH_CENTRES, demand: dict, symmetries: int = 1,
                     weighting: str = "uniform") -> tuple[dict, list[dict]]:
    """The TBD search (:func:`search_tbd`) with detect's confirmation in the loop: each
    validation field's detections below detect's default --confirm-snr in the same field's
    ``confirm_with`` image (``<folder>/<confirm_with>-image.fits``) are dropped before scoring.
    ``confirm_with="whitened"``: the searched ``weighting``'s own image whitened with its PSF
    (``<folder>/<weighting>-psf.fits``; :func:`radiofind.io.images.whitened_image`), as detect
    --psf does.

    With the other image removing most noise peaks, a lower threshold pays: meerkat-uniform's
    validation PC3 rose from 0.09 (its plain settings, confirmed) to 0.35 (README, "radiofind
    detect", "TBD settings for confirmation").
    """
    from radiofind.detect.run import CONFIRM_SNR, WHITENED
    from radiofind.io.images import read_image, whitened_image
    from radiofind.noise import WHITEN_CAP, robust_rms

    images = {}
    for field, folder in zip(fields, folders, strict=True):
        path = confirming_file(folder, confirm_with, weighting)
        other = (whitened_image(field.image, path) if confirm_with == WHITENED
                 else read_image(path))
        images[field.name] = (other, robust_rms(other.data))
    snr = list(WHITEN_SNR_GRID) if confirm_with == WHITENED else CONFIRM_SNR
    log.info("TBD search with each field's %s image confirming (SNR >= %s)", confirm_with,
             ", ".join(f"{v:g}" for v in np.atleast_1d(snr)))
    above = {"above": WHITEN_CAP} if confirm_with == WHITENED else {}
    best, trials = search_tbd(fields, tmaps, n_steps=n_steps, centres=centres, demand=demand,
                              confirm={"images": images, "snr": snr, **above},
                              symmetries=symmetries)
    # A confirmation that drops bright sources is not kept: among the trials that find at least
    # MIN_C_GE5 of the validation sources above SNR 5, the best (the whitened image reads a
    # bright CLEANed source lower than the natural image does, and its highest SNRs cost up to
    # 3 % of them: README, "The whitening check").
    complete = [t for t in trials if _number(t["c_ge5"], 1.0) >= MIN_C_GE5]
    return (max(complete, key=_score_key) if complete else best), trials


def retune(*, model: str, data: str, centres=SEARCH_CENTRES, response_check: bool = False,
           confirm_with: str | None = None, symmetries: int | None = None,
           taper_check: bool = False, fields: list[str] | None = None,
           shape_check: bool = False, keep_rule: bool = False,
           confirm_only: bool = False) -> dict:
    """Re-run the TBD search of a trained model on its own validation fields; update its card.

    The validation fields are the ones named in the card, read from ``data``, or those named in
    ``fields`` (more of them make the choice less noisy; none may be one the network was
    trained on), which the card then names. The network is not retrained. The card's ``tbd``
    and ``validation`` are replaced and the search is written to ``history.json``
    (``tbd_search``); with ``confirm_with`` (a weighting), the search with
    that image confirming is run too (:func:`search_confirmed`) and written as the card's
    ``tbd_confirmed`` and the history's ``tbd_search_confirmed`` (``tbd_whitened`` and
    ``tbd_search_whitened`` for ``whitened``). ``symmetries``: search the
    maps averaged over that many orientations (:class:`~radiofind.detect.inference.
    SymmetrisedBlock`; default: the card's ``tbd.symmetries``, else 1), recorded with the
    settings searched. ``taper_check``: search the taper check too (:func:`search_taper`).
    ``shape_check``: fit the shape classifier on the card's training fields (read from ``data``)
    and search its cut (:func:`fit_shape`, :func:`search_shape`). ``keep_rule``: keep the card's
    threshold rule, A_min and centre, and search only the checks asked for on them (a check
    added to a trained model; the card's ``tbd.searched`` keeps the rule's grid as it was).
    ``confirm_only``: run only the search with ``confirm_with``, leaving the card's ``tbd`` and
    ``validation`` as they are (how the bundled uniform cards got ``tbd_whitened``).
    Returns the new card.
    """
    from pathlib import Path

    from radiofind.detect.inference import SymmetrisedBlock, check_symmetries, predict_map
    from radiofind.detect.models import load_model
    from radiofind.evaluate.run import json_safe
    from radiofind.training.dataset import load_field

    mdl = load_model(model)
    card = mdl.card
    names = list(fields) if fields else card["validation"]["fields"]
    trained_on = sorted(set(names) & set(card.get("training", {}).get("fields", [])))
    if trained_on:
        raise RadiofindError(f"the network was trained on {len(trained_on)} of these validation "
                             f"fields ({', '.join(trained_on[:5])}): search on fields it has "
                             f"not seen")
    folders = [Path(data) / name for name in names]
    missing = [str(f) for f in folders if not (f / f"{card['weighting']}-image.fits").is_file()]
    if missing:
        raise RadiofindError(f"validation fields not found: {', '.join(missing[:5])}")
    check_confirm_with(confirm_with, card["weighting"], folders)
    if confirm_only and not confirm_with:
        raise RadiofindError("confirm_only needs confirm_with: the search it runs")
    loaded = [load_field(f, card["weighting"], bin=mdl.trained_bin) for f in folders]
    n_sym = check_symmetries(symmetries or card["tbd"].get("symmetries") or 1)
    net = SymmetrisedBlock(mdl.block(), n_sym)
    tmaps = [predict_map(net, mdl.architecture, f.normalised) for f in loaded]
    n_steps = int(card["tbd"].get("n_steps", 50))
    shape = None
    if shape_check:
        train_folders = [Path(data) / name for name in card.get("training", {}).get("fields", [])]
        absent = [str(f) for f in train_folders
                  if not (f / f"{card['weighting']}-image.fits").is_file()]
        if not train_folders or absent:
            raise RadiofindError("the shape check is fitted on the model's training fields: "
                                 + (f"not found: {', '.join(absent[:5])}" if absent else
                                    "the card names none"))
        shape, card["shape_classifier"] = fit_shape(
            [load_field(f, card["weighting"], bin=mdl.trained_bin) for f in train_folders])
    history_path = Path(model) / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    grids = {}
    if keep_rule:
        tbd = card["tbd"]
        grids = {"delta_max_grid": [tbd["delta_max"]] if tbd.get("delta_max") else [],
                 "threshold_grid": [tbd["threshold"]] if tbd.get("threshold") else [],
                 "a_min_grid": [tbd["a_min"]]}
    searched = [card["tbd"]["centre"]] if keep_rule else centres
    if not confirm_only:
        best, trials = search_tbd(loaded, tmaps, n_steps=n_steps, centres=searched,
                                  demand=card["demand"], response_check=response_check,
                                  taper_check=taper_check, symmetries=n_sym, shape=shape, **grids)
        settings = tbd_settings(best, searched, response_check, taper_check, shape_check)
        if keep_rule:
            rule_keys = ("delta_max", "threshold", "a_min", "centre")
            settings["searched"] |= {k: card["tbd"].get("searched", {}).get(k) for k in rule_keys}
        card["tbd"].update(settings,
                           retuned=("checks searched on the card's TBD rule" if keep_rule else
                                    "TBD search re-run") + " on the trained network "
                                   "(radiofind.training.train.retune, scripts/retune_tbd.py)")
        card["validation"].update(validation_record(best), fields=names)
        history["tbd_search"] = json_safe(trials)
    if confirm_with:
        best_c, trials_c = search_confirmed(loaded, tmaps, folders, confirm_with=confirm_with,
                                            n_steps=n_steps, centres=centres,
                                            demand=card["demand"], symmetries=n_sym,
                                            weighting=card["weighting"])
        card_key, history_key = confirmed_keys(confirm_with)
        card[card_key] = confirmed_tbd(best_c, centres, confirm_with, names)
        history[history_key] = json_safe(trials_c)
    card = json_safe(card)
    (Path(model) / "card.json").write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    history_path.write_text(history_text(history))
    log.info("retuned %s: %s", mdl.name, card["tbd"])
    return card


def truth_snrs(fields) -> dict:
    """True SNR and noise of every validation field (they do not depend on the detector)."""
    from radiofind.evaluate.run import measure_truth_snr

    return {f.name: measure_truth_snr(f.image, f.truth_ra, f.truth_dec) for f in fields}


def detection_noise(field) -> float:
    """The noise detect measures catalogue SNRs against, for a validation field."""
    from radiofind.detect.run import input_noise
    from radiofind.noise import robust_rms

    return input_noise(field.image, field.grid, robust_rms(field.grid.data))


def grid_factor(field) -> float:
    """Image pixels a side in one pixel of the field's network grid (its ``input.bin``)."""
    return field.image.data.shape[-1] / field.grid.data.shape[-1]


def detect_positions(field, ra, dec, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Detections at sky positions (ra, dec) where detect would put them: on the image's peak
    as :func:`radiofind.detect.positions.refine_bright` moves them, under detect's default rule
    for the field's grid (:func:`~radiofind.detect.positions.default_refine_snr`; its move of a
    faint centre to a bright peak elsewhere in its blob is not made: it needs the blob)."""
    from radiofind.detect.positions import default_refine_snr, refine_bright

    if not np.size(ra):
        return ra, dec
    x, y = field.image.world_to_pixel(ra, dec)
    x, y, _, _ = refine_bright(field.image.data, x, y, noise,
                               beam_pixels=field.image.beam_pixels,
                               refine_snr=default_refine_snr(grid_factor(field)))
    return field.image.pixel_to_world(x, y)


def validation_scores(fields, tables, *, a_min: int, centre: str, truth: dict,
                      response: dict | None = None, det_noise: dict | None = None,
                      confirm: dict | None = None, shape: dict | None = None,
                      snr_bin: float = 0.5, match_radius: float = 2 / 3) -> dict:
    """Score every validation field's blobs together (as DeepSource does).

    ``tables``: one :func:`radiofind.detect.blobs.blob_table` per field, at that field's
    threshold; ``a_min`` and ``centre`` pick the sources from it as detect does, and
    :func:`detect_positions` places them as detect does: the scores' purity bins read the
    image at each detection's position.
    ``response``: the keyword arguments of :func:`radiofind.detect.blobs.weak_response` but the
    score and SNR (None: no response check); the SNR is the image's at the blob centre over the
    noise detect measures (``det_noise``, field name -> :func:`detection_noise`; computed when
    not given), not the truth's source-free noise the scores use: on the held-out ASKAP natural
    fields detect's is 1.5-3 % higher, and a check tuned with the other moved detections across
    the bin edges S90 is decided on.
    ``confirm``: detect's --confirm-image, as ``{"images": {field name: (other image, its
    noise)}, "snr": confirm_snr}``: detections below that SNR in the other image are dropped;
    with ``"above"``, only those below that SNR in the image (the whitening check's cap).
    ``shape``: detect's shape check, as ``{"classifier": ShapeClassifier, "cut": shape_cut,
    "snr": shape_snr}``, on the field's network input, before the confirmation.
    """
    from radiofind.detect.blobs import select_blobs, weak_response
    from radiofind.detect.run import sky_snr
    from radiofind.detect.shape import dropped
    from radiofind.evaluate.run import above_five, match_field, score_fields
    from radiofind.noise import pixel_values

    matches = []
    for field, table in zip(fields, tables, strict=True):
        grid = field.grid
        x, y, _, score = select_blobs(table, a_min=a_min, centre=centre,
                                      width=grid.data.shape[1])
        snr, noise = truth[field.name]
        ra, dec = grid.pixel_to_world(x, y)
        sigma = (det_noise or {}).get(field.name) or detection_noise(field)
        if response is not None:
            ix, iy = field.image.world_to_pixel(ra, dec)
            drop = weak_response(score, pixel_values(field.image.data, ix, iy) / sigma,
                                 **response)
            ra, dec = ra[~drop], dec[~drop]
        ra, dec = detect_positions(field, ra, dec, sigma)
        if shape is not None and np.size(ra):
            gx, gy = grid.world_to_pixel(ra, dec)
            scores, peak = shape["classifier"].scores(field.normalised, gx, gy, grid.beam_pixels)
            keep = ~dropped(scores, peak, cut=shape["cut"], below_snr=shape["snr"])
            ra, dec = ra[keep], dec[keep]
        if confirm is not None:
            other, other_noise = confirm["images"][field.name]
            keep = ~(sky_snr(other, ra, dec, other_noise) < confirm["snr"])  # NaN: outside, kept
            if confirm.get("above") is not None:  # detections this bright are not checked
                ix, iy = field.image.world_to_pixel(ra, dec)
                keep |= pixel_values(field.image.data, ix, iy) / sigma >= confirm["above"]
            ra, dec = ra[keep], dec[keep]
        matches.append(match_field(field.image, field.truth_ra, field.truth_dec, snr, noise,
                                   ra, dec, match_radius=match_radius))
    return {**score_fields(matches, snr_bin=snr_bin), **above_five(matches)}


def search_tbd(fields, tmaps, *, n_steps: int, centres=SEARCH_CENTRES, demand: dict,
               response_check: bool = False, confirm: dict | None = None,
               taper_check: bool = False, symmetries: int = 1,
               delta_max_grid=DELTA_MAX_GRID, a_min_grid=A_MIN_GRID,
               threshold_grid=FIXED_THRESHOLD_GRID, bins: bool = False,
               shape=None) -> tuple[dict, list[dict]]:
    """Grid search of the threshold rule, a_min and centre, maximising validation PC3 (ties:
    lower S90), then, with ``response_check``, of the response check for the chosen ones
    (:func:`search_response`; without, the best trial has none: ``min_response`` 0), then,
    with ``taper_check``, of the taper check (:func:`search_taper`; without: ``taper`` None),
    then, given a ``shape`` classifier, of its cut (:func:`search_shape`; without:
    ``shape_cut`` None).
    Every trial records ``symmetries``: the orientations ``tmaps`` were averaged over.

    Each trial also records completeness and purity above SNR 5 (``c_ge5``, ``p_ge5``), which do
    not rank the rules: ranking by them first was tried and, with 32 validation fields, decided
    on one or two detections (held-out purity above SNR 5 fell for MeerKAT uniform and rose for
    ASKAP uniform; docs/models.md).

    The threshold rule is DeepSource's dynamic one with each ``delta_max`` of
    ``DELTA_MAX_GRID``, or one fixed map threshold of ``FIXED_THRESHOLD_GRID`` for every image.
    Each trial has both keys, the rule it did not use set to None. The blobs above a field's
    threshold do not depend on a_min or the centre rule: they are found once per rule and field.
    ``delta_max_grid``, ``threshold_grid`` and ``a_min_grid`` replace the grids (an empty
    ``delta_max_grid``: fixed thresholds only; an empty ``threshold_grid``: dynamic only);
    ``bins``: trials also record purity and completeness at SNR 3-4 and 4-5 (``p3``, ``c3``,
    ``p4``, ``c4``).
    """
    from radiofind.detect.blobs import (
        CENTRES,
        DEBLEND_BEAMS,
        as_tiles,
        blob_table,
        dynamic_threshold,
        split_levels,
    )

    centres = tuple(centres)
    if not centres or set(centres) - set(CENTRES):
        raise RadiofindError(f"centres must be among {', '.join(CENTRES)}, got {centres}")
    trials = []
    truth = truth_snrs(fields)
    det_noise = {f.name: detection_noise(f) for f in fields}
    tiles = [as_tiles(t, np.isfinite(f.grid.data)) for f, t in zip(fields, tmaps, strict=True)]
    inputs = [as_tiles(f.normalised) for f in fields]  # the network's input, as detect's
    levels = split_levels(demand["alpha"], demand["b_n"])  # as detect deblends

    def rule_tables(delta_max, fixed) -> list:
        """Every field's blobs above its threshold under one rule (dynamic or fixed)."""
        taus = [fixed if fixed is not None else
                dynamic_threshold(t, delta_max=delta_max, n_steps=n_steps)[0] for t in tiles]
        return [blob_table(t, tau, deblend=DEBLEND_BEAMS * f.grid.beam_pixels, snr=s, **levels)
                for f, t, s, tau in zip(fields, tiles, inputs, taus, strict=True)]

    rules = [(d, None) for d in delta_max_grid] + [(None, t) for t in threshold_grid]
    # A confirmation's SNR may be a grid too (the whitened image's SNRs are on no scale of
    # their own): each trial records the one it used.
    confirm_snrs = [None] if confirm is None else list(np.atleast_1d(confirm["snr"]))
    for delta_max, fixed in rules:
        tables = rule_tables(delta_max, fixed)
        for a_min, centre, c_snr in itertools.product(a_min_grid, centres, confirm_snrs):
            s = validation_scores(fields, tables, a_min=a_min, centre=centre, truth=truth,
                                  det_noise=det_noise,
                                  confirm=None if confirm is None else {**confirm, "snr": c_snr})
            trials.append({"delta_max": delta_max, "threshold": fixed, "a_min": a_min,
                           "centre": centre, "response_snr": None, "min_response": 0.0,
                           "symmetries": symmetries, "taper": None, "taper_snr": None,
                           "shape_cut": None, "shape_snr": None,
                           **({} if c_snr is None else {"confirm_snr": float(c_snr)}),
                           **_trial_scores(s, bins=bins)})

    best = max(trials, key=_score_key)
    if response_check:
        log.info("TBD rule (delta_max %s, threshold %s), a_min %d, centre %s: searching the "
                 "response check", best["delta_max"], best["threshold"], best["a_min"],
                 best["centre"])
        best, checks = search_response(fields, rule_tables(best["delta_max"], best["threshold"]),
                                       best, truth=truth, demand=demand, det_noise=det_noise)
        trials += checks
    if taper_check:
        log.info("searching the taper check on the chosen rule")
        best, checks = search_taper(fields, rule_tables(best["delta_max"], best["threshold"]),
                                    best, truth=truth, demand=demand, det_noise=det_noise)
        trials += checks
    if shape is not None:
        log.info("searching the shape check on the chosen rule")
        best, checks = search_shape(fields, rule_tables(best["delta_max"], best["threshold"]),
                                    best, truth=truth, demand=demand, det_noise=det_noise,
                                    classifier=shape)
        trials += checks
    return best, trials


def _trial_scores(s: dict, bins: bool = False) -> dict:
    out = {k: s[k] for k in ("pc3", "pc4", "pc5", "s90", "c_ge5", "p_ge5")}
    for b in ("3", "4") if bins else ():
        at = s["at_snr"].get(b, {})
        out["p" + b], out["c" + b] = at.get("purity"), at.get("completeness")
    return out


def search_response(fields, tables, best: dict, *, truth: dict, demand: dict,
                    det_noise: dict | None = None) -> tuple[dict, list[dict]]:
    """Search the response check (``RESPONSE_SNR_GRID`` x ``MIN_RESPONSE_GRID``) on the chosen
    TBD settings' blobs (``tables``); returns the best trial and all of them.

    A check may not lower the validation PC3 by more than ``PC3_TOLERANCE``; among those that
    keep it, the lowest S90 wins, then the higher PC4 + PC5, then the higher of completeness and
    purity above SNR 5 (whichever is lower), then the weaker check. With no check better than
    none, ``min_response`` stays 0. (Ranking purity above SNR 5 before PC4 + PC5 chose, for
    askap-uniform, a check that raised validation P(>=5) from 0.974 to 0.984, one or two
    detections, at the cost of PC4 0.335 -> 0.309 and PC5 0.889 -> 0.860; measured while the
    check's SNRs still used the truth's noise.)
    """
    trials = []
    det_noise = det_noise or {f.name: detection_noise(f) for f in fields}
    for response_snr, min_response in itertools.product(RESPONSE_SNR_GRID, MIN_RESPONSE_GRID):
        if min_response == 0 and response_snr != RESPONSE_SNR_GRID[0]:
            continue  # no check: one trial
        s = validation_scores(fields, tables, a_min=best["a_min"], centre=best["centre"],
                              truth=truth, det_noise=det_noise,
                              response={"alpha": demand["alpha"], "b_n": demand["b_n"],
                                        "response_snr": response_snr,
                                        "min_response": min_response})
        trials.append({**{k: v for k, v in best.items()
                          if k in TBD_KEYS and k not in ("response_snr", "min_response")},
                       "response_snr": response_snr if min_response > 0 else None,
                       "min_response": min_response, **_trial_scores(s)})

    return _best_check(trials, strength=lambda t: t["min_response"]), trials


def _best_check(trials: list[dict], *, strength) -> dict:
    """The best of a check's trials (the first: no check): one that lowers validation PC3 by
    more than ``PC3_TOLERANCE`` never wins; then the lowest S90, the higher PC4 + PC5, the higher
    of completeness and purity above SNR 5 (whichever is lower), the weaker check
    (``strength(trial)``)."""
    num = _number
    base = num(trials[0]["pc3"], -1.0)

    def key(t: dict) -> tuple:
        keeps = num(t["pc3"], -1.0) >= base - PC3_TOLERANCE
        pc45 = num(t["pc4"], 0.0) + num(t["pc5"], 0.0)
        above = min(num(t["c_ge5"], 0.0), num(t["p_ge5"], 0.0))
        return (keeps, -num(t["s90"], 99.0), round(pc45, 3), round(above, 4), -strength(t))

    return max(trials, key=key)


def _chosen_response(best: dict, demand: dict) -> dict | None:
    """The response check of a chosen trial, as :func:`validation_scores` takes it (None: none)."""
    if not best["min_response"] > 0:
        return None
    return {"alpha": demand["alpha"], "b_n": demand["b_n"],
            "response_snr": best["response_snr"], "min_response": best["min_response"]}


def _tapered_images(fields, fwhm: float) -> dict:
    """Each field's image tapered to ``fwhm`` beams (:func:`radiofind.io.images.tapered`) with
    its robust noise, as detect's taper check makes them: field name -> (image, noise)."""
    from radiofind.io.images import tapered
    from radiofind.noise import robust_rms

    images = {}
    for f in fields:
        smooth = tapered(f.image, fwhm)
        images[f.name] = (smooth, robust_rms(smooth.data))
    return images


def search_taper(fields, tables, best: dict, *, truth: dict, demand: dict,
                 det_noise: dict | None = None) -> tuple[dict, list[dict]]:
    """Search the taper check (``TAPER_GRID`` x ``TAPER_SNR_GRID``) on the chosen TBD settings'
    blobs (``tables``), with its response check if it has one; returns the best trial (as
    :func:`_best_check` ranks them: no check unless one is better) and all of them.

    Each field's image is tapered and its robust noise measured, as detect does
    (:func:`_tapered_images`), and detections below the SNR there are dropped.
    """
    response = _chosen_response(best, demand)
    det_noise = det_noise or {f.name: detection_noise(f) for f in fields}
    rule = {k: best[k] for k in TBD_KEYS if k not in ("taper", "taper_snr")}

    def trial(fwhm, snr, images=None) -> dict:
        s = validation_scores(fields, tables, a_min=best["a_min"], centre=best["centre"],
                              truth=truth, response=response, det_noise=det_noise,
                              confirm=None if images is None else {"images": images, "snr": snr})
        return {**rule, "taper": fwhm, "taper_snr": snr, **_trial_scores(s)}

    trials = [trial(None, None)]
    for fwhm in TAPER_GRID:
        images = _tapered_images(fields, fwhm)
        trials += [trial(fwhm, snr, images) for snr in TAPER_SNR_GRID]
    return _best_check(trials, strength=lambda t: t["taper_snr"] or 0.0), trials


def search_shape(fields, tables, best: dict, *, truth: dict, demand: dict, classifier,
                 det_noise: dict | None = None) -> tuple[dict, list[dict]]:
    """Search the shape check (``SHAPE_CUT_GRID`` x ``SHAPE_SNR_GRID``) of a fitted
    ``classifier`` on the chosen TBD settings' blobs (``tables``), with their response and taper
    checks; returns the best trial (as :func:`_best_check` ranks them: no check unless one is
    better) and all of them."""
    response = _chosen_response(best, demand)
    confirm = None
    if best.get("taper"):
        confirm = {"images": _tapered_images(fields, best["taper"]), "snr": best["taper_snr"]}
    det_noise = det_noise or {f.name: detection_noise(f) for f in fields}
    rule = {k: best[k] for k in TBD_KEYS if k not in ("shape_cut", "shape_snr")}

    def trial(cut, snr) -> dict:
        s = validation_scores(fields, tables, a_min=best["a_min"], centre=best["centre"],
                              truth=truth, response=response, det_noise=det_noise,
                              confirm=confirm, shape=None if cut is None else
                              {"classifier": classifier, "cut": cut, "snr": snr})
        return {**rule, "shape_cut": cut, "shape_snr": snr, **_trial_scores(s)}

    trials = [trial(None, None)] + [trial(cut, snr) for snr in SHAPE_SNR_GRID
                                    for cut in SHAPE_CUT_GRID]
    return _best_check(trials, strength=lambda t: (t["shape_cut"] if t["shape_cut"] is not None
                                                   else -np.inf)), trials


def fit_shape(train_fields) -> tuple:
    """Fit the shape classifier (:mod:`radiofind.detect.shape`) on the training fields' labelled
    peaks, on the network's input; returns it and its card entry (``shape_classifier``)."""
    from radiofind.detect import shape

    t0 = time.perf_counter()
    half = shape.half_width(float(np.median([f.grid.beam_pixels for f in train_fields])))
    parts = [shape.labelled_peaks(f.normalised, f.truth_x, f.truth_y, f.grid.beam_pixels, half)
             for f in train_fields]
    feats = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classifier = shape.fit(feats, labels, half)
    n1, n0 = int((labels == 1).sum()), int((labels == 0).sum())
    log.info("shape classifier: %d source and %d noise peaks of SNR >= %g in %d training fields, "
             "%d x %d pixels, fitted in %.1f s", n1, n0, shape.FROM_SNR, len(train_fields),
             2 * half + 1, 2 * half + 1, time.perf_counter() - t0)
    return classifier, {**classifier.card(), "from_snr": shape.FROM_SNR,
                        "source_beams": round(shape.SOURCE_BEAMS, 4),
                        "noise_beams": shape.NOISE_BEAMS, "l2": shape.L2,
                        "training_peaks": {"fields": len(train_fields), "sources": n1,
                                           "noise": n0}}


def _values(name: str, value, low: float, high: float | None = None) -> list[float]:
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    if not values or any(v < low or (high is not None and v > high) for v in values):
        raise RadiofindError(f"{name} must be in [{low}, {high if high is not None else 'inf'}], "
                             f"got {value}")
    return values


def fit_network(train_fields, val_fields, *, demand: dict, rng: np.random.Generator, seed: int,
                epochs: int, steps_per_epoch: int, batch_size: int, crop: int,
                learning_rate: float, n_steps: int, centres, architecture: dict,
                response_check: bool = False, symmetries: int = 1,
                taper_check: bool = False, noise_peak_fraction: float = 0.0,
                shape=None) -> dict:
    """Train one network for one demand image, then search its TBD settings on validation
    (on its maps averaged over ``symmetries`` orientations, as detect will make them), with the
    ``shape`` classifier's check if one is given."""
    import keras

    from radiofind.detect.inference import KerasBlock, SymmetrisedBlock, predict_map
    from radiofind.detect.network import DEFAULT_ARCHITECTURE, build_network
    from radiofind.training.dataset import attach_demand, random_crops

    t0 = time.perf_counter()
    for f in train_fields:
        attach_demand(f, **demand)
    # Seed every source of randomness Keras/TF use (weights, shuffling).
    keras.utils.set_random_seed(seed)
    arch = {**DEFAULT_ARCHITECTURE, **architecture}
    net = build_network(**arch)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    losses = []
    for epoch in range(epochs):
        xs, ys = random_crops(train_fields, steps_per_epoch * batch_size, crop, rng,
                              noise_peak_fraction=noise_peak_fraction)
        hist = net.fit(xs, ys, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        losses.append(float(hist.history["loss"][-1]))
        log.info("alpha %g, b_n %g: epoch %d/%d loss %.5f", demand["alpha"], demand["b_n"],
                 epoch + 1, epochs, losses[-1])
    seconds = time.perf_counter() - t0
    block = SymmetrisedBlock(KerasBlock(net), symmetries)
    tmaps = [predict_map(block, arch, f.normalised) for f in val_fields]
    best, trials = search_tbd(val_fields, tmaps, n_steps=n_steps, centres=centres,
                              demand=demand, response_check=response_check,
                              taper_check=taper_check, symmetries=symmetries, shape=shape)
    log.info("alpha %g, b_n %g: best TBD on validation %s", demand["alpha"], demand["b_n"], best)
    return {"net": net, "arch": arch, "losses": losses, "best": best, "trials": trials,
            "seconds": seconds, "tmaps": tmaps}


def history_text(history: dict) -> str:
    """A model's ``history.json``: each search's trials one to a line, scores to 6 significant
    digits (the searches hold thousands of trials, and the file is bundled with the model)."""
    def rounded(v):
        if isinstance(v, float):
            return float(f"{v:.6g}")
        if isinstance(v, dict):
            return {k: rounded(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rounded(x) for x in v]
        return v

    def lines(v) -> str:
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return "[\n" + ",\n".join(json.dumps(rounded(x), allow_nan=False) for x in v) + "\n]"
        return json.dumps(rounded(v), allow_nan=False)

    return "{\n" + ",\n".join(f"{json.dumps(k)}: {lines(v)}" for k, v in history.items()) + "\n}\n"


def _number(value, missing: float) -> float:
    """A score, or ``missing`` where it is NaN or None (nothing was counted)."""
    return missing if value is None or not np.isfinite(value) else float(value)


def _score_key(best: dict) -> tuple:
    """Best validation PC3 first, then the lower S90 (NaN counts as worst)."""
    return (round(_number(best["pc3"], -1.0), 4), -_number(best["s90"], 99.0))


def train(*, data: str, outdir: str, weighting: str = "natural", name: str | None = None,
          version: str = "1", val_fraction: float = 0.2, epochs: int = 30,
          steps_per_epoch: int = 100, batch_size: int = 16, crop: int = 128,
          learning_rate: float = 1e-3, alpha=(0.75,), b_n=(0.05,),
          horn_radius: float = 15.0, gauss_fwhm: float = 10.0, n_steps: int = 50, bin: int = 1,
          centres=SEARCH_CENTRES, filters: int = 12, n_layers: int = 5,
          response_check: bool = False, confirm_with: str | None = None, symmetries: int = 1,
          taper_check: bool = False, noise_peak_fraction: float = 0.0,
          noise_peak_snr: float = 4.0, shape_check: bool = False, seed: int = 1,
          overwrite: bool = False) -> dict:
    """Train a model on the simulated fields in ``data`` and write it to ``outdir``.

    ``alpha`` and ``b_n`` may be lists: one network is trained (same seed, same crops) for each
    combination, its TBD settings searched, and the one with the best validation PC3 is kept;
    every combination's best scores are recorded in the card (``demand.searched``), the kept
    network's loss curve and full TBD search in ``history.json``. ``confirm_with`` (a weighting,
    e.g. natural for a uniform model): the kept network's TBD settings are also searched with
    each validation field's image of that weighting confirming (:func:`search_confirmed`), for
    detect --confirm-image (card ``tbd_confirmed``); ``whitened``: with each validation field's
    own image whitened by its noise spectrum confirming (its ``<weighting>-psf.fits``), for
    detect --psf (card ``tbd_whitened``). ``symmetries``: the TBD searches run on
    the maps averaged over that many orientations of each image, and detect averages as many
    (card ``tbd.symmetries`` and ``tbd_confirmed.symmetries``). ``taper_check``: the taper
    check is searched on the chosen rule (:func:`search_taper`; card ``tbd.taper``,
    ``tbd.taper_snr``). ``noise_peak_fraction``: that share of the training crops is centred
    near a noise peak of SNR ``noise_peak_snr`` or more (hard negatives;
    :func:`radiofind.training.dataset.find_noise_peaks`), taken from the crops that would
    otherwise fall anywhere. ``shape_check``: the shape classifier is fitted on the training
    fields (:func:`fit_shape`; card ``shape_classifier``) and its cut searched on the chosen
    rule (:func:`search_shape`; card ``tbd.shape_cut``, ``tbd.shape_snr``).
    """
    import copy

    from radiofind.detect.blobs import DEBLEND_BEAMS
    from radiofind.detect.inference import check_symmetries
    from radiofind.detect.network import get_weights
    from radiofind.evaluate.run import json_safe
    from radiofind.training.dataset import (SOURCE_FRACTION, describe_training_set, find_fields,
                                            find_noise_peaks, load_field)

    for pname, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                         ("batch_size", batch_size), ("crop", crop), ("bin", bin),
                         ("filters", filters)):
        if value < 1:
            raise RadiofindError(f"{pname} must be >= 1, got {value}")
    if n_layers < 3:
        raise RadiofindError(f"n_layers must be >= 3 (the shortcut joins layers 1 and 3), got "
                             f"{n_layers}")
    if not 0 < val_fraction < 1:
        raise RadiofindError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0 <= noise_peak_fraction <= 1 - SOURCE_FRACTION:
        raise RadiofindError(f"noise_peak_fraction must be in [0, {1 - SOURCE_FRACTION:g}] (the "
                             f"crops not centred on a source), got {noise_peak_fraction}")
    if not noise_peak_snr > 0:
        raise RadiofindError(f"noise_peak_snr must be positive, got {noise_peak_snr}")
    alphas, b_ns = _values("alpha", alpha, 0.0, 2.0), _values("b_n", b_n, 0.0)
    symmetries = check_symmetries(symmetries)
    folders = find_fields(data, weighting)
    if len(folders) < 2:
        raise RadiofindError("need at least 2 fields (training + validation), "
                             f"found {len(folders)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(folders))
    n_val = max(1, int(round(val_fraction * len(folders))))
    val_folders = [folders[i] for i in sorted(order[:n_val])]
    train_folders = [folders[i] for i in sorted(order[n_val:])]
    check_confirm_with(confirm_with, weighting, val_folders)

    with staged_outputs(outdir, ["card.json", "weights.npz", "history.json"],
                        overwrite=overwrite) as stage:
        train_fields = [load_field(f, weighting, bin=bin) for f in train_folders]
        val_fields = [load_field(f, weighting, bin=bin) for f in val_folders]
        n_peaks = None
        if noise_peak_fraction > 0:
            n_peaks = sum(find_noise_peaks(f, noise_peak_snr) for f in train_fields)
            log.info("%d noise peaks at SNR >= %g in %d training fields; %g of the crops are "
                     "centred near one", n_peaks, noise_peak_snr, len(train_fields),
                     noise_peak_fraction)
        shape, shape_card = fit_shape(train_fields) if shape_check else (None, None)
        telescope = train_fields[0].image.telescope or "unknown"
        beams = np.array([f.image.beam_pixels for f in train_fields + val_fields])
        scales = np.array([f.image.pixel_scale_deg * 3600 for f in train_fields + val_fields])
        import keras

        kept, searched = None, []
        for a, b in itertools.product(alphas, b_ns):
            demand = {"alpha": a, "b_n": b, "horn_radius": horn_radius,
                      "gauss_fwhm": gauss_fwhm}
            # Every combination sees the same crops in the same order (the rng after the split).
            fit = fit_network(train_fields, val_fields, demand=demand, rng=copy.deepcopy(rng),
                              seed=seed, epochs=epochs, steps_per_epoch=steps_per_epoch,
                              batch_size=batch_size, crop=crop, learning_rate=learning_rate,
                              n_steps=n_steps, centres=centres,
                              architecture={"filters": filters, "n_layers": n_layers},
                              response_check=response_check, symmetries=symmetries,
                              taper_check=taper_check,
                              noise_peak_fraction=noise_peak_fraction, shape=shape)
            fit["demand"] = demand
            searched.append({"alpha": a, "b_n": b, **fit["best"],
                             "final_loss": fit["losses"][-1],
                             "train_seconds": round(fit["seconds"], 1)})
            if kept is None or _score_key(fit["best"]) > _score_key(kept["best"]):
                kept = fit
        best, demand, losses, t_train = (kept["best"], kept["demand"], kept["losses"],
                                         kept["seconds"])
        if len(searched) > 1:
            log.info("demand search: kept alpha %g, b_n %g of %d", demand["alpha"], demand["b_n"],
                     len(searched))
        confirmed = None
        if confirm_with:
            confirmed = search_confirmed(val_fields, kept["tmaps"], val_folders,
                                         confirm_with=confirm_with, n_steps=n_steps,
                                         centres=centres, demand=demand,
                                         symmetries=symmetries, weighting=weighting)
        np.savez(stage.path("weights.npz"), **get_weights(kept["net"]))
        name = name or f"{telescope.lower()}-{weighting}"
        card = {
            "name": name, "version": str(version), "telescope": telescope, "weighting": weighting,
            "architecture": kept["arch"],
            "input": {"bin": bin,
                      "normalisation": "image averaged in bin x bin pixel blocks (bin scaled "
                                       "with the beam at detection), divided by "
                                       "radiofind.noise.robust_rms (clipped MAD); blanked "
                                       "pixels set to 0"},
            "demand": {**demand, "searched": {"alpha": alphas, "b_n": b_ns,
                                              "validation": searched}},
            "tbd": {**tbd_settings(best, centres, response_check, taper_check, shape_check),
                    "n_steps": n_steps,
                    "deblend_beams": round(DEBLEND_BEAMS, 4)},
            **({confirmed_keys(confirm_with)[0]: confirmed_tbd(
                confirmed[0], centres, confirm_with, [f.name for f in val_fields])}
               if confirmed else {}),
            **({"shape_classifier": shape_card} if shape_check else {}),
            "valid": {"beam_pixels": [round(float(beams.min()) / 1.5, 2),
                                      round(float(beams.max()) * 1.5, 2)],
                      "beam_pixels_trained": round(float(np.median(beams)), 3),
                      "pixel_scale_arcsec": sorted({round(float(s), 3) for s in scales})},
            "validation": {**validation_record(best), "fields": [f.name for f in val_fields]},
            "training_set": describe_training_set(folders),
            "training": {"data": str(data), "fields": [f.name for f in train_fields],
                         "seed": seed, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                         "batch_size": batch_size, "crop": crop, "learning_rate": learning_rate,
                         "noise_peak_fraction": noise_peak_fraction,
                         **({"noise_peak_snr": noise_peak_snr, "noise_peaks": n_peaks}
                            if noise_peak_fraction > 0 else {}),
                         "final_loss": losses[-1], "train_seconds": round(t_train, 1),
                         "radiofind": __version__, "keras": keras.__version__,
                         "python": platform.python_version()},
        }
        card = json_safe(card)
        stage.path("card.json").write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
        history = {"loss": losses, "tbd_search": kept["trials"]}
        if confirmed:
            history[confirmed_keys(confirm_with)[1]] = confirmed[1]
        stage.path("history.json").write_text(history_text(json_safe(history)))
    print(f"radiofind train: model {name} -> {outdir} (validation PC3 {best['pc3']:.3f}, "
          f"PC5 {best['pc5']:.3f}, S90 {best['s90']:.2f}; {t_train:.0f} s training"
          + (f"; kept alpha {demand['alpha']:g}, b_n {demand['b_n']:g} of {len(searched)}"
             if len(searched) > 1 else "") + ")")
    return card
