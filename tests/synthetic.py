"""Tiny seeded synthetic radio images for tests (no WSClean needed)."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage


def make_header(size: int, *, scale_arcsec: float = 1.5, ra: float = 50.0, dec: float = -20.0,
                beam_arcsec: float = 6.0, telescope: str | None = "MeerKAT") -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [size / 2 + 1, size / 2 + 1]
    w.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    header = w.to_header()
    header["BMAJ"] = beam_arcsec / 3600
    header["BMIN"] = beam_arcsec / 3600
    header["BPA"] = 0.0
    header["BUNIT"] = "JY/BEAM"
    if telescope:
        header["TELESCOP"] = telescope
    return header


def make_image(size: int = 256, *, n_sources: int = 10, snr=(5.0, 20.0), beam_pix: float = 4.0,
               noise: float = 1e-5, seed: int = 0, border: int = 16):
    """Correlated noise (smoothed by the beam) plus Gaussian-beam point sources at pixel centres.

    Returns (data, x, y, peak_snr) with data normalised so its noise is ``noise``.
    """
    rng = np.random.default_rng(seed)
    sigma = beam_pix / np.sqrt(8 * np.log(2))
    white = rng.normal(size=(size, size))
    corr = ndimage.gaussian_filter(white, sigma)
    corr *= noise / corr.std()
    x = rng.integers(border, size - border, n_sources)
    y = rng.integers(border, size - border, n_sources)
    amp = rng.uniform(*snr, n_sources)
    sky = np.zeros((size, size))
    sky[y, x] = amp
    beam = ndimage.gaussian_filter(sky, sigma) * (2 * np.pi * sigma**2)
    return (corr + beam * noise).astype(np.float32), x, y, amp


def write_image(path, data, header) -> str:
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return str(path)


def with_sources(size: int, x, y, peak: float, *, beam_pix: float = 4.0, seed: int = 0):
    """Another image of a field: :func:`make_image`'s noise (seeded by ``seed``) plus Gaussian
    beams of height ``peak`` at pixels (x, y) - e.g. a second weighting holding only some of the
    first image's sources."""
    other, *_ = make_image(size, n_sources=0, beam_pix=beam_pix, seed=seed)
    sigma = beam_pix / np.sqrt(8 * np.log(2))
    yy, xx = np.mgrid[:size, :size]
    for xs, ys in zip(x, y, strict=True):
        other = other + peak * np.exp(-((xx - xs) ** 2 + (yy - ys) ** 2) / (2 * sigma**2))
    return other.astype(np.float32)


def weighted_pair(size: int = 256, *, n_sources: int = 8, snr: float = 6.0, seed: int = 0,
                  border: int = 24):
    """One field's visibilities gridded two ways, in the Fourier plane of a ``size``² image:
    uv cells within a disc hold N visibilities, N falling from 2000 at the centre to 1 at the
    edge. "Uniform": each cell's mean (noise power 1 / N); "natural": each cell's sum. Point
    sources at pixel centres of peak ``snr`` times the uniform image's noise.

    Returns (uniform, natural, uniform PSF (peak at the centre), x, y).
    """
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size) * size
    r = np.hypot(k[:, None], k[None, :])
    sampled = r < size / 5
    counts = np.where(sampled, np.ceil(2000.0 / (1.0 + r / 3.0) ** 2), 0.0)
    white = np.fft.fft2(rng.normal(size=(size, size)))
    uni_noise = np.where(sampled, white / np.sqrt(np.maximum(counts, 1)), 0)
    x = rng.integers(border, size - border, n_sources)
    y = rng.integers(border, size - border, n_sources)
    sky = np.zeros((size, size))
    sky[y, x] = 1.0
    sky_ft = np.fft.fft2(sky)
    psf = np.real(np.fft.ifft2(sampled.astype(float)))
    sigma = np.real(np.fft.ifft2(uni_noise)).std()
    uniform = np.real(np.fft.ifft2(uni_noise + sampled * sky_ft * snr * sigma / psf.max()))
    natural = np.real(np.fft.ifft2(counts * (uni_noise + sky_ft * snr * sigma / psf.max())))
    return (uniform.astype(np.float32), natural.astype(np.float32),
            np.fft.fftshift(psf / psf.max()).astype(np.float32), x, y)
