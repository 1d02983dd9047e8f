"""Catalogue positions of bright detections from the image's own pixels.

The network's blob centre is an estimate on the network's grid: on natural-weighting images that
grid averages 3 x 3 or 4 x 4 pixels, and on held-out MeerKAT and ASKAP fields it put sources with
SNR >= 5 a median 0.10 beam from their true position, where PyBDSF's Gaussian fits gave 0.07-0.09.
Each bright detection is therefore moved to the brightest image pixel within a quarter beam of the
blob centre, then to the vertex of the parabola through that pixel and its two neighbours along
each axis (the usual sub-pixel peak of a sampled beam); its catalogue peak is then the image's
peak, not a value on the beam's flank.

Only detections at or above ``refine_snr`` (image value at the blob centre over the noise) move.
Below ~5 sigma the brightest pixel near a detection is largely noise; moving there would also raise
each faint detection's measured SNR, while the evaluation puts detections in purity bins by the
image value at their position (the DeepSource definition): refining every detection on those
fields halved radiofind's scored PC3 at natural weighting although the positions improved.
"""

from __future__ import annotations

import math

import numpy as np

RADIUS_BEAMS = 0.25  # search radius around the blob centre, in beams (FWHM)
REFINE_SNR = 5.0  # default: detections at or above this SNR are refined


def _vertex(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
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
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0:
        return x.copy(), y.copy()
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
        return out_x, out_y
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
    fx = px + _vertex(nb[:, 0], nb[:, 1], nb[:, 2])
    fy = py + _vertex(nb[:, 3], nb[:, 1], nb[:, 4])
    idx = np.nonzero(inside)[0][good]
    out_x[idx], out_y[idx] = fx[good], fy[good]
    return out_x, out_y


def _gather(data, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """data[iy, ix] for in-image index arrays of one shape, from a numpy or a dask array."""
    from radiofind.noise import pixel_values

    return pixel_values(data, ix.ravel(), iy.ravel()).reshape(iy.shape)


def refine_bright(data, x: np.ndarray, y: np.ndarray, noise, *, beam_pixels: float,
                  refine_snr: float | None = REFINE_SNR, snr: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Move the detections whose SNR at (x, y) is >= ``refine_snr`` to their image peak (see the
    module docstring); ``None`` moves none. ``noise``: one value or one per detection; ``snr``:
    the SNRs at (x, y) if already measured. Returns the new x, y and how many moved."""
    from radiofind.noise import pixel_values

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if refine_snr is None or x.size == 0:
        return x, y, 0
    if snr is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = pixel_values(data, x, y) / noise
    bright = np.nan_to_num(snr, nan=-np.inf) >= refine_snr
    if not bright.any():
        return x, y, 0
    bx, by = peak_positions(data, x[bright], y[bright], RADIUS_BEAMS * beam_pixels)
    x, y = x.copy(), y.copy()
    x[bright], y[bright] = bx, by
    return x, y, int(bright.sum())
