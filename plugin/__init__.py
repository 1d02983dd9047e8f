"""radiofind: find sources in radio images with convolutional networks."""

__version__ = "0.1.0"
