"""dualmq: one broker, two delivery models (Kafka-like pull, Redis-like push).

This package is the public face: the SDK clients for both modes, the embedded broker and the
``dualmq`` command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dualmq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
