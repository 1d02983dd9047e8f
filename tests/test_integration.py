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
    "(radiofind.cabs)radiofind.yml radiofind.evaluate",
    "(radiofind.cabs)radiofind.yml radiofind.train",
    "(radiofind.cabs)radiofind.yml radiofind.demo",
    "radiofind.recipes::simulate-detect.yml",
    "radiofind.recipes::simulate-training-skies.yml"])
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
        assert set(metrics["finders"]) == {"radiofind", "pybdsf"}
    shutil.rmtree(out / "sim" / "sim.ms")


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
