"""The bundled models' cards agree with the script that reproduces them.

``scripts/train_bundled_models.sh`` is the shipped recipe of the four bundled models: the settings
each card records (version, epochs, input binning, demand image and the alphas and b_n searched,
the batches, the seed, confirmation and whitening settings) must be the ones the script passes to
``radiofind train``, or re-running it would not give the models the package ships.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "train_bundled_models.sh"
MODELS = REPO / "plugin" / "models"


def script_arrays() -> dict[str, dict[str, str]]:
    """The script's ``declare -A name=([key]=value ...)`` arrays."""
    arrays = {}
    for name, body in re.findall(r"^declare -A (\w+)=\((.*)\)\s*$", SCRIPT.read_text(), re.M):
        arrays[name] = {k: v.strip('"') for k, v in re.findall(r'\[([\w-]+)\]=("[^"]*"|\S*)',
                                                                 body)}
    return arrays


def script_option(flag: str) -> str:
    """The value the script's ``radiofind train`` line gives ``flag`` (the same for every model)."""
    words = shlex.split(SCRIPT.read_text().split("radiofind -v train", 1)[1].replace("\\\n", " "))
    return words[words.index(flag) + 1]


ARRAYS = script_arrays()
NAMES = sorted(ARRAYS["version"])


def test_the_script_covers_every_bundled_model():
    assert NAMES == sorted(p.name for p in MODELS.iterdir() if (p / "card.json").exists())
    for name in ("epochs", "bin", "horn", "gauss", "alphas", "bns", "confirm", "whiten"):
        assert sorted(ARRAYS[name]) == NAMES, name


@pytest.mark.parametrize("name", NAMES)
def test_card_matches_the_script(name):
    card = json.loads((MODELS / name / "card.json").read_text())
    demand, training = card["demand"], card["training"]
    assert card["version"] == ARRAYS["version"][name]
    assert training["epochs"] == int(ARRAYS["epochs"][name])
    assert card["input"].get("bin", 1) == int(ARRAYS["bin"][name])
    assert demand["horn_radius"] == float(ARRAYS["horn"][name])
    assert demand["gauss_fwhm"] == float(ARRAYS["gauss"][name])
    searched = demand.get("searched", {}).get("alpha", [demand["alpha"]])
    assert searched == [float(a) for a in ARRAYS["alphas"][name].split(",")]
    assert demand["alpha"] in searched
    searched = demand.get("searched", {}).get("b_n", [demand["b_n"]])
    assert searched == [float(b) for b in ARRAYS["bns"][name].split(",")]
    assert demand["b_n"] in searched
    for flag, key in (("--steps-per-epoch", "steps_per_epoch"), ("--batch-size", "batch_size"),
                      ("--crop", "crop"), ("--seed", "seed")):
        assert training[key] == int(script_option(flag)), flag
    confirm = ARRAYS["confirm"][name].split()
    if confirm:
        assert card["tbd_confirmed"]["confirm_with"] == confirm[confirm.index("--confirm-with") + 1]
    else:
        assert "tbd_confirmed" not in card
    # the whitening search runs for the models the script marks, on 96 validation fields
    if ARRAYS["whiten"][name]:
        assert card["tbd_whitened"]["confirm_with"] == "whitened"
        assert len(card["tbd_whitened"]["validation"]["fields"]) == 96
    else:
        assert "tbd_whitened" not in card
