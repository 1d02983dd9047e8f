"""The shape check: its classifier learns what tells sources from noise peaks, reads windows alike
from numpy and dask, and detect and train use it as the model card says."""

import json
import shutil

import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
from synthetic import make_header, write_image

from radiofind.detect import shape
from radiofind.errors import RadiofindError

BEAM = 4.0  # pixels (6" at 1.5")
SIGMA = BEAM / np.sqrt(8 * np.log(2))


def narrow_noise_field(size: int, n_sources: int, seed: int, snr=(4.0, 9.0)):
    """An image whose noise is narrower than the beam (as at uniform weighting: white noise
    smoothed to 0.6 of the beam's width; standard deviation 1.35, so that many of its peaks reach
    the classifier's SNR), plus beam-shaped sources; returns the image and the sources' pixels."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(size, size)), 0.6 * SIGMA)
    noise *= 1.35 / noise.std()
    x = rng.uniform(12, size - 12, n_sources)
    y = rng.uniform(12, size - 12, n_sources)
    yy, xx = np.mgrid[:size, :size]
    data = noise.copy()
    for x0, y0, a in zip(x, y, rng.uniform(*snr, n_sources), strict=True):
        data += a * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * SIGMA**2))
    return data, x, y


def auc(pos, neg) -> float:
    return float(np.mean(pos[:, None] > neg[None, :]))


def test_classifier_learns_that_noise_peaks_are_narrower_than_sources():
    half = shape.half_width(BEAM)
    assert half == 6
    parts = [shape.labelled_peaks(*narrow_noise_field(256, 40, seed), BEAM, half)
             for seed in (1, 2, 3)]
    feats, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    assert feats.shape == (labels.size, (2 * half + 1) ** 2 + 1)
    assert (labels == 1).sum() > 50 and (labels == 0).sum() > 50
    # Each peak's window is divided by its value (the centre reads 1); then SNR / 5.
    assert np.allclose(feats[:, (2 * half + 1) ** 2 // 2], 1.0)
    assert np.all(feats[:, -1] >= shape.FROM_SNR / 5)
    classifier = shape.fit(feats, labels, half)
    # On a field it never saw, sources score above noise peaks of the same heights.
    test_f, test_l = shape.labelled_peaks(*narrow_noise_field(256, 40, seed=9), BEAM, half)
    s = classifier.score(test_f)
    assert auc(s[test_l == 1], s[test_l == 0]) > 0.9
    # The card holds it whole.
    again = shape.ShapeClassifier.from_card(json.loads(json.dumps(classifier.card())))
    np.testing.assert_allclose(again.score(test_f), s)
    with pytest.raises(RadiofindError, match="has 170 weights; a half-width of 7 needs 226"):
        shape.ShapeClassifier.from_card({**classifier.card(), "half": 7})
    with pytest.raises(RadiofindError, match="at least 10 source and 10 noise"):
        shape.fit(feats[:5], np.ones(5, int), half)


def test_features_read_the_same_from_dask_and_count_off_image_as_zero():
    import dask.array as da

    data, _, _ = narrow_noise_field(64, 3, seed=4)
    x, y = np.array([0, 30, 63]), np.array([5, 30, 60])
    feats = shape.features(data, x, y, 3)
    np.testing.assert_allclose(shape.features(da.from_array(data, chunks=20), x, y, 3), feats)
    win = feats[:, :-1].reshape(3, 7, 7)
    assert np.all(win[0, :, :3] == 0) and np.all(win[2, :, 4:] == 0)  # off the image
    np.testing.assert_allclose(win[1] * data[30, 30], data[27:34, 27:34], rtol=1e-6)
    np.testing.assert_allclose(feats[:, -1], data[y, x] / 5)
    # A detection's peak: the brightest pixel within a quarter beam (a disc), none off the image.
    px, py, value = shape.detection_peaks(data, np.array([30.4, -9.0]), np.array([29.6, 5.0]),
                                          8.0)
    yy, xx = np.mgrid[:64, :64]
    disc = np.where((xx - 30) ** 2 + (yy - 30) ** 2 <= 4, data, -np.inf)
    assert (py[0], px[0]) == np.unravel_index(np.argmax(disc), disc.shape)
    assert value[0] == disc.max() and (px[1], py[1]) == (-1, -1) and np.isnan(value[1])


def test_dropped_needs_a_cut_and_an_snr_and_keeps_what_it_cannot_score():
    scores = np.array([-3.0, -3.0, 1.0, np.nan])
    snr = np.array([4.0, 7.0, 4.0, 4.0])
    assert shape.dropped(scores, snr, cut=-1.0, below_snr=6.0).tolist() == [True, False, False,
                                                                           False]
    assert not shape.dropped(scores, snr, cut=None, below_snr=6.0).any()
    assert not shape.dropped(scores, snr, cut=-1.0, below_snr=0.0).any()
    for cut, snr_ in ((np.inf, 5.0), (0.0, -1.0), (0.0, np.nan)):
        with pytest.raises(RadiofindError, match="shape_"):
            shape.check_values(cut, snr_)


def _model_with_classifier(tmp_path, cut: float | None, snr: float | None):
    """meerkat-uniform's network with a shape classifier fitted on synthetic narrow-noise
    fields and the given cut."""
    from radiofind.detect.models import resolve_model

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("meerkat-uniform").path, folder)
    half = shape.half_width(BEAM)
    parts = [shape.labelled_peaks(*narrow_noise_field(256, 40, seed), BEAM, half)
             for seed in (1, 2, 3)]
    classifier = shape.fit(np.concatenate([p[0] for p in parts]),
                           np.concatenate([p[1] for p in parts]), half)
    card = json.loads((folder / "card.json").read_text())
    if cut is not None:
        card["shape_classifier"] = classifier.card()
    card["tbd"].update(shape_cut=cut, shape_snr=snr)
    (folder / "card.json").write_text(json.dumps(card))
    return str(folder)


def test_detect_drops_the_narrow_peaks_the_cards_shape_check_scores_low(tmp_path):
    """Beam-shaped sources and narrow peaks of the same heights: the card's shape check drops the
    narrow ones below its SNR and keeps the sources; --shape-snr 0 turns it off; a cut with no
    classifier in the card is refused with no output."""
    from radiofind.detect.run import detect

    size = 192
    data = narrow_noise_field(size, 0, seed=5)[0] / 1.35  # noise of standard deviation 1
    yy, xx = np.mgrid[:size, :size]
    sources, spikes = [(40, 40), (150, 50), (50, 150)], [(150, 150), (100, 100)]
    for (x0, y0), s in [(xy, SIGMA) for xy in sources] + [(xy, 0.45 * SIGMA) for xy in spikes]:
        data += 7.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s**2))
    image = write_image(tmp_path / "field.fits", (data * 1e-5).astype(np.float32),
                        make_header(size))
    args = {"image": image, "formats": ["fits"], "threshold": 0.2, "a_min": 1}

    def near(table, x0, y0):
        return bool(np.any(np.hypot(table["x"] - x0, table["y"] - y0) < 3))

    model = _model_with_classifier(tmp_path, cut=-1.0, snr=8.0)
    off = detect(outdir=str(tmp_path / "off"), model=model, shape_snr=0.0, **args)
    plain = Table.read(off["catalog"])
    assert all(near(plain, *xy) for xy in sources + spikes) and off["n_shape_dropped"] == 0
    res = detect(outdir=str(tmp_path / "on"), model=model, **args)
    kept = Table.read(res["catalog"])
    assert all(near(kept, *xy) for xy in sources)
    assert not any(near(kept, *xy) for xy in spikes)
    assert res["n_shape_dropped"] == len(plain) - len(kept) >= 2
    assert kept.meta["SHAPECUT"] == -1.0 and kept.meta["SHAPESNR"] == 8.0
    assert np.all(kept["shape_score"] >= -1.0)
    # Bright enough, a peak is never checked.
    bright = Table.read(detect(outdir=str(tmp_path / "bright"), model=model, shape_snr=5.0,
                               **args)["catalog"])
    assert all(near(bright, *xy) for xy in sources + spikes)
    bare = _model_with_classifier(tmp_path / "bare", cut=None, snr=None)
    with pytest.raises(RadiofindError, match="no shape classifier"):
        detect(outdir=str(tmp_path / "bad"), model=bare, shape_cut=0.0, shape_snr=8.0, **args)
    assert not (tmp_path / "bad").exists()


def test_train_fits_the_classifier_and_searches_its_cut(tmp_path):
    """radiofind train --shape-check on narrow-noise fields: the card holds the classifier, what
    it was fitted on and the grid searched; the history the shape trials; retune refits it."""
    from radiofind.training.train import SHAPE_CUT_GRID, SHAPE_SNR_GRID, retune, train

    header = make_header(160, beam_arcsec=6.0)
    for k in range(4):
        data, x, y = narrow_noise_field(160, 25, seed=20 + k)
        folder = tmp_path / "data" / f"field-{k}"
        folder.mkdir(parents=True)
        write_image(folder / "uniform-image.fits", (data * 1e-5).astype(np.float32), header)
        ra, dec = WCS(header).all_pix2world(x, y, 0)
        Table({"ra": ra, "dec": dec}).write(folder / "truth.fits")
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"),
                 weighting="uniform", epochs=1, steps_per_epoch=2, batch_size=4, crop=32,
                 horn_radius=3, gauss_fwhm=2, seed=3, val_fraction=0.25, shape_check=True)
    fitted = card["shape_classifier"]
    assert fitted["half"] == 6 and len(fitted["weights"]) == 13 * 13 + 1
    assert fitted["training_peaks"]["fields"] == 3 and fitted["training_peaks"]["sources"] > 30
    assert card["tbd"]["searched"]["shape_cut"] == list(SHAPE_CUT_GRID)
    assert card["tbd"]["searched"]["shape_snr"] == list(SHAPE_SNR_GRID)
    assert (card["tbd"]["shape_cut"] is None) == (card["tbd"]["shape_snr"] is None)
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    trials = [t for t in history["tbd_search"] if t["shape_cut"] is not None]
    assert len(trials) == len(SHAPE_CUT_GRID) * len(SHAPE_SNR_GRID)
    assert any(t["shape_cut"] == card["tbd"]["shape_cut"]
               and t["shape_snr"] == card["tbd"]["shape_snr"]
               and t["pc3"] == card["validation"]["PC3"] for t in history["tbd_search"])
    again = retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"), shape_check=True)
    assert again["shape_classifier"]["weights"] == pytest.approx(fitted["weights"])
    # --keep-rule: the card's rule stays and only the check is searched, on it alone.
    rule = ("delta_max", "threshold", "a_min", "centre")
    card["tbd"].update(threshold=3.2, delta_max=None, a_min=3, centre="peak")
    (tmp_path / "model" / "card.json").write_text(json.dumps(card))
    kept = retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"), shape_check=True,
                  keep_rule=True)
    assert [kept["tbd"][k] for k in rule] == [None, 3.2, 3, "peak"]
    assert kept["tbd"]["searched"]["threshold"] == card["tbd"]["searched"]["threshold"]
    assert kept["tbd"]["retuned"].startswith("checks searched on the card's TBD rule")
    history = json.loads((tmp_path / "model" / "history.json").read_text())["tbd_search"]
    assert {tuple(t[k] for k in rule) for t in history} == {(None, 3.2, 3, "peak")}
    assert len(history) == 2 + len(SHAPE_CUT_GRID) * len(SHAPE_SNR_GRID)
    shutil.rmtree(tmp_path / "data" / card["training"]["fields"][0])
    with pytest.raises(RadiofindError, match="training fields: not found"):
        retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"), shape_check=True)
