"""The version of trident, read by the build backend and by `trident.__version__`."""

__version__ = "0.1.0"
