"""The truth catalogue of a simulated sky, with each source's SNR measured in each image.

Columns: ``id``, ``ra``, ``dec`` (deg), ``flux`` (Jy), ``x``, ``y`` (0-based pixels of the output
images), ``snr_input`` (the drawn SNR: flux over the theoretical natural-weight noise), ``pb``
(the primary beam's gain at the source, with ``simulate --primary-beam`` only: the images see
``flux * pb``), ``maj``, ``min``, ``pa`` (with ``simulate --resolved`` only: each source's
Gaussian FWHM in arcsec and position angle in degrees, 0 for a point; ``flux`` is then
integrated) and, per weighting imaged, ``snr_<weighting>``: the restored image's value at the
source's pixel over that image's noise, measured by :func:`radiofind.noise.measure_snr` with the
sources masked - the one definition of SNR that detections are scored with too.
"""

from __future__ import annotations

import os

import numpy as np
from astropy.table import Table

from radiofind.io.images import read_image
from radiofind.noise import measure_snr
from radiofind.simulation.sky import PointSky


def truth_table(sky: PointSky, meta: dict | None = None) -> Table:
    """The truth catalogue of ``sky`` (no measured SNRs yet).

    Parameters
    ----------
    sky
        The simulated sources.
    meta
        Header keywords (at most 8 characters, FITS-style) to record: pointing, telescope, seed...
    """
    table = Table()
    table["id"] = np.arange(len(sky), dtype=np.int32)
    table["ra"] = np.asarray(sky.ra, dtype=np.float64)
    table["dec"] = np.asarray(sky.dec, dtype=np.float64)
    table["flux"] = np.asarray(sky.flux, dtype=np.float64)
    # Floats like every radiofind catalogue's x/y, though truth positions are whole pixels.
    table["x"] = np.asarray(sky.x, dtype=np.float64)
    table["y"] = np.asarray(sky.y, dtype=np.float64)
    table["snr_input"] = np.asarray(sky.snr, dtype=np.float64)
    if sky.gain is not None:
        table["pb"] = np.asarray(sky.gain, dtype=np.float64)
    if sky.major is not None:
        for name, values, unit in (("maj", sky.major, "arcsec"), ("min", sky.minor, "arcsec"),
                                   ("pa", sky.pa, "deg")):
            table[name] = np.asarray(values, dtype=np.float64)
            table[name].unit = unit
    table["ra"].unit = table["dec"].unit = "deg"
    table["flux"].unit = "Jy"
    table["x"].unit = table["y"].unit = "pix"
    table.meta["FLUXUNIT"] = (float(sky.flux_unit), "Jy of SNR 1 (theoretical natural noise)")
    for key, value in (meta or {}).items():
        table.meta[key] = value
    return table


def add_measured_snr(table: Table, image_path: str | os.PathLike, weighting: str, *,
                     diffuse_at: int | None = None) -> dict:
    """Add column ``snr_<weighting>`` measured in a restored image; return noise and beam.

    Returns
    -------
    dict
        ``noise`` (Jy/beam, sources masked) and ``beam_arcsec`` (``bmaj``, ``bmin``, ``bpa`` in
        arcsec, arcsec, deg) of the image; with ``diffuse_at`` (the diffuse halo's centre pixel,
        the same on both axes) also ``diffuse_peak_snr``, the image there over the noise.
    """
    image = read_image(image_path)
    snr, noise = measure_snr(image, np.asarray(table["x"]), np.asarray(table["y"]),
                             known_sources=True)
    table[f"snr_{weighting}"] = snr
    table.meta[noise_keyword(weighting)] = (float(noise), f"{weighting} image noise, Jy/beam")
    beam = {"bmaj": image.beam.bmaj * 3600.0, "bmin": image.beam.bmin * 3600.0,
            "bpa": image.beam.bpa}
    info = {"noise": float(noise), "beam_arcsec": beam}
    if diffuse_at is not None:
        info["diffuse_peak_snr"] = float(np.asarray(image.data)[diffuse_at, diffuse_at] / noise)
    return info


def noise_keyword(weighting: str) -> str:
    """The truth header's keyword for a weighting's image noise: ``NOISE_NA``, ``NOISE_UN``, and
    for ``briggs<r>`` ``NSB`` with r's sign and hundredths (``briggs-0.5``: ``NSBM050``)."""
    if weighting in ("natural", "uniform"):
        return f"NOISE_{weighting[:2].upper()}"
    from radiofind.simulation.imaging import robust_of

    robust = robust_of(weighting)
    return f"NSB{'M' if robust < 0 else 'P'}{round(abs(robust) * 100):03d}"


def write_truth(table: Table, path: str | os.PathLike) -> None:
    """Write the truth catalogue as a FITS table (``path`` must not exist: stage it)."""
    table.write(os.fspath(path), format="fits")
