"""The artefact check: detections that are a bright source's calibration artefacts.

Antenna-based phase errors that calibration leaves corrupt each visibility of a source by
``exp(i (phi_p - phi_q)) ~ 1 + i (phi_p - phi_q)``: the error term is imaginary, and the Fourier
transform of an imaginary, Hermitian-conjugated error is odd about the source. Around a bright
source the image then holds artefacts in pairs, a positive peak at offset ``d`` and a negative one
of the same height at ``-d``, which CLEAN cannot remove. A true source has no such mirror: the
image at its mirror point is noise.

So a detection whose point mirrored through a bright source reads at most ``-k`` times the
detection's own SNR is taken for an artefact. Only sources of at least :data:`BRIGHT_SNR` are
mirrors (their artefacts reach the noise at 1 % errors), only detections fainter than
:data:`MAX_FRACTION` of that source and farther than :data:`MIN_BEAMS` beams from it are
checked, and the bright sources are the image's ``|value|`` peaks, so the search of the image
times -1 (``--negatives``) checks its detections against the same sources.

``k`` (detect ``--artefact-check``, default :data:`DEFAULT_K`) was chosen on generalisation fields
no benchmark reports (seeds 800006-800011 with an SNR-2000 source and 3° rms antenna phase errors,
``simulate --phase-error 3``, and without the errors): the smallest of 0.5, 0.6, 0.7, 0.8 that
dropped no true source above SNR 5 at either telescope or weighting.
"""

from __future__ import annotations

import logging

import numpy as np

from radiofind.noise import pixel_values

log = logging.getLogger("radiofind.detect")

BRIGHT_SNR = 100.0  # a source whose artefacts are checked for
MAX_FRACTION = 0.1  # detections brighter than this fraction of the bright source are not checked
MIN_BEAMS = 1.5  # nor those this close to it
DEFAULT_K = 0.8


def bright_sources(data, noise: float, beam_pixels: float, *, least: float = BRIGHT_SNR
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (x, y) and SNRs of the peaks of ``|data|`` at least ``least`` times ``noise``,
    one per source: the local maxima over two-beam windows, found block by block (dask
    ``map_overlap``, so a survey image is never held whole), and of those within two beams of
    each other the brightest."""
    import dask.array as da
    from scipy import ndimage

    arr = data if hasattr(data, "dask") else da.from_array(np.asarray(data))
    level = least * noise
    empty = np.empty(0), np.empty(0), np.empty(0)
    if not float(da.nanmax(da.fabs(arr)).compute()) >= level:  # most images: one cheap pass
        return empty
    size = 2 * int(beam_pixels) + 1

    def peaks(block: np.ndarray) -> np.ndarray:
        a = np.where(np.isfinite(block), np.abs(block), 0.0)
        return (a >= level) & (a == ndimage.maximum_filter(a, size=size, mode="constant"))

    depth = min(size // 2 + 1, *(min(c) for c in arr.chunks))
    mask = arr.map_overlap(peaks, depth=depth, boundary=0.0, dtype=bool,
                           meta=np.empty((0, 0), dtype=bool))
    yx = np.asarray(da.argwhere(mask).compute())
    if not len(yx):
        return empty
    values = np.abs(np.asarray(arr.vindex[yx[:, 0], yx[:, 1]].compute(), dtype=float))
    order = np.argsort(values)[::-1]
    yx, values = yx[order], values[order]
    keep = np.ones(len(values), dtype=bool)
    radius2 = (2.0 * beam_pixels) ** 2
    for i in range(len(values)):  # the peaks are few: one per source and two beams
        if keep[i]:
            d2 = ((yx[i + 1:] - yx[i]) ** 2).sum(axis=1)
            keep[i + 1:] &= d2 > radius2
    return yx[keep, 1].astype(float), yx[keep, 0].astype(float), values[keep] / noise


def artefacts(pixels, x, y, snr, noise, bright: tuple[np.ndarray, np.ndarray, np.ndarray],
              beam_pixels: float, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Which detections at (x, y), of SNR ``snr`` against ``noise`` (scalar or per detection),
    mirror a negative peak through one of the ``bright`` sources (x, y, SNR), and the most
    negative mirror SNR each has (NaN where none was checked)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    snr = np.asarray(snr, float)
    noise = np.broadcast_to(np.asarray(noise, float), x.shape)
    mirror = np.full(x.shape, np.nan)
    for bx, by, bsnr in zip(*bright, strict=True):
        far = np.hypot(x - bx, y - by) > MIN_BEAMS * beam_pixels
        check = far & (snr < MAX_FRACTION * bsnr)
        if not check.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            value = pixel_values(pixels, 2 * bx - x[check], 2 * by - y[check]) / noise[check]
        current = mirror[check]
        mirror[check] = np.where(np.isnan(current) | (value < current), value, current)
    with np.errstate(invalid="ignore"):
        flagged = mirror <= -k * snr
    return flagged, mirror
