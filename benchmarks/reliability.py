#!/usr/bin/env python
"""How well `detect --negatives` counts a catalogue's false detections, on held-out fields.

`detect --negatives` searches the image times -1 with the same model, checks and map threshold:
its detections there (noise troughs turned into peaks) estimate how many of the catalogue's
detections at each SNR are noise, from the image alone, and give each detection a reliability.
This script compares those estimates with the truth on the detection benchmark's held-out test
fields (seeds 500000+, simulated if missing) and, where asked, on generalisation variants (seeds
800000+, e.g. deep cleaning, where noise peaks are restored as clean beams and the measured noise
is too low):

    python benchmarks/reliability.py                                # ~3 min on 2 cores
    python benchmarks/reliability.py --variants deep-clean,noise-x3 --large 4096

Detections are binned by the catalogue's SNR (detect's own noise, what a user sees). Writes
benchmarks/results/reliability.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from radiofind.detect.reliability import purity_estimate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RANGES = ((3.0, 4.0), (4.0, 4.5), (4.5, 5.0), (5.0, 6.0), (6.0, np.inf))
ABOVE = (3.0, 4.0, 5.0)
RELIABILITY_BINS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0001)
LARGE_SEED = 700010  # no training run or other benchmark uses it


def field_rows(folder: Path, weighting: str, confirm: str | None = None) -> dict:
    """One field's detections (catalogue SNR, true?, reliability) and negatives' SNRs;
    ``confirm``: with the other weighting's image confirming (detect --confirm-image)."""
    from astropy.table import Table

    import detection

    cat, _, model = detection.run_radiofind(folder, weighting, confirm, negatives=True)
    match = detection.field_match(folder, weighting, cat)
    table = Table.read(cat)
    negatives = Table.read(cat.with_name(cat.stem + "-negatives.fits"))  # detect's naming
    return {"snr": np.asarray(table["snr"], float), "true": np.asarray(match.det_is_tp, bool),
            "reliability": np.asarray(table["reliability"], float),
            "negative_snr": np.asarray(negatives["snr"], float), "model": model}


def summarise(fields: list[dict]) -> dict:
    """Pooled counts per SNR range and above 3/4/5, the per-field error of the estimated purity
    above SNR 4 and 5, and the reliability column's calibration."""
    snr = np.concatenate([f["snr"] for f in fields])
    true = np.concatenate([f["true"] for f in fields])
    rel = np.concatenate([f["reliability"] for f in fields])
    neg = np.concatenate([f["negative_snr"] for f in fields])

    def counts(lo, hi):
        sel = (snr >= lo) & (snr < hi)
        n, n_true = int(sel.sum()), int(true[sel].sum())
        n_neg = int(((neg >= lo) & (neg < hi)).sum())
        return {"lo": lo, "hi": hi if np.isfinite(hi) else None, "detections": n,
                "false": n - n_true, "negatives": n_neg, "purity": n_true / n if n else None,
                "purity_estimated": max(0.0, 1 - n_neg / n) if n else None}

    per_field = {}
    for s in (4.0, 5.0):
        errors = [purity_estimate(f["snr"], f["negative_snr"], s)
                  - f["true"][f["snr"] >= s].mean() for f in fields if (f["snr"] >= s).any()]
        per_field[f"{s:g}"] = {"fields": len(errors),
                               "median_abs_error": float(np.median(np.abs(errors)))
                               if errors else None,
                               "p90_abs_error": float(np.percentile(np.abs(errors), 90))
                               if errors else None}
    calibration = []
    for lo, hi in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:]):
        sel = (rel >= lo) & (rel < hi)
        calibration.append({"lo": lo, "hi": min(hi, 1.0), "detections": int(sel.sum()),
                            "mean_reliability": float(rel[sel].mean()) if sel.any() else None,
                            "fraction_true": float(true[sel].mean()) if sel.any() else None})
    return {"fields": len(fields), "model": fields[0]["model"],
            "ranges": [counts(lo, hi) for lo, hi in RANGES],
            "above": [counts(s, np.inf) for s in ABOVE],
            "per_field": per_field, "calibration": calibration}


def fmt(v, digits=2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    """A summary table (docs/benchmarks.md's), then the counts behind it."""
    def pe(row):
        return f"{fmt(row['purity'])} ({fmt(row['purity_estimated'])})"

    def calib(r, lo, hi):
        sel = [c for c in r["calibration"] if c["lo"] >= lo and c["hi"] <= hi]
        n = sum(c["detections"] for c in sel)
        t = sum(c["detections"] * c["fraction_true"] for c in sel if c["detections"])
        return f"{fmt(t / n if n else None)} ({n})"

    lines = ["| fields | weighting | model | purity (estimated) at SNR 3–4 | 4–4.5 | 4.5–5 | "
             "5–6 | above 4 | above 5 | one field's abs error above 4: median / 90 % | "
             "above 5 | true among R ≥ 0.9 | R < 0.5 |", "|" + "---|" * 13]
    for name, r in results["sets"].items():
        label, weighting = name.rsplit(" ", 1)
        rng, above = r["ranges"], r["above"]
        p4, p5 = r["per_field"]["4"], r["per_field"]["5"]
        lines.append(
            f"| {label} ({r['fields']}) | {weighting} | {r['model']} | "
            + " | ".join(pe(row) for row in rng[:4]) + f" | {pe(above[1])} | {pe(above[2])} | "
            f"{fmt(p4['median_abs_error'])} / {fmt(p4['p90_abs_error'])} | "
            f"{fmt(p5['median_abs_error'])} / {fmt(p5['p90_abs_error'])} | "
            f"{calib(r, 0.9, 1.0)} | {calib(r, 0.0, 0.5)} |")
    lines += ["", "Counts: detections, false ones (the truth's) and the negated image's detections "
              "in each SNR range (the catalogue's SNR).", "",
              "| fields | weighting | SNR | detections | false | negatives | purity | estimated |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in results["sets"].items():
        label, weighting = name.rsplit(" ", 1)
        for row in r["ranges"] + r["above"]:
            snr = (f"≥ {row['lo']:g}" if row in r["above"] else
                   f"{row['lo']:g}–{row['hi']:g}" if row["hi"] is not None
                   else f"{row['lo']:g}+")
            lines.append(f"| {label} | {weighting} | {snr} | {row['detections']} | "
                         f"{row['false']} | {row['negatives']} | {fmt(row['purity'])} | "
                         f"{fmt(row['purity_estimated'])} |")
    lines += ["", "Calibration of the reliability column: detections binned by it, the fraction "
              "of them that are true (how many).", "",
              "| fields | weighting | " + " | ".join(
                  f"R {lo:g}–{min(hi, 1):g}" for lo, hi in
                  zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:])) + " |",
              "|---|---|" + "---|" * (len(RELIABILITY_BINS) - 1)]
    for name, r in results["sets"].items():
        label, weighting = name.rsplit(" ", 1)
        lines.append(f"| {label} | {weighting} | " + " | ".join(
            f"{fmt(c['fraction_true'])} ({c['detections']})" for c in r["calibration"]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescopes", default="meerkat,askap")
    ap.add_argument("--fields", type=int, default=24, help="held-out test fields per telescope")
    ap.add_argument("--variants", default="",
                    help="generalisation variants to add (comma-separated), 6 fields each")
    ap.add_argument("--variant-fields", type=int, default=6)
    ap.add_argument("--large", type=int, default=0,
                    help="also one field of this size² per telescope (a survey-size image, "
                         "the held-out fields' source density; seed 700010)")
    ap.add_argument("--work", default=str(HERE / "work"))
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import detection
    import generalisation

    work = Path(args.work)
    t0 = time.perf_counter()
    sets = {}
    for telescope in args.telescopes.split(","):
        seeds = list(range(detection.FIRST_TEST_SEED, detection.FIRST_TEST_SEED + args.fields))
        held_out = detection.simulate_fields(
            work / telescope, telescope, seeds, detection.SIZE, detection.N_SOURCES,
            detection.SNR_SCALE)
        groups = {f"held-out {telescope}": held_out}
        if args.large:
            groups[f"{args.large}² {telescope}"] = detection.simulate_fields(
                work / "reliability-large", telescope, [LARGE_SEED], args.large,
                round(detection.N_SOURCES * (args.large / detection.SIZE) ** 2),
                detection.SNR_SCALE)
        for variant in filter(None, args.variants.split(",")):
            groups[f"{variant} {telescope}"] = [
                generalisation.simulate_field(work / "generalisation", variant, seed,
                                              telescope)[0]
                for seed in range(generalisation.FIRST_SEED,
                                  generalisation.FIRST_SEED + args.variant_fields)]
        for label, folders in groups.items():
            if not folders:  # --fields 0: the variants alone
                continue
            for weighting in detection.WEIGHTINGS:
                sets[f"{label} {weighting}"] = summarise(
                    [field_rows(f, weighting) for f in folders])
                print(f"{label} {weighting}: done ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
            if label.startswith("held-out"):
                # The uniform search confirmed by the natural image (detect --confirm-image).
                sets[f"{label} uniform+natural"] = summarise(
                    [field_rows(f, "uniform", "natural") for f in folders])
    results = {"sets": sets, "seconds": time.perf_counter() - t0,
               "command": " ".join(sys.argv)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reliability.json").write_text(json.dumps(results, indent=1, default=float))
    (out / "reliability.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
