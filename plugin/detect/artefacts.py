"""The artefact check: detections that are a bright source's calibration artefacts.

Antenna-based phase errors that calibration leaves corrupt each visibility of a source by
``exp(i (phi_p - phi_q)) ~ 1 + i (phi_p - phi_q)``: the error term is imaginary, and the Fourier
transform of an imaginary, Hermitian-conjugated error is odd about the source. Around a bright
source ``c`` the image then holds artefacts in pairs, a positive peak at offset ``d`` and a
negative one of the same height at ``-d``, which CLEAN cannot remove. A true source has no such
mirror: the image at its mirror point is noise.

So the image plus its point reflection through the source, ``I(x) + I(2c - x)``, holds no
first-order artefact, while a true source keeps its whole height in it. A detection is taken for
an artefact when (1) that sum at the detection is below ``t`` times the sum's own spread (robust
rms) at the same distance from the source, and (2) the image at the mirror point reads at most
-:data:`MIRROR_SIGMA` times the image's spread there: there is a trough to pair it with. Both
spreads are measured on a ring around the source (:data:`RING_SAMPLES` points, read at random
with a fixed seed, within :data:`RING_HALF_WIDTH` beams of the detection's distance), so the test
adapts to how well the reflection cancels the artefacts there, and to how far they raise the
noise, whatever noise the detections' SNRs were measured against. On a ring the reflection
cancels nothing on (the sum's spread at least :data:`CANCEL_RATIO` times the image's; on noise
alone it is sqrt(2) times) nothing is checked, so an image without artefacts loses no detection
to a chance trough at a mirror point. Only sources of at least
:data:`BRIGHT_SNR` are mirrors (their artefacts reach the noise at 1 % errors; the
:data:`MAX_MIRRORS` brightest of them), only detections
fainter than :data:`MAX_FRACTION` of that source and farther than :data:`MIN_BEAMS` beams from it
are checked, and the bright sources are the image's ``|value|`` peaks, placed to sub-pixel
precision, so the search of the image times -1 (``--negatives``) checks its detections against
the same sources.

``t`` (detect ``--artefact-check``, default :data:`DEFAULT_T`) and :data:`MIRROR_SIGMA` were
chosen by ``benchmarks/artefact_check.py`` on generalisation fields no benchmark reports (seeds
800006-800011, six per telescope, with an SNR-2000 source, with 3 and 1 degree rms antenna phase
errors, ``simulate --phase-error``, and without them): of the settings that dropped no true
source above SNR 5 at either telescope or weighting, the one that dropped most false detections
above SNR 5, unless a neighbour dropped nearly as many for half the true faint sources.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from radiofind.noise import MAD_TO_SIGMA, pixel_values

log = logging.getLogger("radiofind.detect")

BRIGHT_SNR = 100.0  # a source whose artefacts are checked for
# The brightest this many such sources are mirrors: each costs a pass over the detections and
# their mirror points (~0.3 s for 229,468 detections on a 32768² image, which holds 4,527 of
# them); the brightest make the artefacts that reach a detection's height.
MAX_MIRRORS = 16
MAX_FRACTION = 0.1  # detections brighter than this fraction of the bright source are not checked
MIN_BEAMS = 1.5  # nor those this close to it
DEFAULT_T = 1.5  # the reflection's sum below t times its spread (detect --artefact-check)
MIRROR_SIGMA = 3.0  # and the mirror point at most -this times the image's spread
RING_SAMPLES = 4000  # points per ring on which the spreads are measured
RING_HALF_WIDTH = 1.5  # beams
RING_STEP = 1.1  # successive ring radii's ratio: a detection's ring is the nearest on this grid
# Rings where the sum's spread is not below this times the image's (on noise alone: sqrt(2)) hold
# no artefacts the reflection cancels: nothing on them is checked.
CANCEL_RATIO = 1.3


def bright_sources(data, noise: float, beam_pixels: float, *, least: float = BRIGHT_SNR
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (x, y) and SNRs of the peaks of ``|data|`` at least ``least`` times ``noise``,
    one per source: the local maxima over two-beam windows, found block by block, and of those
    within two beams of each other the brightest; the brightest first."""
    import dask
    import dask.array as da
    from scipy import ndimage

    arr = data if hasattr(data, "dask") else da.from_array(np.asarray(data))
    level = least * noise
    empty = np.empty(0), np.empty(0), np.empty(0)
    if not float(da.nanmax(da.fabs(arr)).compute()) >= level:  # most images: one cheap pass
        return empty
    size = 2 * int(beam_pixels) + 1
    half = size // 2
    depth = min(half + 1, *(min(c) for c in arr.chunks))

    def peaks(block: np.ndarray, y0: int, x0: int, ny: int, nx: int):
        """The window maxima at least ``level`` in the core (``ny`` x ``nx`` from ``depth``)
        of one overlapped block whose core starts at image pixel (y0, x0): rows, columns and
        ``|values|``. They are taken around each island above the level alone (its bounding box
        and half a window more), which gives the maxima over the whole block."""
        a = np.where(np.isfinite(block), np.abs(block), 0.0)
        found = np.zeros(a.shape, dtype=bool)
        islands, _ = ndimage.label(a >= level)
        for k, box in enumerate(ndimage.find_objects(islands), start=1):
            ys = slice(max(box[0].start - half, 0), min(box[0].stop + half, a.shape[0]))
            xs = slice(max(box[1].start - half, 0), min(box[1].stop + half, a.shape[1]))
            sub = a[ys, xs]
            found[ys, xs] |= (islands[ys, xs] == k) & (
                sub == ndimage.maximum_filter(sub, size=size, mode="constant"))
        iy, ix = np.nonzero(found[depth:depth + ny, depth:depth + nx])
        return iy + y0, ix + x0, a[iy + depth, ix + depth]

    # Block by block with their margins (dask, so a survey image is never held whole); each
    # block gives its peaks' positions and values at once (reading them back through the dask
    # array read every block holding one again: 4,527 sources of a 32768² image took ~45 s).
    padded = da.overlap.overlap(arr, depth={0: depth, 1: depth}, boundary={0: 0.0, 1: 0.0})
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in arr.chunks]
    tasks = [dask.delayed(peaks)(block, int(starts[0][i]), int(starts[1][j]),
                                 arr.chunks[0][i], arr.chunks[1][j])
             for (i, j), block in np.ndenumerate(padded.to_delayed())]
    parts = dask.compute(*tasks)
    rows, cols, values = (np.concatenate([p[k] for p in parts]) for k in range(3))
    if not rows.size:
        return empty
    yx = np.stack([rows, cols], axis=1)
    values = values.astype(float)
    order = np.argsort(values)[::-1]
    yx, values = yx[order], values[order]
    keep = np.ones(len(values), dtype=bool)
    radius2 = (2.0 * beam_pixels) ** 2
    for i in range(len(values)):  # the peaks are few: one per source and two beams
        if keep[i]:
            d2 = ((yx[i + 1:] - yx[i]) ** 2).sum(axis=1)
            keep[i + 1:] &= d2 > radius2
    return yx[keep, 1].astype(float), yx[keep, 0].astype(float), values[keep] / noise


def refined(pixels, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel positions of the ``|value|`` peaks at integer pixels (x, y): the vertex of the
    parabola through each peak and its two neighbours along each axis (an edge peak stays)."""
    from radiofind.detect.positions import parabola_vertex

    x, y = np.asarray(x, float), np.asarray(y, float)

    def at(dx: int, dy: int) -> np.ndarray:
        return np.abs(pixel_values(pixels, x + dx, y + dy))

    centre = at(0, 0)
    return (x + parabola_vertex(at(-1, 0), centre, at(1, 0)),
            y + parabola_vertex(at(0, -1), centre, at(0, 1)))


def _spread(values: np.ndarray) -> float:
    """Robust rms (the median absolute deviation, as a Gaussian's sigma) of the finite values;
    NaN below 50."""
    values = values[np.isfinite(values)]
    if values.size < 50:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def ring_spreads(pixels, cx: float, cy: float, radii: np.ndarray, beam_pixels: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Robust rms of ``I(x) + I(2c - x)`` and of ``I(x)`` on rings around ``c`` = (cx, cy) of the
    given radii (pixels), each :data:`RING_HALF_WIDTH` beams wide either side, from
    :data:`RING_SAMPLES` points (fixed seed) where both the point and its mirror lie on the
    image; NaN where fewer than 50 do."""
    rng = np.random.default_rng(0)
    radii = np.asarray(radii, float)
    n = RING_SAMPLES
    r = radii[:, None] + rng.uniform(-1, 1, (radii.size, n)) * RING_HALF_WIDTH * beam_pixels
    r = np.maximum(r, 0.5 * beam_pixels)  # not the source itself
    theta = rng.uniform(0, 2 * np.pi, (radii.size, n))
    px, py = cx + r * np.cos(theta), cy + r * np.sin(theta)
    a = pixel_values(pixels, px.ravel(), py.ravel()).reshape(px.shape)
    b = pixel_values(pixels, (2 * cx - px).ravel(), (2 * cy - py).ravel()).reshape(px.shape)
    return (np.array([_spread(row) for row in a + b]),
            np.array([_spread(np.where(np.isfinite(rb), ra, np.nan))
                      for ra, rb in zip(a, b, strict=True)]))


def artefact_statistics(pixels, x, y, snr: np.ndarray | None, noise,
                        bright: tuple[np.ndarray, np.ndarray, np.ndarray], beam_pixels: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each detection at (x, y), of SNR ``snr`` against ``noise`` (scalar or per detection;
    ``snr`` None: the image there over ``noise``), and the ``bright`` source (x, y, SNR) it is
    most artefact-like about: the image at its mirror point over ``noise`` (the mirror SNR), the
    reflection's sum at it over that sum's spread on the ring (``sum_z``), and the mirror point
    over the image's spread there (``mirror_z``).
    NaN where no source checks the detection (too near, too bright, the mirror off the image, or
    a ring on which the reflection cancels nothing: the sum's spread not below
    :data:`CANCEL_RATIO` times the image's)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    noise = np.broadcast_to(np.asarray(noise, float), x.shape)
    mirror, sum_z, mirror_z = (np.full(x.shape, np.nan) for _ in range(3))
    if not x.size or not len(bright[0]):
        return mirror, sum_z, mirror_z
    here = pixel_values(pixels, x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = here / noise if snr is None else np.asarray(snr, float)
    bright = tuple(np.asarray(b)[:MAX_MIRRORS] for b in bright)  # the brightest first
    cxs, cys = refined(pixels, bright[0], bright[1])
    for cx, cy, bsnr in zip(cxs, cys, bright[2], strict=True):
        dist = np.hypot(x - cx, y - cy)
        check = (dist > MIN_BEAMS * beam_pixels) & (snr < MAX_FRACTION * bsnr)
        if not check.any():
            continue
        there = np.full(x.shape, np.nan)
        there[check] = pixel_values(pixels, 2 * cx - x[check], 2 * cy - y[check])
        check &= np.isfinite(there) & np.isfinite(here)
        if not check.any():
            continue
        # Each detection's ring: the nearest radius on a grid of ratio RING_STEP.
        start = MIN_BEAMS * beam_pixels
        k = np.rint(np.log(dist[check] / start) / math.log(RING_STEP)).astype(int)
        ks, inverse = np.unique(k, return_inverse=True)
        s_sum, s_img = ring_spreads(pixels, cx, cy, start * RING_STEP ** ks, beam_pixels)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (here[check] + there[check]) / s_sum[inverse]
            mz = there[check] / s_img[inverse]
            cancels = s_sum[inverse] < CANCEL_RATIO * s_img[inverse]
        idx = np.flatnonzero(check)
        better = cancels & (np.isnan(sum_z[idx]) | (z < sum_z[idx]))
        idx, z, mz = idx[better], z[better], mz[better]
        sum_z[idx], mirror_z[idx] = z, mz
        mirror[idx] = there[idx] / noise[idx]
    return mirror, sum_z, mirror_z


def artefacts(pixels, x, y, snr, noise, bright: tuple[np.ndarray, np.ndarray, np.ndarray],
              beam_pixels: float, t: float, *, mirror_sigma: float = MIRROR_SIGMA
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which detections (see :func:`artefact_statistics`) are artefacts: the reflection's sum
    below ``t`` times its spread and the mirror point at most ``-mirror_sigma`` times the
    image's; with the mirror SNR and the sum's z each has (NaN where none was checked)."""
    mirror, sum_z, mirror_z = artefact_statistics(pixels, x, y, snr, noise, bright, beam_pixels)
    with np.errstate(invalid="ignore"):
        flagged = (sum_z < t) & (mirror_z <= -mirror_sigma)
    return flagged, mirror, sum_z
