"""detect --negatives: the same search on the image times -1 counts the false detections
(radiofind.detect.reliability, radiofind.io.images.negated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from synthetic import make_header, make_image, write_image

from radiofind.detect.reliability import purity_estimate, reliability
from radiofind.errors import RadiofindError
from radiofind.io.images import negated, open_image


def test_reliability_is_one_minus_negatives_over_detections_at_each_snr():
    rng = np.random.default_rng(1)
    # Detections spread over SNR 3-8; negatives (noise) at 3-4.5 only, as many as detections there.
    snr = rng.uniform(3.0, 8.0, 2000)
    neg = snr[snr < 4.5] + rng.normal(0.0, 0.01, (snr < 4.5).sum())
    r = reliability(snr, neg)
    assert np.all((r >= 0) & (r <= 1))
    assert np.median(r[(snr > 3.3) & (snr < 4.2)]) < 0.1  # all noise there
    assert np.all(r[snr > 4.5 + 5 * 0.25] == 1.0)  # far above every negative
    # Half as many negatives: about half reliable.
    half = reliability(snr, neg[::2])
    assert 0.35 < np.median(half[(snr > 3.3) & (snr < 4.2)]) < 0.65


def test_reliability_edge_cases():
    snr = np.array([3.0, 5.0, math.nan])
    assert reliability(snr, [])[:2].tolist() == [1.0, 1.0]  # no negatives: nothing to doubt
    assert math.isnan(reliability(snr, [])[2]) and math.isnan(reliability(snr, [3.0])[2])
    # A negative at a detection's SNR: as many noise peaks as detections there.
    assert reliability(np.array([4.0]), [4.0])[0] == 0.0
    with pytest.raises(ValueError):
        reliability(snr, [3.0], width=0.0)


def test_purity_estimate_counts_negatives_against_detections_above_an_snr():
    snr = [3.1, 3.5, 4.2, 5.5, 6.0, 9.0]
    neg = [3.0, 3.2, 4.1, 5.1]
    assert purity_estimate(snr, neg, 3.0) == pytest.approx(1 - 4 / 6)
    assert purity_estimate(snr, neg, 5.0) == pytest.approx(1 - 1 / 3)
    assert purity_estimate(snr, neg, 10.0) is None
    assert purity_estimate([3.1], [3.0, 3.5, 4.0], 3.0) == 0.0  # never below 0


def test_negated_image_flips_blocks_and_scattered_pixels(tmp_path):
    data, *_ = make_image(128, n_sources=3, seed=2)
    data[10:20, 30:40] = np.nan
    path = write_image(tmp_path / "f.fits", data, make_header(128))
    img = open_image(path, chunk=64)
    neg = negated(img)
    np.testing.assert_array_equal(np.asarray(neg.data), -data.astype(np.float32))
    x, y = np.array([5, 35, 100]), np.array([7, 15, 64])
    np.testing.assert_array_equal(neg.pixels[y, x], -np.asarray(img.pixels[y, x]))
    assert neg.header["RFNEGATE"] is True and "RFNEGATE" not in img.header
    assert neg.wcs is img.wcs and neg.beam == img.beam
    np.testing.assert_array_equal(np.asarray(img.data), data.astype(np.float32))  # untouched


def test_detect_negatives_is_the_search_of_the_image_times_minus_one(tmp_path):
    from radiofind.detect.run import detect

    # Sources of SNR 4-12 among noise, so that both searches find noise peaks.
    data, x, y, amp = make_image(512, n_sources=30, snr=(4.0, 12.0), seed=11)
    image = write_image(tmp_path / "img.fits", data, make_header(512))
    summary = detect(image=image, outdir=str(tmp_path / "out"), formats=["fits"],
                     negatives=True)
    table = Table.read(summary["catalog"])
    negatives = Table.read(summary["negatives_catalog"])
    assert negatives.meta["NEGATED"] and len(negatives) > 0
    # The negated image searched with the image's own map threshold gives the same catalogue.
    flipped = write_image(tmp_path / "flipped.fits", -data, make_header(512))
    direct = detect(image=flipped, outdir=str(tmp_path / "direct"), formats=["fits"],
                    threshold=summary["threshold"])
    expected = Table.read(direct["catalog"])
    np.testing.assert_allclose(np.asarray(negatives["x"]), np.asarray(expected["x"]))
    np.testing.assert_allclose(np.asarray(negatives["snr"]), np.asarray(expected["snr"]))
    # They sit on troughs of the image; the catalogue records their counts and reliabilities.
    pixels = data[np.rint(negatives["y"]).astype(int), np.rint(negatives["x"]).astype(int)]
    assert np.all(pixels < 0)
    neg_snr = np.asarray(negatives["snr"])
    assert table.meta["NEGDET"] == len(negatives) == summary["negatives"]["n"]
    for s in (3, 4, 5):
        assert table.meta[f"NEGGE{s}"] == int((neg_snr >= s).sum())
    snr = np.asarray(table["snr"])
    np.testing.assert_allclose(np.asarray(table["reliability"]), reliability(snr, neg_snr))
    assert summary["negatives"]["purity"]["5"] == pytest.approx(
        purity_estimate(snr, neg_snr, 5.0), abs=1e-12)
    # The bright injected sources are found, and are reliable.
    d = np.hypot(np.asarray(table["x"])[:, None] - x[amp >= 8], np.asarray(table["y"])[:, None]
                 - y[amp >= 8])
    assert (d.min(axis=0) < 2.0).all()
    assert np.all(np.asarray(table["reliability"])[d.min(axis=1) < 2.0] > 0.9)
    # Without --negatives: no column, no file.
    plain = detect(image=image, outdir=str(tmp_path / "plain"), formats=["fits"])
    assert "reliability" not in Table.read(plain["catalog"]).colnames
    assert plain["negatives_catalog"] is None and plain["negatives"] is None
    assert not list((tmp_path / "plain").glob("*negatives*"))


def test_detect_negatives_warns_when_they_are_few(tmp_path, caplog):
    from radiofind.detect.run import detect

    data, *_ = make_image(128, n_sources=3, snr=(10.0, 20.0), seed=3)
    image = write_image(tmp_path / "img.fits", data, make_header(128))
    with caplog.at_level("WARNING", logger="radiofind"):
        summary = detect(image=image, outdir=str(tmp_path / "out"), formats=["fits"],
                         negatives=True)
    assert summary["negatives"]["n"] < 10
    assert f"only {summary['negatives']['n']} detections in the image times -1" in caplog.text


def test_detect_negatives_with_a_confirming_image_negates_both_and_warns(tmp_path, caplog):
    from radiofind.detect.run import detect

    data, x, y, _ = make_image(256, n_sources=10, snr=(8.0, 30.0), seed=7)
    other, *_ = make_image(256, n_sources=0, seed=8)
    image = write_image(tmp_path / "uniform.fits", data, make_header(256))
    # The confirming image holds a deep trough at one of the image's own troughs: only there can
    # the negated search keep a detection.
    yy, xx = np.unravel_index(np.argmin(data), data.shape)
    other[yy - 2:yy + 3, xx - 2:xx + 3] -= 1e-4
    confirm = write_image(tmp_path / "natural.fits", other, make_header(256))
    with caplog.at_level("WARNING", logger="radiofind"):
        summary = detect(image=image, outdir=str(tmp_path / "out"), formats=["fits"],
                         confirm_image=confirm, negatives=True)
    assert "estimates are optimistic" in caplog.text
    negatives = Table.read(summary["negatives_catalog"])
    assert len(negatives) >= 1
    d = np.hypot(np.asarray(negatives["x"]) - xx, np.asarray(negatives["y"]) - yy)
    assert d.max() < 3.0  # every one at the trough both images share
    assert (np.asarray(negatives["confirm_snr"]) >= 4.0).all()


def test_detect_negatives_does_not_overwrite(tmp_path):
    from radiofind.detect.run import detect

    data, *_ = make_image(128, n_sources=3, seed=3)
    image = write_image(tmp_path / "img.fits", data, make_header(128))
    out = tmp_path / "out"
    out.mkdir()
    (out / "img.radiofind-negatives.fits").write_bytes(b"keep me")
    with pytest.raises(RadiofindError, match="output exists"):
        detect(image=image, outdir=str(out), formats=["fits"], negatives=True)
    assert (out / "img.radiofind-negatives.fits").read_bytes() == b"keep me"
    assert sorted(p.name for p in out.iterdir()) == ["img.radiofind-negatives.fits"]
    with fits.open(image) as h:  # the input is never modified
        np.testing.assert_array_equal(h[0].data.squeeze(), data.astype(h[0].data.dtype))
