"""``radiofind detect``: image in, catalogue and network output map out."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.io.catalog import check_formats, make_catalog, output_names, write_catalog
from radiofind.io.images import read_image, write_fits_to
from radiofind.io.outputs import staged_outputs
from radiofind.noise import robust_rms

log = logging.getLogger("radiofind.detect")


def detect(*, image: str, outdir: str, model: str | None = None, delta_max: int | None = None,
           a_min: int | None = None, centre: str | None = None, threshold: float | None = None,
           deblend: float | None = None, formats=("fits", "csv", "ds9", "crtf"),
           overwrite: bool = False) -> dict:
    """Detect point sources in ``image`` and write the catalogue and the output map.

    Parameters are those of the ``radiofind.detect`` cab. Returns a summary dict (model used,
    threshold, number of sources, output paths, timings).
    """
    from radiofind.detect.blobs import DEBLEND_BEAMS, find_blobs
    from radiofind.detect.inference import predict_map
    from radiofind.detect.models import resolve_model, select_model

    formats = check_formats(formats)
    for name, value, low in (("delta_max", delta_max, 1), ("a_min", a_min, 1)):
        if value is not None and value < low:
            raise RadiofindError(f"{name} must be >= {low}, got {value}")
    t0 = time.perf_counter()
    img = read_image(image)
    names = output_names(image, formats, "radiofind")
    map_name = names["base"] + "-map.fits"
    planned = [names[f] for f in formats] + [map_name]
    if model:
        mdl, why = resolve_model(model), "--model"
    else:
        mdl, why = select_model(img.telescope, img.beam_pixels,
                                str(img.header.get("WSCWEIGH", "")))
    log.info("using model %s (%s)", mdl.name, why)
    if deblend is not None and deblend < 0:
        raise RadiofindError(f"deblend must be >= 0 beams, got {deblend}")
    tbd = {"deblend_beams": DEBLEND_BEAMS, **mdl.tbd}
    tbd.update({k: v for k, v in (("delta_max", delta_max), ("a_min", a_min), ("centre", centre),
                                  ("deblend_beams", deblend)) if v is not None})

    with staged_outputs(outdir, planned, overwrite=overwrite) as stage:
        valid = np.isfinite(img.data)
        noise = robust_rms(img.data)
        normalised = np.where(valid, img.data / noise, 0.0).astype(np.float32)
        t1 = time.perf_counter()
        tmap = predict_map(mdl.network(), mdl.architecture, normalised)
        t2 = time.perf_counter()
        blobs = find_blobs(tmap, delta_max=tbd["delta_max"], a_min=int(tbd["a_min"]),
                           centre=tbd["centre"], threshold=threshold,
                           n_steps=int(tbd.get("n_steps", 50)), valid=valid,
                           deblend=tbd["deblend_beams"] * img.beam_pixels)
        t3 = time.perf_counter()
        table = make_catalog(img, blobs.x, blobs.y, noise, finder="radiofind",
                             extra={"score": blobs.score, "area": blobs.area.astype(np.int32)})
        table.meta.update({"MODEL": mdl.name, "THRESH": blobs.threshold,
                           "DELTAMAX": tbd["delta_max"], "AMIN": int(tbd["a_min"]),
                           "CENTRE": tbd["centre"]})
        write_catalog(table, stage, names["base"], formats)
        write_fits_to(stage.path(map_name), tmap, img,
                      extra={"BUNIT": "", "RFMODEL": mdl.name, "RFTHRESH": blobs.threshold,
                             "HISTORY": "radiofind network output map (SNR-boosted)"})
    summary = {"image": image, "model": mdl.name, "model_reason": why, "n_sources": len(table),
               "threshold": blobs.threshold, "noise": noise, "tbd": tbd,
               "catalog": str(Path(outdir) / names.get("fits", names[formats[0]])),
               "map": str(Path(outdir) / map_name),
               "seconds": {"read": t1 - t0, "network": t2 - t1, "tbd": t3 - t2,
                           "total": time.perf_counter() - t0}}
    print(f"radiofind detect: {len(table)} sources in {Path(image).name} (model {mdl.name}, "
          f"{why}; noise {noise:.3g}, threshold {blobs.threshold:.3g}) -> {outdir}")
    return summary
