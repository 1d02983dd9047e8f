"""radiofind: find sources in radio images with convolutional networks."""

import os

__version__ = "0.1.0"

# TensorFlow's CPU wheels leave oneDNN's convolutions off on CPUs other than Intel's (it says so
# only in a start-up log line), and then run the network at half speed: measured on a 2-core AMD
# EPYC, 0.79 -> 1.57 Mpix/s for a 800² block. Set before TensorFlow is first imported; a user's
# own TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
