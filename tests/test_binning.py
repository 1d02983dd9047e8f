"""Putting images on the network's grid: block-averaging oversampled images, interpolating
undersampled ones; values, WCS, and the way back."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from synthetic import make_header, make_image, write_image

from radiofind.io.images import (
    binned,
    block_mean,
    open_image,
    read_image,
    unbinned_pixels,
    upsampled,
)


def test_block_mean_ignores_blanks_and_dask_equals_numpy():
    import dask.array as da

    rng = np.random.default_rng(3)
    data = rng.normal(size=(203, 170)).astype(np.float32)
    data[12:16, :] = np.nan  # one whole row of 4 x 4 blocks
    data[40:50, 60:80] = np.nan  # block rows 10-11 blank there, row 12 half blank
    out = block_mean(data, 4)
    assert out.shape == (51, 43)  # padded up to multiples of 4
    assert out[1, 0] == pytest.approx(np.nanmean(data[4:8, 0:4]), rel=1e-5)
    assert out[12, 15] == pytest.approx(np.mean(data[50:52, 60:64]), rel=1e-5)  # half-blank block
    assert np.isnan(out[10:12, 15:20]).all()
    assert np.isnan(out[3, :]).all()  # every pixel blank
    # a partial block at the edge
    assert out[50, 42] == pytest.approx(np.mean(data[200:203, 168:170]), rel=1e-5)
    lazy = block_mean(da.from_array(data, chunks=(70, 33)), 4, chunk=16)
    assert lazy.chunks[0][0] == 16
    np.testing.assert_array_equal(lazy.compute(), out)
    assert block_mean(data, 1) is data


@pytest.mark.parametrize("cd", [False, True])
def test_binned_pixels_sit_at_the_centres_of_their_blocks(tmp_path, cd):
    header = make_header(100, scale_arcsec=2.0)
    if cd:  # a rotated CD-matrix header
        w = WCS(header)
        angle = np.deg2rad(20)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        w.wcs.cd = rot @ np.diag(w.wcs.cdelt)
        header = w.to_header()
        header.update({k: v for k, v in make_header(100).items() if k in ("BMAJ", "BMIN", "BPA")})
    img = read_image(write_image(tmp_path / "f.fits", np.ones((100, 100), np.float32), header))
    for factor in (2, 3, 4, 0.75, 0.6):
        grid = binned(img, factor)
        assert grid.beam_pixels == pytest.approx(img.beam_pixels / factor)
        xb, yb = np.array([0.0, 7.3, 20.0]), np.array([0.0, 11.6, 5.5])
        ra, dec = grid.pixel_to_world(xb, yb)
        x, y = unbinned_pixels(xb, yb, factor)
        ra0, dec0 = img.pixel_to_world(x, y)
        np.testing.assert_allclose(ra, ra0, atol=1e-9)
        np.testing.assert_allclose(dec, dec0, atol=1e-9)
        assert grid.header["RFBIN"] == factor
    # Lazy images bin lazily, to the same values.
    lazy = binned(open_image(tmp_path / "f.fits", chunk=32), 3, chunk=16)
    assert hasattr(lazy.data, "dask")
    np.testing.assert_array_equal(lazy.data.compute(), binned(img, 3).data)


def test_upsampled_interpolates_a_smooth_image_and_dask_equals_numpy():
    import dask.array as da

    # A band-limited image (Gaussians 4 px wide): the spline reproduces it between pixels.
    yy, xx = np.mgrid[0:150, 0:131].astype(float)
    def sky(y, x):
        return (np.exp(-((y - 60.3) ** 2 + (x - 70.1) ** 2) / (2 * 4.0**2))
                - 0.5 * np.exp(-((y - 20.0) ** 2 + (x - 30.6) ** 2) / (2 * 4.0**2)))
    data = sky(yy, xx).astype(np.float32)
    factor = 0.7
    out = upsampled(data, factor)
    assert out.shape == (215, 188)  # ceil(150 / 0.7), ceil(131 / 0.7)
    qy, qx = np.mgrid[0:215, 0:188].astype(float)
    truth = sky((qy + 0.5) * factor - 0.5, (qx + 0.5) * factor - 0.5)
    inner = (slice(5, 205), slice(5, 180))  # away from the edges' boundary condition
    assert np.abs(out[inner] - truth[inner]).max() < 2e-3
    # Chunked (uneven blocks, each reading its footprint plus a halo) = in one piece.
    lazy = upsampled(da.from_array(data, chunks=(70, 33)), factor, chunk=48)
    assert lazy.chunks[0][:2] == (48, 48)
    np.testing.assert_allclose(lazy.compute(), out, atol=1e-5)
    # A blank pixel blanks the grid pixels nearest to it, and nothing else.
    holed = data.copy()
    holed[100:103, 10:14] = np.nan
    up = upsampled(holed, factor)
    blank = np.isnan(up)
    iy = np.clip(np.rint((np.arange(215) + 0.5) * factor - 0.5).astype(int), 0, 149)
    ix = np.clip(np.rint((np.arange(188) + 0.5) * factor - 0.5).astype(int), 0, 130)
    np.testing.assert_array_equal(blank, np.isnan(holed)[np.ix_(iy, ix)])
    assert np.isfinite(up[:120, 30:]).all()


def _binned_model(path, random_model, bin_):
    card = json.loads((random_model / "card.json").read_text())
    card.update({"name": f"test-bin{bin_}", "input": {"bin": bin_},
                 "valid": {"beam_pixels": [2, 20], "beam_pixels_trained": 4.0 * bin_}})
    path.mkdir()
    (path / "card.json").write_text(json.dumps(card))
    (path / "weights.npz").write_bytes((random_model / "weights.npz").read_bytes())
    return path


def test_bin_factor_follows_the_beam(tmp_path, random_model):
    from radiofind.detect.models import load_model

    model = load_model(_binned_model(tmp_path / "m", random_model, 2))
    # Trained at 8-px beams binned by 2 (4 network pixels): scale the factor with the beam.
    assert [model.bin_factor(b) for b in (3.0, 5.9, 8.0, 10.5, 12.0, 17.0)] == [0.75, 1, 2, 3, 3, 4]
    assert load_model(random_model).bin_factor(4.0) == 1  # a card without input.bin
    # Narrower than trained by more than 10 %: the exact ratio, for interpolation.
    assert [model.bin_factor(b) for b in (3.7, 3.5, 2.0)] == [1, 0.875, 0.5]


def test_detect_bins_an_oversampled_image_and_reports_input_pixels(tmp_path, random_model):
    from radiofind.detect.blobs import find_blobs
    from radiofind.detect.run import detect

    model = _binned_model(tmp_path / "m", random_model, 2)
    data, *_ = make_image(130, n_sources=6, beam_pix=8.0)
    image = write_image(tmp_path / "field.fits", data, make_header(130, beam_arcsec=12.0))
    # refine_snr inf: every position is the blob's own (refinement is tested in test_positions).
    summary = detect(image=image, outdir=str(tmp_path / "out"), model=str(model), chunk=64,
                     refine_snr=float("inf"))
    assert summary["bin"] == 2 and summary["n_refined"] == 0
    map_path = tmp_path / "out" / "field.radiofind-map.fits"
    tmap = fits.getdata(map_path)
    assert tmap.shape == (65, 65)
    # The map's WCS is the binned grid's; blobs found on it are the catalogue's sources, at the
    # same sky positions, given in input pixels.
    grid = read_image(map_path, require_beam=False)
    tbd = summary["tbd"]
    blobs = find_blobs(tmap, delta_max=tbd["delta_max"], a_min=tbd["a_min"], centre=tbd["centre"],
                       n_steps=tbd["n_steps"], deblend=tbd["deblend_beams"] * 4.0)
    table = Table.read(tmp_path / "out" / "field.radiofind.fits")
    assert len(table) == len(blobs.x) == summary["n_sources"] > 0
    ra, dec = grid.pixel_to_world(blobs.x, blobs.y)
    np.testing.assert_allclose(table["ra"], ra, atol=1e-8)
    np.testing.assert_allclose(table["dec"], dec, atol=1e-8)
    x, y = unbinned_pixels(blobs.x, blobs.y, 2)
    np.testing.assert_allclose(table["x"], x)
    # Peaks are read from the input image, not the averaged one.
    np.testing.assert_allclose(table["peak"],
                               data[np.rint(y).astype(int), np.rint(x).astype(int)], rtol=1e-6)



def test_detect_puts_every_detection_on_its_peak_by_default_only_on_an_averaged_grid(
        tmp_path, random_model):
    from radiofind.detect.positions import RADIUS_BEAMS, peak_positions
    from radiofind.detect.run import detect

    data, *_ = make_image(130, n_sources=6, beam_pix=8.0)
    image = write_image(tmp_path / "field.fits", data, make_header(130, beam_arcsec=12.0))
    binned = _binned_model(tmp_path / "m2", random_model, 2)
    own = _binned_model(tmp_path / "m1", random_model, 1)  # trained on 8-px beams, unaveraged:
    card = json.loads((own / "card.json").read_text())
    card["valid"]["beam_pixels_trained"] = 8.0
    (own / "card.json").write_text(json.dumps(card))
    tables = {}
    for name, model, refine in (("binned", binned, None), ("centres", binned, float("inf")),
                                ("own", own, None)):
        summary = detect(image=image, outdir=str(tmp_path / name), model=str(model), chunk=64,
                         threshold=0.5, a_min=1, refine_snr=refine)
        tables[name] = Table.read(tmp_path / name / "field.radiofind.fits")
        tables[name].meta["n_refined"] = summary["n_refined"]
    binned_t, centres, own_t = tables["binned"], tables["centres"], tables["own"]
    # On the 2 x 2-averaged grid every detection, faint or not, moved to the image's brightest
    # pixel within a quarter beam of its blob centre (all but those on negative pixels, which
    # this untrained network finds too): the same blobs, on their peaks.
    assert binned_t.meta["REFSNR"] == 0.0 and len(binned_t) == len(centres) > 0
    moved = np.asarray(centres["snr"]) >= 0
    assert binned_t.meta["n_refined"] == moved.sum() and np.sum(centres["snr"] < 5) > 3
    radius = RADIUS_BEAMS * read_image(image).beam_pixels  # a quarter beam, as detect's
    px, py = peak_positions(data, np.asarray(centres["x"]), np.asarray(centres["y"]), radius)
    expected = sorted(zip(np.where(moved, px, centres["x"]), np.where(moved, py, centres["y"])))
    np.testing.assert_allclose(sorted(zip(binned_t["x"], binned_t["y"])), expected)  # (by peak)
    assert np.any(np.hypot(px - centres["x"], py - centres["y"])[moved] > 0.1)
    # On the image's own grid only detections reading SNR >= 5 move, as before.
    assert own_t.meta["BIN"] == 1 and own_t.meta["REFSNR"] == 5.0
    assert own_t.meta["n_refined"] == int(np.sum(own_t["snr"] >= 5.0)) < len(own_t)


def test_detect_interpolates_an_undersampled_image_and_reports_input_pixels(tmp_path,
                                                                             random_model):
    from radiofind.detect.run import detect

    # Trained at 4-px beams; this image's beam is 2.5 px, so the network sees it on a grid of
    # 0.625 input pixels, where the beam is 4 px again.
    model = _binned_model(tmp_path / "m", random_model, 1)
    data, *_ = make_image(120, n_sources=6, beam_pix=2.5)
    image = write_image(tmp_path / "field.fits", data, make_header(120, beam_arcsec=3.75))
    summary = detect(image=image, outdir=str(tmp_path / "out"), model=str(model), chunk=64,
                     threshold=0.0)
    assert summary["bin"] == pytest.approx(0.625)
    map_path = tmp_path / "out" / "field.radiofind-map.fits"
    assert fits.getdata(map_path).shape == (192, 192)
    grid = read_image(map_path, require_beam=False)
    assert grid.beam_pixels == pytest.approx(4.0, rel=1e-3)
    table = Table.read(tmp_path / "out" / "field.radiofind.fits")
    assert len(table) == summary["n_sources"] > 0
    assert table.meta["BIN"] == pytest.approx(0.625)
    # Catalogue pixels are the input's: they give the same sky positions on the input's WCS.
    img = read_image(image)
    ra, dec = img.pixel_to_world(np.asarray(table["x"]), np.asarray(table["y"]))
    np.testing.assert_allclose(table["ra"], ra, atol=1e-8)
    np.testing.assert_allclose(table["dec"], dec, atol=1e-8)


def test_a_bundled_model_finds_every_bright_source_in_an_undersampled_image(tmp_path):
    from radiofind.detect.run import detect

    # meerkat-uniform was trained on 4.3-px beams; at 3.0 px its grid is 0.70 input pixels.
    data, x, y, _ = make_image(200, n_sources=12, snr=(15.0, 40.0), beam_pix=3.0, seed=4)
    image = write_image(tmp_path / "field.fits", data, make_header(200, beam_arcsec=4.5))
    summary = detect(image=image, outdir=str(tmp_path / "out"), model="meerkat-uniform")
    assert summary["bin"] == pytest.approx(3.0 / 4.298, abs=1e-3)
    table = Table.read(tmp_path / "out" / "field.radiofind.fits")
    d = np.hypot(np.asarray(table["x"])[:, None] - x, np.asarray(table["y"])[:, None] - y)
    assert (d.min(axis=0) < 0.5).all(), d.min(axis=0)  # every source, within half a pixel
