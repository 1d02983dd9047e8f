#!/usr/bin/env python
"""Re-run a trained model's TBD search on its validation fields (no retraining); update its card.

    python scripts/retune_tbd.py plugin/models/meerkat-natural data/meerkat [--centres LIST]
    python scripts/retune_tbd.py plugin/models/meerkat-uniform data/meerkat --confirm-with natural
    python scripts/retune_tbd.py plugin/models/askap-uniform data/askap --symmetries 8
    python scripts/retune_tbd.py MODEL data/askap --fields askap-2005,askap-2160,...
    python scripts/retune_tbd.py plugin/models/meerkat-uniform data/meerkat --shape-check \
        --keep-rule
    python scripts/retune_tbd.py plugin/models/meerkat-uniform data/meerkat-all \
        --confirm-with whitened --confirm-only --fields meerkat-1005,...,meerkat-1160,...

For a model trained before the search changed: a wider grid (meerkat-natural v2 was re-searched
this way after the Δmax grid grew to 51200) or fewer centre rules. By default only the centroid
and peak rules are searched, as radiofind train does: the unweighted mean of a large blob drifts
off the source (found on benchmarks/scale.py's bright sources at natural weighting), and the
validation score rewards the drift (see SEARCH_CENTRES in radiofind.training.train).
"""

import argparse
import logging

from radiofind.training.train import retune

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--centres", default="centroid,peak")
ap.add_argument("--response-check", action="store_true",
                help="also search the response check (radiofind train --response-check)")
ap.add_argument("--confirm-with", choices=("natural", "uniform", "whitened"),
                help="also search the TBD settings for detect --confirm-image "
                "with each validation field's image of this weighting (radiofind train "
                "--confirm-with)")
ap.add_argument("--symmetries", type=int, choices=(1, 2, 4, 8),
                help="search the network's answers averaged over this many orientations of each "
                "image, and have detect average as many (default: the card's)")
ap.add_argument("--taper-check", action="store_true",
                help="also search the taper check (radiofind train --taper-check)")
ap.add_argument("--shape-check", action="store_true",
                help="also fit the shape classifier on the card's training fields in DATA and "
                "search its cut (radiofind train --shape-check)")
ap.add_argument("--keep-rule", action="store_true",
                help="keep the card's threshold rule, A_min and centre; search only the checks "
                "asked for (--response-check, --taper-check, --shape-check) on them")
ap.add_argument("--confirm-only", action="store_true",
                help="run only the --confirm-with search, leaving the card's TBD settings and "
                "validation scores as they are")
ap.add_argument("--fields", help="comma-separated names of the validation fields in DATA to "
                "search on instead of the card's (none the network was trained on); the card "
                "then names them")
args = ap.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
card = retune(model=args.model, data=args.data, centres=args.centres.split(","),
              response_check=args.response_check, confirm_with=args.confirm_with,
              symmetries=args.symmetries, taper_check=args.taper_check,
              fields=args.fields.split(",") if args.fields else None,
              shape_check=args.shape_check, keep_rule=args.keep_rule,
              confirm_only=args.confirm_only)
print(card["tbd"], card["validation"]["PC3"], card["validation"]["S90"])
for key in ("tbd_confirmed", "tbd_whitened"):
    if key in card:
        print(f"{key}:", card[key])
