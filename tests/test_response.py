"""The response check: bright detections the network answers weakly are dropped
(radiofind.detect.blobs.weak_response, searched in training, applied by detect)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, make_image, with_sources, write_image

from radiofind.detect.blobs import weak_response
from radiofind.errors import RadiofindError


def test_weak_response_compares_the_score_with_a_point_source_of_that_snr():
    # A point source of SNR 16 gives (1 + 0.05) * 16 ** 0.75 = 8.4 in the demand image.
    snr = np.array([16.0, 16.0, 16.0, 3.0, math.nan, 16.0])
    score = np.array([8.4, 4.3, 4.1, 0.1, 0.1, -1.0])
    args = {"alpha": 0.75, "b_n": 0.05, "response_snr": 4.0}
    drop = weak_response(score, snr, min_response=0.5, **args)
    # Half of 8.4 is 4.2: 4.3 stays, 4.1 goes; SNR 3 is below the check and NaN is off the image.
    np.testing.assert_array_equal(drop, [False, False, True, False, False, True])
    assert not weak_response(score, snr, min_response=0.0, **args).any()
    assert weak_response(score, snr, min_response=0.5, **(args | {"response_snr": 20.0})).sum() \
        == 0
    assert weak_response(np.array([]), np.array([]), min_response=0.5, **args).shape == (0,)


def test_detect_drops_bright_detections_below_the_asked_response(tmp_path):
    from radiofind.detect.run import detect

    data, *_ = make_image(256, n_sources=10, snr=(3.0, 40.0), seed=5)
    image = write_image(tmp_path / "f.fits", data, make_header(256))
    plain = detect(image=image, outdir=str(tmp_path / "plain"), formats=["fits"],
                   min_response=0.0)
    assert plain["n_weak_response"] == 0
    bright = np.asarray(Table.read(tmp_path / "plain" / "f.radiofind.fits")["snr"]) >= 5.0
    assert bright.sum() >= 5
    # No network answers 10 times a point source's peak: every detection at SNR >= 5 goes.
    strict = detect(image=image, outdir=str(tmp_path / "strict"), formats=["fits"],
                    response_snr=5.0, min_response=10.0)
    table = Table.read(tmp_path / "strict" / "f.radiofind.fits")
    assert strict["n_weak_response"] == bright.sum()
    assert len(table) == len(bright) - bright.sum() and (np.asarray(table["snr"]) < 5.0).all()
    assert table.meta["MINRESP"] == 10.0 and table.meta["RESPSNR"] == 5.0


def test_detect_applies_the_models_own_response_check(tmp_path):
    import json
    import shutil

    from radiofind.detect.models import bundled_models
    from radiofind.detect.run import detect

    data, *_ = make_image(256, n_sources=10, snr=(5.0, 40.0), seed=5)
    image = write_image(tmp_path / "f.fits", data, make_header(256))
    # The bundled cards have no check (not kept: docs/models.md).
    plain = detect(image=image, outdir=str(tmp_path / "plain"), formats=["fits"])
    assert plain["response_check"]["min_response"] == 0 and plain["n_weak_response"] == 0
    assert Table.read(tmp_path / "plain" / "f.radiofind.fits").meta["MINRESP"] == 0
    # A card with a check: detect uses it without being told.
    model = tmp_path / "checked"
    shutil.copytree(bundled_models()[plain["model"]].path, model)
    card = json.loads((model / "card.json").read_text())
    card["tbd"] |= {"response_snr": 5.0, "min_response": 10.0}
    (model / "card.json").write_text(json.dumps(card))
    checked = detect(image=image, outdir=str(tmp_path / "checked-out"), formats=["fits"],
                     model=str(model))
    assert checked["response_check"]["min_response"] == 10.0 and checked["n_weak_response"] > 0
    assert checked["n_sources"] == plain["n_sources"] - checked["n_weak_response"]


@pytest.mark.parametrize("name, bad", [("min_response", -0.1), ("min_response", math.nan),
                                       ("response_snr", -1.0), ("response_snr", math.inf)])
def test_detect_refuses_a_bad_response_check(tmp_path, name, bad):
    from radiofind.detect.run import detect

    data, *_ = make_image(64, n_sources=2)
    image = write_image(tmp_path / "f.fits", data, make_header(64))
    with pytest.raises(RadiofindError, match=name):
        detect(image=image, outdir=str(tmp_path / "out"), **{name: bad})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("beam_pix, beam_arcsec, bin_", [(4.0, 6.0, 1), (18.8, 28.2, 4)])
def test_training_measures_the_checks_snr_as_detect_does(tmp_path, beam_pix, beam_arcsec, bin_):
    # The search tunes the check on SNRs over detect's noise, not the truth's source-free noise.
    from astropy.wcs import WCS

    from radiofind.detect.run import detect
    from radiofind.training.dataset import load_field
    from radiofind.training.train import detection_noise

    data, x, y, _ = make_image(384, n_sources=8, snr=(5.0, 30.0), beam_pix=beam_pix, seed=4,
                               border=40)
    header = make_header(384, beam_arcsec=beam_arcsec)
    folder = tmp_path / "field"
    folder.mkdir()
    image = write_image(folder / "natural-image.fits", data, header)
    ra, dec = WCS(header).all_pix2world(x, y, 0)
    Table({"ra": ra, "dec": dec}).write(folder / "truth.fits")
    summary = detect(image=image, outdir=str(tmp_path / "out"), formats=["fits"])
    assert summary["bin"] == bin_
    table = Table.read(tmp_path / "out" / "natural-image.radiofind.fits")
    noise = np.asarray(table["peak"]) / np.asarray(table["snr"])
    np.testing.assert_allclose(noise, detection_noise(load_field(folder, "natural", bin=bin_)),
                               rtol=1e-6)


def test_confirm_image_drops_detections_the_other_image_lacks(tmp_path):
    # Two images of one field: the second holds only the first five sources, with its own noise.
    from radiofind.detect.run import detect

    data, x, y, _ = make_image(256, n_sources=10, snr=(8.0, 30.0), seed=7)
    other = with_sources(256, x[:5], y[:5], 20e-5, seed=8)
    image = write_image(tmp_path / "uniform.fits", data, make_header(256))
    confirm = write_image(tmp_path / "natural.fits", other, make_header(256))
    plain = detect(image=image, outdir=str(tmp_path / "plain"), formats=["fits"])
    summary = detect(image=image, outdir=str(tmp_path / "conf"), formats=["fits"],
                     confirm_image=confirm)
    table = Table.read(tmp_path / "conf" / "uniform.radiofind.fits")
    d = np.hypot(np.asarray(table["x"])[:, None] - x, np.asarray(table["y"])[:, None] - y)
    found = d.min(axis=0) < 2.0
    assert found[:5].all() and not found[5:].any()  # the confirmed five, and only them
    assert (np.asarray(table["confirm_snr"]) >= 4.0).all()
    assert table.meta["CONFIRM"] == "natural.fits" and table.meta["CONFSNR"] == 4.0
    # The bundled uniform model's TBD settings searched for confirmation reach lower.
    assert plain["tbd_for"] == "search" and summary["tbd_for"] == "confirmation"
    assert summary["threshold"] < plain["threshold"]
    # --confirm-snr 0 keeps every detection and records its SNR in the other image.
    keep_all = detect(image=image, outdir=str(tmp_path / "all"), formats=["fits"],
                      confirm_image=confirm, confirm_snr=0.0)
    assert keep_all["n_unconfirmed"] == 0
    assert summary["n_unconfirmed"] == keep_all["n_sources"] - len(table) >= 5


@pytest.mark.parametrize("case", ["same", "missing", "bad-snr"])
def test_detect_refuses_a_bad_confirmation(tmp_path, case):
    from radiofind.detect.run import detect

    data, *_ = make_image(64, n_sources=2)
    image = write_image(tmp_path / "f.fits", data, make_header(64))
    args = {"same": {"confirm_image": image},
            "missing": {"confirm_image": str(tmp_path / "nope.fits")},
            "bad-snr": {"confirm_image": image, "confirm_snr": -1.0}}[case]
    with pytest.raises(RadiofindError):
        detect(image=image, outdir=str(tmp_path / "out"), **args)
    assert not (tmp_path / "out").exists()


def test_detections_outside_the_confirmation_image_are_kept_with_a_warning(tmp_path, caplog):
    # The confirmation image covers only the central 128² of the searched 256².
    from radiofind.detect.run import detect

    data, x, y, _ = make_image(256, n_sources=10, snr=(8.0, 30.0), seed=7)
    small, *_ = make_image(128, n_sources=0, seed=8)
    image = write_image(tmp_path / "uniform.fits", data, make_header(256))
    confirm = write_image(tmp_path / "natural.fits", small, make_header(128))
    with caplog.at_level("WARNING", logger="radiofind"):
        summary = detect(image=image, outdir=str(tmp_path / "out"), formats=["fits"],
                         confirm_image=confirm, confirm_snr=0.0)
    table = Table.read(summary["catalog"])
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    # The small image's pixel 0 is the large one's 64; positions take the nearest pixel.
    outside = (np.rint(x) < 64) | (np.rint(x) > 191) | (np.rint(y) < 64) | (np.rint(y) > 191)
    unconfirmed = np.isnan(np.ma.filled(table["confirm_snr"], np.nan))  # blank in the FITS table
    assert outside.sum() > 0
    assert summary["n_outside_confirmation"] == unconfirmed.sum() == outside.sum()
    assert "kept unconfirmed" in caplog.text
