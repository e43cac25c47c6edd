"""The generation worker: consumes requests, generates, stores, publishes."""

from importlib.metadata import version

__version__ = version("persona-pipeline-worker")
