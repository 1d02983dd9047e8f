"""``radiofind demo``: the whole chain on a built-in default, printed as a comparison.

Simulate a MeerKAT field (casatools MS, ducc0 predict, thermal noise), image it with WSClean at
natural and uniform weighting, detect with the bundled CNN and with PyBDSF, crossmatch both with
the truth, and print P, C and PC at SNR 3/4/5 and S90 for each finder side by side; at uniform
weighting, both again with the natural image's help (detect --confirm-image, pybdsf
--detection-image).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from radiofind.io.outputs import staged_outputs

WEIGHTINGS = ("natural", "uniform")


def negatives_line(found: dict, sim: Path) -> str:
    """radiofind's purity above SNR 3, 4 and 5 as detect --negatives estimated it from the image
    alone, beside the truth's (catalogue SNRs, the evaluation's match radius)."""
    import numpy as np

    from radiofind.evaluate.crossmatch import crossmatch
    from radiofind.evaluate.run import MATCH_RADIUS, table_radec
    from radiofind.io.catalog import read_catalog

    table = read_catalog(found["catalog"])
    truth = read_catalog(sim / "truth.fits")
    beam = float(np.sqrt(table.meta["BMAJ"] * table.meta["BMIN"]))
    match = crossmatch(*table_radec(truth, "truth"), *table_radec(table, "catalogue"),
                       radius_deg=MATCH_RADIUS * beam)
    snr = np.asarray(table["snr"], dtype=float)
    true = [match.det_is_tp[snr >= s].mean() if (snr >= s).any() else None for s in (3, 4, 5)]
    est = found["negatives"]["purity"].values()
    fmt = " / ".join
    return ("\nradiofind --negatives: estimated purity above SNR 3 / 4 / 5 "
            + fmt("-" if v is None else f"{v:.2f}" for v in est) + " (truth: "
            + fmt("-" if v is None else f"{v:.2f}" for v in true) + f"; "
            f"{found['negatives']['n']} detections in the image times -1)")


def demo(*, telescope: str = "meerkat", size: int = 2048, n_sources: int = 800,
         snr_scale: float = 2.5, seed: int = 20261121, overwrite: bool = False,
         outdir: str = "radiofind-demo") -> dict:
    """Run the demo; returns the metrics per weighting (also written to ``summary.json``)."""
    from radiofind.detect.run import detect
    from radiofind.evaluate.run import evaluate, format_table
    from radiofind.pybdsf import run_pybdsf
    from radiofind.simulation.run import simulate

    names = ["sim", *WEIGHTINGS, "summary.json", "comparison.txt"]
    summary: dict = {"telescope": telescope, "size": size, "n_sources": n_sources,
                     "snr_scale": snr_scale, "seed": seed,
                     "seconds": {}, "metrics": {}}
    t_start = time.perf_counter()
    with staged_outputs(outdir, names, overwrite=overwrite) as stage:
        print(f"radiofind demo: simulating {telescope} ({size}x{size} pixels, {n_sources} sources, "
              f"SNR scale {snr_scale}, seed {seed}) and imaging with WSClean ...", flush=True)
        t0 = time.perf_counter()
        sim = stage.path("sim")
        simulate(telescope=telescope, size=size, n_sources=n_sources, snr_scale=snr_scale,
                 seed=seed, weightings=list(WEIGHTINGS), outdir=str(sim))
        summary["seconds"]["simulate+image"] = round(time.perf_counter() - t0, 1)
        report = []

        def compare(weighting: str, label: str, dirs=("radiofind", "pybdsf", "metrics"),
                    helper: str | None = None):
            """radiofind and PyBDSF on one weighting's image, scored against the truth, into
            the folders ``dirs``; ``helper``: another image of the field for both (detect
            --confirm-image, pybdsf --detection-image). Timings go under ``label``."""
            image = str(sim / f"{weighting}-image.fits")
            folder = stage.path(weighting)
            t0 = time.perf_counter()
            found = detect(image=image, outdir=str(folder / dirs[0]), confirm_image=helper,
                           negatives=True)
            t1 = time.perf_counter()
            bdsf = run_pybdsf(image=image, outdir=str(folder / dirs[1]), detection_image=helper)
            t2 = time.perf_counter()
            metrics = evaluate(truth=str(sim / "truth.fits"), image=image,
                               catalogs=[f"radiofind={found['catalog']}",
                                         f"pybdsf={bdsf['catalog']}"],
                               outdir=str(folder / dirs[2]))
            summary["seconds"][f"{label}: radiofind detect"] = round(t1 - t0, 1)
            summary["seconds"][f"{label}: pybdsf"] = round(t2 - t1, 1)
            return found, metrics

        for weighting in WEIGHTINGS:
            found, metrics = compare(weighting, weighting)
            summary["metrics"][weighting] = metrics
            summary[f"{weighting}_model"] = found["model"]
            report.append(f"\n{weighting} weighting (model {found['model']}):\n"
                          + format_table(metrics) + negatives_line(found, sim))
        # The uniform image again, both finders given the field's natural image: radiofind keeps
        # the detections it confirms, PyBDSF finds its islands in it.
        found, metrics = compare("uniform", "uniform + natural",
                                 ("radiofind-confirmed", "pybdsf-natural-islands",
                                  "metrics-with-natural"), helper=str(sim / "natural-image.fits"))
        summary["metrics"]["uniform_with_natural"] = metrics
        report.append("\n\nuniform weighting with the natural image (radiofind --confirm-image, "
                      "pybdsf --detection-image):\n" + format_table(metrics)
                      + negatives_line(found, sim))
        summary["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
        text = "".join(report) + "\n\ntimings (s): " + ", ".join(
            f"{k} {v}" for k, v in summary["seconds"].items()) + "\n"
        stage.path("comparison.txt").write_text(text.lstrip("\n"))
        stage.path("summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(text)
    print(f"outputs in {Path(outdir).resolve()}: sim/ (MS, images, truth), <weighting>/radiofind, "
          "<weighting>/pybdsf (catalogues, maps), <weighting>/metrics (metrics.json, metrics.png); "
          "uniform/{radiofind-confirmed,pybdsf-natural-islands,metrics-with-natural}")
    return summary
