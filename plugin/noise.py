"""The image noise, defined once for every part of radiofind.

The SNR of a source (truth or detection) is the image value at its position divided by this noise,
a robust standard deviation of source-free pixels: the median absolute deviation of the pixels,
iteratively clipped at ``clip`` sigma so that sources do not inflate it. Where source positions are
known (simulations), pixels near them are excluded first.
"""

from __future__ import annotations

import numpy as np

from radiofind.errors import RadiofindError

MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its sigma


def robust_rms(data: np.ndarray, *, mask: np.ndarray | None = None, clip: float = 3.0,
               iterations: int = 5, max_samples: int = 4_000_000, seed: int = 0) -> float:
    """Robust noise of an image: clipped MAD about the median.

    Parameters
    ----------
    data
        Image pixels (any shape); NaNs are ignored.
    mask
        Optional boolean array, True for pixels to *exclude* (e.g. near known sources).
    clip
        Clip at this many sigma around the median each iteration.
    iterations
        Maximum clipping iterations.
    max_samples
        Use a seeded random subset of at most this many pixels (keeps big images cheap).
    seed
        Seed for that subset, so the estimate is reproducible.

    Returns
    -------
    float
        The noise in the image's units.
    """
    values = np.asarray(data)
    if mask is not None:
        values = values[~np.asarray(mask, dtype=bool)]
    values = values[np.isfinite(values)].ravel()
    if values.size < 100:
        raise RadiofindError(f"cannot estimate the image noise: only {values.size} finite pixels")
    if values.size > max_samples:
        values = np.random.default_rng(seed).choice(values, max_samples, replace=False)
    values = values.astype(np.float64)
    keep = values
    sigma = np.nan
    for _ in range(iterations):
        med = np.median(keep)
        sigma = MAD_TO_SIGMA * np.median(np.abs(keep - med))
        if not sigma > 0:
            raise RadiofindError("cannot estimate the image noise: the image is constant")
        new = values[np.abs(values - med) < clip * sigma]
        if new.size == keep.size:
            break
        keep = new
    return float(sigma)


def source_mask(shape: tuple[int, int], x: np.ndarray, y: np.ndarray,
                radius_pix: float) -> np.ndarray:
    """Boolean mask, True within ``radius_pix`` of any (x, y) pixel position (0-based)."""
    mask = np.zeros(shape, dtype=bool)
    r = int(np.ceil(radius_pix))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = xx**2 + yy**2 <= radius_pix**2
    ny, nx = shape
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, float)[finite], np.asarray(y, float)[finite]
    for xc, yc in zip(np.rint(x).astype(int), np.rint(y).astype(int), strict=True):
        y0, y1 = max(yc - r, 0), min(yc + r + 1, ny)
        x0, x1 = max(xc - r, 0), min(xc + r + 1, nx)
        if y0 >= y1 or x0 >= x1:
            continue
        mask[y0:y1, x0:x1] |= disk[y0 - (yc - r):y1 - (yc - r), x0 - (xc - r):x1 - (xc - r)]
    return mask


def pixel_values(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Image values at the nearest pixels to (x, y) (0-based); NaN outside the image."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    xi = np.where(finite, np.rint(np.where(finite, x, 0)), -1).astype(int)
    yi = np.where(finite, np.rint(np.where(finite, y, 0)), -1).astype(int)
    ny, nx = data.shape
    inside = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
    out = np.full(x.shape, np.nan)
    out[inside] = data[yi[inside], xi[inside]]
    return out


def measure_snr(image, x: np.ndarray, y: np.ndarray, *, known_sources: bool,
                mask_radius_beams: float = 2.0) -> tuple[np.ndarray, float]:
    """SNR at pixel positions: image value there over the image noise.

    Parameters
    ----------
    image
        A :class:`radiofind.io.images.Image`.
    x, y
        0-based pixel positions.
    known_sources
        True when (x, y) are *all* the sources in the field (a truth catalogue): pixels within
        ``mask_radius_beams`` beams of them are excluded before the noise is estimated, so the noise
        comes from source-free pixels. False for detections: plain clipped estimate.

    Returns
    -------
    snr, noise
    """
    mask = None
    if known_sources and len(x):
        mask = source_mask(image.data.shape, x, y, mask_radius_beams * image.beam_pixels)
    noise = robust_rms(image.data, mask=mask)
    return pixel_values(image.data, x, y) / noise, noise
