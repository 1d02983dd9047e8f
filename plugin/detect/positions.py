"""Catalogue positions of bright detections from the image's own pixels.

The network's blob centre is an estimate on the network's grid: on natural-weighting images that
grid averages 3 x 3 or 4 x 4 pixels, and on held-out MeerKAT and ASKAP fields it put sources with
SNR >= 5 a median 0.10 beam from their true position, where PyBDSF's Gaussian fits gave 0.07-0.09.
Each bright detection is therefore moved to the brightest image pixel within a quarter beam of the
blob centre, then to the vertex of the parabola through that pixel and its two neighbours along
each axis (the usual sub-pixel peak of a sampled beam); its catalogue peak is then the image's
peak, not a value on the beam's flank.

Where the network's grid is the image's own (or finer: narrow beams are interpolated), only
detections at or above ``refine_snr`` (image value at the blob centre over the noise, default
``REFINE_SNR``) move: there the blob centre of a faint source is nearer the truth than the image's
brightest pixel (held-out MeerKAT and ASKAP uniform fields, true SNR 3-5: median 0.17-0.18 beam
against 0.18-0.19 with every detection on its peak). Where the grid averages several pixels a side
(binned natural-weighting models), every detection moves (``default_refine_snr``): there the blob
centre of a faint source lies a median 0.21-0.25 beam from the truth, the image's peak 0.09-0.11,
and PyBDSF's fits 0.15-0.16 (``benchmarks/detection.py``, "offset 3-5"). Earlier the faint
natural detections kept their blob centres, because the evaluation puts a detection in a
purity bin by the image value at its position (DeepSource's definition): off the peak a detection
reads fainter, and since bright sources outnumber noise peaks, bins read lower fill with true
detections. That made radiofind's natural-weighting scores depend on its faint positions being
poor; ``benchmarks/detection.py`` now also scores every finder with its detections on their peaks.

A blob's centre can also miss a bright source the blob holds: the blob covers a fainter neighbour
too, whose flank pulls its centroid, or the network's map peaks off the source. A source of image
SNR 5.4 two beams from one of SNR 1.7 had its detection 0.7 beam away, at SNR 4.6, beyond both
the refinement's trigger and the crossmatch radius. So a detection below ``refine_snr`` at its
centre whose blob's highest image pixel (on the network's grid) leads to an image peak, a local
maximum, at or above ``refine_snr`` more than a quarter beam away is moved to that peak, unless
another detection already lies within the crossmatch radius of it (that peak is found already;
moving would duplicate it). Only blobs the network takes for bright sources are asked
(:func:`radiofind.detect.blobs.input_peaks`).

Each detection's position error (catalogue ``ra_err``, ``dec_err``: one standard deviation, on
the sky, in arcsec) is :func:`position_errors`: noise of gradient covariance ``G`` (measured on
the image, :func:`radiofind.noise.gradient_covariance`) moves the peak of a source shaped like
the noise's autocorrelation by ``inv(G) / SNR²`` (the Cramér-Rao bound; at natural weighting
the noise's autocorrelation is the PSF, whose sharp core a fitted restoring beam hides, so
Condon's (1997) errors from the restoring beam are too large for radiofind's peaks: on
validation fields their offsets above SNR 7 spread 0.5-0.7 times them),
scaled by :data:`POSITION_ERROR_SCALE`, which ``benchmarks/positions.py`` measured on validation
fields (seeds 800006-800011: 1.25-1.7 for the four bundled models, one factor for all; the
restored sources are broader than the noise's autocorrelation).
"""

from __future__ import annotations

import math

import numpy as np

RADIUS_BEAMS = 0.25  # search radius around the blob centre, in beams (FWHM)
WINDOW_BATCH = 16384  # detections whose windows are read at once
REFINE_SNR = 5.0  # default on the image's own grid: detections at or above this SNR are refined
# Position errors: the Cramér-Rao bound from the image's noise gradient times this (module doc).
POSITION_ERROR_SCALE = 1.5


def default_refine_snr(factor: float) -> float:
    """detect's ``refine_snr`` when none is given, for a network grid that averages ``factor``
    image pixels a side: 0 (every detection on its image peak) where the grid is coarser than the
    image's, else ``REFINE_SNR`` (see the module docstring)."""
    return 0.0 if factor > 1 else REFINE_SNR


def parabola_vertex(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset of the vertex of the parabola through (-1, left), (0, centre), (1, right), in
    [-0.5, 0.5]; 0 where the three do not make a maximum."""
    curv = left - 2.0 * centre + right
    ok = np.isfinite(curv) & (curv < 0)
    off = np.zeros(centre.shape)
    off[ok] = 0.5 * (left[ok] - right[ok]) / curv[ok]
    return np.clip(off, -0.5, 0.5)


def peak_positions(data, x: np.ndarray, y: np.ndarray, radius: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel position of the brightest pixel within ``radius`` pixels of each (x, y).

    ``data`` is a 2-D numpy or dask array (only the pixels in the windows are read); positions
    are 0-based pixels. Blanked (NaN) pixels are never chosen; a position whose whole window is
    blank, or that lies off the image, is returned unchanged.
    """
    return window_peaks(data, x, y, radius)[:2]


def window_peaks(data, x: np.ndarray, y: np.ndarray, radius: float, *, sub_pixel: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`peak_positions`, with the brightest pixel's value (NaN where the position is
    returned unchanged) and whether it is a local maximum of the image (no lower than its four
    neighbours; False where unchanged): the brightest pixel of a window on a brighter source's
    flank is not. ``sub_pixel`` False: the brightest pixel itself, without the parabolas."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size > WINDOW_BATCH:
        # A window of pixels per detection: in batches, so that memory does not grow with the
        # catalogue (229,468 detections of a 32768² natural image, ~80 pixels each), taken in
        # order of rows, so that each batch reads a band of the image.
        order = np.argsort(np.nan_to_num(y, nan=-1.0), kind="stable")
        parts = [window_peaks(data, x[k], y[k], radius, sub_pixel=sub_pixel)
                 for k in np.array_split(order, math.ceil(x.size / WINDOW_BATCH))]
        out = []
        for pieces in zip(*parts, strict=True):
            arr = np.empty(x.shape, dtype=pieces[0].dtype)
            arr[order] = np.concatenate(pieces)
            out.append(arr)
        return tuple(out)
    value = np.full(x.shape, np.nan)
    local = np.zeros(x.shape, dtype=bool)
    if x.size == 0:
        return x.copy(), y.copy(), value, local
    ny, nx = data.shape
    r = max(1, math.ceil(radius))
    off = np.arange(-r, r + 1)
    dy, dx = np.meshgrid(off, off, indexing="ij")
    disk = (dx**2 + dy**2 <= max(radius, 1.0) ** 2).ravel()
    dy, dx = dy.ravel()[disk], dx.ravel()[disk]
    placed = np.isfinite(x) & np.isfinite(y)
    xi = np.rint(np.where(placed, x, -1e9)).astype(np.int64)
    yi = np.rint(np.where(placed, y, -1e9)).astype(np.int64)
    inside = placed & (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
    out_x, out_y = x.copy(), y.copy()
    if not inside.any():
        return out_x, out_y, value, local
    xi, yi = xi[inside], yi[inside]
    # Window pixels, plus each pixel's 4 neighbours for the parabolas: read in one gather.
    wx = np.clip(xi[:, None] + dx, 0, nx - 1)
    wy = np.clip(yi[:, None] + dy, 0, ny - 1)
    vals = _gather(data, wy, wx)
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    k = vals.argmax(axis=1)
    rows = np.arange(k.size)
    px, py = wx[rows, k], wy[rows, k]
    good = np.isfinite(vals[rows, k])
    nb_x = np.stack([np.clip(px - 1, 0, nx - 1), px, np.clip(px + 1, 0, nx - 1), px, px], axis=1)
    nb_y = np.stack([py, py, py, np.clip(py - 1, 0, ny - 1), np.clip(py + 1, 0, ny - 1)], axis=1)
    nb = _gather(data, nb_y, nb_x)
    # On the image's edge a pixel lacks a neighbour on one side: no parabola on that axis (its
    # vertex would lie half a pixel out, off the image).
    fx = px + np.where(sub_pixel & (px > 0) & (px < nx - 1),
                       parabola_vertex(nb[:, 0], nb[:, 1], nb[:, 2]), 0.0)
    fy = py + np.where(sub_pixel & (py > 0) & (py < ny - 1),
                       parabola_vertex(nb[:, 3], nb[:, 1], nb[:, 4]), 0.0)
    idx = np.nonzero(inside)[0][good]
    out_x[idx], out_y[idx] = fx[good], fy[good]
    value[idx] = nb[good, 1]
    around = np.where(np.isfinite(nb[:, [0, 2, 3, 4]]), nb[:, [0, 2, 3, 4]], -np.inf).max(axis=1)
    local[idx] = nb[good, 1] >= around[good]
    return out_x, out_y, value, local


def _gather(data, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """data[iy, ix] for in-image index arrays of one shape, from a numpy or a dask array."""
    from radiofind.noise import pixel_values

    return pixel_values(data, ix.ravel(), iy.ravel()).reshape(iy.shape)


def refine_bright(data, x: np.ndarray, y: np.ndarray, noise, *, beam_pixels: float,
                  refine_snr: float | None = REFINE_SNR, snr: np.ndarray | None = None,
                  blob_x: np.ndarray | None = None, blob_y: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Move the detections whose SNR at (x, y) is >= ``refine_snr`` to their image peak, and those
    below it whose blob leads to an image peak >= ``refine_snr`` to that peak (see the module
    docstring); ``None`` moves none.

    ``noise``: one value or one per detection; ``snr``: the SNRs at (x, y) if already measured;
    ``blob_x``, ``blob_y``: each detection's blob's highest image pixel (0-based image pixels,
    NaN where unknown; None: no blob peaks looked at). Returns the new x, y, how many moved
    because bright at their centre and how many moved to their blob's peak.
    """
    from scipy.spatial import cKDTree

    from radiofind.detect.blobs import DEBLEND_BEAMS
    from radiofind.noise import pixel_values

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if refine_snr is None or x.size == 0:
        return x, y, 0, 0
    if snr is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = pixel_values(data, x, y) / noise
    bright = np.nan_to_num(snr, nan=-np.inf) >= refine_snr
    x, y = x.copy(), y.copy()
    radius = RADIUS_BEAMS * beam_pixels
    if bright.any():
        x[bright], y[bright] = peak_positions(data, x[bright], y[bright], radius)
    if blob_x is None or blob_y is None or not math.isfinite(refine_snr):
        return x, y, int(bright.sum()), 0
    ask = np.nonzero(~bright & np.isfinite(blob_x) & np.isfinite(blob_y))[0]
    if not ask.size:
        return x, y, int(bright.sum()), 0
    px, py, value, local = window_peaks(data, np.asarray(blob_x, dtype=float)[ask],
                                        np.asarray(blob_y, dtype=float)[ask], radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak_snr = value / np.broadcast_to(np.asarray(noise, dtype=float), x.shape)[ask]
    # Within a quarter beam of its peak a detection is on it already: the trigger at the centre
    # stands (taking the peak's value instead moved detections at SNR 4.75-5 on uniform
    # images, one in five of them false, into the bins above 5).
    far = np.hypot(px - x[ask], py - y[ask]) > radius
    ok = local & far & (np.nan_to_num(peak_snr, nan=-np.inf) >= refine_snr)
    ask, px, py, peak_snr = ask[ok], px[ok], py[ok], peak_snr[ok]
    if not ask.size:
        return x, y, int(bright.sum()), 0
    # A peak another detection already has (within the crossmatch radius) is not claimed again;
    # where several detections are led to peaks within that radius, the brightest peak goes first.
    claim = DEBLEND_BEAMS * beam_pixels
    staying = np.ones(x.size, dtype=bool)
    staying[ask] = False
    tree = cKDTree(np.column_stack([x[staying], y[staying]])) if staying.any() else None
    taken: list[tuple[float, float]] = []
    moved = 0
    for k in np.argsort(-peak_snr, kind="stable"):
        if tree is not None and tree.query_ball_point((px[k], py[k]), claim):
            continue
        if any(math.hypot(px[k] - tx, py[k] - ty) <= claim for tx, ty in taken):
            continue
        x[ask[k]], y[ask[k]] = px[k], py[k]
        taken.append((px[k], py[k]))
        moved += 1
    return x, y, int(bright.sum()), moved


def position_errors(image, x: np.ndarray, y: np.ndarray, snr: np.ndarray,
                    gradient: np.ndarray, *, scale: float = POSITION_ERROR_SCALE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One-sigma errors (arcsec on the sky, along RA and along Dec) of positions (x, y) of
    ``image`` (a :class:`radiofind.io.images.Image`) with SNRs ``snr``: the pixel covariance
    ``scale² inv(gradient) / snr²`` (``gradient``: :func:`radiofind.noise.gradient_covariance`)
    taken through the WCS at each position. NaN where the SNR is not positive."""
    snr = np.asarray(snr, float)
    cov = scale**2 * np.linalg.inv(np.asarray(gradient, float))
    jac = sky_jacobian(image, x, y)
    sky = np.einsum("...ij,jk,...lk->...il", jac, cov, jac)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_snr = np.where(snr > 0, 1.0 / snr, np.nan)
    return np.sqrt(sky[..., 0, 0]) * inv_snr, np.sqrt(sky[..., 1, 1]) * inv_snr


def sky_jacobian(image, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The WCS's local Jacobian at each pixel position (x, y) of ``image``: arcsec east and
    north per pixel along x and y (shape ``x.shape + (2, 2)``), by one-pixel steps."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ra0, dec0 = image.pixel_to_world(x, y)
    jac = np.empty(x.shape + (2, 2))
    for j, (sx, sy) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        ra, dec = image.pixel_to_world(x + sx, y + sy)
        jac[..., 0, j] = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.deg2rad(dec0)) * 3600
        jac[..., 1, j] = (dec - dec0) * 3600
    return jac
