"""The container image: containers/build.sh builds it with podman and smoke-tests it.

The build is opt-in (--run-container; .ci/run passes it): it needs root or sudo, apt and PyPI,
and takes ~7 minutes from scratch on 2 cores (~1.5 minutes when the base image and layers are
cached). The check that the cabs name the image of this version runs by default.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import radiofind

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "containers" / "build.sh"


def test_every_cab_names_the_image_of_this_version():
    cabs = yaml.safe_load((REPO / "plugin" / "cabs" / "radiofind.yml").read_text())["cabs"]
    for name, cab in cabs.items():
        # Native stays the default: the image is only for singularity/kube users.
        assert cab["backend"] == {"select": "native"}, name
        assert cab.get("image") == {"name": "radiofind", "version": radiofind.__version__,
                                    "registry": "LOCAL"}, name


@pytest.mark.container
@pytest.mark.timeout(2400)
def test_build_sh_builds_and_smoke_tests_the_image():
    result = subprocess.run(["bash", str(BUILD)], cwd=REPO, capture_output=True, text=True,
                            timeout=2300)
    report = result.stdout + result.stderr[-6000:]
    sys.stdout.write(report)  # timings and size end up in pytest's captured output
    assert result.returncode == 0, report
    assert f"radiofind image: radiofind:{radiofind.__version__}" in result.stdout
    assert "[build.sh] smoke tests passed" in result.stderr
    assert re.search(r"^image size: .*\(\d+ bytes\)$", result.stdout, re.M), result.stdout
