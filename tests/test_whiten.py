"""The whitening check: a uniformly weighted image whitened by its own noise power spectrum
(radiofind.noise.whitened) confirms its detections (detect --psf), as the natural image does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, weighted_pair, write_image

from radiofind.errors import RadiofindError
from radiofind.noise import robust_rms, whitened


def _snr_at(img, x, y):
    return img[y, x] / robust_rms(img)


def test_whitening_a_uniform_image_gives_back_the_natural_one():
    uniform, natural, psf, x, y = weighted_pair(256, seed=1)
    white = whitened(uniform, psf, smooth=2 / 256)  # 2 uv cells, as on a 1024² image
    corr = {name: np.corrcoef(img.ravel(), natural.ravel())[0, 1]
            for name, img in (("uniform", uniform), ("whitened", white))}
    assert corr["whitened"] > 0.9 > 0.7 > corr["uniform"]
    # The sources' SNR rises towards the natural image's.
    gain = np.median(_snr_at(white, x, y) / _snr_at(uniform, x, y))
    natural_gain = np.median(_snr_at(natural, x, y) / _snr_at(uniform, x, y))
    assert natural_gain > 1.3 and gain > 0.9 * natural_gain
    # Linear in the image; blanks stay blank, and count as 0 elsewhere.
    np.testing.assert_allclose(whitened(-uniform, psf, smooth=2 / 256), -white,
                               atol=1e-6 * np.abs(white).max())
    holed = uniform.copy()
    holed[:8, :8] = np.nan
    out = whitened(holed, psf)
    assert np.isnan(out[:8, :8]).all() and np.isfinite(out[8:, 8:]).all()


def test_a_bright_source_does_not_ring_through_the_whitened_image():
    # An SNR-2000 source restored with a Gaussian beam: the whitening filter's edge in the uv
    # plane makes it ring over the whole image unless the image is capped first.
    uniform, _, psf, x, y = weighted_pair(256, seed=3)
    yy, xx = np.mgrid[:256, :256]
    bright = uniform + 2000 * robust_rms(uniform) * np.exp(-((xx - 128) ** 2 + (yy - 128) ** 2)
                                                           / (2 * 1.5**2))
    args = {"smooth": 2 / 256}
    quiet = robust_rms(whitened(uniform, psf, **args))
    assert robust_rms(whitened(bright, psf, **args)) < 1.02 * quiet
    assert robust_rms(whitened(bright, psf, cap=1e6, **args)) > 1.05 * quiet


@pytest.mark.parametrize("case", ["shape", "blank-psf", "flat-psf", "smooth", "cap"])
def test_whitening_refuses_a_psf_it_cannot_use(case):
    uniform, _, psf, *_ = weighted_pair(64, n_sources=1)
    bad = {"shape": (psf[:32, :32], {}), "blank-psf": (np.where(psf > 0.5, np.nan, psf), {}),
           "flat-psf": (np.zeros_like(psf), {}), "smooth": (psf, {"smooth": 0.0}),
           "cap": (psf, {"cap": -1.0})}[case]
    with pytest.raises(RadiofindError):
        whitened(uniform, bad[0], **bad[1])


def _field(tmp_path, seed=2, name="f"):
    uniform, natural, psf, x, y = weighted_pair(256, seed=seed, snr=9.0)
    header = make_header(256, beam_arcsec=4.5)
    header["WSCWEIGH"] = "Briggs'(-1.5)"
    image = write_image(tmp_path / f"{name}-image.fits", uniform, header)
    psf_path = write_image(tmp_path / f"{name}-psf.fits", psf, make_header(256, beam_arcsec=4.5))
    return image, psf_path, x, y


def test_detect_confirms_with_the_whitened_image(tmp_path, caplog):
    from radiofind.detect.run import detect

    image, psf, x, y = _field(tmp_path)
    # One TBD rule for all: the card's settings for the check are tested below.
    args = {"image": image, "model": "meerkat-uniform", "formats": ["fits"], "threshold": 1.13,
            "a_min": 1}
    plain = detect(outdir=str(tmp_path / "plain"), whiten_snr=0.0, **args)
    assert plain["confirmed_by"] is None and plain["tbd_for"] == "search"
    # The bundled card's check was searched on 26' fields: on this 6' image the PSF beside it is
    # not taken unless --psf names it.
    with caplog.at_level("WARNING", logger="radiofind"):
        beside = detect(outdir=str(tmp_path / "beside"), **args)
    assert beside["confirmed_by"] is None and "whitening check is off" in caplog.text
    keep = detect(outdir=str(tmp_path / "keep"), psf=psf, whiten_snr=1e-9, **args)
    table = Table.read(keep["catalog"])
    assert keep["confirmed_by"] == "f-image.fits whitened with f-psf.fits"
    assert table.meta["CONFIRM"] == "whitened" and table.meta["PSF"] == "f-psf.fits"
    assert len(table) == plain["n_sources"] and "confirm_snr" in table.colnames
    # The true sources read higher in the whitened image than the rest.
    d = np.hypot(np.asarray(table["x"])[:, None] - x, np.asarray(table["y"])[:, None] - y)
    true = d.min(axis=1) < 2.0
    c_snr = np.asarray(table["confirm_snr"])
    assert true.sum() >= 5 and np.median(c_snr[true]) > 4.0
    least = float(np.median(c_snr))
    cut = detect(outdir=str(tmp_path / "cut"), psf=psf, whiten_snr=least, **args)
    kept = Table.read(cut["catalog"])
    assert cut["n_unconfirmed"] == (c_snr < least).sum() > 0
    assert len(kept) == (c_snr >= least).sum() and kept.meta["CONFSNR"] == least
    # Detections of image SNR 10 or more are not checked (the whitened image is capped there).
    snr = np.asarray(table["snr"])
    none = detect(outdir=str(tmp_path / "none"), psf=psf, whiten_snr=1e6, **args)
    assert none["n_sources"] == (snr >= 10).sum() > 0


def test_detect_takes_the_psf_beside_the_image_when_the_card_whitens(tmp_path, caplog):
    from radiofind.detect.models import resolve_model
    from radiofind.detect.run import detect

    model = tmp_path / "model"
    shutil.copytree(resolve_model("meerkat-uniform").path, model)
    card = json.loads((model / "card.json").read_text())
    card["tbd_whitened"] = {**card["tbd"], "confirm_with": "whitened", "confirm_snr": 3.0,
                            "threshold": 0.8, "a_min": 2}
    card["training_set"]["size"] = 256  # trained on images of this one's field of view
    (model / "card.json").write_text(json.dumps(card))
    image, psf, *_ = _field(tmp_path)
    summary = detect(image=image, outdir=str(tmp_path / "out"), model=str(model),
                     formats=["fits"])
    assert summary["tbd_for"] == "whitened" and summary["confirmed_by"].endswith("f-psf.fits")
    assert summary["threshold"] == 0.8 and summary["tbd"]["a_min"] == 2
    assert Table.read(summary["catalog"]).meta["CONFSNR"] == 3.0
    # Options still win; --whiten-snr 0 turns it off, and the plain settings come back.
    off = detect(image=image, outdir=str(tmp_path / "off"), model=str(model), formats=["fits"],
                 whiten_snr=0.0)
    assert off["tbd_for"] == "search" and off["threshold"] == card["tbd"]["threshold"]
    # No PSF beside the image: a warning, and the plain search.
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(image, lone / "g-image.fits")
    with caplog.at_level("WARNING", logger="radiofind"):
        alone = detect(image=str(lone / "g-image.fits"), outdir=str(tmp_path / "alone"),
                       model=str(model), formats=["fits"])
    assert alone["tbd_for"] == "search" and "no PSF beside it" in caplog.text


@pytest.mark.parametrize("case", ["missing", "same", "with-confirm", "shape", "weighting",
                                  "bad-snr"])
def test_detect_refuses_a_bad_whitening(tmp_path, case):
    from astropy.io import fits

    from radiofind.detect.run import detect

    image, psf, *_ = _field(tmp_path)
    small = write_image(tmp_path / "small-psf.fits", np.ones((64, 64), np.float32),
                        make_header(64))
    natural = tmp_path / "natural-psf.fits"
    header = fits.getheader(psf)
    header["WSCWEIGH"] = "Briggs'(1.5)"  # another weighting's PSF (the image's is -1.5)
    fits.writeto(natural, fits.getdata(psf), header)
    args = {"missing": {"psf": str(tmp_path / "nope.fits")}, "same": {"psf": image},
            "with-confirm": {"psf": psf, "confirm_image": psf}, "shape": {"psf": small},
            "weighting": {"psf": str(natural)}, "bad-snr": {"psf": psf, "whiten_snr": -1.0}}[case]
    with pytest.raises(RadiofindError):
        detect(image=image, outdir=str(tmp_path / "out"), model="meerkat-uniform", **args)
    assert not (tmp_path / "out").exists()


def test_the_noise_spectrum_is_averaged_over_the_sampled_cells_alone():
    # uv_mean leaves the unsampled cells' values out of every average (where no visibility was
    # gridded the power says nothing of the noise), and keeps a gradient across the sampled ones.
    from radiofind.noise import quiet_power, transfer_function, uv_mean

    k = np.fft.fftfreq(128) * 128
    r = np.hypot(k[:, None], k[None, :])
    sampled = (r < 30).astype(float)
    values = np.where(sampled > 0, 1.0 + r / 30.0, 1000.0)
    mean = uv_mean(values, sampled, 2 / 128)
    inside = r < 28
    assert np.allclose(mean[inside], 1.0 + r[inside] / 30.0, atol=0.1)
    # The transfer function of a centred PSF is its uv coverage, peak 1; the quiet power of an
    # image leaves its bright pixels out.
    psf = np.fft.fftshift(np.real(np.fft.ifft2(sampled)))
    assert np.allclose(transfer_function(psf), sampled, atol=1e-9)
    spike = np.zeros((64, 64))
    spike[10, 10] = 100.0
    assert np.allclose(quiet_power(spike, 50.0), 0.0)
    assert np.allclose(quiet_power(spike, 500.0), 1e4)


def test_whitening_is_odd_in_the_image():
    # detect --negatives takes the positive search's whitened image times -1 instead of
    # whitening the negated image again: the two must be the same.
    uniform, _, psf, *_ = weighted_pair(128, seed=7)
    uniform[5:9, 5:9] = np.nan
    assert np.array_equal(whitened(-uniform, psf), -whitened(uniform, psf), equal_nan=True)


@pytest.mark.parametrize("name, psf", [
    ("uniform-image.fits", "uniform-psf.fits"), ("f-MFS-image.fits", "f-MFS-psf.fits"),
    ("uniform-image-pb.fits", "uniform-psf.fits"), ("u-image.fit", "u-psf.fit"),
    ("u-image-pb.fit", "u-psf.fit"), ("uniform.fits", None), ("uniform-residual.fits", None)])
def test_psf_beside_follows_wscleans_names(tmp_path, name, psf):
    from radiofind.io.images import psf_beside

    (tmp_path / name).write_text("")
    assert psf_beside(tmp_path / name) is None  # no PSF there yet
    if psf:
        (tmp_path / psf).write_text("")
        assert psf_beside(tmp_path / name) == tmp_path / psf
