#!/usr/bin/env python
"""Simulate the training fields for radiofind's bundled models (resumable, seeded).

Each field is one `radiofind simulate` run (casatools MS -> ducc0 predict + thermal noise -> WSClean
at natural and uniform weighting + truth) at its own pointing, drawn from the field's seed. A field
whose folder already holds simulation.json is skipped, so a killed run continues where it stopped.

    python scripts/make_training_set.py --telescope meerkat --fields 160 --out data/meerkat

``--super-weights 1,0.5,0.25`` images the fields with WSClean's uniform weights of 1024-, 2048- and
4096-pixel images in turn (the beam at uniform weighting depends on the image size).

``--only`` simulates some of those fields alone, each exactly as in the whole set (e.g. a model
card's validation fields, to re-run its TBD search with scripts/retune_tbd.py).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np


def pointing(seed: int) -> tuple[float, float]:
    """A field centre for ``seed``: RA uniform, Dec uniform on the sky between -70 and +10 deg."""
    rng = np.random.default_rng([seed, 7919])
    ra = rng.uniform(0.0, 360.0)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-70)), np.sin(np.radians(10)))))
    return float(ra), float(dec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telescope", default="meerkat")
    ap.add_argument("--fields", type=int, default=40, help="number of fields")
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--scale", type=float, default=1.5)
    ap.add_argument("--n-sources", type=int, default=150)
    ap.add_argument("--snr-scales", default="1.5,3.0",
                    help="exponential SNR scales, cycled over the fields (1.5 = DeepSource; a "
                         "flatter 3.0 gives the uniform-weighting images enough detectable "
                         "sources)")
    ap.add_argument("--super-weights", default="1",
                    help="WSClean -super-weight values, cycled over the fields (1,0.5,0.25 at "
                         "1024 pixels: the uniform weights of 1024-, 2048- and 4096-pixel images)")
    ap.add_argument("--weightings", default="natural,uniform",
                    help="weightings to image, comma-separated")
    ap.add_argument("--only", help="comma-separated field names or seeds of the set to simulate "
                    "(default: all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    from radiofind.simulation.run import simulate

    out = Path(args.out)
    scales = [float(v) for v in args.snr_scales.split(",")]
    super_weights = [float(v) for v in args.super_weights.split(",")]
    try:
        only = ({int(v.strip().rsplit("-", 1)[-1]) for v in args.only.split(",") if v.strip()}
                if args.only else None)
    except ValueError:
        ap.error(f"--only: expected field names like {args.telescope}-{args.first_seed} or seeds, "
                 f"got {args.only!r}")
    seeds = range(args.first_seed, args.first_seed + args.fields)
    if only and not only <= set(seeds):
        ap.error(f"--only: seeds {sorted(only - set(seeds))} are not in the set "
                 f"({args.first_seed}-{seeds[-1]})")
    for k, seed in enumerate(seeds):
        field = out / f"{args.telescope}-{seed}"
        if (only and seed not in only) or (field / "simulation.json").exists():
            continue
        ra, dec = pointing(seed)
        t0 = time.perf_counter()
        simulate(telescope=args.telescope, ra=f"{ra:.4f}", dec=f"{dec:.4f}", size=args.size,
                 scale=args.scale, n_sources=args.n_sources, seed=seed,
                 snr_scale=scales[k % len(scales)],
                 super_weight=super_weights[k % len(super_weights)],
                 weightings=args.weightings.split(","), drop_ms=True,
                 outdir=str(field), overwrite=True)
        logging.info("field %s (RA %.1f, Dec %.1f) in %.0f s", field.name, ra, dec,
                     time.perf_counter() - t0)


if __name__ == "__main__":
    main()
