"""Opt-in markers: ``slow``, ``integration`` and ``container`` tests run only when asked.

    pytest --run-slow            # also the slow tests
    pytest --run-integration     # also the real end-to-end chains
                                 # (WSClean, casatools, PyBDSF, Stimela)
    pytest --run-container       # also build the container image and smoke-test it
                                 # (containers/build.sh: podman, root or sudo, network)
"""

import os

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
