#!/usr/bin/env bash
# Reproduce the bundled models from scratch: simulate the training fields (resumable), train one
# model per weighting with a fixed seed, and copy them into the package.
#
#   bash scripts/train_bundled_models.sh [DATA_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:-$here/data}
export PATH="$here/.venv/bin:$PATH"

python "$here/scripts/make_training_set.py" --telescope meerkat --fields 160 --first-seed 1000 \
  --size 1024 --n-sources 150 --snr-scales 1.5,3.0 --out "$data/meerkat"

# Demand smoothing scales follow the beam: ~18 px natural, ~4 px uniform at 1.5".
radiofind -v train --data "$data/meerkat" --weighting natural --name meerkat-natural --version 1 \
  --epochs 20 --steps-per-epoch 60 --batch-size 16 --crop 96 --horn-radius 15 --gauss-fwhm 10 \
  --alpha 0.75 --b-n 0.05 --seed 1 -o "$data/models/meerkat-natural" --overwrite
radiofind -v train --data "$data/meerkat" --weighting uniform --name meerkat-uniform --version 1 \
  --epochs 20 --steps-per-epoch 60 --batch-size 16 --crop 96 --horn-radius 6 --gauss-fwhm 4 \
  --alpha 0.75 --b-n 0.05 --seed 1 -o "$data/models/meerkat-uniform" --overwrite

for m in meerkat-natural meerkat-uniform; do
  mkdir -p "$here/plugin/models/$m"
  cp "$data/models/$m/card.json" "$data/models/$m/weights.npz" "$here/plugin/models/$m/"
done
