#!/usr/bin/env bash
# Reproduce the bundled models from scratch: simulate the training fields (resumable), train one
# model per telescope x weighting with a fixed seed, and copy them into the package.
#
#   bash scripts/train_bundled_models.sh [DATA_DIR] [TELESCOPE ...]     (default: meerkat askap)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:-$here/data}
shift || true
telescopes=${*:-meerkat askap}
export PATH="$here/.venv/bin:$PATH"

# Seeds: MeerKAT fields 1000-1159, ASKAP fields 2000-2159 (held-out benchmark fields use 500000+).
declare -A first_seed=([meerkat]=1000 [askap]=2000)
# The network sees natural images averaged in pixel blocks: MeerKAT's (beam ~18.8 px at 1.5") in
# 4 x 4, ASKAP's (~13.6 px) in 3 x 3, so the beam spans ~4.6 network pixels, as the uniform beams do. Demand smoothing scales are in
# network pixels: horn radius ~0.85 beam and Gaussian FWHM ~0.55 beam for the natural models (a
# horn of 6 / Gaussian of 4 at bin 4 merged pairs 1.5 beams apart), 6/4 px for the uniform ones.
# Versions x.1: the x networks, their TBD re-searched once fixed thresholds joined the grid (this
# script's training now searches both rules, so it gives the x.1 cards directly). askap-natural
# 4.1: v4's network, its TBD re-searched with every detection on its image peak (detect's rule
# for averaged grids since then; this script's search scores them so too).
# meerkat-uniform 1.3: the 1.2 network and card, with the whitening check's settings
# (tbd_whitened) searched on 96 validation fields (below).
declare -A version=([meerkat-natural]=3 [askap-natural]=4.1 [meerkat-uniform]=1.3 [askap-uniform]=2.1)
# The demand image's alpha and b_n (DeepSource eq. 3): askap-natural v3 searched alpha 0.5, 0.75
# and 1 (one network each, same seed and crops; validation PC3 0.189 / 0.184 / 0.178) and kept 0.5;
# v4 searches b_n 0.05, 0.2 and 0.5 at alpha 0.5 and keeps 0.5 (0.01, 1 and 2, run apart, scored
# lower; docs/models.md). The others train DeepSource's 0.75 and 0.05 alone: both uniform models searched
# alpha 0.5 and 0.75 and kept 0.75; meerkat-natural searched them and chose 0.5, which missed
# isolated 5-sigma sources on the generalisation benchmark, so v3 stays; askap-uniform and
# meerkat-natural searched b_n 0.2 and 0.5, meerkat-uniform 0.2 and (apart) 0.5, and all kept 0.05
# (docs/models.md).
declare -A alphas=([meerkat-natural]=0.75 [askap-natural]=0.5 [meerkat-uniform]=0.75 [askap-uniform]=0.75)
declare -A bns=([meerkat-natural]=0.05 [askap-natural]=0.05,0.2,0.5 [meerkat-uniform]=0.05 [askap-uniform]=0.05)
# askap-uniform v2 trained 40 epochs: its loss still fell at 20 (v1), and 40 scored validation PC3
# 0.068 against 0.059.
declare -A epochs=([meerkat-natural]=20 [askap-natural]=20 [meerkat-uniform]=20 [askap-uniform]=40)
declare -A bin=([meerkat-natural]=4 [askap-natural]=3 [meerkat-uniform]=1 [askap-uniform]=1)
declare -A horn=([meerkat-natural]=4 [askap-natural]=4 [meerkat-uniform]=6 [askap-uniform]=6)
declare -A gauss=([meerkat-natural]=2.5 [askap-natural]=2.5 [meerkat-uniform]=4 [askap-uniform]=4)
# Uniform models also get TBD settings for detect --confirm-image (the field's natural image).
declare -A confirm=([meerkat-natural]="" [askap-natural]="" [meerkat-uniform]="--confirm-with natural" [askap-uniform]="--confirm-with natural")
# The whitening check's settings (card tbd_whitened): searched for meerkat-uniform only (the
# ASKAP ones failed the generalisation benchmark; docs/models.md).
declare -A whiten=([meerkat-natural]="" [askap-natural]="" [meerkat-uniform]=yes [askap-uniform]="")
# Blob centres: the centroid or the peak (radiofind train's default). The unweighted mean drifts
# off the source on large blobs (at natural weighting the tuned thresholds are low and a bright
# source's blob covers thousands of pixels), and the search would reward the drift (see
# SEARCH_CENTRES in plugin/training/train.py). The bundled uniform models searched the mean too
# and chose the centroid, which is what this search gives them.

for tel in $telescopes; do
  python "$here/scripts/make_training_set.py" --telescope "$tel" --fields 160 \
    --first-seed "${first_seed[$tel]}" --size 1024 --n-sources 150 --snr-scales 1.5,3.0 \
    --out "$data/$tel"
  for w in natural uniform; do
    m="$tel-$w"
    radiofind -v train --data "$data/$tel" --weighting "$w" --name "$m" --version "${version[$m]}" \
      --epochs "${epochs[$m]}" --steps-per-epoch 60 --batch-size 16 --crop 96 \
      --bin "${bin[$m]}" --horn-radius "${horn[$m]}" --gauss-fwhm "${gauss[$m]}" \
      --alpha "${alphas[$m]}" --b-n "${bns[$m]}" ${confirm[$m]} --seed 1 -o "$data/models/$m" \
      --overwrite
    if [ -n "${whiten[$m]}" ]; then
      # The whitening check's settings (card tbd_whitened), searched on 96 validation fields:
      # the card's 32 and 64 more made the same way (seeds 1160-1223 / 2160-2223).
      first_val=$(( ${first_seed[$tel]} + 160 ))
      python "$here/scripts/make_training_set.py" --telescope "$tel" --fields 64 \
        --first-seed "$first_val" --size 1024 --n-sources 150 --snr-scales 1.5,3.0 \
        --out "$data/$tel-val"
      mkdir -p "$data/$tel-all"
      ln -sfn "$data/$tel/$tel"-* "$data/$tel-val/$tel"-* "$data/$tel-all/"
      fields=$(python -c "import json, sys; print(','.join(json.load(open(sys.argv[1]))\
['validation']['fields'] + ['$tel-%d' % s for s in range($first_val, $first_val + 64)]))" \
        "$data/models/$m/card.json")
      python "$here/scripts/retune_tbd.py" "$data/models/$m" "$data/$tel-all" \
        --confirm-with whitened --confirm-only --fields "$fields"
    fi
    mkdir -p "$here/plugin/models/$m"
    cp "$data/models/$m/card.json" "$data/models/$m/weights.npz" "$data/models/$m/history.json" \
      "$here/plugin/models/$m/"
  done
done
