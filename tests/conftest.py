"""Opt-in markers: ``slow``, ``integration`` and ``container`` tests run only when asked.

    pytest --run-slow            # also the slow tests
    pytest --run-integration     # also the real end-to-end chains
                                 # (WSClean, casatools, PyBDSF, Stimela)
    pytest --run-container       # also build the container image and smoke-test it
                                 # (containers/build.sh: podman, root or sudo, network)
"""

import json
import os

import numpy as np
import pytest

# Keep TensorFlow quiet and on the CPU threads we have.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")
    parser.addoption("--run-integration", action="store_true", help="run tests marked integration")
    parser.addoption("--run-container", action="store_true", help="run tests marked container")


def pytest_collection_modifyitems(config, items):
    for marker, option in (("slow", "--run-slow"), ("integration", "--run-integration"),
                           ("container", "--run-container")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def random_model(tmp_path_factory):
    """An untrained network packaged as a model folder (tests the plumbing, not the science)."""
    import keras

    from radiofind.detect.network import DEFAULT_ARCHITECTURE, build_network, get_weights

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model")
    np.savez(path / "weights.npz", **get_weights(build_network(**DEFAULT_ARCHITECTURE)))
    card = {"name": "test-random", "telescope": "MeerKAT", "architecture": DEFAULT_ARCHITECTURE,
            "tbd": {"delta_max": 100, "a_min": 3, "centre": "mean", "n_steps": 30},
            "valid": {"beam_pixels": [2, 8], "beam_pixels_trained": 4}}
    (path / "card.json").write_text(json.dumps(card))
    return path
