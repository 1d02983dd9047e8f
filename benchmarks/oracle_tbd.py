#!/usr/bin/env python
"""Compare networks apart from their TBD settings: each one's best settings chosen on the test
fields themselves (an oracle no user has), beside the settings its card holds.

Two networks can score differently on held-out fields because one separates sources from noise
better, or only because their cards' thresholds sit at different points of the same
purity-completeness curve. This runs radiofind train's TBD search (fixed map thresholds x A_min,
centroid centres; the dynamic rule is left out) on the test fields for each model and reports the
card's settings (when they are on that grid) and the best PC3 there, with purity and completeness
in the SNR 3-4 and 4-5 bins.

    python benchmarks/oracle_tbd.py \\
        --models meerkat-uniform,benchmarks/candidates/meerkat-uniform-sizes \\
        --out benchmarks/results/oracle/meerkat-4096 \\
        benchmarks/work/size-4096/meerkat/meerkat-50000{0,1}

``--models`` takes bundled model names or model folders.

Writes OUT.json (every trial) and OUT.md. The fields are folders as benchmarks/detection.py
makes them (``<weighting>-image.fits`` and ``truth.fits``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

A_MIN = (1, 5, 10, 20)
KEYS = ("threshold", "a_min", "pc3", "p3", "c3", "pc4", "p4", "c4", "pc5", "s90", "c_ge5",
        "p_ge5")


def search(model: str, folders: list[Path], weighting: str) -> tuple[dict, dict, list[dict]]:
    """One model on the fields: its card's TBD settings, the best (fixed threshold, A_min) trial
    by radiofind train's ranking (PC3, then the lower S90), and every trial."""
    import radiofind.training.train as train
    from radiofind.detect.inference import SymmetrisedBlock, predict_map
    from radiofind.detect.models import resolve_model
    from radiofind.training.dataset import load_field

    mdl = resolve_model(model)
    fields = [load_field(f, weighting, bin=mdl.trained_bin) for f in folders]
    net = SymmetrisedBlock(mdl.block(), 1)
    tmaps = [predict_map(net, mdl.architecture, f.normalised) for f in fields]
    best, trials = train.search_tbd(fields, tmaps, n_steps=50, centres=("centroid",),
                                 demand=mdl.card["demand"], delta_max_grid=(),
                                 a_min_grid=A_MIN, bins=True)
    return mdl.card["tbd"], best, trials


def fmt(v) -> str:
    return "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="comma-separated model folders or names")
    ap.add_argument("--weighting", default="uniform")
    ap.add_argument("--out", required=True, help="output path without suffix")
    ap.add_argument("fields", nargs="+", type=Path)
    args = ap.parse_args()

    from radiofind.evaluate.run import json_safe

    results, rows = {}, []
    for model in args.models.split(","):
        tbd, best, trials = search(model, args.fields, args.weighting)
        own = next((t for t in trials if t["threshold"] == tbd.get("threshold")
                    and t["a_min"] == tbd.get("a_min")), None)
        results[model] = {"card_tbd": {k: tbd.get(k) for k in ("delta_max", "threshold",
                                                                "a_min", "centre")},
                          "card": own, "best": best, "trials": trials}
        for label, t in (("card", own), ("best on test fields", best)):
            rows.append(f"| {model} | {label} | " + (" | ".join(fmt(t[k]) for k in KEYS)
                                                     if t else "not on the grid") + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(json_safe(
        {"fields": [str(f) for f in args.fields], "weighting": args.weighting,
         "models": results}), indent=1) + "\n")
    table = "\n".join([f"{len(args.fields)} fields, {args.weighting} images: "
                       + ", ".join(f.name for f in args.fields), "",
                       "| model | TBD | " + " | ".join(KEYS) + " |",
                       "|---" * (len(KEYS) + 2) + "|", *rows]) + "\n"
    Path(f"{args.out}.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
