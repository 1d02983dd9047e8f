"""Image a Measurement Set with WSClean at radiofind's named weightings.

"natural" is Briggs robust 1.5 and "uniform" Briggs -1.5, as in DeepSource (section 2.2);
"briggs<r>" (e.g. ``briggs-0.5``, ``briggs0``) is Briggs robust r, -2 to 2. Two
flags are always passed (FACTS.md): ``-data-column DATA`` (an all-zero CORRECTED_DATA would
otherwise be imaged silently) and ``-use-wgridder`` (WSClean 3.1's default w-stacking gridder lost
1.4 % of an off-axis source's peak).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from radiofind.errors import RadiofindError

log = logging.getLogger("radiofind.simulation")

WEIGHTINGS = {"natural": 1.5, "uniform": -1.5}  # name -> Briggs robustness
_BRIGGS = re.compile(r"briggs(-?[0-9]+(?:\.[0-9]+)?)")


def robust_of(weighting: str) -> float:
    """The Briggs robustness of a weighting name: ``natural`` 1.5, ``uniform`` -1.5,
    ``briggs<r>`` r (from -2 to 2).

    Raises
    ------
    RadiofindError
        Any other name.
    """
    if weighting in WEIGHTINGS:
        return WEIGHTINGS[weighting]
    match = _BRIGGS.fullmatch(str(weighting))
    if match and -2.0 <= float(match.group(1)) <= 2.0:
        return float(match.group(1))
    raise RadiofindError(f"unknown weighting {weighting!r}; choose from "
                         f"{', '.join(WEIGHTINGS)} or briggs<r> with r from -2 to 2 "
                         "(e.g. briggs-0.5)")


@dataclass(frozen=True)
class WscleanProducts:
    """Paths of the images one WSClean run made."""

    image: Path
    residual: Path
    psf: Path
    log: Path


def find_wsclean() -> str:
    """Path of the ``wsclean`` executable (``$RADIOFIND_WSCLEAN`` or the PATH)."""
    exe = os.environ.get("RADIOFIND_WSCLEAN") or shutil.which("wsclean")
    if not exe or not os.access(exe, os.X_OK):
        raise RadiofindError(
            "wsclean not found: install WSClean (Debian/Ubuntu: apt install wsclean), put it on "
            "the PATH or set RADIOFIND_WSCLEAN, or pass --no-image")
    return exe


def wsclean_version() -> str:
    """WSClean's version string, e.g. ``3.1.0 (2022-04-01)``."""
    out = subprocess.run([find_wsclean(), "--version"], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        if line.startswith("WSClean version"):
            return line.removeprefix("WSClean version").strip()
    return "unknown"


def wsclean_command(ms: str | os.PathLike, name: str, *, weighting: str, size: int, scale: float,
                    niter: int, auto_threshold: float, mgain: float, threads: int,
                    auto_mask: float | None = None, super_weight: float = 1.0) -> list[str]:
    """The WSClean command line for one weighting (``auto_mask`` None: no ``-auto-mask``;
    ``super_weight`` 1: no ``-super-weight``)."""
    robust = robust_of(weighting)
    # -make-psf: the PSF (and a fitted beam) also when niter is 0; -no-update-model-required:
    # WSClean would otherwise add a MODEL_DATA column to the MS, growing it for nothing.
    mask = ["-auto-mask", f"{auto_mask:g}"] if auto_mask else []
    # After -weight: WSClean keeps the super-weight in its weighting mode, which -weight replaces
    # (given before it, -super-weight is silently lost).
    super_weight_opt = ["-super-weight", f"{super_weight:.10g}"] if super_weight != 1 else []
    return [find_wsclean(), "-data-column", "DATA", "-use-wgridder", "-make-psf",
            "-no-update-model-required",
            "-size", str(size), str(size), "-scale", f"{scale:.10g}asec",
            "-niter", str(niter), "-auto-threshold", f"{auto_threshold:g}", *mask,
            "-mgain", f"{mgain:g}", "-weight", "briggs", f"{robust:g}",
            *super_weight_opt,
            "-j", str(threads), "-name", name, os.fspath(ms)]


def run_wsclean(ms: str | os.PathLike, workdir: str | os.PathLike, *, weighting: str, size: int,
                scale: float, niter: int = 10000, auto_threshold: float = 3.0, mgain: float = 0.8,
                threads: int = 1, auto_mask: float | None = None,
                super_weight: float = 1.0) -> WscleanProducts:
    """Run WSClean on the DATA column; products are written into ``workdir`` as ``<weighting>-*``.

    Parameters
    ----------
    ms
        Measurement Set.
    workdir
        Existing folder for the images, the log (``<weighting>-wsclean.log``) and WSClean's
        temporary files.
    weighting
        ``natural`` (Briggs 1.5) or ``uniform`` (Briggs -1.5).
    size, scale
        Image size in pixels and pixel size in arcsec.
    niter, auto_threshold, mgain
        WSClean's clean settings.
    auto_mask
        WSClean's ``-auto-mask`` sigma (clean to it, then on to ``auto_threshold`` inside the
        mask of the components found so far); None: no mask.
    super_weight
        WSClean's ``-super-weight``: the box the weights are counted in, in uv cells of the image
        (1/FoV). WSClean counts uniform and Briggs weights per uv cell, so the same data imaged
        larger get smaller cells, a broader beam and lower noise; 0.25 at 1024 pixels gives the
        weights (and the beam) of a 4096-pixel image.
    threads
        WSClean's ``-j``.

    Raises
    ------
    RadiofindError
        WSClean missing, failing, or not writing its images; the message quotes the log's end.
    """
    workdir = Path(workdir)
    cmd = wsclean_command(Path(ms).resolve(), weighting, weighting=weighting, size=size,
                          scale=scale, niter=niter, auto_threshold=auto_threshold, mgain=mgain,
                          threads=threads, auto_mask=auto_mask, super_weight=super_weight)
    log_path = workdir / f"{weighting}-wsclean.log"
    log.info("WSClean (%s): %s", weighting, " ".join(cmd))
    with open(log_path, "w") as handle:
        handle.write(" ".join(cmd) + "\n\n")
        handle.flush()
        # Run inside workdir: WSClean writes its temporary reordered data into the working folder.
        proc = subprocess.run(cmd, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT,
                              check=False)
    if niter == 0 and proc.returncode == 0:
        # Without cleaning WSClean writes no residual; it is the dirty image by definition.
        dirty = workdir / f"{weighting}-dirty.fits"
        if dirty.exists():
            shutil.copyfile(dirty, workdir / f"{weighting}-residual.fits")
    products = WscleanProducts(image=workdir / f"{weighting}-image.fits",
                               residual=workdir / f"{weighting}-residual.fits",
                               psf=workdir / f"{weighting}-psf.fits", log=log_path)
    missing = [p.name for p in (products.image, products.residual, products.psf) if not p.exists()]
    if proc.returncode != 0 or missing:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        why = f"exit status {proc.returncode}" if proc.returncode else f"no {', '.join(missing)}"
        raise RadiofindError(f"WSClean failed ({why}); end of {log_path}:\n{tail}")
    return products
