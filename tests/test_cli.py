"""The command line: built from the cab YAML, light to load, and clear about bad input."""

import importlib
import inspect
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import make_header, write_image

from radiofind.cli import IMPLEMENTATIONS, main
from radiofind.params import cab_parameters, load_cabs


@pytest.mark.parametrize("cab_name", sorted(IMPLEMENTATIONS))
def test_cli_cab_and_function_share_one_parameter_set(cab_name):
    """The CLI command, the cab and the implementing function agree on names and defaults."""
    schema = cab_parameters(load_cabs()[cab_name])
    command = main.commands[cab_name.split(".", 1)[1]]
    assert [p.name for p in command.params] == list(schema)
    module, func = IMPLEMENTATIONS[cab_name].split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), func))
    assert set(signature.parameters) == set(schema), cab_name
    for name, spec in schema.items():
        param = signature.parameters[name]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        if "default" in spec and param.default is not inspect.Parameter.empty:
            default = list(param.default) if isinstance(param.default, tuple) else param.default
            assert default == spec["default"], (cab_name, name)
        elif "default" not in spec and not spec.get("required"):
            assert param.default is None, (cab_name, name)


def test_help_does_not_load_heavy_dependencies():
    code = ("import sys; from radiofind.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for cmd in ('detect', 'simulate', 'train', 'evaluate', 'pybdsf', 'demo'):\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'casatools', 'bdsf', 'casacore',"
            " 'astropy', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def run_cli(args):
    return CliRunner().invoke(main, args)


@pytest.fixture
def good_image(tmp_path):
    data = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    return write_image(tmp_path / "good.fits", data, make_header(64))


@pytest.mark.parametrize("args, message", [
    (["detect", "missing.fits", "-o", "OUT"], "no such file"),
    (["detect", "IMG", "-o", "OUT", "--formats", "fits,xls"], "unknown catalogue format"),
    (["detect", "IMG", "-o", "OUT", "--a-min", "0"], "a_min must be"),
    (["detect", "IMG", "-o", "OUT", "--model", "no-such-model"], "unknown model"),
    (["pybdsf", "IMG", "-o", "OUT", "--thresh-pix", "-1"], "must be positive"),
    (["simulate", "-o", "OUT", "--size", "0"], "size"),
    (["simulate", "-o", "OUT", "--scale", "-1.5"], "scale"),
    (["simulate", "-o", "OUT", "--dec", "north"], "dec"),
    (["evaluate", "--truth", "missing.fits", "--image", "IMG", "--catalogs", "a.csv", "-o", "OUT"],
     "no such file"),
])
def test_bad_input_gives_one_line_error_and_no_output(tmp_path, good_image, args, message):
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else good_image if a == "IMG" else a for a in args]
    result = run_cli(args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("radiofind: error:")]
    assert len(lines) == 1 and message.lower() in lines[0].lower(), result.output
    assert not out.exists()


def test_unknown_telescope_is_refused_by_the_cli(tmp_path):
    result = run_cli(["simulate", "-o", str(tmp_path / "o"), "--telescope", "vla"])
    assert result.exit_code == 2 and "vla" in result.output
