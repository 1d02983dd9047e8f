"""Thresholded blob detection, chunked inference, and the detect command on synthetic images."""


import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
from synthetic import make_header, make_image, write_image

from radiofind.detect.blobs import dynamic_threshold, find_blobs
from radiofind.errors import RadiofindError


def blob_map(shape, xs, ys, amps, sigma=2.0, noise=0.02, seed=1):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape)
    m[ys, xs] = amps
    m = ndimage.gaussian_filter(m, sigma) * 2 * np.pi * sigma**2
    return m + noise * rng.normal(size=shape)


def test_tbd_finds_every_blob_at_its_position():
    xs = np.array([20, 60, 100, 140, 30, 170])
    ys = np.array([25, 80, 40, 150, 160, 100])
    tmap = blob_map((200, 200), xs, ys, np.array([1.0, 2.0, 0.5, 4.0, 0.8, 1.5]))
    blobs = find_blobs(tmap, delta_max=5000, a_min=5, centre="centroid")
    assert len(blobs.x) == 6
    order = np.argsort(blobs.x)
    np.testing.assert_allclose(np.sort(xs), blobs.x[order], atol=0.3)
    np.testing.assert_allclose(ys[np.argsort(xs)], blobs.y[order], atol=0.3)
    # The dynamic threshold stopped above the noise (sigma 0.02) and below the faintest peak.
    assert 0.02 < blobs.threshold < 0.5


def test_tbd_a_min_removes_small_blobs():
    tmap = np.zeros((50, 50))
    tmap[10:16, 10:16] = 1.0  # 36 pixels
    tmap[30, 30] = 1.0  # one pixel
    assert len(find_blobs(tmap, delta_max=100, a_min=1, threshold=0.5).x) == 2
    blobs = find_blobs(tmap, delta_max=100, a_min=10, threshold=0.5)
    assert len(blobs.x) == 1 and blobs.area[0] == 36


def test_tbd_centre_rules_differ_on_a_lopsided_blob():
    tmap = np.zeros((20, 20))
    tmap[10, 5:10] = [0.2, 0.2, 0.2, 0.2, 1.0]  # peak at x=9, mean at x=7
    kw = dict(delta_max=100, a_min=1, threshold=0.1)
    assert find_blobs(tmap, centre="peak", **kw).x[0] == 9
    assert find_blobs(tmap, centre="mean", **kw).x[0] == pytest.approx(7.0)
    assert find_blobs(tmap, centre="centroid", **kw).x[0] == pytest.approx(
        (5 * 0.2 + 6 * 0.2 + 7 * 0.2 + 8 * 0.2 + 9 * 1.0) / 1.8)


def test_dynamic_threshold_stops_before_noise_floods_in():
    rng = np.random.default_rng(3)
    tmap = 0.05 * rng.normal(size=(512, 512))
    xs, ys = rng.integers(10, 502, 20), rng.integers(10, 502, 20)
    tmap[ys, xs] = rng.uniform(0.5, 3.0, 20)
    # 1000 per 4096^2 allows ~15 new blobs per step on 512^2.
    tau, ladder, counts = dynamic_threshold(tmap, delta_max=1000, n_steps=40)
    assert np.all(np.diff(ladder) < 0)
    allowed = 1000 * 512**2 / 4096**2
    # Every source is above tau, with at most a few noise peaks; the next step let the noise in.
    assert np.all(tmap[ys, xs] > tau)
    assert 20 <= ndimage.label(tmap > tau)[1] <= 20 + 2 * allowed
    assert counts[-1] - counts[-2] > allowed
    assert np.all(np.diff(counts[:-1]) <= allowed)


def test_tbd_rejects_bad_parameters():
    with pytest.raises(RadiofindError):
        find_blobs(np.zeros((10, 10)), delta_max=10, a_min=1, centre="middle")
    with pytest.raises(RadiofindError):
        find_blobs(np.zeros((10, 10)), delta_max=0, a_min=1)


def test_chunked_inference_equals_one_pass_on_uneven_chunks():
    import keras

    from radiofind.detect.inference import predict_map
    from radiofind.detect.network import DEFAULT_ARCHITECTURE, build_network

    keras.utils.set_random_seed(0)
    net = build_network(**DEFAULT_ARCHITECTURE)
    data = np.random.default_rng(0).normal(size=(150, 217)).astype(np.float32)
    whole = predict_map(net, DEFAULT_ARCHITECTURE, data, chunk=1000)
    chunked = predict_map(net, DEFAULT_ARCHITECTURE, data, chunk=64)  # 64+64+22 by 64+64+64+25
    assert np.abs(whole).max() > 0
    np.testing.assert_allclose(chunked, whole, atol=1e-5 * np.abs(whole).max())


@pytest.mark.parametrize("arch", [{}, {"kernel": 3, "n_layers": 4, "shortcut_from": 1,
                                         "shortcut_to": 2, "filters": 5}])
def test_onnx_runtime_computes_the_keras_map(tmp_path, arch):
    """detect runs the network in ONNX Runtime; it must be the Keras network, to float rounding,
    with batch-norm statistics far from the identity and an architecture other than the default."""
    import keras

    from radiofind.detect.inference import KerasBlock, OnnxBlock, predict_map
    from radiofind.detect.network import (
        DEFAULT_ARCHITECTURE,
        build_network,
        get_weights,
        set_weights,
    )

    arch = {**DEFAULT_ARCHITECTURE, **arch}
    keras.utils.set_random_seed(3)
    net = build_network(**arch)
    rng = np.random.default_rng(3)
    weights = get_weights(net)
    for i, scale in enumerate((0.5, 0.3, 0.2, 0.4)):  # gamma, beta, moving mean, moving variance
        weights[f"batchnorm/{i}"] = (1.0 if i in (0, 3) else 0.0) + scale * rng.normal(
            size=weights[f"batchnorm/{i}"].shape).astype(np.float32) ** (2 if i == 3 else 1)
    set_weights(net, weights)
    np.savez(tmp_path / "weights.npz", **weights)
    data = rng.normal(size=(77, 131)).astype(np.float32)
    data[30, 40] += 25.0
    keras_map = predict_map(KerasBlock(net), arch, data)
    onnx_map = predict_map(OnnxBlock(tmp_path / "weights.npz", arch), arch, data)
    assert onnx_map.shape == data.shape and np.abs(keras_map).max() > 0
    np.testing.assert_allclose(onnx_map, keras_map, atol=1e-5 * np.abs(keras_map).max())
    # and chunked (the edge blocks are 13 pixels thick), as detect runs it
    chunked = predict_map(OnnxBlock(tmp_path / "weights.npz", arch), arch, data, chunk=64)
    np.testing.assert_allclose(chunked, keras_map, atol=1e-5 * np.abs(keras_map).max())


def test_symmetrised_map_averages_the_turned_and_flipped_images_and_chunks_alike():
    """--symmetries N: the mean of the network's maps of the image in N orientations, each turned
    back; the same on uneven chunks as in one pass; invariant under the group it averages over."""
    import keras

    from radiofind.detect.inference import KerasBlock, SymmetrisedBlock, predict_map
    from radiofind.detect.network import DEFAULT_ARCHITECTURE, build_network

    keras.utils.set_random_seed(1)
    net = build_network(**DEFAULT_ARCHITECTURE)
    data = np.random.default_rng(1).normal(size=(90, 131)).astype(np.float32)
    data[20, 30] += 20.0
    block = KerasBlock(net)
    plain = predict_map(block, DEFAULT_ARCHITECTURE, data)
    turned = np.rot90(predict_map(block, DEFAULT_ARCHITECTURE, np.rot90(data, 2).copy()), -2)
    quarter = np.rot90(predict_map(block, DEFAULT_ARCHITECTURE, np.rot90(data, 1).copy()), -1)
    assert np.abs(turned - plain).max() > 1e-3 * np.abs(plain).max()  # the network is not symmetric
    tol = 1e-5 * np.abs(plain).max()
    np.testing.assert_array_equal(predict_map(SymmetrisedBlock(block, 1), DEFAULT_ARCHITECTURE,
                                              data), plain)
    two = predict_map(SymmetrisedBlock(block, 2), DEFAULT_ARCHITECTURE, data)
    np.testing.assert_allclose(two, (plain + turned) / 2, atol=tol)
    for n in (2, 4, 8):
        sym = SymmetrisedBlock(block, n)
        whole = predict_map(sym, DEFAULT_ARCHITECTURE, data)
        chunked = predict_map(sym, DEFAULT_ARCHITECTURE, data, chunk=64)  # 64+26 by 64+64+3
        np.testing.assert_allclose(chunked, whole, atol=tol)
        # averaged over a group: the map of the half-turned image is the half-turned map
        again = predict_map(sym, DEFAULT_ARCHITECTURE, np.rot90(data, 2).copy())
        np.testing.assert_allclose(np.rot90(again, -2), whole, atol=tol)
    four = predict_map(SymmetrisedBlock(block, 4), DEFAULT_ARCHITECTURE, data)
    assert np.abs(four - two).max() > 1e-3 * np.abs(plain).max()  # quarter turns count
    assert np.abs(quarter - plain).max() > 1e-3 * np.abs(plain).max()
    eight = SymmetrisedBlock(block, 8)
    mirrored = predict_map(eight, DEFAULT_ARCHITECTURE, data[:, ::-1].copy())[:, ::-1]
    np.testing.assert_allclose(mirrored, predict_map(eight, DEFAULT_ARCHITECTURE, data), atol=tol)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        SymmetrisedBlock(block, 3)


def test_bundled_models_give_the_same_map_in_both_runtimes():
    from radiofind.detect.inference import predict_map
    from radiofind.detect.models import bundled_models

    models = list(bundled_models().values())
    if not models:
        pytest.skip("no bundled models")
    data = np.random.default_rng(5).normal(size=(96, 120)).astype(np.float32)
    data[40:43, 50:53] += 12.0
    for mdl in models:
        keras_map = predict_map(mdl.block("tensorflow"), mdl.architecture, data)
        onnx_map = predict_map(mdl.block(), mdl.architecture, data)
        np.testing.assert_allclose(onnx_map, keras_map, atol=1e-5 * np.abs(keras_map).max(),
                                   err_msg=mdl.name)
    with pytest.raises(RadiofindError, match="runtime must be"):
        models[0].block("torch")


def test_detect_starts_without_tensorflow_or_distributed(tmp_path, random_model):
    """A small image's detect is mostly start-up: it must not pay TensorFlow's ~3 s import, nor
    dask.distributed's 0.15 s when no cluster is asked for."""
    import subprocess
    import sys

    data, *_ = make_image(128, n_sources=5)
    image = write_image(tmp_path / "field.fits", data, make_header(128))
    code = ("import sys; from radiofind.detect.run import detect; "
            f"s = detect(image={image!r}, outdir={str(tmp_path / 'out')!r}, "
            f"model={str(random_model)!r}); "
            "print(s['n_sources'], sorted(m for m in ('tensorflow', 'keras', 'distributed') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(" []"), proc.stdout


def test_detect_follows_the_models_threshold_rule(tmp_path, random_model):
    """A card whose TBD search chose a fixed map threshold is cut there; --delta-max asks for the
    dynamic threshold instead and --threshold for another fixed one."""
    import json
    import shutil

    from radiofind.detect.run import detect

    model = tmp_path / "fixed-model"
    shutil.copytree(random_model, model)
    card = json.loads((model / "card.json").read_text())
    dynamic_card = dict(card, tbd=dict(card["tbd"]))
    card["tbd"].update(delta_max=None, threshold=0.0123)
    (model / "card.json").write_text(json.dumps(card))
    data, *_ = make_image(128, n_sources=5)
    image = write_image(tmp_path / "field.fits", data, make_header(128))

    fixed = detect(image=image, outdir=str(tmp_path / "a"), model=str(model))
    assert (fixed["threshold"], fixed["threshold_rule"]) == (0.0123, "fixed")
    table = Table.read(tmp_path / "a" / "field.radiofind.fits")
    assert table.meta["THRESH"] == 0.0123 and table.meta["THRRULE"] == "fixed"
    assert "DELTAMAX" not in table.meta
    other = detect(image=image, outdir=str(tmp_path / "b"), model=str(model), threshold=0.5)
    assert (other["threshold"], other["threshold_rule"]) == (0.5, "fixed")
    dynamic = detect(image=image, outdir=str(tmp_path / "c"), model=str(model), delta_max=100)
    assert dynamic["threshold_rule"] == "dynamic"
    (model / "card.json").write_text(json.dumps(dynamic_card))
    same = detect(image=image, outdir=str(tmp_path / "d"), model=str(model), delta_max=100)
    assert same["threshold"] == dynamic["threshold"] != 0.0123
    # a card with no rule at all is refused, naming the options
    card["tbd"].update(delta_max=None, threshold=None)
    (model / "card.json").write_text(json.dumps(card))
    with pytest.raises(RadiofindError, match="--delta-max or --threshold"):
        detect(image=image, outdir=str(tmp_path / "e"), model=str(model))
    assert not (tmp_path / "e").exists()


def test_detect_writes_catalogue_and_map_with_the_input_wcs(tmp_path, random_model):
    from astropy.io import fits

    from radiofind.detect.run import detect

    data, *_ = make_image(128, n_sources=5)
    image = write_image(tmp_path / "field.fits", data, make_header(128))
    out = tmp_path / "out"
    summary = detect(image=image, outdir=str(out), model=str(random_model))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["field.radiofind-map.fits", "field.radiofind.crtf", "field.radiofind.csv",
                     "field.radiofind.fits", "field.radiofind.reg", "field.radiofind.vot"]
    tmap_header = fits.getheader(out / "field.radiofind-map.fits")
    for key in ("CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CRPIX1", "CTYPE1", "BMAJ"):
        assert tmap_header[key] == fits.getheader(image)[key]
    table = Table.read(out / "field.radiofind.fits")
    assert len(table) == summary["n_sources"]
    from radiofind.io.catalog import SCHEMA

    assert set(SCHEMA) <= set(table.colnames)
    assert str(table["maj"].unit) == "arcsec" and str(table["pa"].unit) == "deg"
    # Position and peak errors: positive and finite where the SNR is, smaller for brighter.
    bright = np.asarray(table["snr"]) > 0
    assert table["ra_err"].unit == "arcsec" and bright.any()
    for name in ("ra_err", "dec_err", "peak_err"):
        assert np.all(np.asarray(table[name])[bright] > 0), name
    # The same noise everywhere: error x SNR is one number per axis (the WCS barely bends).
    for name in ("ra_err", "dec_err"):
        scaled = np.asarray(table[name])[bright] * np.asarray(table["snr"])[bright]
        np.testing.assert_allclose(scaled, scaled[0], rtol=0.01)
    # Refuses to overwrite, and leaves the earlier outputs untouched.
    before = (out / "field.radiofind.csv").read_bytes()
    with pytest.raises(RadiofindError, match="exists"):
        detect(image=image, outdir=str(out), model=str(random_model))
    assert (out / "field.radiofind.csv").read_bytes() == before


def test_model_selection_refuses_an_unknown_telescope():
    from radiofind.detect.models import bundled_models, select_model

    if not bundled_models():
        pytest.skip("no bundled models")
    with pytest.raises(RadiofindError, match="no bundled model matches"):
        select_model("LOFAR", 6.0, 4.0)
    with pytest.raises(RadiofindError, match="TELESCOP"):
        select_model("", 6.0, 4.0)


def test_every_telescope_and_weighting_has_a_bundled_model_chosen_by_its_beam():
    from radiofind.detect.models import bundled_models, select_model

    models = bundled_models()
    assert sorted(models) == ["askap-natural", "askap-uniform", "meerkat-natural",
                              "meerkat-uniform"]
    for name, model in models.items():
        telescope, weighting = name.split("-")
        chosen, why = select_model(model.card["telescope"], model.trained_beam_arcsec,
                                   model.card["valid"]["beam_pixels_trained"], weighting)
        assert chosen.name == name and weighting in why
        assert model.card["weighting"] == weighting
        assert model.card["telescope"].lower() == telescope


@pytest.mark.parametrize("pixel_arcsec", [1.0, 1.5, 2.5, 4.0])
def test_the_beam_on_the_sky_chooses_the_model_whatever_the_pixel_size(pixel_arcsec):
    from radiofind.detect.models import bundled_models, select_model

    models = bundled_models()
    for name, model in models.items():
        beam = model.trained_beam_arcsec
        # At 4" a MeerKAT natural beam spans ~7 pixels, as a uniform one does at 1.5": the beam in
        # arcsec still says natural.
        if beam / pixel_arcsec < 2:  # uniform beams at 4" pixels: undersampled, refused
            with pytest.raises(RadiofindError, match="undersamples"):
                select_model(model.card["telescope"], beam, beam / pixel_arcsec)
            continue
        chosen, _ = select_model(model.card["telescope"], beam, beam / pixel_arcsec)
        assert chosen.name == name, (name, pixel_arcsec)
    # The grid then matches the training beam: averaged blocks or a finer interpolated grid.
    natural = models["meerkat-natural"]
    assert natural.bin_factor(natural.trained_beam_arcsec / 2.5) == 2
    uniform = models["meerkat-uniform"]
    assert uniform.bin_factor(uniform.trained_beam_arcsec / 2.5) == pytest.approx(0.6, abs=0.01)


def test_an_undersampled_beam_is_refused():
    from radiofind.detect.models import select_model

    with pytest.raises(RadiofindError, match="undersamples"):
        select_model("MeerKAT", 6.5, 1.6)


@pytest.mark.parametrize("keyword, expected", [
    ("Briggs'(-1.5)", "uniform"), ("Briggs'(1.5)", "natural"), ("Briggs'(0)", None),
    ("natural", "natural"), ("uniform", "uniform"), ("", None)])
def test_weighting_is_read_from_wsclean_headers(keyword, expected):
    from radiofind.detect.models import header_weighting

    assert header_weighting(keyword) == expected


def test_blended_sources_are_split_into_two_detections():
    # Two sources 12 px apart whose blobs merge above the threshold.
    xs, ys = np.array([40, 52]), np.array([50, 50])
    tmap = blob_map((100, 100), xs, ys, np.array([3.0, 2.5]), sigma=4.0, noise=0.0)
    merged = find_blobs(tmap, delta_max=100, a_min=5, threshold=0.3, centre="peak")
    assert len(merged.x) == 1
    split = find_blobs(tmap, delta_max=100, a_min=5, threshold=0.3, centre="peak", deblend=8.0)
    assert sorted(np.rint(split.x)) == [40, 52] and np.all(np.rint(split.y) == 50)
    # Peaks closer than the deblending distance stay one source.
    assert len(find_blobs(tmap, delta_max=100, a_min=5, threshold=0.3, deblend=15.0).x) == 1


def test_a_fainter_source_beside_a_bright_one_is_split_off_unless_in_glare():
    # A source 14 px from one 3.4 times brighter (too faint for the dip rule's third), whose
    # flank rises above its peak in the corner of the 8-px deblending square but not within 8 px.
    tmap = blob_map((100, 100), np.array([40, 52]), np.array([50, 57]), np.array([3.5, 12.0]),
                    sigma=3.0, noise=0.0)
    assert tmap[57, 48] > tmap[50, 40]
    kw = {"delta_max": 100, "a_min": 5, "threshold": 0.3, "centre": "peak", "deblend": 8.0}
    snr = 2.0 * tmap  # the network's input: the fainter source has SNR 7
    pair = find_blobs(tmap, bright=2.0, snr=snr, **kw)
    assert sorted(zip(pair.x.tolist(), pair.y.tolist(), strict=True)) == [(40, 50), (52, 57)]
    # Without ``bright``, beside a source fainter than it, in its glare, below SNR 5 in the input
    # or without the input: the square test alone.
    for levels in ({"snr": snr}, {"bright": 13.0, "snr": snr},
                   {"bright": 2.0, "glare": 11.0, "snr": snr}, {"bright": 2.0, "snr": tmap},
                   {"bright": 2.0}):
        assert find_blobs(tmap, **levels, **kw).x.tolist() == [52]
    # Two faint blobs (below ``bright``) the same distance apart: the square test, as tuned.
    faint = find_blobs(tmap / 10.0, threshold=0.06, bright=2.0, snr=snr,
                       **{k: v for k, v in kw.items() if k != "threshold"})
    assert faint.x.tolist() == [52]


def test_a_bright_source_hidden_by_a_brighter_ones_flank_is_split_off_at_a_dip_but_a_bump_is_not():
    # 10 px from one 2.6 times brighter, whose flank rises above it within 8 px: the map dips
    # between them, so each is a source when it is bright.
    def pair_map(amp):
        return blob_map((100, 100), np.array([40, 50]), np.array([50, 50]), np.array([3.5, amp]),
                        sigma=2.5, noise=0.0)

    tmap = pair_map(9.0)
    assert tmap[50, 48] > tmap[50, 40] and tmap[50, 45] < 0.8 * tmap[50, 40]
    kw = {"delta_max": 100, "a_min": 5, "threshold": 0.3, "centre": "peak", "deblend": 8.0}
    assert sorted(find_blobs(tmap, bright=2.0, **kw).x.tolist()) == [40, 50]
    # Fainter than ``bright``, without it, or in the brighter one's glare: one source.
    for levels in ({}, {"bright": 4.0}, {"bright": 2.0, "glare": 8.0}):
        assert find_blobs(tmap, **levels, **kw).x.tolist() == [50]
    # Less than a third of its neighbour (a lump on a very bright source's main lobe): one.
    assert find_blobs(pair_map(12.0), bright=2.0, **kw).x.tolist() == [50]
    # A bump on a bright source's flank, 10 px out, with no dip between: one source.
    yy, xx = np.mgrid[:100, :100]
    tmap = (10 * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / 32)
            + 1.5 * np.exp(-((xx - 60) ** 2 + (yy - 50) ** 2) / 4.5))
    assert tmap[50, 59] > max(tmap[50, 58], tmap[50, 60])  # the bump is a peak of its own
    one = find_blobs(tmap, bright=1.0, **kw)
    assert (one.x.tolist(), one.y.tolist()) == ([50], [50])


def test_a_bright_blob_pulled_off_its_peak_by_a_flank_is_placed_on_the_peak():
    # A bright source whose blob holds a ridge falling away from it (a neighbour's flank): the
    # ridge's weight pulls the centroid 5 px off the peak, more than half the deblending distance.
    yy, xx = np.mgrid[:100, :100].astype(float)
    tmap = 5.0 * np.exp(-((xx - 40) ** 2 + (yy - 50) ** 2) / (2 * 2.5**2))
    ridge = (xx >= 43) & (xx <= 70) & (abs(yy - 50) <= 2)
    tmap = np.maximum(tmap, np.where(ridge, 1.0 - 0.02 * (xx - 43), 0.0))
    kw = {"delta_max": 100, "a_min": 5, "threshold": 0.3, "centre": "centroid", "deblend": 8.0}
    pulled = find_blobs(tmap, **kw)
    assert len(pulled.x) == 1 and pulled.x[0] > 44
    pinned = find_blobs(tmap, bright=2.0, **kw)
    assert (pinned.x.tolist(), pinned.y.tolist()) == ([40.0], [50.0])
    # A faint blob (peak below ``bright``), or one in glare, keeps its centre rule.
    for levels in ({"bright": 6.0}, {"bright": 2.0, "glare": 4.0}):
        assert find_blobs(tmap, **levels, **kw).x[0] == pytest.approx(pulled.x[0])


def test_one_very_bright_source_does_not_move_the_threshold():
    from radiofind.detect import blobs

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:400, :400]
    tmap = np.abs(rng.normal(0, 0.05, (400, 400)))
    for cy, cx, amp in zip(rng.uniform(20, 380, 40), rng.uniform(20, 380, 40),
                           rng.uniform(0.2, 3.0, 40), strict=True):
        tmap += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.5**2))
    bright = tmap + 1e4 * np.exp(-((yy - 200) ** 2 + (xx - 200) ** 2) / (2 * 2.5**2))
    kw = {"delta_max": 3000, "n_steps": 50}
    tau, *_ = blobs.dynamic_threshold(tmap, **kw)
    tau_bright, *_ = blobs.dynamic_threshold(bright, **kw)
    assert tau_bright == pytest.approx(tau, rel=0.15)


def test_each_bright_blob_reports_its_highest_input_pixel_across_tiles():
    # A wide bright blob whose map peaks at x=20 while the network's input peaks at x=31, and a
    # faint blob; the input's peak is found the same when the map is cut into 16-pixel tiles
    # (the wide blob spans four of them). Only the bright blob (map peak >= bright) reports it.
    import dask.array as da

    xx = np.arange(64)
    tmap = np.zeros((64, 64))
    tmap[30:34, 10:40] = 0.6 - 0.01 * np.abs(xx[10:40] - 20)
    tmap[31, 20] = 1.0
    tmap[50:53, 50:53] = 0.3
    tmap[51, 51] = 0.4
    snr = np.zeros((64, 64))
    snr[32, 31] = 7.0
    snr[31, 20] = 3.0
    snr[51, 52] = 6.0
    snr[10, 10] = 9.0  # outside every blob
    kw = dict(delta_max=100, a_min=1, threshold=0.1, centre="peak", deblend=3.0, bright=0.6)
    whole = find_blobs(tmap, snr=snr, **kw)
    tiled = find_blobs(da.from_array(tmap, chunks=16), snr=da.from_array(snr, chunks=16), **kw)
    for blobs in (whole, tiled):
        order = np.argsort(blobs.x)
        np.testing.assert_array_equal(blobs.x[order], [20.0, 51.0])  # the map peaks
        np.testing.assert_array_equal(blobs.input_x[order], [31.0, np.nan])
        np.testing.assert_array_equal(blobs.input_y[order], [32.0, np.nan])
    for other in (find_blobs(tmap, **kw), find_blobs(tmap, snr=snr, **{**kw, "bright": None})):
        assert np.isnan(other.input_x).all() and other.input_x.size == 2


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 2), (37, 61), (128, 96)])
def test_fast_max_filter_equals_scipys(shape):
    # TBD's square maxima (the deblending peaks, the reach around them) are running maxima; they
    # must equal scipy's maximum_filter exactly, edges, -inf (blanks) and ties included.
    from radiofind.detect.blobs import _max_at, _max_filter

    rng = np.random.default_rng(sum(shape))
    a = np.round(rng.normal(size=shape), 1).astype(np.float32)  # rounded: many ties
    a[rng.random(shape) < 0.1] = -np.inf
    for radius in (0, 1, 3, 9, 16):
        np.testing.assert_array_equal(_max_filter(a, radius),
                                      ndimage.maximum_filter(a, size=2 * radius + 1))
    yy, xx = np.mgrid[-3:4, -3:4]
    disc = np.hypot(yy, xx) <= 2.97
    ys, xs = np.nonzero(rng.random(shape) < 0.3)
    np.testing.assert_array_equal(_max_at(a, ys, xs, disc),
                                  ndimage.maximum_filter(a, footprint=disc)[ys, xs])


def test_each_groups_first_maximum_and_nearest_peak_match_brute_force():
    # Per blob: its highest value, ties to the first in raster order (_top); each pixel of a
    # split blob: its nearest peak, ties to the first peak (_assign_split).
    from radiofind.detect.blobs import _assign_split, _top

    rng = np.random.default_rng(3)
    n = 2000
    group = rng.integers(0, 50, n)
    group[:50] = np.arange(50)  # every group present
    value = rng.integers(0, 5, n).astype(float)  # many ties
    raster = rng.permutation(10 * n)[:n]
    best = _top(value, raster, group)
    for g in range(50):
        members = np.nonzero(group == g)[0]
        top = members[value[members] == value[members].max()]
        assert best[g] == top[np.argmin(raster[top])]

    ids = rng.integers(1, 8, n)
    gy, gx = rng.integers(0, 40, n), rng.integers(0, 40, n)
    lattice = np.array([(y, x) for y in range(0, 40, 10) for x in range(0, 40, 10)])
    split = {2: (np.array([[5, 5], [5, 25], [30, 10]]), np.array([2, 100, 101])),
             6: (np.array([[20, 20], [20, 22]]), np.array([6, 102])),
             # 16 peaks on a lattice: up to four tied at once (the pixel at (5, 5))
             7: (lattice, np.concatenate([[7], np.arange(103, 118)]))}
    got = _assign_split(ids, gy, gx, split)
    for i in range(n):
        if ids[i] in split:
            pk, sub = split[ids[i]]
            assert got[i] == sub[np.argmin((pk[:, 0] - gy[i]) ** 2 + (pk[:, 1] - gx[i]) ** 2)]
        else:
            assert got[i] == ids[i]


def test_tapered_image_widens_the_beam_keeps_blanks_and_chunks_alike():
    """tapered(): a Gaussian of FWHM f beams; a beam-shaped source's peak falls to 1 / (1 + f²),
    the beam widens by sqrt(1 + f²); blanks stay blank; dask blocks give the one-pass image."""
    import dask.array as da

    from radiofind.io.images import Beam, Image, tapered

    header = make_header(128, beam_arcsec=6.0)  # 4 px
    wcs = WCS(header)
    sigma = 4.0 / np.sqrt(8 * np.log(2))
    yy, xx = np.mgrid[:128, :128]
    data = np.exp(-((xx - 64) ** 2 + (yy - 60) ** 2) / (2 * sigma**2)).astype(np.float32)
    data[:10, :20] = np.nan
    img = Image(data=data, wcs=wcs, beam=Beam(6 / 3600, 6 / 3600), header=header)
    for f in (1.0, 2.0):
        out = tapered(img, f)
        assert out.data[60, 64] == pytest.approx(1 / (1 + f**2), rel=2e-3)
        assert out.beam.bmaj * 3600 == pytest.approx(6.0 * np.sqrt(1 + f**2))
        assert out.header["RFTAPER"] == f and out.header["BMAJ"] == out.beam.bmaj
        assert np.isnan(out.data[:10, :20]).all() and np.isfinite(out.data[10:, :]).all()
        lazy = tapered(Image(data=da.from_array(data, chunks=48), wcs=wcs, beam=img.beam,
                             header=header), f).data.compute()
        np.testing.assert_allclose(lazy, out.data, atol=1e-6)
    with pytest.raises(RadiofindError, match="taper must be"):
        tapered(img, 0.0)


def test_taper_check_drops_a_peak_the_taper_smooths_away(tmp_path):
    """A ringing peak (a narrow Gaussian minus a wide one: no flux on large scales, like a
    uniform image's noise from the long baselines) next to real beam-shaped sources: detect
    finds all of them, and --taper drops only the peak whose SNR vanishes in the tapered image."""
    from radiofind.detect.run import detect

    size = 192
    data, _, _, _ = make_image(size, n_sources=0, seed=4)
    noise = 1e-5
    yy, xx = np.mgrid[:size, :size]
    sigma = 4.0 / np.sqrt(8 * np.log(2))

    def gauss(x0, y0, s):
        return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s**2))

    sources = [(50, 50), (140, 60), (60, 140)]
    for x0, y0 in sources:
        data += 9 * noise * gauss(x0, y0, sigma)
    ring = gauss(140, 140, sigma) - gauss(140, 140, 3 * sigma) / 9  # zero integral
    data += 9 * noise * ring / ring.max()
    image = write_image(tmp_path / "field.fits", data.astype(np.float32), make_header(size))
    args = {"image": image, "model": "meerkat-uniform", "formats": ["fits"]}
    plain = Table.read(detect(outdir=str(tmp_path / "plain"), **args)["catalog"])

    def near(table, x0, y0):
        return bool(np.any(np.hypot(table["x"] - x0, table["y"] - y0) < 3))

    assert all(near(plain, *xy) for xy in sources + [(140, 140)])
    res = detect(outdir=str(tmp_path / "taper"), taper=2.0, taper_snr=3.0, **args)
    cut = Table.read(res["catalog"])
    assert all(near(cut, *xy) for xy in sources) and not near(cut, 140, 140)
    assert res["n_untapered"] == len(plain) - len(cut) >= 1
    assert cut.meta["TAPER"] == 2.0 and cut.meta["TAPERSNR"] == 3.0
    assert np.all(cut["taper_snr"] >= 3.0)
    off = detect(outdir=str(tmp_path / "off"), taper=0.0, taper_snr=3.0, **args)
    assert off["n_sources"] == len(plain) and off["taper"] == 0
    with pytest.raises(RadiofindError, match="--taper needs --taper-snr"):
        detect(outdir=str(tmp_path / "bad"), taper=2.0, **args)
    assert not (tmp_path / "bad").exists()


def test_uniform_models_warn_on_images_of_another_field_of_view(tmp_path, random_model, caplog):
    """WSClean weights a uniform image per uv cell of 1/FoV: an image much wider (or narrower)
    than the training images is weighted differently, and detect says so; natural models and
    images like the training ones are not warned about."""
    import dataclasses
    import json
    import logging
    import shutil

    from radiofind.detect.models import bundled_models, uniform_field_warning
    from radiofind.detect.run import detect

    uniform = bundled_models()["meerkat-uniform"]  # trained on 1024² images at 1.5"
    assert uniform_field_warning(uniform, (1024, 1024), 1.5) is None
    assert uniform_field_warning(uniform, (768, 768), 2.0) is None  # the same field of view
    wide = uniform_field_warning(uniform, (4096, 4096), 1.5)
    assert wide and "102'" in wide and "26'" in wide and "--negatives" in wide
    assert uniform_field_warning(uniform, (512, 512), 1.5)  # a quarter of the area
    assert uniform_field_warning(bundled_models()["meerkat-natural"], (4096, 4096), 1.5) is None
    # A card trained on several weightings' fields of view (simulate --super-weight) spans them.
    spread = dataclasses.replace(uniform, card=dict(uniform.card, training_set=dict(
        uniform.card["training_set"], super_weight=[0.25, 0.5, 1.0])))
    assert uniform_field_warning(spread, (4096, 4096), 1.5) is None
    assert uniform_field_warning(spread, (6144, 6144), 1.5) is None  # within the factor 1.5
    assert uniform_field_warning(spread, (16384, 16384), 1.5)

    # detect logs it once, with the search on the negated image too.
    model = tmp_path / "model"
    shutil.copytree(random_model, model)
    card = json.loads((model / "card.json").read_text())
    card.update(weighting="uniform", training_set={"size": 64, "scale": 1.5})
    (model / "card.json").write_text(json.dumps(card))
    for size, warned in ((64, False), (128, True)):
        data, *_ = make_image(size, n_sources=3, beam_pix=4.0, seed=2, border=12)
        image = tmp_path / f"uniform-{size}.fits"
        write_image(image, data, make_header(size, beam_arcsec=6.0))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="radiofind"):
            detect(image=str(image), outdir=str(tmp_path / f"out-{size}"), model=str(model),
                   negatives=True)
        said = [r for r in caplog.records if "field of view" in r.getMessage()]
        assert len(said) == (1 if warned else 0), [r.getMessage() for r in said]


def test_the_header_weighting_chooses_where_the_beam_lies_between_the_models(caplog):
    """Briggs robust 0.5 (MeerKAT 12", ASKAP 13"): between the models' beams or on the uniform
    one's edge, but natural-like; the header's weighting picks the natural model, with a warning
    where the beam lies outside its range. Robust 0 names no weighting: the beam decides."""
    import logging

    from radiofind.detect.models import bundled_models, select_model

    models = bundled_models()
    mk_uni_hi = models["meerkat-uniform"].beam_range_arcsec()[1]
    mk_nat_lo = models["meerkat-natural"].beam_range_arcsec()[0]
    gap = (mk_uni_hi + mk_nat_lo) / 2
    with pytest.raises(RadiofindError, match="no bundled model matches"):
        select_model("MeerKAT", gap, gap / 1.5, "Briggs'(0)")
    with caplog.at_level(logging.WARNING, logger="radiofind.detect"):
        chosen, why = select_model("MeerKAT", gap, gap / 1.5, "Briggs'(0.5)")
    assert chosen.name == "meerkat-natural" and "natural weighting" in why
    assert "outside" in caplog.text and "Briggs'(0.5)" in caplog.text
    # ASKAP robust 0.5: the beam is still inside the uniform model's range; the header wins.
    ask_uni_hi = models["askap-uniform"].beam_range_arcsec()[1]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radiofind.detect"):
        chosen, _ = select_model("ASKAP", ask_uni_hi * 0.99, ask_uni_hi * 0.99 / 1.5,
                                 "Briggs'(0.5)")
        assert chosen.name == "askap-natural"
        assert select_model("ASKAP", ask_uni_hi * 0.99, ask_uni_hi * 0.99 / 1.5,
                            "Briggs'(0)")[0].name == "askap-uniform"
    # Within the header's own model's range nothing is said.
    caplog.clear()
    nat = models["meerkat-natural"]
    with caplog.at_level(logging.WARNING, logger="radiofind.detect"):
        assert select_model("MeerKAT", nat.trained_beam_arcsec, nat.trained_beam_arcsec / 1.5,
                            "Briggs'(1.5)")[0].name == "meerkat-natural"
    assert caplog.text == ""
