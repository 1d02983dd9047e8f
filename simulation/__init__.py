"""radiofind.simulation: simulated MeerKAT/ASKAP observations of known skies (training, tests).

Modules (none imports casatools, ducc0 or python-casacore at import time, so the CLI stays fast):

* ``telescopes`` - the arrays (real antenna positions in ``layouts/``), ``get_telescope``
* ``sky`` - DeepSource point-source skies on the output image grid
* ``ms`` - empty Measurement Sets from the casatools simulator (``casaconfig`` makes it offline)
* ``predict`` - visibilities with ducc0 (and an exact DFT reference); ``noise`` - thermal noise
* ``imaging`` - WSClean at natural / uniform weighting; ``truth`` - the truth catalogue
* ``config`` + ``run`` - ``simulate(**params)``, the ``radiofind.simulate`` cab's entry point
"""
