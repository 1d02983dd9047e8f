"""Integrated flux densities and fitted sizes (radiofind.detect.photometry)."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from synthetic import make_header, write_image

from radiofind.detect.photometry import FIT_SNR, flux_and_shape, gaussian_fits
from radiofind.io.images import read_image

FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_on_sky(size, x0, y0, maj, minor, pa, *, scale=1.5, total=1.0, beam=6.0):
    """An image (Jy/beam, beam ``beam``" round) of an elliptical Gaussian of FWHMs ``maj``,
    ``minor`` (arcsec) at position angle ``pa`` (degrees North through East) and integrated
    flux ``total``, on make_header's grid (RA grows to the left: east is -x)."""
    yy, xx = np.mgrid[:size, :size]
    east, north = -(xx - x0) * scale, (yy - y0) * scale
    t = math.radians(pa)
    along = east * math.sin(t) + north * math.cos(t)
    across = east * math.cos(t) - north * math.sin(t)
    sa, sb = maj / FWHM, minor / FWHM
    peak = total * (beam / FWHM) ** 2 / (sa * sb)  # Jy/beam: total over the beam's area
    return peak * np.exp(-0.5 * ((along / sa) ** 2 + (across / sb) ** 2))


@pytest.mark.parametrize("pa", [0.0, 30.0, 125.0])
def test_a_resolved_gaussian_s_flux_size_and_angle_come_back(tmp_path, pa):
    data = gaussian_on_sky(96, 48.3, 47.6, 14.0, 8.0, pa, total=2e-3)
    img = read_image(write_image(tmp_path / "g.fits", data.astype(np.float32),
                                 make_header(96, beam_arcsec=6.0)))
    out = flux_and_shape(img, np.array([48.0]), np.array([48.0]), np.array([100.0]), 1e-6)
    assert out["total_flux"][0] == pytest.approx(2e-3, rel=0.01)
    assert out["maj"][0] == pytest.approx(14.0, rel=0.01)
    assert out["min"][0] == pytest.approx(8.0, rel=0.01)
    assert out["pa"][0] == pytest.approx(pa, abs=0.5)


def test_fits_read_alike_from_numpy_and_dask_and_skip_what_is_not_a_peak():
    data = gaussian_on_sky(64, 30.2, 31.7, 9.0, 6.0, 60.0)
    x, y = np.array([30.0, 5.0]), np.array([32.0, 60.0])
    flat = np.where(np.arange(64)[:, None] > 50, 0.0, data)  # the second window holds nothing
    amp, centre, cov = gaussian_fits(flat, x, y, 1e-9, beam_pixels=4.0)
    amp_d, centre_d, cov_d = gaussian_fits(da.from_array(flat, chunks=16), x, y, 1e-9,
                                           beam_pixels=4.0)
    np.testing.assert_allclose(amp_d, amp)
    np.testing.assert_allclose(centre, centre_d)
    np.testing.assert_allclose(centre[0], [0.2, -0.3], atol=1e-6)
    assert np.isfinite(cov[0]).all() and np.isnan(amp[1]) and np.isnan(cov[1]).all()


def test_faint_detections_are_not_fitted_and_noisy_bright_ones_are_near_the_truth(tmp_path):
    rng = np.random.default_rng(4)
    size, beam = 512, 6.0
    data = rng.normal(scale=1e-4, size=(size, size))
    from scipy import ndimage

    data = ndimage.gaussian_filter(data, 4.0 / FWHM)
    data *= 1e-4 / data.std()  # noise 0.1 mJy/beam, correlated over the beam
    xs, ys = np.meshgrid(np.arange(40, size - 40, 48.0), np.arange(40, size - 40, 48.0))
    xs, ys = xs.ravel() + 0.3, ys.ravel() - 0.2
    for x0, y0 in zip(xs, ys, strict=True):  # 10" x 6" in the image, PA 45, 3 mJy (SNR ~25)
        data += gaussian_on_sky(size, x0, y0, 10.0, 6.0, 45.0, total=3e-3, beam=beam)
    img = read_image(write_image(tmp_path / "n.fits", data.astype(np.float32),
                                 make_header(size, beam_arcsec=beam)))
    snr = np.full(xs.size, 25.0)
    snr[:5] = FIT_SNR - 0.5  # told faint: not fitted
    out = flux_and_shape(img, np.rint(xs), np.rint(ys), snr, 1e-4)
    assert np.isnan(out["total_flux"][:5]).all() and np.isnan(out["maj"][:5]).all()
    fitted = out["total_flux"][5:] / 3e-3
    # Condon's errors describe the scatter: the offsets over them spread by ~1.
    z = (out["total_flux"][5:] - 3e-3) / out["total_flux_err"][5:]
    assert 0.6 < np.sqrt(np.mean(z**2)) < 1.5, np.sqrt(np.mean(z**2))
    assert np.isfinite(fitted).all()
    assert abs(np.median(fitted) - 1) < 0.05 and np.percentile(np.abs(fitted - 1), 90) < 0.25
    # The sizes and angle of the Gaussian in the image (fitted, not deconvolved).
    np.testing.assert_allclose(np.median(out["maj"][5:]), 10.0, rtol=0.05)
    np.testing.assert_allclose(np.median(out["min"][5:]), 6.0, rtol=0.05)
    np.testing.assert_allclose(np.median(out["pa"][5:]), 45.0, atol=3.0)


def test_condon_s_flux_error_of_a_point_source_is_root_three_over_its_snr():
    from radiofind.detect.photometry import condon_flux_error

    # Fitted at the beam's size in noise correlated over the beam: amplitude and both widths
    # each contribute 1 / SNR².
    np.testing.assert_allclose(condon_flux_error(np.array([10.0, 40.0]), 6.0, 6.0, 6.0),
                               np.sqrt(3) / np.array([10.0, 40.0]))
    # A resolved source of the same peak SNR spreads over more independent beams of noise: its
    # relative error is smaller, and grows back as its fitted widths approach the beam's.
    errors = condon_flux_error(10.0, np.array([12.0, 8.0, 6.5]), np.array([9.0, 7.0, 6.5]), 6.0)
    assert np.all(np.diff(errors) > 0) and errors[-1] < np.sqrt(3) / 10
