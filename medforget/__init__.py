"""medforget: honour patient deletion requests in medical-imaging classifiers.

The library is the product; :mod:`medforget.cli` is a thin Typer layer over it.
Start reading at :mod:`medforget.data` (datasets and IDs), :mod:`medforget.train`
and :mod:`medforget.checkpoint`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medforget")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
