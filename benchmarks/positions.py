#!/usr/bin/env python
"""Position errors: are the catalogues' ``ra_err`` and ``dec_err`` what the positions show?

Each finder's catalogue gives one-sigma position errors (radiofind's from the image's own noise
gradient, radiofind.detect.positions.position_errors; PyBDSF's its own, from its Gaussian fits).
On simulated fields (the generalisation benchmark's baseline: 1024² at 1.5", 150 sources, SNR
scale 2.5) each detection matched to a true source (the evaluation's match: one-to-one, nearest
first, within 2/3 of the beam) has its offset from the truth along RA and Dec divided by its
error. Were the errors right, those ratios would be Gaussian of unit spread: rms 1, 68 % within
1 and 95 % within 2. Two sets of six fields per telescope: the validation fields (seeds
800006-800011), on which radiofind's one factor (``POSITION_ERROR_SCALE``) was chosen, and the
held-out baseline fields (seeds 800000-800005), which no choice saw. Rows by the catalogue's SNR.

    python benchmarks/positions.py        # ~10 min on 2 cores with the fields simulated

Writes benchmarks/results/positions.json and .md. Fields (and catalogues) are simulated (run)
where missing, as benchmarks/generalisation.py does, and reused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detection import field_truth, run_bdsf, write_results  # noqa: E402
from generalisation import BDSF_THRESHOLDS, VALIDATION_SEEDS, detect_field  # noqa: E402
from generalisation import simulate_field  # noqa: E402

SETS = {"validation": VALIDATION_SEEDS, "held out": [800000 + i for i in range(6)]}
TELESCOPES = ("meerkat", "askap")
WEIGHTINGS = ("natural", "uniform")
SNR_BINS = ((3.0, 5.0), (5.0, 10.0), (10.0, np.inf), (5.0, np.inf))


def normalised_offsets(folder: Path, weighting: str, catalog: Path) -> dict:
    """Each matched detection of one field: its catalogue SNR, its offsets from the truth along
    RA and Dec (arcsec on the sky) and its errors there."""
    from radiofind.evaluate.crossmatch import crossmatch
    from radiofind.evaluate.run import MATCH_RADIUS, table_radec
    from radiofind.io.catalog import read_catalog

    image, t_ra, t_dec, _, _ = field_truth(folder, weighting)
    table = read_catalog(catalog)
    d_ra, d_dec = table_radec(table, "catalogue")
    match = crossmatch(t_ra, t_dec, d_ra, d_dec, radius_deg=MATCH_RADIUS * image.beam.size_deg)
    ti, di = match.truth_index, match.det_index
    east = ((d_ra[di] - t_ra[ti] + 180.0) % 360.0 - 180.0) * np.cos(np.deg2rad(t_dec[ti]))

    def column(name: str) -> np.ndarray:
        return np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan)[di]

    return {"snr": column("snr"), "d_ra": 3600.0 * east, "d_dec": 3600.0 * (d_dec[di] - t_dec[ti]),
            "ra_err": column("ra_err"), "dec_err": column("dec_err")}


def score(rows: dict) -> list[dict]:
    """Per SNR bin: how many, the rms of the offsets over their errors (both axes), the shares
    within 1 and 2 errors, the median error and the median offset (arcsec, per axis)."""
    out = []
    for lo, hi in SNR_BINS:
        k = (rows["snr"] >= lo) & (rows["snr"] < hi) & np.isfinite(rows["ra_err"]) \
            & np.isfinite(rows["dec_err"])
        z = np.concatenate([rows["d_ra"][k] / rows["ra_err"][k],
                            rows["d_dec"][k] / rows["dec_err"][k]])
        if not k.any():
            out.append({"snr": [lo, hi], "n": 0})
            continue
        out.append({"snr": [lo, hi], "n": int(k.sum()),
                    "rms_z": float(np.sqrt(np.mean(z**2))),
                    "within_1": float(np.mean(np.abs(z) < 1)),
                    "within_2": float(np.mean(np.abs(z) < 2)),
                    "median_err_arcsec": float(np.median(np.r_[rows["ra_err"][k],
                                                               rows["dec_err"][k]])),
                    "median_offset_arcsec": float(np.median(np.abs(np.r_[rows["d_ra"][k],
                                                                       rows["d_dec"][k]])))})
    return out


def arguments(doc: str) -> argparse.Namespace:
    """The options this benchmark and benchmarks/photometry.py share."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--work", default=str(HERE / "work"),
                    help="the benchmarks' work folder (generalisation/ and genval/ in it)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-pybdsf", action="store_true", help="radiofind's catalogues only")
    return ap.parse_args()


def scored_sets(args: argparse.Namespace, variant: str, per_field, score) -> tuple[list, dict]:
    """Each set's fields of ``variant`` (simulated where missing), both weightings, searched by
    radiofind and PyBDSF 3/5 (unless ``--no-pybdsf``): ``per_field(folder, weighting,
    catalogue)`` gives one field's arrays, ``score(arrays)`` the rows of the pooled six. Returns
    the rows (with set, telescope, weighting and finder) and the validation fields' radiofind
    (folder, catalogue) pairs per (telescope, weighting)."""
    t0 = time.perf_counter()
    work = Path(args.work)
    folders = {"validation": work / "genval", "held out": work / "generalisation"}
    rows, validation = [], {}
    for name, seeds in SETS.items():
        for tel in TELESCOPES:
            fields = [simulate_field(folders[name], variant, s, tel)[0] for s in seeds]
            for w in WEIGHTINGS:
                finders = {"radiofind": [detect_field(f, w)[0] for f in fields]}
                if name == "validation":
                    validation[(tel, w)] = list(zip(fields, finders["radiofind"], strict=True))
                if not args.no_pybdsf:
                    finders["pybdsf 3/5"] = [run_bdsf(f, w, BDSF_THRESHOLDS)[0] for f in fields]
                for finder, cats in finders.items():
                    parts = [per_field(f, w, c) for f, c in zip(fields, cats, strict=True)]
                    pooled = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                    rows += [{"set": name, "telescope": tel, "weighting": w, "finder": finder,
                              **r} for r in score(pooled)]
                print(f"{name} {tel} {w}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows, validation


def main() -> None:
    args = arguments(__doc__)
    t0 = time.perf_counter()
    rows, _ = scored_sets(args, "baseline", normalised_offsets, score)
    results = {"sets": {k: list(v) for k, v in SETS.items()}, "rows": rows,
               "seconds": round(time.perf_counter() - t0, 1)}
    lines = ["Position errors against the truth (benchmarks/positions.py): each matched "
             "detection's offset along RA and Dec over the catalogue's ra_err / dec_err. Right "
             "errors give rms 1, 68 % within 1 and 95 % within 2. Six fields per set, telescope "
             "and weighting; SNR: the catalogue's.", "",
             "| set | telescope | weighting | finder | SNR | n | rms | within 1 | within 2 "
             "| median error (\") | median offset (\") |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lo, hi = r["snr"]
        snr = f"≥ {lo:g}" if not np.isfinite(hi) else f"{lo:g}–{hi:g}"
        if not r["n"]:
            continue
        lines.append(f"| {r['set']} | {r['telescope']} | {r['weighting']} | {r['finder']} | "
                     f"{snr} | {r['n']} | {r['rms_z']:.2f} | {r['within_1']:.2f} | "
                     f"{r['within_2']:.2f} | {r['median_err_arcsec']:.2f} | "
                     f"{r['median_offset_arcsec']:.2f} |")
    write_results(args.out, "positions", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
