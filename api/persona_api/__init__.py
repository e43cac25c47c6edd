"""The FastAPI read API (and the 202-accepting write that publishes a request)."""

from importlib.metadata import version

__version__ = version("persona-pipeline-api")
