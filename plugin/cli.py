"""The ``radiofind`` command line: a thin layer over the core functions.

Every command is built from its cab in ``cabs/radiofind.yml`` (see :mod:`radiofind.params`) and
imports its implementation only when run, so ``radiofind --help`` never loads TensorFlow,
casatools or PyBDSF.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from radiofind import __version__
from radiofind.errors import RadiofindError
from radiofind.params import command_from_cab, load_cabs

# cab name -> "module:function" implementing it; imported lazily (heavy dependencies).
IMPLEMENTATIONS = {
    "radiofind.simulate": "radiofind.simulation.run:simulate",
    "radiofind.detect": "radiofind.detect.run:detect",
    "radiofind.pybdsf": "radiofind.pybdsf:run_pybdsf",
    "radiofind.aegean": "radiofind.aegean:run_aegean",
    "radiofind.evaluate": "radiofind.evaluate.run:evaluate",
    "radiofind.train": "radiofind.training.train:train",
    "radiofind.demo": "radiofind.demo:demo",
}


def _runner(target: str):
    def run(**params):
        module, func = target.split(":")
        try:
            getattr(importlib.import_module(module), func)(**params)
        except RadiofindError as err:
            click.echo(f"radiofind: error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("radiofind: interrupted; no outputs were written", err=True)
            sys.exit(130)
    return run


def _radiofind_or_warning(record: logging.LogRecord) -> bool:
    return record.name.startswith("radiofind") or record.levelno >= logging.WARNING


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radiofind")
@click.option("-v", "--verbose", count=True,
              help="-v: radiofind's debug messages; -vv: every library's too.")
def main(verbose: int = 0) -> None:
    """radiofind: find sources in radio images with convolutional networks, and simulate the
    MeerKAT and ASKAP observations that train and test them."""
    # TensorFlow's C++ start-up chatter (CPU feature notes) is noise to a user; -vv keeps it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose >= 2 else "2")
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("radiofind").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose < 2:
        # radiofind's progress and every library's warnings; PyBDSF's INFO log only with -vv.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_radiofind_or_warning)


for _cab, _target in IMPLEMENTATIONS.items():
    if _cab in load_cabs():
        main.add_command(command_from_cab(_cab, _runner(_target)))


@main.command("models")
def list_models() -> None:
    """List the bundled models and what each is valid for."""
    try:
        from radiofind.detect.models import describe_models
        click.echo(describe_models())
    except RadiofindError as err:
        click.echo(f"radiofind: error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
