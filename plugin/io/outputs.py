"""Atomic, all-or-nothing outputs.

Every command writes into a staging folder beside its destination and moves the files into place
only when the whole job has succeeded, so a failure (bad input found late, Ctrl-C, a crash) never
leaves a partial catalogue or image behind, and an existing result is never overwritten unless the
user asked for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from radiofind.errors import RadiofindError


def check_writable(paths: Iterable[str | os.PathLike], *, overwrite: bool) -> None:
    """Raise before any work is done if an output exists and ``overwrite`` is false."""
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        raise RadiofindError(
            f"output exists: {existing[0]}"
            + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            + "; pass --overwrite to replace it"
        )


class Staging:
    """A staging folder: ``stage.path(name)`` gives where to write ``outdir/name`` for now."""

    def __init__(self, outdir: Path, tmpdir: Path):
        self.outdir = outdir
        self.tmpdir = tmpdir
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Temporary path for the output ``outdir/name`` (registered for the final move)."""
        if name not in self.names:
            self.names.append(name)
        return self.tmpdir / name

    def scratch(self, name: str) -> Path:
        """A path for a working file that is not an output: removed with the staging folder."""
        if name in self.names:
            raise ValueError(f"{name} is an output, not scratch")
        return self.tmpdir / name


@contextmanager
def staged_outputs(outdir: str | os.PathLike, names: Iterable[str] = (), *, overwrite: bool = False
                   ) -> Iterator[Staging]:
    """Stage outputs for ``outdir`` and move them into place only if the block succeeds.

    Parameters
    ----------
    outdir
        Destination folder (created if needed, at commit time).
    names
        Output names known in advance: checked for existence before any work starts.
    overwrite
        Replace existing outputs of the same name.
    """
    outdir = Path(outdir)
    check_writable((outdir / n for n in names), overwrite=overwrite)
    parent = outdir.parent if outdir.parent != Path("") else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    # The staging folder sits beside outdir so the final rename stays on one filesystem.
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.staging-", dir=parent))
    stage = Staging(outdir, tmpdir)
    try:
        yield stage
        check_writable((outdir / n for n in stage.names), overwrite=overwrite)
        outdir.mkdir(parents=True, exist_ok=True)
        for name in stage.names:
            src = tmpdir / name
            if not os.path.lexists(src):
                continue
            dst = outdir / name
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
