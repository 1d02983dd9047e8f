"""Make ``casatools`` usable offline, with no ``~/.casa``, and import it on demand.

casatools reads its configuration when it is first imported: by default it looks for measures data
in ``~/.casa/data``, tries to download updates from the network and writes a ``casa-*.log`` into the
working directory. None of that works on a cluster node or in a container without internet, so
radiofind writes a site-configuration file pointing at the measures data shipped by the ``casadata``
package, switches every update and network check off, and puts the log into a cache folder. The
environment variable ``CASASITECONFIG`` must name that file *before* the first ``import casatools``,
which is why nothing in radiofind imports casatools at module level: the CLI's ``--help`` and
``stimela doc`` must never pay for it (a second or two and a network probe).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from radiofind.errors import RadiofindError

log = logging.getLogger("radiofind.simulation")
_SINK = None  # the casatools log sink, kept alive for the life of the process

_SITE_CONFIG = """\
# Written by radiofind.simulation.casaconfig: offline casatools, no ~/.casa.
import casadata
measurespath = casadata.datapath
datapath = [casadata.datapath]
measures_auto_update = False
data_auto_update = False
skipnetworkcheck = True
nologger = True
nogui = True
log2term = False
cachedir = {cachedir!r}
logfile = {logfile!r}
"""


def cache_dir() -> Path:
    """A writable folder for radiofind's casatools configuration and log.

    ``$RADIOFIND_CACHE`` if set, else ``$XDG_CACHE_HOME/radiofind`` (``~/.cache/radiofind``); falls
    back to the system temporary folder when the home directory is read-only (containers).
    """
    candidates = []
    if os.environ.get("RADIOFIND_CACHE"):
        candidates.append(Path(os.environ["RADIOFIND_CACHE"]))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(Path(xdg) / "radiofind")
    candidates.append(Path(tempfile.gettempdir()) / f"radiofind-{os.getuid()}")
    for path in candidates:
        try:
            (path / "casa").mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path / "casa", os.W_OK):
            return path
    raise RadiofindError("no writable cache folder for casatools (set RADIOFIND_CACHE)")


def write_site_config() -> Path:
    """Write the offline casatools site configuration and return its path."""
    try:
        import casadata  # noqa: F401  (only checks that the measures data are installed)
    except ImportError:
        raise RadiofindError(
            "simulation needs casatools and casadata: pip install 'radiofind[sim]'") from None
    casa = cache_dir() / "casa"
    text = _SITE_CONFIG.format(cachedir=str(casa), logfile=str(casa / "casatools.log"))
    path = casa / "site_config.py"
    # Written to a temporary name and renamed: parallel simulations may race to create it.
    if not path.exists() or path.read_text() != text:
        fd, tmp = tempfile.mkstemp(dir=casa, prefix=".site_config-", suffix=".py")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return path


def import_casatools() -> ModuleType:
    """Import ``casatools`` configured for offline use and return the module.

    Returns
    -------
    module
        The ``casatools`` module.

    Raises
    ------
    RadiofindError
        casatools/casadata are not installed.
    """
    if "casatools" in sys.modules:
        return sys.modules["casatools"]
    config = write_site_config()
    # A site config the user chose is respected; otherwise ours is used.
    os.environ.setdefault("CASASITECONFIG", str(config))
    log.debug("casatools site configuration: %s", os.environ["CASASITECONFIG"])
    saved_argv = sys.argv
    try:
        # casaconfig parses sys.argv for its own flags (--nologger, --configfile ...); a host
        # program's arguments (pytest's, radiofind's) must not be taken for them.
        sys.argv = [saved_argv[0] if saved_argv else "radiofind"]
        import casatools
    except ImportError:
        raise RadiofindError(
            "simulation needs casatools and casadata: pip install 'radiofind[sim]'") from None
    finally:
        sys.argv = saved_argv
    # casatools' global log sink echoes every message (a SEVERE "TAI_UTC seems out-of-date" among
    # them) to the terminal whatever the config says; send it to the log file only.
    global _SINK
    _SINK = casatools.logsink(str(cache_dir() / "casa" / "casatools.log"))
    _SINK.setglobal(True)
    _SINK.showconsole(False)
    return casatools


@contextmanager
def casa_output_to_log() -> Iterator[None]:
    """Send what casatools' C++ code prints to the process's stdout/stderr into its log file.

    Some messages (the "Leap second table TAI_UTC seems out-of-date" SEVERE warning, harmless
    here: no leap second has been added since 2017) reach the terminal whatever the log sink's
    settings, so the file descriptors themselves are redirected for the duration of the block.
    """
    logfile = cache_dir() / "casa" / "casatools.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(logfile, "a") as handle:
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])
