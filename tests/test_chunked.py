"""Images of any size: block-wise reading and writing, tiled blob detection across seams, global
and local noise from blocks, and the same detection on a dask.distributed cluster."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from synthetic import make_header, make_image, with_sources, write_image

from radiofind.detect.blobs import find_blobs
from radiofind.errors import RadiofindError
from radiofind.io.images import FitsMapWriter, open_image, read_image
from radiofind.noise import local_rms, robust_rms


def _cube(tmp_path, data, name="cube.fits", **header_extra):
    header = make_header(data.shape[-1])
    header["NAXIS"] = 4
    for i, ctype in ((3, "FREQ"), (4, "STOKES")):
        header[f"CTYPE{i}"], header[f"CRVAL{i}"] = ctype, 1.4e9 if i == 3 else 1.0
        header[f"CDELT{i}"], header[f"CRPIX{i}"] = 1.0, 1.0
    header.update(header_extra)
    return write_image(tmp_path / name, data[None, None], header)


def test_blocks_read_lazily_equal_the_whole_image(tmp_path):
    from casacore.images import image as casa_image

    data, *_ = make_image(200, n_sources=5)
    data = data.copy()
    data[10:20, 30:40] = np.nan
    path = _cube(tmp_path, data)
    casa_image(path).saveas(str(tmp_path / "cube.image"))
    for source in (path, str(tmp_path / "cube.image")):
        lazy = open_image(source, chunk=64)
        assert lazy.data.shape == (200, 200) and lazy.data.chunks[0] == (64, 64, 64, 8)
        np.testing.assert_array_equal(lazy.data.compute(), read_image(source).data)
        np.testing.assert_array_equal(lazy.data[50:130, 7:99].compute(), data[50:130, 7:99])
    # Scaled integer FITS goes through astropy's section reader, with the scaling applied.
    part = data[100:164, 100:164]
    scaled = fits.PrimaryHDU(np.round(part * 1e6).astype(np.int16), header=make_header(64))
    scaled.header["BSCALE"], scaled.header["BZERO"] = 1e-6, 0.0
    scaled.writeto(tmp_path / "int.fits")
    got = open_image(tmp_path / "int.fits", chunk=20).data.compute()
    np.testing.assert_allclose(got, np.round(part * 1e6) * 1e-6, atol=1e-9)


def test_scattered_pixels_are_read_from_the_file_band_by_band(tmp_path):
    # Catalogue peaks and the windows around detections are read from the memory-mapped FITS
    # file (Image.pixels), a band of rows at a time: the same values as the dask array's, blanks
    # and off-image positions included; images the map cannot read keep their dask array.
    from radiofind.noise import pixel_values

    data, *_ = make_image(200, n_sources=5)
    data = data.copy()
    data[10:20, 30:40] = np.nan
    img = open_image(_cube(tmp_path, data), chunk=64)
    assert img.pixels is img.points and img.points.pointwise
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-5, 205, 3000), rng.uniform(-5, 205, 3000)
    x[:5], y[:5] = 35.2, 14.8  # in the blank
    expected = pixel_values(img.data, x, y)
    assert np.isnan(expected[:5]).all() and np.isfinite(expected).sum() > 2500
    np.testing.assert_array_equal(pixel_values(img.pixels, x, y), expected)
    iy, ix = rng.integers(0, 200, (2, 40, 7))
    for band_bytes in (1, 800 * 3, 2**26):  # one row, three rows, the whole image per band
        np.testing.assert_array_equal(img.points._read_points((0, 0, iy, ix), band_bytes),
                                      data[iy, ix])
    scaled = fits.PrimaryHDU(np.round(data[:64, :64] * 1e6).astype(np.int16),
                             header=make_header(64))
    scaled.header["BSCALE"] = 1e-6
    scaled.writeto(tmp_path / "int.fits")
    other = open_image(tmp_path / "int.fits", chunk=20)
    assert other.points is None and other.pixels is other.data


def test_map_is_written_block_by_block_with_the_input_wcs(tmp_path):
    import dask.array as da

    data, *_ = make_image(150, n_sources=3)
    img = read_image(_cube(tmp_path, data))
    out = tmp_path / "map.fits"
    da.store(da.from_array(data * 2, chunks=(40, 70)), FitsMapWriter(out, data.shape, img,
                                                                     {"RFMODEL": "x"}),
             lock=False)
    with fits.open(out) as hdul:  # a valid FITS file (astropy verifies the layout)
        hdul.verify("exception")
        np.testing.assert_array_equal(hdul[0].data, data * 2)
        assert hdul[0].header["RFMODEL"] == "x"
        assert hdul[0].header["CRVAL1"] == img.header["CRVAL1"]
        assert hdul[0].header["BMAJ"] == img.header["BMAJ"]


def _seam_map(size=256, seam=64, seed=0):
    """A noisy map with Gaussian blobs centred on tile seams and corners, and off them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    tmap = np.abs(rng.normal(0, 0.05, (size, size)))
    centres = [(seam - 0.5, 30), (seam, 100.2), (2 * seam - 1, 2 * seam), (3 * seam, 3 * seam - 1),
               (150, seam * 3 + 0.5), (40, 40), (200, 10), (seam + 0.5, 2 * seam + 0.5)]
    for cy, cx in centres:
        tmap += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0**2))
    # Two blended blobs across a seam, for the deblending step.
    tmap += 0.8 * np.exp(-((yy - 100) ** 2 + (xx - (2 * seam - 5)) ** 2) / (2 * 3.0**2))
    tmap += 0.8 * np.exp(-((yy - 100) ** 2 + (xx - (2 * seam + 4)) ** 2) / (2 * 3.0**2))
    return tmap.astype(np.float32), centres


@pytest.mark.parametrize("centre", ["mean", "centroid", "peak"])
@pytest.mark.parametrize("deblend, levels", [
    (None, {}), (6.0, {}), (6.0, {"bright": 0.5}), (6.0, {"bright": 0.5, "glare": 0.95}),
    (6.0, {"bright": 0.5, "snr": 20.0})])
def test_tiled_blob_detection_equals_one_pass_with_sources_on_seams(centre, deblend, levels):
    import dask.array as da

    tmap, centres = _seam_map()
    tmap[5:9, 120:200] = np.nan  # a blanked strip crossing a seam
    kw = {"delta_max": 5000, "a_min": 4, "centre": centre, "deblend": deblend, "n_steps": 30,
          **levels}
    snr = kw.pop("snr", None)
    whole = find_blobs(tmap, snr=None if snr is None else snr * tmap, **kw)
    # (84, 126) leaves 4-pixel edge tiles, thinner than the deblending halo.
    for chunks in ((64, 64), (64, 100), (37, 53), (84, 126)):
        tiled = find_blobs(da.from_array(tmap, chunks=chunks),
                           snr=None if snr is None else da.from_array(snr * tmap, chunks=50),
                           **kw)
        assert tiled.threshold == whole.threshold
        np.testing.assert_array_equal(tiled.counts, whole.counts)
        np.testing.assert_allclose(np.c_[tiled.y, tiled.x, tiled.area, tiled.score],
                                   np.c_[whole.y, whole.x, whole.area, whole.score])
    # Every seam source is found exactly once, where it is.
    for cy, cx in centres:
        d = np.hypot(whole.y - cy, whole.x - cx)
        assert (d < 2.0).sum() == 1, (cy, cx)
    pair = (np.abs(whole.y - 100) < 4) & (np.abs(whole.x - 127.5) < 9)
    assert pair.sum() == (2 if deblend else 1)  # split at the seam only when deblending


def test_noise_from_blocks_matches_the_whole_image_and_local_rms_follows_a_step():
    import dask.array as da

    rng = np.random.default_rng(2)
    data = rng.normal(0, 1.0, (512, 512)).astype(np.float32)
    data[:, 256:] *= 4.0
    data[100:110, 100:110] = np.nan
    whole = robust_rms(data)
    assert robust_rms(da.from_array(data, chunks=100)) == pytest.approx(whole, rel=0.02)
    rms, cells, box = local_rms(da.from_array(data, chunks=128), box=64)
    assert box == 64 and cells.shape == (8, 8)
    rms = rms.compute()
    assert rms[:, :200].mean() == pytest.approx(1.0, rel=0.05)
    assert rms[:, 320:].mean() == pytest.approx(4.0, rel=0.05)
    np.testing.assert_allclose(local_rms(data, box=64)[0], rms, rtol=1e-6)
    with pytest.raises(RadiofindError, match="at least 16"):
        local_rms(data, box=8)
    # Blocks of 128 round a box of 100 down to their divisor 64, as before.
    assert local_rms(da.from_array(data, chunks=128), box=100)[2] == 64


def test_local_rms_on_blocks_with_no_divisor_near_the_box():
    """An averaged grid's blocks (here 171 = 9 x 19 pixels) have no divisor between half the
    box and the box: the cells are measured on the array rechunked to the box instead."""
    import dask.array as da

    rng = np.random.default_rng(3)
    data = rng.normal(0, 1.0, (683, 683)).astype(np.float32)
    data[:, 400:] *= 3.0
    arr = da.from_array(data, chunks=171)
    rms, cells, box = local_rms(arr, box=138)
    assert box == 138 and cells.shape == (5, 5)
    assert rms.chunks == arr.chunks  # the map keeps the image's blocks
    rms = rms.compute()
    assert rms[:, :250].mean() == pytest.approx(1.0, rel=0.05)
    assert rms[:, 560:].mean() == pytest.approx(3.0, rel=0.05)
    np.testing.assert_allclose(local_rms(data, box=138)[0], rms, rtol=1e-6)


def _seam_image(tmp_path):
    """A uniform-weighting-like field (4.6 px beam) with sources on and near 64-px seams."""
    data, *_ = make_image(256, n_sources=25, snr=(6.0, 30.0), beam_pix=4.6, seed=4, border=4)
    return write_image(tmp_path / "field.fits", data, make_header(256, beam_arcsec=6.9))


# A trained model, so the catalogues hold real detections; a 256² image allows too few new blobs
# per threshold step at the model's own delta_max (given per 4096²), hence a larger one.
MODEL = {"model": "meerkat-uniform", "delta_max": 20000}


def _catalogue(outdir):
    return Table.read(next(p for p in outdir.iterdir() if p.name.endswith(".radiofind.fits")))


def test_detect_chunked_equals_one_pass(tmp_path):
    from radiofind.detect.run import detect

    image = _seam_image(tmp_path)
    runs = {}
    for chunk in (2048, 64):
        out = tmp_path / f"out{chunk}"
        detect(image=image, outdir=str(out), **MODEL, chunk=chunk)
        runs[chunk] = out
    a, b = _catalogue(runs[2048]), _catalogue(runs[64])
    assert len(a) > 5
    np.testing.assert_allclose(np.c_[b["x"], b["y"], b["snr"]], np.c_[a["x"], a["y"], a["snr"]],
                               atol=1e-4)
    map_a = fits.getdata(runs[2048] / "field.radiofind-map.fits")
    map_b = fits.getdata(runs[64] / "field.radiofind-map.fits")
    np.testing.assert_allclose(map_b, map_a, atol=1e-5 * np.abs(map_a).max())
    with pytest.raises(RadiofindError, match="chunk must be >= 64"):
        detect(image=image, outdir=str(tmp_path / "bad"), **MODEL, chunk=10)


def test_detect_with_a_local_noise_map(tmp_path):
    from radiofind.detect.run import detect

    image = _seam_image(tmp_path)
    summary = detect(image=image, outdir=str(tmp_path / "out"), **MODEL,
                     noise="local", rms_box=64, chunk=128)
    table = _catalogue(tmp_path / "out")
    assert summary["noise_mode"] == "local" and table.meta["NOISEMAP"] == "local"
    np.testing.assert_allclose(table["snr"], table["peak"] / table["rms"])
    with pytest.raises(RadiofindError, match="noise must be"):
        detect(image=image, outdir=str(tmp_path / "x"), **MODEL, noise="bane")


def _beam_gain(size: int, fwhm: float) -> np.ndarray:
    """A Gaussian primary beam of ``fwhm`` pixels centred on the image."""
    y, x = np.mgrid[0:size, 0:size] - size / 2
    return np.exp(-4 * np.log(2) * (x**2 + y**2) / fwhm**2)


def test_noise_spread_tells_a_primary_beam_corrected_image():
    from radiofind.detect.run import NOISE_SPREAD_WARN, noise_spread

    data, *_ = make_image(512, n_sources=0, beam_pix=4.6, seed=5)
    spread, limit = noise_spread(data, 4.6)
    assert spread < NOISE_SPREAD_WARN and spread < limit < 1.2
    # Divided by a beam whose gain falls to 0.4 in the corners: the corners' noise is ~2x.
    corrected = data / _beam_gain(512, 512 * np.sqrt(2) / np.sqrt(np.log(1 / 0.4) / np.log(2)))
    spread, limit = noise_spread(corrected, 4.6)
    assert spread > max(NOISE_SPREAD_WARN, limit) and spread == pytest.approx(2.0, rel=0.25)
    # Few beams per cell: sampling alone could make such a spread, and the limit says so.
    assert noise_spread(data[:64, :64], 12.0)[1] > 2
    assert noise_spread(data[:32, :32], 4.6) == (1.0, np.inf)  # too small to cut


def test_detect_warns_about_a_noise_that_rises_outward(tmp_path, caplog):
    import logging

    from radiofind.detect.run import detect

    data, *_ = make_image(256, n_sources=8, snr=(8.0, 20.0), beam_pix=4.6, seed=6, border=20)
    flat = write_image(tmp_path / "flat.fits", data, make_header(256, beam_arcsec=6.9))
    corrected = write_image(tmp_path / "pb.fits", data / _beam_gain(256, 300.0),
                            make_header(256, beam_arcsec=6.9))
    with caplog.at_level(logging.WARNING, logger="radiofind.detect"):
        detect(image=flat, outdir=str(tmp_path / "a"), **MODEL)
        assert "--noise local" not in caplog.text
        detect(image=corrected, outdir=str(tmp_path / "b"), **MODEL)
        assert "corners of pb.fits" in caplog.text and "--noise local" in caplog.text
        caplog.clear()
        detect(image=corrected, outdir=str(tmp_path / "c"), **MODEL, noise="local")
        assert "--noise local" not in caplog.text


def test_detect_on_a_dask_cluster_matches_local_threads(tmp_path):
    from distributed import LocalCluster

    from radiofind.detect.run import detect

    image = _seam_image(tmp_path)
    detect(image=image, outdir=str(tmp_path / "local"), **MODEL, chunk=128)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster:
        summary = detect(image=image, outdir=str(tmp_path / "cluster"), **MODEL,
                         chunk=128, scheduler=cluster.scheduler_address)
    assert "2 workers" in summary["scheduler"]
    a, b = _catalogue(tmp_path / "local"), _catalogue(tmp_path / "cluster")
    assert len(a) > 5
    np.testing.assert_allclose(np.c_[b["x"], b["y"]], np.c_[a["x"], a["y"]], atol=1e-4)


def _plateau(size: int, fwhm: float, height: float) -> np.ndarray:
    """A round Gaussian of diffuse emission, ``fwhm`` pixels, centred on the image."""
    y, x = np.mgrid[0:size, 0:size] - size / 2
    return (height * np.exp(-4 * np.log(2) * (x**2 + y**2) / fwhm**2)).astype(np.float32)


def test_local_background_follows_diffuse_emission_and_not_the_sources():
    import dask.array as da

    from radiofind.noise import clipped_median, local_background

    rng = np.random.default_rng(3)
    values = rng.normal(2.0, 1.0, 5000)
    assert clipped_median(values) == pytest.approx(2.0, abs=0.05)
    # A few bright outliers (sources) do not move the clipped median.
    assert clipped_median(np.r_[values, np.full(200, 50.0)]) == pytest.approx(2.0, abs=0.1)
    data, *_ = make_image(512, n_sources=40, snr=(20.0, 200.0), noise=1.0, seed=4)
    halo = _plateau(512, 200.0, 6.0)
    bkg, cells, box = local_background(da.from_array(data + halo, chunks=128), box=32)
    assert box == 32 and cells.shape == (16, 16)
    bkg = bkg.compute()
    np.testing.assert_allclose(local_background(data + halo, box=32)[0], bkg, rtol=1e-5,
                               atol=1e-6)
    # It reads the halo to within a fraction of the noise, and nothing where there is none.
    inner = np.hypot(*(np.mgrid[0:512, 0:512] - 256)) < 100
    assert np.abs(bkg - halo)[inner].mean() < 0.3
    assert np.abs(local_background(data, box=32)[0]).mean() < 0.15
    with pytest.raises(RadiofindError, match="background box must be at least 16"):
        local_background(data, box=8)


def test_detect_subtracts_a_local_background_under_the_sources(tmp_path, caplog):
    from radiofind.detect.run import detect

    noise = 1e-5
    # Sources of 12 sigma on the halo's top and flanks, and far from it.
    x = np.array([256, 236, 286, 256, 60, 450, 80, 430])
    y = np.array([256, 276, 246, 216, 60, 450, 440, 70])
    data = with_sources(512, x, y, 12 * noise, seed=5)
    halo = _plateau(512, 160.0, 8.0 * noise)
    image = write_image(tmp_path / "halo.fits", data + halo, make_header(512))
    on_halo = []
    for mode in ("none", "local"):
        out = tmp_path / mode
        summary = detect(image=image, outdir=str(out), **MODEL, background=mode, bkg_box=32,
                         chunk=128)
        table = _catalogue(out)
        assert ("BKGBOX" in table.meta) == (mode == "local")
        # Every detection's peak: on the halo the plain search reads the halo in, the other
        # reads the source above it.
        near = np.hypot(table["x"] - 256, table["y"] - 256) < 80
        on_halo.append(int(near.sum()))
        src = [int(np.argmin(np.hypot(table["x"] - xs, table["y"] - ys))) for xs, ys in
               zip(x, y, strict=True)]
        d = np.hypot(np.asarray(table["x"])[src] - x, np.asarray(table["y"])[src] - y)
        assert (d < 2).all()  # every source found either way
        peak = np.asarray(table["peak"])[src]
        plain_peak = peak if mode == "none" else plain_peak
        if mode == "local":  # the peaks of the sources on the halo now stand above it
            halo_there = halo[y, x]
            assert (halo_there > 4 * noise).sum() == 4
            np.testing.assert_allclose(plain_peak - peak, halo_there, atol=1.5 * noise)
            np.testing.assert_allclose(table["snr"], table["peak"] / summary["noise"],
                                       rtol=1e-4)
    # The halo's noise peaks, read above the halo by the plain search, are far fewer above it.
    assert on_halo[1] < on_halo[0]
    assert "meant for natural-weighting images" in caplog.text  # MODEL is a uniform one
    with pytest.raises(RadiofindError, match="background must be"):
        detect(image=image, outdir=str(tmp_path / "x"), **MODEL, background="bane")


def test_clipped_rows_is_each_rows_clipped_median_and_sigma():
    from radiofind.noise import clipped_median, clipped_rows, clipped_sigma

    rng = np.random.default_rng(7)
    rows = rng.normal(1.0, 2.0, (6, 400)).astype(np.float32)
    rows[1, :30] += 50.0  # outliers: more clipping iterations than the others
    rows[2, 200:] = np.nan  # fewer values
    rows[3] = np.nan  # none
    rows[4] = 2.5  # constant
    med, sigma = clipped_rows(rows)
    for i in (0, 1, 2, 5):
        values = rows[i][np.isfinite(rows[i])]
        assert med[i] == clipped_median(values) and sigma[i] == clipped_sigma(values)
    assert np.isnan(med[3]) and np.isnan(sigma[3]) and np.isnan(med[4]) and np.isnan(sigma[4])
