"""Opt-in markers: ``slow`` and ``integration`` tests run only when asked.

    pytest --run-slow            # also the slow tests
    pytest --run-integration     # also the real end-to-end chains
                                 # (WSClean, casatools, PyBDSF, Stimela)
"""

import os

import pytest

# Keep TensorFlow quiet and on the CPU threads we have.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")
    parser.addoption("--run-integration", action="store_true", help="run tests marked integration")


def pytest_collection_modifyitems(config, items):
    for marker, option in (("slow", "--run-slow"), ("integration", "--run-integration")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
