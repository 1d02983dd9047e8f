"""The DeepSource network (DeepSource fig. 8), built with Keras.

A fully convolutional net: ``n_layers`` convolutions of ``filters`` 5x5 kernels with ReLU, a
shortcut that adds the first layer's features to the third's followed by batch normalisation, and
a final 5x5 convolution down to one channel (the SNR-boosted map). With no pooling the output has
the input's size, so a net trained on small crops runs on images of any size.

Weights travel as plain numpy arrays (``weights.npz``) beside a JSON card, not as a pickled Keras
file: a model is rebuilt from its card's ``architecture`` and loaded by layer name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_ARCHITECTURE: dict[str, Any] = {"filters": 12, "kernel": 5, "n_layers": 5,
                                        "shortcut_from": 1, "shortcut_to": 3}


def receptive_radius(architecture: dict[str, Any]) -> int:
    """Pixels on each side that influence one output pixel (halo needed when tiling)."""
    arch = {**DEFAULT_ARCHITECTURE, **architecture}
    return (arch["n_layers"] + 1) * (arch["kernel"] // 2)


def build_network(*, filters: int = 12, kernel: int = 5, n_layers: int = 5, shortcut_from: int = 1,
                  shortcut_to: int = 3):
    """Build the network for inputs of any size, shape ``(None, None, 1)``.

    Parameters
    ----------
    filters
        Channels of every intermediate layer (12 in DeepSource).
    kernel
        Kernel size (5 in DeepSource).
    n_layers
        Intermediate convolution layers (5 in DeepSource), followed by the output layer.
    shortcut_from, shortcut_to
        Layer whose output is added to layer ``shortcut_to``'s, then batch-normalised.
    """
    # TensorFlow is imported here so that only code that runs the network pays its ~3 s import.
    import keras
    from keras import layers

    inp = keras.Input(shape=(None, None, 1), name="image")
    x = inp
    saved = None
    for i in range(1, n_layers + 1):
        x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=f"conv{i}")(x)
        if i == shortcut_from:
            saved = x
        if i == shortcut_to and saved is not None:
            x = layers.Add(name="shortcut")([x, saved])
            x = layers.BatchNormalization(name="batchnorm")(x)
    out = layers.Conv2D(1, kernel, padding="same", name="output")(x)
    return keras.Model(inp, out, name="deepsource")


def get_weights(model) -> dict[str, np.ndarray]:
    """All weights (trainable and batch-norm statistics) keyed ``layer/index``."""
    return {f"{layer.name}/{i}": np.asarray(w) for layer in model.layers
            for i, w in enumerate(layer.get_weights())}


def set_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Load weights saved by :func:`get_weights` into a model of the same architecture."""
    for layer in model.layers:
        n = len(layer.get_weights())
        if n:
            layer.set_weights([weights[f"{layer.name}/{i}"] for i in range(n)])
