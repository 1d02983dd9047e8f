"""Training: the demand image, and a 2-epoch smoke run on tiny synthetic fields."""

import json

import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, make_image, with_sources, write_image

from radiofind.errors import RadiofindError
from radiofind.training.demand import coefficient_image, demand_image, horn_kernel


def test_horn_kernel_is_a_smooth_triangle():
    k = horn_kernel(4)
    assert k.shape == (9, 9) and k[4, 4] == 1.0
    assert k[4, 6] == pytest.approx((1 - 2 / 4) ** 2)
    assert k[4, 0] == 0.0 and k[0, 0] == 0.0


def test_coefficient_image_peaks_at_one_on_each_source():
    c = coefficient_image((64, 64), np.array([10, 40]), np.array([20, 50]), horn_radius=5,
                          gauss_fwhm=3)
    assert c[20, 10] == pytest.approx(1.0) and c[50, 40] == pytest.approx(1.0)
    assert c.max() <= 1.0 and c[0, 63] == 0.0


def test_demand_image_follows_eq3():
    image = np.array([[4.0, -1.0], [0.25, 0.0]])
    coeff = np.array([[1.0, 0.0], [0.5, 0.0]])
    d = demand_image(image, coeff, alpha=0.5, b_n=0.1)
    np.testing.assert_allclose(d, [[(1.1) * 2.0, 0.1 * -1.0], [0.6 * 0.5, 0.0]], rtol=1e-6)


def make_fields(root, n=3, size=96, first=0):
    for k in range(first, first + n):
        data, x, y, _ = make_image(size, n_sources=6, snr=(3, 15), seed=10 + k, border=10)
        folder = root / f"field-{k}"
        folder.mkdir(parents=True)
        header = make_header(size, beam_arcsec=6.0)
        write_image(folder / "natural-image.fits", data, header)
        from astropy.wcs import WCS

        ra, dec = WCS(header).all_pix2world(x, y, 0)
        Table({"ra": ra, "dec": dec, "x": x, "y": y}).write(folder / "truth.fits")


@pytest.mark.parametrize("bin_", [1, 2])
def test_train_two_epochs_writes_a_usable_model(tmp_path, bin_):
    from radiofind.detect.models import load_model
    from radiofind.detect.run import detect
    from radiofind.training.train import DELTA_MAX_GRID, FIXED_THRESHOLD_GRID, train

    make_fields(tmp_path / "data")
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=2,
                 steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3,
                 bin=bin_)
    saved = json.loads((tmp_path / "model" / "card.json").read_text())
    assert saved["name"] == "meerkat-natural" and saved == json.loads(json.dumps(card))
    assert len(saved["training"]["fields"]) == 2 and len(saved["validation"]["fields"]) == 1
    # By default the search leaves out the unweighted mean (it drifts off large blobs).
    assert saved["tbd"]["searched"]["centre"] == ["centroid", "peak"]
    assert saved["tbd"]["centre"] in ("centroid", "peak")
    assert set(saved["validation"]) >= {"PC3", "PC4", "PC5", "S90", "C_ge5", "P_ge5"}
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["tbd_search"]) > 10
    # Both threshold rules were searched, each trial naming one of them.
    rules = {(t["delta_max"], t["threshold"]) for t in history["tbd_search"]}
    assert rules == ({(d, None) for d in DELTA_MAX_GRID}
                     | {(None, t) for t in FIXED_THRESHOLD_GRID})
    assert (saved["tbd"]["delta_max"] is None) != (saved["tbd"]["threshold"] is None)
    # No response check unless asked for (see the next test).
    assert all(t["min_response"] == 0 for t in history["tbd_search"])
    assert saved["tbd"]["min_response"] == 0 and saved["tbd"]["response_snr"] is None
    assert "min_response" not in saved["tbd"]["searched"]
    model = load_model(tmp_path / "model")
    summary = detect(image=str(tmp_path / "data" / "field-0" / "natural-image.fits"),
                     outdir=str(tmp_path / "det"), model=str(model.path))
    assert summary["model"] == "meerkat-natural"
    # A binned model records its factor, and detection bins the same images the same way.
    assert saved["input"]["bin"] == summary["bin"] == bin_


def test_train_builds_the_architecture_asked_for_and_detect_runs_it(tmp_path):
    from radiofind.detect.models import load_model
    from radiofind.detect.run import detect
    from radiofind.training.train import (
        MIN_RESPONSE_GRID,
        RESPONSE_SNR_GRID,
        TAPER_GRID,
        TAPER_SNR_GRID,
        train,
    )

    make_fields(tmp_path / "data")
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
                 steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3,
                 filters=16, n_layers=6, response_check=True, taper_check=True)
    assert card["architecture"]["filters"] == 16 and card["architecture"]["n_layers"] == 6
    # The response check, searched on the chosen rule: one trial without, one per SNR and level.
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    checks = [t for t in history["tbd_search"] if t["min_response"] > 0]
    assert len(checks) == len(RESPONSE_SNR_GRID) * (len(MIN_RESPONSE_GRID) - 1)
    assert card["tbd"]["min_response"] in MIN_RESPONSE_GRID
    assert card["tbd"]["searched"]["min_response"] == list(MIN_RESPONSE_GRID)
    assert (card["tbd"]["response_snr"] is None) == (card["tbd"]["min_response"] == 0)
    # Then the taper check on the chosen rule and check: none, then every taper and SNR.
    tapers = [t for t in history["tbd_search"] if "taper" in t][-1 - len(TAPER_GRID) * len(
        TAPER_SNR_GRID):]
    assert tapers[0]["taper"] is None and {(t["taper"], t["taper_snr"]) for t in tapers[1:]} == {
        (f, s) for f in TAPER_GRID for s in TAPER_SNR_GRID}
    assert all(t["min_response"] == card["tbd"]["min_response"] for t in tapers)
    assert card["tbd"]["searched"]["taper"] == list(TAPER_GRID)
    assert (card["tbd"]["taper"] is None) == (card["tbd"]["taper_snr"] is None)
    assert card["tbd"]["taper"] is None or card["tbd"]["taper_snr"] in TAPER_SNR_GRID
    weights = np.load(tmp_path / "model" / "weights.npz")
    assert sorted({k.split("/")[0] for k in weights.files if k.startswith("conv")}) == [
        f"conv{i}" for i in range(1, 7)]
    assert weights["conv2/0"].shape == (5, 5, 16, 16)
    model = load_model(tmp_path / "model")
    summary = detect(image=str(tmp_path / "data" / "field-0" / "natural-image.fits"),
                     outdir=str(tmp_path / "det"), model=str(model.path))
    assert summary["model"] == "meerkat-natural"
    with pytest.raises(RadiofindError, match="n_layers must be >= 3"):
        train(data=str(tmp_path / "data"), outdir=str(tmp_path / "m2"), n_layers=2)
    assert not (tmp_path / "m2").exists()


def test_train_searches_the_demand_image_and_keeps_the_best(tmp_path):
    from click.testing import CliRunner

    from radiofind.cli import main

    make_fields(tmp_path / "data")
    result = CliRunner().invoke(main, [
        "train", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "model"),
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--crop", "32",
        "--horn-radius", "3", "--gauss-fwhm", "2", "--alpha", "0.5,1", "--b-n", "0.05,0.3"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    searched = card["demand"]["searched"]
    assert searched["alpha"] == [0.5, 1.0] and searched["b_n"] == [0.05, 0.3]
    tried = searched["validation"]
    assert [(t["alpha"], t["b_n"]) for t in tried] == [(0.5, 0.05), (0.5, 0.3), (1.0, 0.05),
                                                      (1.0, 0.3)]
    # The kept network is the best of the recorded ones (PC3, then the lower S90).
    def key(t):
        return (round(t["pc3"] if t["pc3"] is not None else -1, 4),
                -(t["s90"] if t["s90"] is not None else 99))
    kept = max(tried, key=key)
    assert (card["demand"]["alpha"], card["demand"]["b_n"]) == (kept["alpha"], kept["b_n"])
    assert card["validation"]["PC3"] == kept["pc3"]
    bad = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "data"), "-o",
                                    str(tmp_path / "m2"), "--alpha", "x"])
    assert bad.exit_code != 0 and "float" in bad.output


def test_noise_peaks_lie_far_from_every_source_and_crops_can_centre_on_them(tmp_path):
    from astropy.wcs import WCS

    from radiofind.training.dataset import find_noise_peaks, load_field, random_crops

    size = 200
    # Two equal beams 8 sigma high; only the first is a true source: the second is noise.
    data = with_sources(size, [50, 150], [50, 150], 8e-5, seed=4)
    folder = tmp_path / "field"
    folder.mkdir()
    header = make_header(size, beam_arcsec=6.0)
    write_image(folder / "natural-image.fits", data, header)
    ra, dec = WCS(header).all_pix2world([50], [50], 0)
    Table({"ra": ra, "dec": dec}).write(folder / "truth.fits")
    field = load_field(folder, "natural")
    assert find_noise_peaks(field, 6.0) == 1
    assert abs(field.peaks_x[0] - 150) <= 1 and abs(field.peaks_y[0] - 150) <= 1
    field.demand = np.zeros_like(field.normalised)

    def bright_share(fraction):
        xs, _ = random_crops([field], 400, 32, np.random.default_rng(0),
                             noise_peak_fraction=fraction)
        return np.mean(xs.max(axis=(1, 2, 3)) > 6)

    # Half the crops hold the source; with the other half on the noise peak, every crop holds
    # one of the two (a random crop seldom does).
    assert bright_share(0.5) == 1.0
    # Otherwise a half (and a few random ones), or three quarters.
    assert 0.45 <= bright_share(0.0) < 0.62 < bright_share(0.25) < 0.85
    # Without the option the crops are what they were: the peaks found change nothing.
    plain = random_crops([field], 20, 32, np.random.default_rng(1))
    field.peaks_x, field.peaks_y = np.empty(0), np.empty(0)
    assert np.array_equal(plain[0], random_crops([field], 20, 32, np.random.default_rng(1))[0])
    with pytest.raises(RadiofindError, match="SNR must be positive"):
        find_noise_peaks(field, 0.0)


def test_train_centres_crops_on_noise_peaks_when_asked(tmp_path):
    from radiofind.training.train import train

    make_fields(tmp_path / "data")
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
                 steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3,
                 noise_peak_fraction=0.25, noise_peak_snr=2.0)
    assert card["training"]["noise_peak_fraction"] == 0.25
    assert card["training"]["noise_peak_snr"] == 2.0 and card["training"]["noise_peaks"] > 0
    for bad, match in (({"noise_peak_fraction": 0.6}, "noise_peak_fraction must be in"),
                       ({"noise_peak_fraction": -0.1}, "noise_peak_fraction must be in"),
                       ({"noise_peak_snr": 0.0}, "noise_peak_snr must be positive")):
        with pytest.raises(RadiofindError, match=match):
            train(data=str(tmp_path / "data"), outdir=str(tmp_path / "bad"), epochs=1, **bad)
        assert not (tmp_path / "bad").exists()


def test_retune_searches_the_cards_validation_fields_or_others_it_was_not_trained_on(tmp_path):
    from radiofind.training.train import retune, train

    make_fields(tmp_path / "data")
    train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
          steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3)
    before = json.loads((tmp_path / "model" / "card.json").read_text())
    card = retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"))
    assert card["validation"]["fields"] == before["validation"]["fields"]
    assert card["tbd"]["retuned"] and card["validation"]["PC3"] == before["validation"]["PC3"]
    make_fields(tmp_path / "data", n=2, first=3)
    card = retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"),
                  fields=before["validation"]["fields"] + ["field-3", "field-4"])
    assert card["validation"]["fields"] == before["validation"]["fields"] + ["field-3", "field-4"]
    assert json.loads((tmp_path / "model" / "card.json").read_text()) == card
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["tbd_search"]) > 10
    for fields, match in ((before["training"]["fields"][:1], "trained on 1 of these"),
                          (["field-9"], "not found")):
        with pytest.raises(RadiofindError, match=match):
            retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"), fields=fields)
    assert json.loads((tmp_path / "model" / "card.json").read_text()) == card


def test_train_needs_two_fields(tmp_path):
    from radiofind.training.train import train

    make_fields(tmp_path / "data", n=1)
    with pytest.raises(RadiofindError, match="at least 2 fields"):
        train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"))


def test_response_search_keeps_pc3_then_lowers_s90_then_raises_pc(monkeypatch):
    from radiofind.training import train as tr

    # Scripted validation scores per (response_snr, min_response).
    scores = {(None, 0.0): (0.100, 5.25, 1.00, 0.95),
              (3.75, 0.6): (0.090, 3.75, 1.00, 1.00),   # best S90, but costs PC3: refused
              (4.25, 0.4): (0.100, 4.75, 0.99, 0.97),
              (4.25, 0.5): (0.0998, 4.75, 0.99, 0.99),  # within the PC3 tolerance, purer
              (4.75, 0.3): (0.100, 4.75, 0.99, 0.99),   # as good, and a weaker check: chosen
              (4.25, 0.6): (0.100, 4.75, 1.00, 1.00)}   # purest, but a lower PC4

    def fake(fields, tables, *, a_min, centre, truth, response=None, **_):
        key = (None, 0.0) if response is None or response["min_response"] == 0 else (
            response["response_snr"], response["min_response"])
        pc3, s90, c5, p5 = scores.get(key, (0.100, 5.25, 1.00, 0.95))
        pc4 = 0.45 if key == (4.25, 0.6) else 0.5
        return {"pc3": pc3, "pc4": pc4, "pc5": 0.9, "s90": s90, "c_ge5": c5, "p_ge5": p5}

    monkeypatch.setattr(tr, "validation_scores", fake)
    best = {"delta_max": None, "threshold": 1.0, "a_min": 3, "centre": "centroid"}
    chosen, trials = tr.search_response([], [], best, truth={},
                                        demand={"alpha": 0.75, "b_n": 0.05})
    assert (chosen["response_snr"], chosen["min_response"]) == (4.75, 0.3)
    assert chosen["a_min"] == 3
    assert len(trials) == 1 + len(tr.RESPONSE_SNR_GRID) * (len(tr.MIN_RESPONSE_GRID) - 1)
    # With nothing better than no check, there is none.
    scores.clear()
    chosen, _ = tr.search_response([], [], best, truth={}, demand={"alpha": 0.75, "b_n": 0.05})
    assert (chosen["response_snr"], chosen["min_response"]) == (None, 0.0)


def test_a_confirmation_that_drops_bright_sources_is_not_chosen(monkeypatch):
    from radiofind.training import train as tr

    class Field:
        name, data = "f", None

    # Scripted trials: the best PC3 finds 0.95 of the sources above SNR 5; the next finds all.
    trials = [{"pc3": 0.10, "s90": 4.75, "c_ge5": 0.95, "confirm_snr": 3.5},
              {"pc3": 0.08, "s90": 5.25, "c_ge5": 0.99, "confirm_snr": 3.0},
              {"pc3": 0.07, "s90": 4.75, "c_ge5": None, "confirm_snr": 2.5},
              {"pc3": 0.05, "s90": 5.25, "c_ge5": 1.00, "confirm_snr": 2.5}]
    monkeypatch.setattr(tr, "search_tbd", lambda *a, **k: (trials[0], trials))
    monkeypatch.setattr(tr, "confirming_file", lambda *a: None)
    monkeypatch.setattr("radiofind.io.images.read_image", lambda path: Field())
    monkeypatch.setattr("radiofind.noise.robust_rms", lambda data: 1.0)

    best, all_trials = tr.search_confirmed([Field()], [None], ["f"], confirm_with="natural",
                                           n_steps=50, demand={})
    assert best is trials[1] and all_trials is trials
    assert tr.MIN_C_GE5 == 0.98
    # none complete enough: the best PC3 after all
    for t in trials:
        t["c_ge5"] = 0.9
    assert tr.search_confirmed([Field()], [None], ["f"], confirm_with="natural", n_steps=50,
                               demand={})[0] is trials[0]


def _second_image(folder, keep: int, weighting: str = "uniform", size: int = 96):
    """A second image of a make_fields field holding only its first ``keep`` sources."""
    truth = Table.read(folder / "truth.fits")
    write_image(folder / f"{weighting}-image.fits",
                with_sources(size, truth["x"][:keep], truth["y"][:keep], 30e-5, seed=99),
                make_header(size, beam_arcsec=6.0))


def test_validation_scores_drop_what_the_confirming_image_lacks(tmp_path, monkeypatch):
    from radiofind.detect import blobs
    from radiofind.io.images import read_image
    from radiofind.noise import robust_rms
    from radiofind.training.dataset import load_field
    from radiofind.training.train import truth_snrs, validation_scores

    make_fields(tmp_path / "data", n=1)
    folder = tmp_path / "data" / "field-0"
    _second_image(folder, keep=3)
    field = load_field(folder, "natural")
    # A finder that returns exactly the six true sources.
    monkeypatch.setattr(blobs, "select_blobs", lambda table, **_: (
        field.truth_x, field.truth_y, None, np.ones(6)))
    truth = truth_snrs([field])
    plain = validation_scores([field], [None], a_min=1, centre="peak", truth=truth)
    other = read_image(folder / "uniform-image.fits")
    confirmed = validation_scores([field], [None], a_min=1, centre="peak", truth=truth,
                                  confirm={"images": {field.name: (other, robust_rms(other.data))},
                                           "snr": 4.0})
    assert (plain["n_detections"], plain["n_tp"]) == (6, 6)
    assert (confirmed["n_detections"], confirmed["n_tp"]) == (3, 3)


def test_train_confirm_with_searches_tbd_for_confirmation_and_detect_uses_it(tmp_path):
    from radiofind.detect.run import CONFIRM_SNR, detect
    from radiofind.training.train import train

    make_fields(tmp_path / "data")
    for k in range(3):
        _second_image(tmp_path / "data" / f"field-{k}", keep=3)
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
                 steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3,
                 confirm_with="uniform", symmetries=2)
    conf = card["tbd_confirmed"]
    # both searches ran on the maps averaged over two orientations, and say so
    assert card["tbd"]["symmetries"] == 2 and conf["symmetries"] == 2
    assert conf["confirm_with"] == "uniform" and conf["confirm_snr"] == CONFIRM_SNR
    assert (conf["delta_max"] is None) != (conf["threshold"] is None)
    assert set(conf["validation"]) >= {"PC3", "S90", "C_ge5", "P_ge5"}
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["tbd_search_confirmed"]) == len(history["tbd_search"])
    # detect takes these settings only with a confirmation image; options still win.
    saved = json.loads((tmp_path / "model" / "card.json").read_text())
    saved["tbd_confirmed"] |= {"delta_max": None, "threshold": 0.3, "a_min": 7, "symmetries": 1}
    saved["tbd"]["symmetries"] = 4
    (tmp_path / "model" / "card.json").write_text(json.dumps(saved))
    image = str(tmp_path / "data" / "field-0" / "natural-image.fits")
    other = str(tmp_path / "data" / "field-0" / "uniform-image.fits")
    args = {"image": image, "model": str(tmp_path / "model"), "formats": ["fits"]}
    plain = detect(outdir=str(tmp_path / "plain"), **args)
    assert plain["tbd_for"] == "search" and plain["tbd"]["a_min"] == saved["tbd"]["a_min"]
    assert plain["symmetries"] == 4 and Table.read(plain["catalog"]).meta["SYMMETRY"] == 4
    conf = detect(outdir=str(tmp_path / "conf"), confirm_image=other, **args)
    assert conf["tbd_for"] == "confirmation" and conf["tbd"]["a_min"] == 7
    assert conf["threshold"] == 0.3 and conf["threshold_rule"] == "fixed"
    assert conf["symmetries"] == 1
    assert Table.read(conf["catalog"]).meta["TBDFOR"] == "confirmation"
    mine = detect(outdir=str(tmp_path / "mine"), confirm_image=other, a_min=2, symmetries=8,
                  **args)
    assert mine["tbd"]["a_min"] == 2 and mine["symmetries"] == 8
    with pytest.raises(RadiofindError, match="symmetries must be 1, 2, 4 or 8"):
        detect(outdir=str(tmp_path / "bad"), symmetries=3, **args)
    assert not (tmp_path / "bad").exists()


def _psf(folder, size: int = 96, beam_pix: float = 4.0):
    """A Gaussian PSF of the make_fields beam beside a field's natural image."""
    yy, xx = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(xx**2 + yy**2) / (2 * (beam_pix / np.sqrt(8 * np.log(2))) ** 2))
    write_image(folder / "natural-psf.fits", psf.astype(np.float32), make_header(size))


def test_train_confirm_with_whitened_searches_its_snr_and_writes_tbd_whitened(tmp_path):
    from radiofind.training.train import WHITEN_SNR_GRID, retune, train

    make_fields(tmp_path / "data")
    for k in range(3):
        _psf(tmp_path / "data" / f"field-{k}")
    card = train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
                 steps_per_epoch=2, batch_size=4, crop=32, horn_radius=3, gauss_fwhm=2, seed=3,
                 confirm_with="whitened")
    conf = card["tbd_whitened"]
    assert "tbd_confirmed" not in card and conf["confirm_with"] == "whitened"
    assert conf["confirm_snr"] in WHITEN_SNR_GRID
    assert conf["searched"]["confirm_snr"] == list(WHITEN_SNR_GRID)
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    trials = history["tbd_search_whitened"]
    # every rule tried with every SNR, and the card's is the best of them
    assert len(trials) == len(history["tbd_search"]) * len(WHITEN_SNR_GRID)
    assert {t["confirm_snr"] for t in trials} == set(WHITEN_SNR_GRID)
    keys = ("delta_max", "threshold", "a_min", "centre", "confirm_snr")
    assert any(all(t[k] == conf[k] for k in keys) for t in trials)
    # retune writes it as train does; --confirm-only leaves the rest of the card as it was
    saved = json.loads((tmp_path / "model" / "card.json").read_text())
    saved["tbd"]["a_min"], saved["validation"]["PC3"] = 77, 0.5
    (tmp_path / "model" / "card.json").write_text(json.dumps(saved))
    again = retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"),
                   confirm_with="whitened", confirm_only=True)
    assert again["tbd_whitened"]["confirm_snr"] in WHITEN_SNR_GRID
    assert again["tbd"]["a_min"] == 77 and again["validation"]["PC3"] == 0.5
    assert again["tbd_whitened"]["validation"]["fields"] == saved["validation"]["fields"]
    with pytest.raises(RadiofindError, match="confirm_only needs confirm_with"):
        retune(model=str(tmp_path / "model"), data=str(tmp_path / "data"), confirm_only=True)


@pytest.mark.parametrize("case", ["same", "missing", "no-psf"])
def test_train_refuses_a_bad_confirm_with(tmp_path, case):
    from radiofind.training.train import train

    make_fields(tmp_path / "data")
    with pytest.raises(RadiofindError, match="confirm_with"):
        train(data=str(tmp_path / "data"), outdir=str(tmp_path / "model"), epochs=1,
              confirm_with={"same": "natural", "missing": "uniform", "no-psf": "whitened"}[case])
    assert not (tmp_path / "model").exists()


def test_validation_scores_place_detections_as_detect_does(tmp_path):
    from radiofind.training.dataset import load_field
    from radiofind.training.train import detect_positions, detection_noise

    make_fields(tmp_path / "data", n=1)
    folder = tmp_path / "data" / "field-0"
    for bin_, moved in ((2, "all"), (1, "bright")):
        field = load_field(folder, "natural", bin=bin_)
        image = field.image
        beam = image.beam_pixels
        # Each true source's detection a fifth of a beam off it, as a blob centre may be.
        tx, ty = image.world_to_pixel(field.truth_ra, field.truth_dec)  # image pixels
        x, y = tx + 0.2 * beam, ty
        ra, dec = image.pixel_to_world(x, y)
        noise = detection_noise(field)
        nra, ndec = detect_positions(field, ra, dec, noise)
        nx, ny = image.world_to_pixel(nra, ndec)
        off_before = np.hypot(x - tx, y - ty)
        off_after = np.hypot(nx - tx, ny - ty)
        from radiofind.noise import pixel_values

        bright = pixel_values(image.data, x, y) / noise >= 5
        assert bright.any() and (~bright).any()
        # On an averaged grid every detection goes to its source's peak; on the image's own only
        # those reading SNR >= 5 (detect's defaults).
        went = off_after < 0.5 * off_before
        assert went.tolist() == (np.ones_like(bright) if moved == "all" else bright).tolist()


def test_search_tbd_takes_other_grids_and_records_bins(tmp_path):
    """The grids can be narrowed (benchmarks/oracle_tbd.py searches fixed thresholds only), and
    ``bins`` adds purity and completeness at SNR 3-4 and 4-5 without changing the scores."""
    from radiofind.training.dataset import load_field
    from radiofind.training.train import FIXED_THRESHOLD_GRID, search_tbd

    make_fields(tmp_path / "data", n=3)
    fields = [load_field(tmp_path / "data" / f"field-{k}", "natural") for k in range(3)]
    # The image in SNR units stands in for a network map.
    tmaps = [np.clip(np.nan_to_num(f.normalised), 0, None) for f in fields]
    kwargs = dict(n_steps=20, centres=("centroid",), demand={"alpha": 0.75, "b_n": 0.05},
                  delta_max_grid=(), a_min_grid=(1, 5))
    best, trials = search_tbd(fields, tmaps, bins=True, **kwargs)
    assert len(trials) == 2 * len(FIXED_THRESHOLD_GRID)
    assert {t["delta_max"] for t in trials} == {None}
    assert {t["a_min"] for t in trials} == {1, 5}
    assert all({"p3", "c3", "p4", "c4"} <= set(t) for t in trials)
    plain = search_tbd(fields, tmaps, **kwargs)[1]
    for key in ("pc3", "pc4", "s90"):
        np.testing.assert_array_equal([t[key] for t in plain], [t[key] for t in trials])
    assert "p3" not in plain[0] and best in trials
    # Purity and completeness are fractions, or NaN where a bin holds no detection or source.
    values = np.array([t[k] for t in trials for k in ("p3", "c3", "p4", "c4")], float)
    assert np.all(np.isnan(values) | ((values >= 0) & (values <= 1)))
    assert np.isfinite(values).any()
