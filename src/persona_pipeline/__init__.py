"""Event-driven persona generation service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("persona-pipeline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
