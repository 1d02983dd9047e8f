"""Bright detections take their position from the image's own peak (radiofind.detect.positions)."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, make_image, write_image

from radiofind.detect.positions import peak_positions, refine_bright
from radiofind.errors import RadiofindError


def gaussian_image(size, x0, y0, *, fwhm=8.0, amp=1.0):
    yy, xx = np.mgrid[:size, :size]
    s = fwhm / math.sqrt(8 * math.log(2))
    return amp * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s**2))


def test_peak_positions_finds_a_sub_pixel_peak_from_numpy_and_dask_alike():
    data = gaussian_image(64, 30.3, 20.8)
    start_x, start_y = np.array([28.0, 31.0]), np.array([21.0, 19.0])  # ~2 px off, within r = 3
    x, y = peak_positions(data, start_x, start_y, radius=3.0)
    np.testing.assert_allclose(x, 30.3, atol=0.06)
    np.testing.assert_allclose(y, 20.8, atol=0.06)
    xd, yd = peak_positions(da.from_array(data, chunks=16), start_x, start_y, radius=3.0)
    np.testing.assert_array_equal(xd, x)
    np.testing.assert_array_equal(yd, y)


def test_peak_positions_leaves_blank_and_off_image_positions_alone():
    data = gaussian_image(32, 10.0, 10.0)
    data[20:, 20:] = np.nan
    x, y = peak_positions(data, np.array([25.0, -5.0, np.nan, 11.0]),
                          np.array([25.0, 3.0, 4.0, 10.0]), radius=2.0)
    np.testing.assert_array_equal(x[:2], [25.0, -5.0])
    assert math.isnan(x[2]) and y[2] == 4.0
    assert abs(x[3] - 10.0) < 0.05 and abs(y[3] - 10.0) < 0.05  # a window next to the blank
    assert peak_positions(data, np.array([]), np.array([]), radius=2.0)[0].size == 0


def test_refine_bright_moves_only_detections_above_the_snr():
    data = gaussian_image(64, 20.4, 20.0, amp=10.0) + gaussian_image(64, 44.4, 44.0, amp=3.0)
    x, y = np.array([19.0, 43.0]), np.array([20.0, 44.0])
    nx, ny, n, n_blob = refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=5.0)
    assert n == 1 and n_blob == 0 and abs(nx[0] - 20.4) < 0.06 and (nx[1], ny[1]) == (43.0, 44.0)
    assert refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=None)[2] == 0
    assert refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=math.inf)[2] == 0
    assert refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=0.0)[2] == 2


def test_refine_bright_moves_a_faint_centre_to_a_bright_unclaimed_peak_in_its_blob():
    # Beam 8 px. Sources: A (SNR 6) and B (SNR 9) alone; C (SNR 6) with a detection on it already;
    # D (SNR 4): too faint. Each fainter detection lies 0.7 beam (5.6 px) from its blob's source,
    # at SNR < 5 there, with the blob's highest pixel given next to the source.
    data = (gaussian_image(128, 20.0, 20.0, amp=6.0) + gaussian_image(128, 100.0, 20.0, amp=9.0)
            + gaussian_image(128, 20.0, 100.0, amp=6.0) + gaussian_image(128, 100.0, 100.0,
                                                                         amp=4.0))
    x = np.array([25.6, 105.6, 25.6, 20.3, 105.6])
    y = np.array([20.0, 20.0, 100.0, 100.3, 100.0])
    bx = np.array([21.0, 99.0, 21.0, np.nan, 101.0])
    by = np.array([20.0, 21.0, 100.0, np.nan, 100.0])
    nx, ny, n, n_blob = refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=5.0,
                                      blob_x=bx, blob_y=by)
    assert (n, n_blob) == (1, 2)  # the detection on C is bright; A and B are moved
    np.testing.assert_allclose([nx[0], ny[0], nx[1], ny[1]], [20.0, 20.0, 100.0, 20.0], atol=0.05)
    assert (nx[2], ny[2]) == (25.6, 100.0)  # C is already found: not claimed twice
    assert (nx[4], ny[4]) == (105.6, 100.0)  # D's peak is below 5
    # Without blob peaks, or with refinement off, nothing but the bright one moves.
    assert refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=5.0)[3] == 0
    assert refine_bright(data, x, y, 1.0, beam_pixels=8.0, refine_snr=math.inf, blob_x=bx,
                         blob_y=by)[2:] == (0, 0)


def test_refine_bright_claims_a_peak_once_and_never_a_flank():
    beam = 8.0
    data = gaussian_image(96, 48.0, 48.0, amp=20.0)
    # Two faint detections 0.7 beam either side of one source, both led to it: one is moved.
    x, y = np.array([42.4, 53.6]), np.array([48.0, 48.0])
    nx, ny, _, n_blob = refine_bright(data, x, y, 1.0, beam_pixels=beam, refine_snr=5.0,
                                      snr=np.array([4.0, 4.0]), blob_x=np.array([47.0, 49.0]),
                                      blob_y=np.array([48.0, 48.0]))
    assert n_blob == 1 and np.sum(np.hypot(nx - 48.0, ny - 48.0) < 0.1) == 1
    # A blob peak on the source's flank, 7 px out, leads uphill only to the edge of its
    # quarter-beam window, 5 px out (SNR 6.8 > 5): no local maximum, no move.
    x, y = np.array([62.0]), np.array([48.0])
    assert data[48, 53] > 5.0  # the window's edge
    nx, _, _, n_blob = refine_bright(data, x, y, 1.0, beam_pixels=beam, refine_snr=5.0,
                                     snr=np.array([4.0]), blob_x=np.array([55.0]),
                                     blob_y=np.array([48.0]))
    assert n_blob == 0 and nx[0] == 62.0
    # A detection 1.5 px (under a quarter beam) from a peak of SNR 5.2 reads 4.7: it is on its
    # peak already and stays, as the trigger at the centre says.
    data = gaussian_image(64, 32.0, 32.0, amp=5.2)
    nx, _, n, n_blob = refine_bright(data, np.array([33.5]), np.array([32.0]), 1.0,
                                     beam_pixels=beam, refine_snr=5.0, blob_x=np.array([32.0]),
                                     blob_y=np.array([32.0]))
    assert (n, n_blob) == (0, 0) and nx[0] == 33.5


def test_detect_puts_bright_sources_of_an_averaged_image_on_their_peaks(tmp_path):
    # A MeerKAT natural-like beam (28" at 1.5": 18.8 px), so the bundled model averages 4 x 4 and
    # its blob centres are quantised on that grid; sources sit at integer pixels.
    from radiofind.detect.run import detect

    data, tx, ty, _ = make_image(384, n_sources=8, snr=(20.0, 60.0), beam_pix=18.8, seed=3,
                                 border=40)
    image = write_image(tmp_path / "field.fits", data, make_header(384, beam_arcsec=28.2))
    offsets = {}
    for name, refine in (("blob", math.inf), ("peak", 5.0)):
        summary = detect(image=image, outdir=str(tmp_path / name), refine_snr=refine,
                         formats=["fits"])
        assert summary["bin"] == 4
        table = Table.read(tmp_path / name / "field.radiofind.fits")
        d = np.hypot(np.asarray(table["x"])[:, None] - tx, np.asarray(table["y"])[:, None] - ty)
        offsets[name] = d.min(axis=0)  # each true source's nearest detection, in pixels
        assert (offsets[name] < 0.5 * 18.8).all()  # every source found
    assert summary["n_refined"] >= 8
    assert np.median(offsets["peak"]) < 0.25 and offsets["peak"].max() < 1.0
    assert np.median(offsets["peak"]) < 0.5 * np.median(offsets["blob"])


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_detect_refuses_a_bad_refine_snr(tmp_path, bad):
    from radiofind.detect.run import detect

    data, *_ = make_image(64, n_sources=2)
    image = write_image(tmp_path / "f.fits", data, make_header(64))
    with pytest.raises(RadiofindError, match="refine_snr"):
        detect(image=image, outdir=str(tmp_path / "out"), refine_snr=bad)
    assert not (tmp_path / "out").exists()


def test_window_peaks_in_batches_equal_one_pass(monkeypatch):
    import radiofind.detect.positions as positions

    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 300))
    x, y = rng.uniform(-5, 305, 5000), rng.uniform(-5, 305, 5000)
    x[::50] = np.nan  # unplaced and off-image positions come back unchanged in either
    whole = positions.window_peaks(data, x, y, 2.5)
    monkeypatch.setattr(positions, "WINDOW_BATCH", 333)
    batched = positions.window_peaks(data, x, y, 2.5)
    for a, b in zip(whole, batched, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_a_peak_on_the_image_edge_stays_on_the_image():
    # The brightest pixel of the window is in the last column and row: with no neighbour beyond
    # it, no sub-pixel step takes the position off the image (where its value would be NaN).
    from radiofind.noise import pixel_values

    data = np.zeros((20, 20))
    data[19, 19], data[19, 18], data[18, 19] = 5.0, 3.0, 3.0
    data[0, 0], data[0, 1], data[1, 0] = 4.0, 1.0, 1.0
    x, y = peak_positions(data, np.array([18.2, 0.8]), np.array([18.4, 0.9]), 2.0)
    assert x.tolist() == [19.0, 0.0] and y.tolist() == [19.0, 0.0]
    np.testing.assert_array_equal(pixel_values(data, x, y), [5.0, 4.0])


def correlated_noise(size: int, sigma, *, seed: int) -> np.ndarray:
    """Unit-variance Gaussian noise smoothed by a Gaussian of ``sigma`` pixels (one per axis:
    y, x); its autocorrelation is a Gaussian of sqrt(2) ``sigma``."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), sigma)
    return noise / noise.std()


def test_gradient_covariance_is_the_inverse_autocorrelation_width():
    from radiofind.noise import gradient_covariance

    # Autocorrelation widths sqrt(2) * (2, 3) px: G = diag(1 / (2 * 3²), 1 / (2 * 2²)) (x, y).
    data = correlated_noise(1024, (2.0, 3.0), seed=3)
    expect = np.diag([1 / (2 * 3.0**2), 1 / (2 * 2.0**2)])
    g = gradient_covariance(data)
    np.testing.assert_allclose(g, expect, rtol=0.05, atol=0.003)
    # Sources barely move it (robust spreads); dask reads only the tiles; blanks are left out.
    with_sources = data.copy()
    with_sources[100:1000:60, 100:1000:60] += 200.0
    np.testing.assert_allclose(gradient_covariance(with_sources), g, rtol=0.05, atol=0.003)
    np.testing.assert_array_equal(gradient_covariance(da.from_array(data, chunks=256)), g)
    blanked = data.copy()
    blanked[:300, :400] = np.nan
    np.testing.assert_allclose(gradient_covariance(blanked), expect, rtol=0.06, atol=0.003)
    zeroed = data.copy()
    zeroed[:512, :512] = 0.0  # a zero-filled quadrant (one tile of four): skipped, not fatal
    np.testing.assert_allclose(gradient_covariance(zeroed), expect, rtol=0.06, atol=0.003)
    with pytest.raises(RadiofindError, match="gradient"):
        gradient_covariance(np.full((64, 64), np.nan))


def test_position_errors_match_the_scatter_of_peaks_in_noise(tmp_path):
    """Sources shaped like the noise's autocorrelation (a naturally weighted image's): the
    scatter of their image peaks about the truth is what position_errors says at scale 1 (the
    Cramér-Rao bound), RA and Dec alike, through a real WCS."""
    from radiofind.detect.positions import position_errors, window_peaks
    from radiofind.io.images import read_image
    from radiofind.noise import gradient_covariance

    size, sigma = 512, 2.5  # the noise's autocorrelation: sigma * sqrt(2) = 3.5 px
    rng = np.random.default_rng(7)
    g = np.arange(24, size - 24, 26)
    truth_x = (g[None, :] + rng.uniform(-0.5, 0.5, (g.size, g.size))).ravel()
    truth_y = (g[:, None] + rng.uniform(-0.5, 0.5, (g.size, g.size))).ravel()
    snr = rng.uniform(8.0, 20.0, truth_x.size)
    found_ra, found_dec, true_ra, true_dec, err_ra, err_dec = ([] for _ in range(6))
    for seed in range(3):
        data = correlated_noise(size, sigma, seed=seed)
        yy, xx = np.mgrid[:size, :size]
        s2 = 2 * sigma**2
        for xs, ys, q in zip(truth_x, truth_y, snr, strict=True):
            sl = (slice(int(ys) - 15, int(ys) + 16), slice(int(xs) - 15, int(xs) + 16))
            data[sl] += q * np.exp(-((xx[sl] - xs) ** 2 + (yy[sl] - ys) ** 2) / (2 * s2))
        img = read_image(write_image(tmp_path / f"f{seed}.fits", data.astype(np.float32),
                                     make_header(size, ra=150.0, dec=-60.0, beam_arcsec=10.0)))
        x, y, peak, _ = window_peaks(img.data, truth_x, truth_y, radius=3.0)
        ra, dec = img.pixel_to_world(x, y)
        t_ra, t_dec = img.pixel_to_world(truth_x, truth_y)
        e_ra, e_dec = position_errors(img, x, y, peak / 1.0, gradient_covariance(img.data),
                                      scale=1.0)
        for out, values in zip((found_ra, found_dec, true_ra, true_dec, err_ra, err_dec),
                               (ra, dec, t_ra, t_dec, e_ra, e_dec), strict=True):
            out.append(values)
    ra, dec, t_ra, t_dec, e_ra, e_dec = (np.concatenate(v) for v in (
        found_ra, found_dec, true_ra, true_dec, err_ra, err_dec))
    d_ra = (ra - t_ra) * np.cos(np.deg2rad(t_dec)) * 3600 / e_ra
    d_dec = (dec - t_dec) * 3600 / e_dec
    # ~1300 sources: the rms of each normalised offset is 1 to within ~3 % (sampling) plus
    # the parabola's sub-pixel bias.
    for d in (d_ra, d_dec):
        assert 0.9 < np.sqrt(np.mean(d**2)) < 1.12, np.sqrt(np.mean(d**2))
    assert np.all(e_ra > 0) and np.all(e_dec > 0)
