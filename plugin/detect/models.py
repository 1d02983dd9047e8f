"""The registry of trained detection models, and choosing one for an image.

A model is a folder with ``card.json`` (what it was trained on, its input normalisation, its TBD
settings, the beams it is valid for, its validation scores) and ``weights.npz``. Bundled models
live in ``radiofind/models/<name>/``; ``--model`` also accepts a path to such a folder.

With no ``--model``, the image header picks: the telescope (TELESCOP) must match and the beam,
in pixels, must lie in the model's valid range. An image that matches no model is refused with the
list of models, never run through a wrong one silently.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from radiofind.errors import RadiofindError

# The TBD settings a card's search chooses (``tbd``, ``tbd_confirmed``, ``tbd_whitened``).
TBD_KEYS = ("delta_max", "threshold", "a_min", "centre", "response_snr", "min_response",
            "symmetries", "taper", "taper_snr", "shape_cut", "shape_snr")

log = logging.getLogger("radiofind.detect")

# A beam narrower than trained by more than this ratio is interpolated onto a finer grid
# (Model.bin_factor).
UPSAMPLE_BELOW = 0.9
# A beam narrower than this many pixels is undersampled: no grid brings back what was lost.
MIN_BEAM_PIXELS = 2.0


@dataclass
class Model:
    """A trained model: its card and a lazily built network."""

    name: str
    path: Path
    card: dict[str, Any]

    @property
    def architecture(self) -> dict[str, Any]:
        return self.card["architecture"]

    @property
    def tbd(self) -> dict[str, Any]:
        return self.card["tbd"]

    @property
    def tbd_confirmed(self) -> dict[str, Any] | None:
        """The TBD settings searched with a confirmation image (radiofind train
        --confirm-with), as their :data:`TBD_KEYS`; None if the card has none."""
        conf = self.card.get("tbd_confirmed")
        return {k: conf.get(k) for k in TBD_KEYS} if conf else None

    @property
    def tbd_whitened(self) -> dict[str, Any] | None:
        """The TBD settings searched with each field's image, whitened by its own noise, as the
        confirmation image (radiofind train --confirm-with whitened), as their
        :data:`TBD_KEYS` and ``confirm_snr``; None if the card has none."""
        conf = self.card.get("tbd_whitened")
        return {k: conf.get(k) for k in (*TBD_KEYS, "confirm_snr")} if conf else None

    def beam_range(self) -> tuple[float, float]:
        """Beams (sqrt(BMAJ BMIN)) it is valid for, in pixels of its training images."""
        lo, hi = self.card["valid"]["beam_pixels"]
        return float(lo), float(hi)

    @property
    def training_pixel_arcsec(self) -> float:
        """Pixel size of its training images (the card lists them; bundled models have one)."""
        return float(np.median(self.card["valid"]["pixel_scale_arcsec"]))

    def beam_range_arcsec(self) -> tuple[float, float]:
        """Beams it is valid for on the sky, in arcsec: detect puts any image on a grid where the
        beam spans as many pixels as in training, so the pixel size no longer matters."""
        lo, hi = self.beam_range()
        return lo * self.training_pixel_arcsec, hi * self.training_pixel_arcsec

    @property
    def trained_beam_arcsec(self) -> float:
        return self.card["valid"]["beam_pixels_trained"] * self.training_pixel_arcsec

    @property
    def trained_bin(self) -> int:
        """Pixels a side its training images were averaged over (``input.bin``; 1 if absent)."""
        return int(self.card.get("input", {}).get("bin", 1))

    def bin_factor(self, beam_pixels: float) -> float:
        """Input pixels per network pixel for an image whose beam is ``beam_pixels`` wide: the
        grid on which the beam spans about as many pixels as in training.

        A wider beam gives the integer block size nearest to that (pixels are averaged); a beam
        narrower than trained by more than ``UPSAMPLE_BELOW`` gives the exact ratio, below 1
        (the image is interpolated onto a finer grid). Measured on held-out MeerKAT fields
        imaged at 2.0" pixels (uniform beam 3.4 px, trained 4.3 px): on its own pixels the
        network found 82 % of the sources above SNR 5; interpolated, all of them.
        """
        trained = self.card["valid"]["beam_pixels_trained"] / self.trained_bin
        ratio = beam_pixels / trained
        if ratio < UPSAMPLE_BELOW:
            return round(ratio, 4)
        return max(1, int(round(ratio)))

    def block(self, runtime: str = "onnxruntime"):
        """The network as a picklable block function (built once per process, on first use),
        run by ONNX Runtime or by TensorFlow (``runtime="tensorflow"``, the Keras network)."""
        from radiofind.detect.inference import NetworkBlock, OnnxBlock

        weights = self.path / "weights.npz"
        if runtime == "onnxruntime":
            return OnnxBlock(weights, self.architecture)
        if runtime == "tensorflow":
            return NetworkBlock(weights, self.architecture)
        raise RadiofindError(f"runtime must be 'onnxruntime' or 'tensorflow', got {runtime!r}")


def bundled_dir() -> Path:
    return Path(str(resources.files("radiofind.models")))


def load_model(path: str | Path) -> Model:
    """Load a model folder (``card.json`` + ``weights.npz``)."""
    path = Path(path)
    card_path = path / "card.json"
    if not card_path.is_file() or not (path / "weights.npz").is_file():
        raise RadiofindError(f"{path} is not a radiofind model (needs card.json and weights.npz)")
    card = json.loads(card_path.read_text())
    return Model(name=card.get("name", path.name), path=path, card=card)


def bundled_models() -> dict[str, Model]:
    """Every model shipped in the package, by name."""
    models = {}
    for sub in sorted(bundled_dir().iterdir()):
        if (sub / "card.json").is_file():
            model = load_model(sub)
            models[model.name] = model
    return models


def resolve_model(name_or_path: str) -> Model:
    """A bundled model by name, or a model folder by path."""
    bundled = bundled_models()
    if name_or_path in bundled:
        return bundled[name_or_path]
    if Path(name_or_path).exists():
        return load_model(name_or_path)
    raise RadiofindError(f"unknown model {name_or_path!r}; bundled: {', '.join(bundled) or 'none'}")


def header_weighting(value: str) -> str | None:
    """'natural' or 'uniform' from WSClean's WSCWEIGH keyword (e.g. "Briggs'(-1.5)"), if clear."""
    text = str(value).strip().lower()
    if text.startswith(("natural", "uniform")):
        return text[:7]
    match = re.search(r"briggs[^-0-9.]*(-?[0-9.]+)", text)
    if match:
        robust = float(match.group(1))
        return "natural" if robust >= 0.5 else "uniform" if robust <= -0.5 else None
    return None


def select_model(telescope: str, beam_arcsec: float, beam_pixels: float,
                 weighting_keyword: str = "") -> tuple[Model, str]:
    """Pick the bundled model for an image's telescope and beam; say why.

    Where WSClean's weighting keyword names a weighting (:func:`header_weighting`: Briggs robust
    0.5 and up is natural, -0.5 and down uniform) and the telescope has models of it, one of
    those is taken, the one trained nearest this beam, with a warning if the beam lies outside
    its range. Otherwise the beam on the sky (``beam_arcsec``, sqrt(BMAJ BMIN)) decides,
    whatever the pixel size. Either way detect then puts the image on the model's grid
    (:meth:`Model.bin_factor`). A beam under ``MIN_BEAM_PIXELS`` pixels is refused as
    undersampled.

    Why the keyword first: at Briggs robust 0.5 the beam (MeerKAT 12", ASKAP 13") lies between
    or on the edge of the natural and uniform models' ranges, but the PSF and noise are
    natural-like. On six generalisation fields per telescope (seeds 800006-800011, not the
    benchmark's) the natural models found every source above SNR 5 (89 of 89 MeerKAT, 93 of 93
    ASKAP) and the uniform ones 0.83 and 0.95 of them.
    """
    models = bundled_models()
    if not models:
        raise RadiofindError("no bundled models are installed; pass --model PATH")
    tel = telescope.strip().lower()
    same_tel = [m for m in models.values() if m.card["telescope"].lower() == tel]
    fits = [m for m in same_tel
            if m.beam_range_arcsec()[0] <= beam_arcsec <= m.beam_range_arcsec()[1]]
    listing = "; ".join(f"{m.name} (beam {m.beam_range_arcsec()[0]:.1f}-"
                        f"{m.beam_range_arcsec()[1]:.1f}\")" for m in models.values())
    if not tel:
        raise RadiofindError("the image header has no TELESCOP keyword, so no model can be chosen "
                             f"safely; pass --model (bundled: {listing})")
    weighting = header_weighting(weighting_keyword)
    named = [m for m in same_tel if weighting and m.card.get("weighting") == weighting]
    if not fits and not named:
        raise RadiofindError(f"no bundled model matches this image (telescope {telescope!r}, "
                             f"beam {beam_arcsec:.1f}\"); pass --model to force one "
                             f"(bundled: {listing})")
    if beam_pixels < MIN_BEAM_PIXELS:
        raise RadiofindError(f"the beam spans {beam_pixels:.2f} pixels: the image undersamples it "
                             f"(at least {MIN_BEAM_PIXELS:g} are needed); image it with smaller "
                             "pixels")
    # Several can overlap at range edges: prefer the one trained nearest this beam.
    fitting = {m.name for m in fits}
    candidates = [m for m in named if m.name in fitting] or named or fits
    best = min(candidates, key=lambda m: abs(np.log(beam_arcsec / m.trained_beam_arcsec)))
    reason = f"telescope {telescope}, beam {beam_arcsec:.1f}\" = {beam_pixels:.1f} px"
    if weighting:
        reason += f", {weighting} weighting"
    if best.name not in fitting:
        lo, hi = best.beam_range_arcsec()
        log.warning("the beam (%.1f\") lies outside the %.1f-%.1f\" that %s was trained for; it "
                    "is chosen for the header's %s weighting (%s): check the result or pass "
                    "--model", beam_arcsec, lo, hi, best.name, weighting, weighting_keyword)
    return best, reason


# A uniform image whose field of view differs from the training images' by more than this factor
# is warned about (see uniform_field_warning).
FIELD_OF_VIEW_FACTOR = 1.5


def uniform_field_warning(model: Model, shape: tuple[int, int], pixel_arcsec: float
                          ) -> str | None:
    """Why a uniform-weighting model may over-detect on this image, or None.

    WSClean counts uniform (and Briggs) weights per uv cell of 1 / (field of view), so an image
    of another size is weighted differently: a 4096² MeerKAT image at 1.5" has a broader beam
    (10.1" x 6.2" against 7.4" x 5.4") and lower noise than the 1024² training images. On such
    test images the bundled uniform models' purity at SNR 3-4 was 0.12 (MeerKAT) and 0.25
    (ASKAP), against 0.71 and 0.67 at 1024² (README, "Bundled models"). Natural (Briggs 1.5)
    images barely change with size and are not warned about. The training images' field of
    view is ``size`` x ``scale`` of the card's training set, divided by each ``super_weight`` it
    was imaged with (``simulate --super-weight``).
    """
    if model.card.get("weighting") != "uniform":
        return None
    ts = model.card.get("training_set", {})
    if "size" not in ts or "scale" not in ts:
        return None
    trained = [float(size) * float(scale) / float(sw)
               for size in np.atleast_1d(ts["size"]) for scale in np.atleast_1d(ts["scale"])
               for sw in np.atleast_1d(ts.get("super_weight", 1.0))]
    fov = max(shape) * pixel_arcsec
    lo, hi = min(trained), max(trained)
    if lo / FIELD_OF_VIEW_FACTOR <= fov <= hi * FIELD_OF_VIEW_FACTOR:
        return None
    return (f"this uniform image spans {fov / 60:.0f}' and {model.name} was trained on images "
            f"of {lo / 60:.0f}'" + (f"-{hi / 60:.0f}'" if hi > lo else "") + ": WSClean counts "
            "uniform weights per uv cell of 1/(field of view), so its beam and noise differ from "
            "the training images' and more faint detections may be noise (on 4096² test images "
            "the bundled uniform models' purity at SNR 3-4 was 0.12-0.25, against 0.67-0.71 at "
            "1024²). --negatives estimates the catalogue's purity; --confirm-image with the "
            "field's natural image removes most noise detections")


def describe_models() -> str:
    """A table of the bundled models for ``radiofind models``."""
    rows = ["name                 telescope  weighting  beam (\")   version  validation PC3"]
    for m in bundled_models().values():
        lo, hi = m.beam_range_arcsec()
        pc3 = m.card.get("validation", {}).get("PC3")
        rows.append(f"{m.name:<20} {m.card['telescope']:<10} {m.card.get('weighting', '?'):<10} "
                    f"{lo:4.1f}-{hi:<5.1f}  {m.card.get('version', '?'):<8} "
                    f"{'-' if pc3 is None else f'{pc3:.2f}'}")
    return "\n".join(rows)
