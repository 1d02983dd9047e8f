"""The image noise, defined once for every part of radiofind.

The SNR of a source (truth or detection) is the image value at its position divided by this noise,
a robust standard deviation of source-free pixels: the median absolute deviation of the pixels,
iteratively clipped at ``clip`` sigma so that sources do not inflate it. Where source positions are
known (simulations), pixels near them are excluded first.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from radiofind.errors import RadiofindError

MIN_BOX = 16  # least cell of the local rms and background maps, pixels
MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its sigma


def robust_rms(data, *, mask: np.ndarray | None = None, clip: float = 3.0,
               iterations: int = 5, max_samples: int = 4_000_000, seed: int = 0) -> float:
    """Robust noise of an image: clipped MAD about the median.

    Parameters
    ----------
    data
        Image pixels (any shape; a numpy array, or a dask array for images too big for memory,
        which is then sampled block by block); NaNs are ignored.
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
    if mask is not None:
        data = np.asarray(data)[~np.asarray(mask, dtype=bool)]
    return clipped_sigma(pixel_sample(data, max_samples=max_samples, seed=seed),
                         clip=clip, iterations=iterations)


def clipped_sigma(values: np.ndarray, *, clip: float = 3.0, iterations: int = 5) -> float:
    """Clipped MAD standard deviation of finite ``values`` (see :func:`robust_rms`).

    In float32, as images are: the result differs from float64's only by rounding, and the
    partitions run ~1.5x faster.
    """
    return _clipped(values, clip, iterations)[1]


def clipped_median(values: np.ndarray, *, clip: float = 3.0, iterations: int = 5) -> float:
    """Median of finite ``values`` after the clipping of :func:`clipped_sigma`: the level of
    the noise under the few sources a cell holds."""
    return _clipped(values, clip, iterations)[0]


def _clipped(values: np.ndarray, clip: float, iterations: int) -> tuple[float, float]:
    """(median, MAD sigma) of ``values`` clipped iteratively at ``clip`` sigma about the median."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size < 100:
        raise RadiofindError(f"cannot estimate the image noise: only {values.size} finite pixels")
    med, sigma = clipped_rows(values[None, :], clip=clip, iterations=iterations)
    if not sigma[0] > 0:
        raise RadiofindError("cannot estimate the image noise: the image is constant")
    return float(med[0]), float(sigma[0])


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=1)``, the same values, faster for many short rows (NumPy loops
    over rows longer than 600 in Python): the rows sorted once, blanks last."""
    if a.shape[0] == 1:
        return np.nanmedian(a, axis=1)
    ordered = np.sort(a, axis=1)
    n = np.isfinite(a).sum(axis=1)
    rows = np.arange(a.shape[0])
    lo, hi = ordered[rows, np.maximum(n - 1, 0) // 2], ordered[rows, n // 2 - (n == 0)]
    # The two middle values' mean, as np.median takes it (an odd count: the middle one twice).
    mid = np.where(n % 2 == 1, lo, (lo + hi) / np.float32(2))
    return np.where(n > 0, mid, np.nan).astype(a.dtype)


def clipped_rows(rows: np.ndarray, *, clip: float = 3.0,
                 iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clipped_median` and :func:`clipped_sigma` of each row of ``rows`` (NaN: no
    value), all rows at once; NaN for a row with no value or a constant one. Each row stops
    where its clipping stops changing, as one array alone would."""
    keep = rows = np.asarray(rows, dtype=np.float32)
    n = rows.shape[0]
    med, sigma = np.full(n, np.nan), np.full(n, np.nan)
    done, bad = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        for _ in range(iterations):
            m = _nanmedian_rows(keep)
            s = MAD_TO_SIGMA * _nanmedian_rows(np.abs(keep - m[:, None]))
            fresh = ~done
            med[fresh], sigma[fresh] = m[fresh], s[fresh]
            bad |= fresh & ~(s > 0)
            new = np.where(np.abs(rows - m[:, None]) < clip * s[:, None], rows, np.nan)
            done |= np.isfinite(new).sum(axis=1) == np.isfinite(keep).sum(axis=1)
            done |= bad
            if done.all():
                break
            keep = np.where(done[:, None], keep, new)
    med[bad] = sigma[bad] = np.nan
    return med, sigma


def pixel_sample(data, *, max_samples: int = 4_000_000, seed: int = 0) -> np.ndarray:
    """Finite pixels of ``data``: all of them, or a seeded random subset of ``max_samples``.

    A dask array is sampled block by block (each block gives its share), so the whole image is
    never in memory; a numpy array is sampled directly.
    """
    if hasattr(data, "dask"):
        import dask

        blocks = data.to_delayed().ravel()
        share = -(-max_samples // len(blocks))
        parts = [dask.delayed(_block_sample)(b, share, (seed, i)) for i, b in enumerate(blocks)]
        return np.concatenate(dask.compute(*parts))
    return _block_sample(np.asarray(data), max_samples, seed)


def _block_sample(block: np.ndarray, n: int, seed) -> np.ndarray:
    values = block[np.isfinite(block)].ravel()
    if values.size > n:
        # The same subset as with shuffle=True (only its order differs, and medians do not care),
        # 4x faster: 0.07 s for 1M of 16M pixels.
        values = np.random.default_rng(seed).choice(values, n, replace=False, shuffle=False)
    return values.astype(np.float32)


def local_rms(data, *, box: int, max_samples: int = 16_384):
    """A BANE-like noise map: the clipped-MAD sigma in ``box``-pixel cells, interpolated (see
    :func:`local_map`)."""
    return local_map(data, box=box, statistic="sigma", max_samples=max_samples)


def local_background(data, *, box: int, max_samples: int = 16_384):
    """A BANE-like background map: the clipped median in ``box``-pixel cells, interpolated (see
    :func:`local_map`): the level of diffuse emission under compact sources."""
    return local_map(data, box=box, statistic="median", max_samples=max_samples)


# local_map's statistics: clipped_rows' output, the map's name in errors, and the value of a
# cell with too few finite pixels (None: the median cell's).
LOCAL_STATISTICS = {"median": (0, "background", 0.0), "sigma": (1, "rms", None)}


def local_map(data, *, box: int, statistic: str, max_samples: int = 16_384):
    """A statistic of ``box``-pixel cells of the image, interpolated between their centres.

    The image is cut into cells of ``box`` x ``box`` pixels; each cell's value comes from its
    finite pixels (an evenly strided subset of at most ``max_samples``), and the map between cell
    centres is a bilinear interpolation (nearest cell beyond the outer centres). Cells with too
    few finite pixels take the median cell's value (a noise map) or 0 (a background). A dask
    array is measured block by block, and ``box`` is then rounded down to a divisor of the
    block size so that cells never straddle blocks, if one of at least half the box and 16
    pixels exists (always for power-of-two chunks); otherwise (e.g. the odd blocks of an
    averaged grid) the cells are measured on the array rechunked to a multiple of ``box``. The
    map comes back as a lazy dask array with the image's chunks (numpy for numpy).

    ``statistic`` is the cells' clipped ``"median"`` or ``"sigma"`` (:func:`clipped_rows`, of
    cells with at least 100 finite pixels; not of a constant one; :data:`LOCAL_STATISTICS`).

    Returns
    -------
    map, cell_values, box
        The full-resolution map, the per-cell estimates (ny_cells, nx_cells) and the box used.
    """
    import dask.array as da

    which, what, fill = LOCAL_STATISTICS[statistic]
    if box < MIN_BOX:
        raise RadiofindError(f"the {what} box must be at least {MIN_BOX} pixels, got {box}")
    lazy = hasattr(data, "dask")
    arr = data if lazy else da.from_array(np.asarray(data), chunks=data.shape)
    ny, nx = arr.shape
    measured = arr
    if lazy:
        step = max(arr.chunks[0][0], arr.chunks[1][0])
        if box >= step:
            box = step
        else:
            divisors = [d for d in range(max(16, (box + 1) // 2), box + 1) if step % d == 0]
            if divisors:
                box = max(divisors)
            else:
                measured = arr.rechunk(box * max(1, step // box))
    stride = max(1, int(np.ceil(box / np.sqrt(max_samples))))

    def cells(block: np.ndarray) -> np.ndarray:
        # Every cell of the block at once: the block padded with blanks to whole cells, each
        # cell's (strided) pixels one row.
        h, w = block.shape
        ncy, ncx = -(-h // box), -(-w // box)
        padded = np.full((ncy * box, ncx * box), np.nan, dtype=np.float32)
        padded[:h, :w] = block
        rows = padded.reshape(ncy, box, ncx, box)[:, ::stride, :, ::stride]
        rows = rows.transpose(0, 2, 1, 3).reshape(ncy * ncx, -1)
        rows = np.where(np.isfinite(rows), rows, np.nan)
        out = clipped_rows(rows)[which]
        out[np.isfinite(rows).sum(axis=1) < 100] = np.nan
        return out.reshape(ncy, ncx)

    coarse = tuple(tuple(-(-n // box) for n in ch) for ch in measured.chunks)
    sig = measured.map_blocks(cells, chunks=coarse, dtype=float,
                              meta=np.empty((0, 0), dtype=float)).compute()
    if not np.isfinite(sig).any():
        raise RadiofindError(f"cannot estimate the local {what}: no cell has enough finite "
                             "pixels")
    sig = np.where(np.isfinite(sig), sig, np.nanmedian(sig) if fill is None else fill)
    starts_y, starts_x = np.arange(0, ny, box), np.arange(0, nx, box)
    centres_y = (starts_y + np.minimum(starts_y + box, ny) - 1) / 2
    centres_x = (starts_x + np.minimum(starts_x + box, nx) - 1) / 2

    def interpolate(block: np.ndarray, block_info=None) -> np.ndarray:
        from scipy import ndimage

        (y0, y1), (x0, x1) = block_info[0]["array-location"]
        yy = np.interp(np.arange(y0, y1), centres_y, np.arange(len(centres_y)))
        xx = np.interp(np.arange(x0, x1), centres_x, np.arange(len(centres_x)))
        grid = np.meshgrid(yy, xx, indexing="ij")
        return ndimage.map_coordinates(sig, grid, order=1, mode="nearest").astype(np.float32)

    rms = da.zeros(arr.shape, chunks=arr.chunks, dtype=np.float32).map_blocks(
        interpolate, dtype=np.float32, meta=np.empty((0, 0), dtype=np.float32))
    return (rms if lazy else rms.compute()), sig, box


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


def pixel_values(data, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Image values at the nearest pixels to (x, y) (0-based); NaN outside the image.

    ``data`` may be a numpy or a dask array (only the pixels asked for are read).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    xi = np.where(finite, np.rint(np.where(finite, x, 0)), -1).astype(int)
    yi = np.where(finite, np.rint(np.where(finite, y, 0)), -1).astype(int)
    ny, nx = data.shape
    inside = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
    out = np.full(x.shape, np.nan)
    if hasattr(data, "dask"):
        if inside.any():
            out[inside] = data.vindex[yi[inside], xi[inside]].compute()
    else:
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


WHITEN_OCCUPANCY = 0.1  # uv cells used: the PSF's transfer at least this fraction of its peak
# Gaussian sigma of the noise power spectrum's estimate, as a fraction of the uv plane's width
# (1 / pixel size): 2 uv cells of a 1024² image, 8 of a 4096² one (the same uv distance).
WHITEN_SMOOTH = 1.0 / 512
WHITEN_CLIP = 5.0  # pixels beyond this many sigma (sources) are left out of that estimate
# The image is capped at this many sigma before it is whitened: a bright source restored with
# CLEAN's Gaussian beam rings through the whitening filter (an SNR-2000 source took the
# whitened image's noise up until 59 % of the sources above SNR 5 read too low there). Brighter
# detections are not checked (radiofind.detect.run).
WHITEN_CAP = 10.0


def whitened(data, psf, *, occupancy: float = WHITEN_OCCUPANCY, smooth: float = WHITEN_SMOOTH,
             clip: float = WHITEN_CLIP, cap: float = WHITEN_CAP) -> np.ndarray:
    """The image ``data`` whitened by its own noise power spectrum, over the uv cells its
    ``psf`` samples: the naturally weighted view that a uniformly weighted image still holds.

    A uniformly weighted image divides each uv cell by the number of visibilities in it, so its
    noise power there is 1 / that number. Dividing the image's Fourier transform by its noise
    power (estimated from the image itself with the sources clipped, averaged over the sampled
    cells within ``smooth`` of the uv plane's width) weighs each cell by its visibilities
    again: the result approaches the naturally weighted image of the same data, and the noise
    peaks of the sparse long baselines, which make most of a uniform image's faint false
    detections, are weighed down (a bright source that CLEAN restored with a Gaussian beam reads
    lower than in the natural image). The cells the PSF's transfer function puts below
    ``occupancy`` of its peak are left out (where no visibility was gridded, the noise power is
    estimated as near 0 and would be blown up). Pixels beyond ``cap`` sigma are set to it
    first, so that a bright source does not ring over the whole image; what is brighter than
    that is not for the whitened image to confirm. Blank (NaN) pixels count as 0 and stay blank.

    The result is in arbitrary units: divide by its :func:`robust_rms` for SNRs. ``data`` and
    ``psf`` are 2-D arrays of one shape (WSClean's -psf.fits is the image's size), held in
    memory: about 40 bytes a pixel while it runs.
    """
    from scipy import fft

    image = np.asarray(data, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if image.shape != psf.shape:
        raise RadiofindError(f"the PSF is {psf.shape[1]} x {psf.shape[0]} pixels and the image "
                             f"{image.shape[1]} x {image.shape[0]}: whitening needs the PSF made "
                             "with the image (WSClean's <name>-psf.fits)")
    for name, value in (("occupancy", occupancy), ("smooth", smooth), ("clip", clip),
                        ("cap", cap)):
        if not (math.isfinite(value) and value > 0):
            raise RadiofindError(f"whitening {name} must be a number > 0, got {value}")
    if not np.isfinite(psf).all() or not np.nanmax(psf) > 0:
        raise RadiofindError("the PSF has blank pixels or no positive peak")
    blank = ~np.isfinite(image)
    image, sigma = capped(image, cap)
    transfer = transfer_function(psf)
    sampled = (transfer > occupancy).astype(np.float64)
    del transfer
    weights = inverse_power(uv_mean(quiet_power(image, clip * sigma), sampled, smooth), sampled)
    del sampled
    out = fft.ifft2(fft.fft2(image, workers=-1) * weights, workers=-1).real
    out[blank] = np.nan
    return out


def capped(data: np.ndarray, cap: float) -> tuple[np.ndarray, float]:
    """``data`` with its blanks as 0 and capped at +-``cap`` times its robust noise (measured on
    the pixels that are not blank), and that noise."""
    image = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(image)
    sigma = robust_rms(image[finite])
    return np.clip(np.where(finite, image, 0.0), -cap * sigma, cap * sigma), sigma


def inverse_power(power: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """The whitening weights: 1 / ``power`` on the ``sampled`` uv cells, 0 on the others."""
    return np.where(sampled > 0, 1.0 / np.maximum(power, np.finfo(float).tiny), 0.0)


def transfer_function(psf: np.ndarray) -> np.ndarray:
    """The transfer function of a PSF image (peak at its centre, as WSClean writes it): the
    modulus of its Fourier transform, over its peak."""
    from scipy import fft

    transfer = np.abs(fft.fft2(fft.ifftshift(np.asarray(psf, dtype=np.float64)), workers=-1))
    return transfer / transfer.max()


def quiet_power(image: np.ndarray, limit: float) -> np.ndarray:
    """The power spectrum of ``image`` with its pixels beyond +-``limit`` (sources) set to 0."""
    from scipy import fft

    return np.abs(fft.fft2(np.where(np.abs(image) > limit, 0.0, image), workers=-1)) ** 2


def uv_mean(values: np.ndarray, sampled: np.ndarray, smooth: float) -> np.ndarray:
    """``values`` averaged over the ``sampled`` uv cells (weights 0 or 1) near each cell, in a
    Gaussian of ``smooth`` times the uv plane's width (the same uv distance whatever the image's
    size; the plane wraps round, as a Fourier transform's does)."""
    from scipy import ndimage

    cells = [smooth * n for n in values.shape]
    return (ndimage.gaussian_filter(values * sampled, cells, mode="wrap")
            / np.maximum(ndimage.gaussian_filter(sampled, cells, mode="wrap"), 1e-12))


GRADIENT_TILE = 512  # pixels a side of the tiles the noise's gradient is measured on
GRADIENT_TILES = 4  # at most this many, spread over the image
GRADIENT_EDGE = 4  # pixels this close to a blank one are left out of the measurement
GRADIENT_SAMPLES = 65_536  # pixels per tile each spread is measured on (a seeded subset)


def gradient_covariance(data, *, tile: int = GRADIENT_TILE, tiles: int = GRADIENT_TILES
                        ) -> np.ndarray:
    """The covariance of the image noise's gradient over the noise's variance: a 2 × 2 matrix
    (x then y, per pixel²), measured on the image itself.

    It says how sharply the noise varies from pixel to pixel, which sets how far noise moves a
    source's peak: for a source shaped like the noise's autocorrelation (a naturally weighted
    image's uncleaned source), the peak's position error has covariance ``inv(G) / SNR²``, the
    Cramér-Rao bound (:func:`radiofind.detect.positions.position_errors`). On Gaussian noise
    whose autocorrelation has covariance ``S`` (pixels²), ``G = inv(S)``.

    Measured on up to ``tiles`` tiles of ``tile`` pixels a side spread over the image (numpy or
    dask; only the tiles are read), each reflected at its edges and differentiated exactly in
    the Fourier domain; the robust spreads (clipped MAD, which sources barely move) of the two
    derivatives, of their sum and difference, and of the pixels give the matrix, the median over
    the tiles (each from :data:`GRADIENT_SAMPLES` of its pixels; a fraction of a second for four
    tiles). Pixels within :data:`GRADIENT_EDGE` of a blank (NaN) one are left out; tiles more
    than half blank, or constant, are skipped. Raises :class:`RadiofindError` when none is left.
    """
    from scipy import fft, ndimage

    ny, nx = data.shape
    th, tw = min(tile, ny), min(tile, nx)
    rows, cols = max(1, ny // th), max(1, nx // tw)
    # Tile origins on a grid over the image; up to `tiles` of them, evenly along the grid.
    grid = [(r * (ny - th) // max(1, rows - 1), c * (nx - tw) // max(1, cols - 1))
            for r in range(rows) for c in range(cols)]
    picks = np.unique(np.linspace(0, len(grid) - 1, min(tiles, len(grid))).round().astype(int))
    ky = 2j * np.pi * fft.fftfreq(2 * th)[:, None]
    kx = 2j * np.pi * fft.rfftfreq(2 * tw)[None, :]
    found = []
    for i in picks:
        y0, x0 = grid[i]
        a = np.asarray(data[y0:y0 + th, x0:x0 + tw], dtype=np.float64)
        blank = ~np.isfinite(a)
        if blank.mean() > 0.5:
            continue
        a = np.where(blank, 0.0, a)
        use = ~ndimage.binary_dilation(blank, iterations=GRADIENT_EDGE) if blank.any() else None
        spectrum = fft.rfft2(np.block([[a, a[:, ::-1]], [a[::-1], a[::-1, ::-1]]]), workers=-1)
        gx, gy = (fft.irfft2(spectrum * k, (2 * th, 2 * tw), workers=-1)[:th, :tw]
                  for k in (kx, ky))

        def var(values: np.ndarray) -> float:
            return robust_rms(values if use is None else values[use],
                              max_samples=GRADIENT_SAMPLES) ** 2

        try:
            sigma2 = var(a)
        except RadiofindError:  # a constant (e.g. zero-filled) or nearly blank tile
            continue
        vx, vy = var(gx), var(gy)
        cxy = 0.5 * (var((gx + gy) / math.sqrt(2)) - var((gx - gy) / math.sqrt(2)))
        found.append(np.array([[vx, cxy], [cxy, vy]]) / sigma2)
    if not found:
        raise RadiofindError("cannot measure the noise's gradient: the image is blank or flat")
    return np.median(np.stack(found), axis=0)
