"""Real end-to-end chains: casatools MS -> ducc0 -> WSClean -> detect + PyBDSF -> evaluate,
and Stimela.

Opt-in with --run-integration (CI runs them): they need WSClean, casatools and PyBDSF installed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    from radiofind.simulation.run import simulate

    out = tmp_path_factory.mktemp("chain") / "sim"
    # A flatter SNR distribution than DeepSource's so a small field holds enough bright sources.
    simulate(outdir=str(out), size=768, n_sources=60, snr_scale=5.0, seed=11, niter=2000)
    return out


@pytest.mark.parametrize("weighting", ["natural", "uniform"])
def test_simulate_image_detect_evaluate(field, tmp_path, weighting):
    from radiofind.detect.run import detect
    from radiofind.evaluate.run import evaluate
    from radiofind.pybdsf import run_pybdsf

    image = str(field / f"{weighting}-image.fits")
    found = detect(image=image, outdir=str(tmp_path / "cnn"))
    assert found["model"] == f"meerkat-{weighting}"  # chosen from the header
    bdsf = run_pybdsf(image=image, outdir=str(tmp_path / "bdsf"))
    res = evaluate(truth=str(field / "truth.fits"), image=image,
                   catalogs=[f"radiofind={found['catalog']}", f"pybdsf={bdsf['catalog']}"],
                   outdir=str(tmp_path / "metrics"))
    saved = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    assert (tmp_path / "metrics" / "metrics.png").stat().st_size > 10_000
    for finder in ("radiofind", "pybdsf"):
        m = res["finders"][finder]
        assert saved["finders"][finder]["n_truth"] == m["n_truth"] == 60
        # Bright sources (true SNR >= 6) must be found by both finders.
        lower = m["bins"]["lower"]
        bright = [k for k, lo in enumerate(lower) if lo >= 5.75]
        tp = sum(m["tp_true"][k] for k in bright)
        fn = sum(m["fn"][k] for k in bright)
        assert tp + fn > 3, "the test field should hold several bright sources"
        assert tp / (tp + fn) >= 0.9, (finder, tp, fn)


def stimela(*args, cwd):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    return subprocess.run([str(BIN / "stimela"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.parametrize("target", [
    "(radiofind.cabs)radiofind.yml radiofind.simulate",
    "(radiofind.cabs)radiofind.yml radiofind.detect",
    "(radiofind.cabs)radiofind.yml radiofind.pybdsf",
    "(radiofind.cabs)radiofind.yml radiofind.aegean",
    "(radiofind.cabs)radiofind.yml radiofind.evaluate",
    "(radiofind.cabs)radiofind.yml radiofind.train",
    "(radiofind.cabs)radiofind.yml radiofind.demo",
    "radiofind.recipes::simulate-detect.yml",
    "radiofind.recipes::simulate-training-skies.yml",
    "radiofind.recipes::image-and-detect.yml",
    "radiofind.recipes::train.yml"])
def test_stimela_doc_loads_every_cab_and_recipe(tmp_path, target):
    result = stimela("doc", *target.split(), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ERROR" not in result.stdout


def test_stimela_run_of_the_shipped_recipe(tmp_path):
    result = stimela("run", "radiofind.recipes::simulate-detect.yml", "dir=out", "size=384",
                     "n_sources=25", "snr_scale=6", "seed=3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    for weighting in ("natural", "uniform"):
        assert (out / f"{weighting}-image.fits").exists()
        assert (out / f"{weighting}-pybdsf.srl.fits").exists()
        metrics = json.loads((out / f"{weighting}-metrics" / "metrics.json").read_text())
        assert set(metrics["finders"]) == {"radiofind", "pybdsf", "aegean"}
    shutil.rmtree(out / "sim" / "sim.ms")


def test_stimela_run_of_image_and_detect_without_truth(tmp_path):
    """The pipeline part on its own: MS in, three catalogues out, no scores without a truth."""
    from astropy.table import Table

    from radiofind.simulation.run import simulate

    # The natural image (simulate's own WSClean run) confirms the recipe's uniform detections.
    simulate(outdir=str(tmp_path / "sim"), size=256, n_sources=15, snr_scale=6.0, seed=5,
             weightings=["natural"])
    result = stimela("run", "radiofind.recipes::image-and-detect.yml", "ms=sim/sim.ms", "dir=out",
                     "weighting=uniform", "robust=-1.5", "size=256",
                     "confirm_image=sim/natural-image.fits", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "uniform-image.fits").exists() and (out / "uniform-pybdsf.srl.fits").exists()
    for finder in ("radiofind", "aegean"):
        cat = Table.read(out / f"uniform-{finder}" / f"uniform-image.{finder}.fits")
        assert cat.meta["FINDER"] == finder and len(cat) > 0
        assert {"ra", "dec", "x", "y", "peak", "snr"} <= set(cat.colnames)
        assert (out / f"uniform-{finder}" / f"uniform-image.{finder}.reg").exists()
    assert not (out / "uniform-metrics").exists()  # evaluate is skipped without a truth
    cat = Table.read(out / "uniform-radiofind" / "uniform-image.radiofind.fits")
    assert cat.meta["CONFIRM"] == "natural-image.fits" and cat.meta["TBDFOR"] == "confirmation"
    assert (np.asarray(cat["confirm_snr"]) >= 4.0).all()


def test_stimela_run_of_the_train_recipe(tmp_path):
    """Training set -> model -> held-out evaluation, tiny: 3 skies of 256², 2 short epochs."""
    from astropy.table import Table

    result = stimela("run", "radiofind.recipes::train.yml", "dir=out", "seeds=[1,2,3]",
                     "test_seed=50", "size=256", "n_sources=15", "snr_scale=4", "name=tiny-test",
                     "epochs=2", "steps_per_epoch=2", "batch_size=4", "crop=64", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    card = json.loads((out / "model" / "card.json").read_text())
    assert card["name"] == "tiny-test" and card["weighting"] == "natural"
    assert len(card["training"]["fields"]) == 2 and len(card["validation"]["fields"]) == 1
    assert card["training"]["epochs"] == 2 and (out / "model" / "weights.npz").exists()
    assert sorted(p.name for p in (out / "skies").glob("meerkat-*")) == [
        "meerkat-1", "meerkat-2", "meerkat-3"]
    # The held-out field was detected with the new model, not a bundled one.
    cat = Table.read(out / "test-radiofind" / "natural-image.radiofind.fits")
    assert cat.meta["MODEL"] == "tiny-test"
    metrics = json.loads((out / "test-metrics" / "metrics.json").read_text())
    assert set(metrics["finders"]) == {"radiofind", "pybdsf"} and metrics["n_truth"] == 15
    for scores in metrics["finders"].values():
        assert {"pc3", "pc4", "pc5", "s90"} <= set(scores)


def test_stimela_run_of_the_training_skies_recipe_resumes(tmp_path):
    args = ["run", "radiofind.recipes::simulate-training-skies.yml", "dir=skies", "size=256",
            "n_sources=10"]
    first = stimela(*args, "seeds=[3,4]", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-3000:]
    made = {p: p.stat().st_mtime_ns for p in (tmp_path / "skies").glob("*/truth.fits")}
    assert sorted(p.parent.name for p in made) == ["meerkat-3", "meerkat-4"]
    for sky in ("meerkat-3", "meerkat-4"):
        assert (tmp_path / "skies" / sky / "natural-image.fits").exists()
        assert (tmp_path / "skies" / sky / "uniform-image.fits").exists()
        assert not (tmp_path / "skies" / sky / "sim.ms").exists()  # drop_ms
    # A second run with one more seed makes only the new sky.
    second = stimela(*args, "seeds=[3,4,5]", cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-3000:]
    assert (tmp_path / "skies" / "meerkat-5" / "truth.fits").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in made.items())
