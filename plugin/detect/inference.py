"""Run a network over an image in overlapping chunks (dask ``map_overlap``).

The halo between chunks is the network's receptive-field radius, so every output pixel sees the
same input as in one pass: no seams at chunk edges. At the image's own edges no halo is added
(``boundary="none"``): the network's per-layer 'same' zero padding then acts exactly as in one pass
(padding the *input* with zeros would not, since the biases make the padded halo non-zero after the
first layer). The chunked result equals the one-pass result to float rounding.
"""

from __future__ import annotations

import numpy as np

from radiofind.detect.network import receptive_radius

DEFAULT_CHUNK = 2048  # pixels a side; ~12 channels x 4 bytes x (2048+2*halo)^2 x 3 live ~= 0.7 GB


def predict_map(model, arch: dict, data: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Apply ``model`` to a 2-D noise-normalised image, chunk by chunk.

    Parameters
    ----------
    model
        A Keras model mapping (1, H, W, 1) -> (1, H, W, 1).
    arch
        Its architecture (for the receptive-field radius = the halo).
    data
        The image, finite values (blanked pixels already set to 0).
    chunk
        Chunk size in pixels; memory grows with its square (see ``DEFAULT_CHUNK``).
    """
    import dask.array as da

    halo = receptive_radius(arch)

    def run_block(block: np.ndarray) -> np.ndarray:
        out = model(block[None, :, :, None].astype(np.float32), training=False)
        return np.asarray(out)[0, :, :, 0]

    if max(data.shape) <= chunk:
        return run_block(data)
    arr = da.from_array(data.astype(np.float32, copy=False), chunks=(chunk, chunk))
    result = arr.map_overlap(run_block, depth=halo, boundary="none", dtype=np.float32,
                             meta=np.array((), dtype=np.float32))
    # One compute for the whole map; TF's own thread pool runs each block.
    return result.compute(scheduler="threads")
