"""Where dask runs radiofind's chunked work: threads on this machine, or a dask.distributed cluster.

By default every chunk runs on the local threaded scheduler, one thread per core. Given the
address of a running dask.distributed scheduler (``tcp://host:8786``), the same graphs run on its
workers instead; they need radiofind installed and the input and output folders on a shared
filesystem, because chunks are read and written by path.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from radiofind.errors import RadiofindError

log = logging.getLogger("radiofind")


@contextmanager
def dask_scheduler(address: str | None = None, *, progress: bool = False) -> Iterator[str]:
    """Run the dask computations inside the block on ``address`` (None: local threads).

    ``progress`` shows a progress bar on stderr for the local scheduler (a cluster has its own
    dashboard). Yields a description of where the work runs.
    """
    import dask

    with ExitStack() as stack:
        if address:
            try:
                from distributed import Client
            except ImportError as err:  # pragma: no cover - distributed is a dependency
                raise RadiofindError(f"--scheduler needs dask.distributed ({err})") from None
            try:
                client = stack.enter_context(Client(address, timeout="20s"))
            except (OSError, TimeoutError, ValueError) as err:
                raise RadiofindError(f"cannot connect to the dask scheduler at {address} "
                                     f"({err})") from None
            n = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
            where = f"dask cluster {address} ({len(client.scheduler_info()['workers'])} " \
                    f"workers, {n} threads)"
        else:
            import dask.threaded

            # The function, not the name "threads": given a name, dask imports dask.distributed
            # (0.15 s, a tenth of a small image's detect) to look for a running client.
            stack.enter_context(dask.config.set(scheduler=dask.threaded.get))
            if progress:
                from dask.diagnostics import ProgressBar

                stack.enter_context(ProgressBar(minimum=1.0, dt=1.0, out=sys.stderr))
            import os

            where = f"local threads ({os.cpu_count()} cores)"
        log.debug("dask runs on %s", where)
        yield where


def release_memory() -> None:
    """Hand memory freed by the worker threads back to the system (glibc's ``malloc_trim``).

    glibc keeps what a thread frees in that thread's arena; after blob detection on a 32768²
    image the process held ~0.3 GB it no longer used, which the catalogue step then added to:
    peak memory rose 1.37 -> 1.49-1.54 GB when blob detection became faster, and trimming brought
    it back. Elsewhere (other C libraries) this does nothing.
    """
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
