"""Image reading (FITS and CASA), catalogue round trips, atomic outputs, the noise estimator."""

import numpy as np
import pytest
from astropy.io import fits
from synthetic import make_header, make_image, write_image

from radiofind.errors import RadiofindError
from radiofind.io.catalog import make_catalog, read_catalog, write_catalog
from radiofind.io.images import read_image
from radiofind.io.outputs import staged_outputs
from radiofind.noise import robust_rms


def test_degenerate_axes_are_squeezed_and_frequency_kept(tmp_path):
    data, *_ = make_image(64, n_sources=2)
    header = make_header(64)
    header["NAXIS"] = 4
    for i, (ctype, crval) in ((3, ("FREQ", 1.4e9)), (4, ("STOKES", 1.0))):
        header[f"CTYPE{i}"], header[f"CRVAL{i}"] = ctype, crval
        header[f"CDELT{i}"], header[f"CRPIX{i}"] = 1.0, 1.0
    path = write_image(tmp_path / "cube.fits", data[None, None], header)
    img = read_image(path)
    assert img.data.shape == (64, 64)
    assert img.frequency == 1.4e9
    assert img.beam_pixels == pytest.approx(4.0)


def test_casa_image_reads_like_fits(tmp_path):
    from casacore.images import image as casa_image

    data, *_ = make_image(64, n_sources=2)
    fits_path = write_image(tmp_path / "img.fits", data, make_header(64))
    casa_image(fits_path).saveas(str(tmp_path / "img.image"))
    a, b = read_image(fits_path), read_image(tmp_path / "img.image")
    np.testing.assert_allclose(a.data, b.data)
    assert b.beam.bmaj == pytest.approx(a.beam.bmaj)
    ra_a, dec_a = a.pixel_to_world([10, 50], [20, 40])
    ra_b, dec_b = b.pixel_to_world([10, 50], [20, 40])
    np.testing.assert_allclose(ra_a, ra_b, atol=1e-9)
    np.testing.assert_allclose(dec_a, dec_b, atol=1e-9)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"), ("text", "not a readable FITS"), ("nowcs", "celestial WCS"),
    ("nobeam", "restoring beam"), ("allnan", "no finite pixels"), ("table", "holds no image")])
def test_bad_images_are_refused(tmp_path, case, message):
    path = tmp_path / "bad.fits"
    header = make_header(32)
    data = np.ones((32, 32), np.float32)
    if case == "text":
        path.write_text("not an image\n")
    elif case == "nowcs":
        fits.PrimaryHDU(data, header=fits.Header({"BMAJ": 1e-3, "BMIN": 1e-3})).writeto(path)
    elif case == "nobeam":
        del header["BMAJ"]
        write_image(path, data, header)
    elif case == "allnan":
        write_image(path, data * np.nan, header)
    elif case == "table":
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
            [fits.Column(name="a", format="E", array=np.ones(3))])]).writeto(path)
    with pytest.raises(RadiofindError, match=message):
        read_image(path)


def test_catalogue_round_trip_keeps_positions(tmp_path):
    data, x, y, _ = make_image(128, n_sources=6)
    img = read_image(write_image(tmp_path / "im.fits", data, make_header(128, ra=210.0, dec=-45.0)))
    table = make_catalog(img, x, y, noise=1e-5, finder="test")
    with staged_outputs(tmp_path / "cat") as stage:
        write_catalog(table, stage, "im.test", ["fits", "csv", "votable", "ds9", "crtf"])
    assert np.all(table["peak_err"] == 1e-5) and np.all(np.isnan(table["ra_err"]))
    for ext in ("fits", "csv", "vot"):
        back = read_catalog(tmp_path / "cat" / f"im.test.{ext}")
        np.testing.assert_allclose(back["ra"], table["ra"], atol=1e-10)
        np.testing.assert_allclose(back["peak_err"], 1e-5)
        if ext != "csv":  # the VOTable keeps the metadata too, typed, as its INFO elements
            assert back.meta["FINDER"] == "test" and back.meta["NOISE"] == pytest.approx(1e-5)
            assert back.meta["BMAJ"] == pytest.approx(img.beam.bmaj)
            assert str(back["ra_err"].unit) == "arcsec"
        bx, by = img.world_to_pixel(back["ra"], back["dec"])
        np.testing.assert_allclose(bx, x, atol=1e-6)
        np.testing.assert_allclose(by, y, atol=1e-6)
    reg = (tmp_path / "cat" / "im.test.reg").read_text().splitlines()
    assert reg[3] == "fk5" and len(reg) == 4 + len(x)
    assert len((tmp_path / "cat" / "im.test.crtf").read_text().splitlines()) == 1 + len(x)


def test_a_catalogue_without_the_schema_s_columns_is_stale(tmp_path):
    from radiofind.io.catalog import SCHEMA, current_catalogue

    data, x, y, _ = make_image(64, n_sources=2)
    img = read_image(write_image(tmp_path / "im.fits", data, make_header(64)))
    table = make_catalog(img, x, y, noise=1e-5, finder="test")
    table.write(tmp_path / "new.fits")
    table.remove_columns(["ra_err", "dec_err"])  # as written before errors joined the schema
    table.write(tmp_path / "old.fits")
    assert set(SCHEMA) <= set(read_catalog(tmp_path / "new.fits").colnames)
    assert current_catalogue(tmp_path / "new.fits")
    assert not current_catalogue(tmp_path / "old.fits")
    assert not current_catalogue(tmp_path / "missing.fits")


def test_staged_outputs_leave_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_outputs(tmp_path / "out", ["a.txt"]) as stage:
            stage.path("a.txt").write_text("partial")
            raise RuntimeError("boom")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_scratch_files_are_never_outputs(tmp_path):
    with staged_outputs(tmp_path / "out", ["a.txt"]) as stage:
        stage.path("a.txt").write_text("done")
        stage.scratch("work.fits").write_text("scratch")
        with pytest.raises(ValueError):
            stage.scratch("a.txt")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the staging folder is gone


def test_robust_rms_ignores_sources():
    rng = np.random.default_rng(5)
    data = rng.normal(0, 2.0, (512, 512))
    data[::16, ::16] += 100.0  # 1024 bright pixels
    assert robust_rms(data) == pytest.approx(2.0, rel=0.03)
    with pytest.raises(RadiofindError):
        robust_rms(np.zeros((64, 64)))
