#!/usr/bin/env python
"""The artefact check's search: which settings of `detect --artefact-check` to ship.

On validation fields that no benchmark reports (generalisation seeds 800006-800011, six per
telescope), the `strong-source` sky (an SNR-2000 source added to 150 sources) is simulated
without phase errors and with 1° and 3° rms antenna phase errors (`strong-phase-1`,
`strong-phase-3`; as in benchmarks/generalisation.py), searched by `radiofind detect` with the
check off (`--artefact-check 0`), and each detection's artefact statistics are read with the
check's own code (radiofind.detect.artefacts.artefact_statistics: the image plus its reflection
through the bright source over that sum's spread on the ring, and the mirror point over the
image's). Every setting of a grid of the sum's cut ``t`` and the mirror's cut is then scored on
the same detections: the true sources it would drop (above SNR 5, and all), and the false
detections above SNR 5 it would drop on the 3° fields.

The choice: among the settings that drop no true source above SNR 5 in any of the 12 field sets
(two telescopes, two weightings, three variants), the one that maximises the false detections
above SNR 5 dropped on the 3° fields minus the true detections dropped anywhere.

    python benchmarks/artefact_check.py          # ~10 min from scratch on 2 cores

Writes benchmarks/results/artefact-check.json and .md. Resumable: fields and catalogues in
benchmarks/work/genval/ are reused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detection import field_truth, write_results  # noqa: E402
from generalisation import VALIDATION_SEEDS as SEEDS  # noqa: E402
from generalisation import detect_field, simulate_field  # noqa: E402

VARIANTS = ("strong-phase-3", "strong-phase-1", "strong-source")
TELESCOPES = ("meerkat", "askap")
WEIGHTINGS = ("natural", "uniform")
T_GRID = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
M_GRID = (1.5, 2.0, 2.5, 3.0)


def field_statistics(folder: Path, weighting: str) -> dict:
    """Each detection (check off) of one field: its SNR, whether it is true, its true source's
    SNR, and the check's statistics."""
    from radiofind.detect.artefacts import artefact_statistics, bright_sources
    from radiofind.evaluate.crossmatch import crossmatch
    from radiofind.evaluate.run import MATCH_RADIUS, table_radec
    from radiofind.io.catalog import read_catalog
    from radiofind.noise import pixel_values

    cat, _ = detect_field(folder, weighting, artefact_check=0)
    image, t_ra, t_dec, t_snr, noise = field_truth(folder, weighting)
    d_ra, d_dec = table_radec(read_catalog(cat), "catalogue")
    match = crossmatch(t_ra, t_dec, d_ra, d_dec,
                       radius_deg=MATCH_RADIUS * image.beam.size_deg)
    truth = np.full(d_ra.size, -1)
    truth[match.det_index] = match.truth_index
    data = np.asarray(image.data).squeeze()
    x, y = image.world_to_pixel(d_ra, d_dec)
    snr = pixel_values(data, x, y) / noise
    bright = bright_sources(data, noise, image.beam_pixels)
    mirror, sum_z, mirror_z = artefact_statistics(data, x, y, snr, noise, bright,
                                                  image.beam_pixels)
    return {"snr": snr, "true": truth >= 0,
            "true_snr": np.where(truth >= 0, t_snr[np.maximum(truth, 0)], np.nan),
            "mirror_snr": mirror, "sum_z": sum_z, "mirror_z": mirror_z}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(HERE / "work" / "genval"))
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    work = Path(args.work)
    sets: dict[str, dict] = {}
    for tel in TELESCOPES:
        for variant in VARIANTS:
            folders = [simulate_field(work, variant, s, tel)[0] for s in SEEDS]
            for w in WEIGHTINGS:
                parts = [field_statistics(f, w) for f in folders]
                sets[f"{tel} {w} {variant}"] = {k: np.concatenate([p[k] for p in parts])
                                                for k in parts[0]}
                print(f"{tel} {w} {variant}: {sets[f'{tel} {w} {variant}']['snr'].size} "
                      "detections", flush=True)

    def score(t: float, m: float) -> dict:
        out = {"t": t, "mirror_sigma": m, "sets": {}}
        true5 = true_all = false5_3 = 0
        for name, s in sets.items():
            with np.errstate(invalid="ignore"):
                flag = (s["sum_z"] < t) & (s["mirror_z"] <= -m)
                hi = s["snr"] >= 5
            kept_hi = hi & ~flag
            row = {"true_dropped": int((flag & s["true"]).sum()),
                   "true_ge5_dropped": int((flag & s["true"] & (s["true_snr"] >= 5)).sum()),
                   "false_ge5_dropped": int((flag & hi & ~s["true"]).sum()),
                   "false_ge5_left": int((kept_hi & ~s["true"]).sum()),
                   "p_ge5": (float((kept_hi & s["true"]).sum() / kept_hi.sum())
                             if kept_hi.any() else None)}
            out["sets"][name] = row
            true5 += row["true_ge5_dropped"]
            true_all += row["true_dropped"]
            if name.endswith("strong-phase-3"):
                false5_3 += row["false_ge5_dropped"]
        out.update(true_ge5_dropped=true5, true_dropped=true_all, false_ge5_dropped_3=false5_3,
                   objective=false5_3 - true_all)
        return out

    grid = [score(t, m) for t in T_GRID for m in M_GRID]
    off = score(-np.inf, np.inf)
    allowed = [g for g in grid if g["true_ge5_dropped"] == 0]
    best = max(allowed, key=lambda g: g["objective"]) if allowed else None
    results = {"seeds": SEEDS, "variants": list(VARIANTS), "grid": grid, "off": off,
               "chosen": best, "seconds": round(time.perf_counter() - t0, 1)}
    lines = ["Artefact check search (validation seeds 800006-800011, six fields per set; "
             "benchmarks/artefact_check.py). Drop a detection when the image plus its "
             "reflection through a bright source reads below t times that sum's spread and "
             "the mirror point at most -m times the image's spread.", "",
             "| t | m | true ≥5 dropped | true dropped | false ≥5 dropped (3°) | objective |",
             "|---|---|---|---|---|---|"]
    for g in grid:
        mark = " (chosen)" if best is g else ""
        lines.append(f"| {g['t']:g}{mark} | {g['mirror_sigma']:g} | {g['true_ge5_dropped']} | "
                     f"{g['true_dropped']} | {g['false_ge5_dropped_3']} | {g['objective']} |")
    if best:
        lines += ["", "P(≥5) per set, check off → chosen setting (false detections ≥5 left):",
                  "", "| set | off | chosen |", "|---|---|---|"]
        for name in sets:
            a, b = off["sets"][name], best["sets"][name]
            fmt = (lambda r: "-" if r["p_ge5"] is None
                   else f"{r['p_ge5']:.3f} ({r['false_ge5_left']})")
            lines.append(f"| {name} | {fmt(a)} | {fmt(b)} |")
    write_results(args.out, "artefact-check", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
